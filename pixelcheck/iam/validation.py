"""Sign-up rules: username, email, password and display name, each reported as (field, why) violations."""

from __future__ import annotations

import re

USERNAME_RE = re.compile(r"[a-z0-9_.-]{3,64}")
ID_RE = re.compile(r"[0-9a-f]{32}")
# Deliberately loose (RFC 5322 is not worth parsing): one @, no spaces, a dot in the domain.
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
EMAIL_MAX = 254
PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 accepts more, but nobody types this much; bounds the work per request
DISPLAY_NAME_MAX = 128

# Breached-password lists only matter from PASSWORD_MIN characters up; shorter ones fail the length rule.
_COMMON_PASSWORDS_TEXT = """
1234567890 0123456789 0987654321 9876543210 12345678910 123456789a 123456789q 1234567890q
1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx3edc q1w2e3r4t5 qwertyuiop qwertyuiop1 qwerty1234 qwerty12345
qwerty123456 asdfghjkl1 asdfghjkl; zxcvbnm123 1qazxsw23edc zaq12wsx1234 qazwsxedc123 qazwsxedcrfv
password12 password123 password1234 password12345 password!1 passw0rd12 p@ssw0rd12 p@ssword123
passwordpassword letmein123 letmeinplease welcome123 welcome1234 iloveyou12 iloveyou123 iloveyou1234
sunshine123 princess123 football123 baseball123 basketball basketball1 superman123 batman1234
trustno1234 dragon1234 monkey1234 master1234 shadow1234 michael123 jennifer123 computer123
administrator admin12345 admin123456 adminadmin changeme123 changemenow secret1234 secretpassword
abcdefghij abcdefghijk abc1234567 abcd123456 abcdef1234 aaaaaaaaaa 1111111111 0000000000
1122334455 1212121212 1234512345 1234554321 1234567891 12341234 123123123123 123qweasdzxc
myspace123 starwars123 pokemon123 minecraft1 minecraft123 liverpool1 liverpool123 chelsea123
arsenal123 manchester manchesterunited whatever123 internet123 samsung123 google1234 facebook123
"""
COMMON_PASSWORDS = frozenset(_COMMON_PASSWORDS_TEXT.split())


def id_violations(field: str, value: str) -> list[tuple[str, str]]:
    """Why value is not an id (32 lowercase hex characters), if it is not."""
    if not value:
        return [(field, "is required")]
    if not ID_RE.fullmatch(value):
        return [(field, "must be an id: 32 lowercase hex characters")]
    return []


def username_violations(username: str) -> list[tuple[str, str]]:
    """Why username is unacceptable, if it is."""
    if not USERNAME_RE.fullmatch(username):
        return [("username", "must be 3-64 characters of a-z, 0-9, '_', '.', '-'")]
    return []


def normalise_email(email: str) -> str:
    """The stored form of an email: trimmed and lower-cased (emails are unique case-insensitively)."""
    return email.strip().lower()


def email_violations(email: str) -> list[tuple[str, str]]:
    """Why email (already normalised) is unacceptable, if it is."""
    if not email:
        return [("email", "is required")]
    if len(email) > EMAIL_MAX or not EMAIL_RE.fullmatch(email):
        return [("email", "must be a valid email address")]
    return []


def password_violations(password: str, *, username: str, email: str = "") -> list[tuple[str, str]]:
    """Why password is unacceptable for this account, if it is (one reason, the first that applies)."""
    if len(password) < PASSWORD_MIN:
        return [("password", f"must be at least {PASSWORD_MIN} characters")]
    if len(password) > PASSWORD_MAX:
        return [("password", f"must be at most {PASSWORD_MAX} characters")]
    lowered = password.lower()
    if lowered in (username.lower(), email.lower()):
        return [("password", "must not be the username or email")]
    if lowered in COMMON_PASSWORDS or len(set(password)) <= 2:
        return [("password", "is too common; choose a less guessable one")]
    return []


def display_name_violations(display_name: str) -> list[tuple[str, str]]:
    """Why display_name (already trimmed; empty means "use the username") is unacceptable, if it is."""
    if len(display_name) > DISPLAY_NAME_MAX:
        return [("display_name", f"must be at most {DISPLAY_NAME_MAX} characters")]
    if not display_name.isprintable():
        return [("display_name", "must not contain control characters")]
    return []


def sign_up_violations(*, username: str, email: str, password: str, display_name: str) -> list[tuple[str, str]]:
    """Every violation of a sign-up request at once (email normalised, display_name trimmed)."""
    return [
        *username_violations(username),
        *email_violations(email),
        *password_violations(password, username=username, email=email),
        *display_name_violations(display_name),
    ]
