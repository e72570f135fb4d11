"""Password hashing (argon2id, re-hash on parameter change) and the sign-up rules."""

from __future__ import annotations

import pytest

from pixelcheck.iam import validation
from pixelcheck.iam.passwords import Passwords

FAST = {"time_cost": 1, "memory_cost_kib": 1024, "parallelism": 1}


def test_a_hash_is_argon2id_and_checks_only_the_right_password():
    passwords = Passwords(**FAST)
    stored = passwords.hash("violet-harbour-7421")
    assert stored.startswith("$argon2id$")
    assert passwords.check(stored, "violet-harbour-7421")
    assert not passwords.check(stored, "violet-harbour-7422")


def test_an_unusable_stored_hash_fails_the_check_instead_of_raising():
    passwords = Passwords(**FAST)
    assert not passwords.check("", "anything-at-all")
    assert not passwords.check("not-a-hash", "anything-at-all")
    assert passwords.needs_rehash("not-a-hash")


def test_an_unknown_login_check_always_fails():
    assert Passwords(**FAST).check_unknown("decoy password for logins that do not exist") is False


def test_a_hash_made_with_old_parameters_still_checks_and_needs_a_rehash():
    old = Passwords(**FAST).hash("violet-harbour-7421")
    current = Passwords(time_cost=2, memory_cost_kib=2048, parallelism=1)
    assert current.check(old, "violet-harbour-7421")
    assert current.needs_rehash(old)
    assert not current.needs_rehash(current.hash("violet-harbour-7421"))


# -- sign-up rules ----------------------------------------------------------------------------------
def fields(**request: str) -> set[str]:
    values = {"username": "ada", "email": "ada@example.org", "password": "violet-harbour-7421",
              "display_name": ""} | request
    return {name for name, _ in validation.sign_up_violations(**values)}


def test_a_good_request_has_no_violations():
    assert fields() == set()


def test_every_bad_field_is_reported_at_once():
    assert fields(username="A", email="nope", password="short", display_name="\x00") == {
        "username", "email", "password", "display_name"}


@pytest.mark.parametrize("username", ["ab", "a" * 65, "Ada", "ada lovelace", "ada@home", "äda"])
def test_usernames_outside_the_allowed_alphabet_or_length_are_refused(username):
    assert fields(username=username) == {"username"}


@pytest.mark.parametrize("username", ["ada", "ada.lovelace", "a_b-c.9", "x" * 64])
def test_usernames_of_the_allowed_alphabet_are_accepted(username):
    assert fields(username=username) == set()


@pytest.mark.parametrize("email", ["", "ada", "ada@", "@example.org", "ada@example", "a b@example.org",
                                   "ada@@example.org", f"{'a' * 250}@example.org"])
def test_invalid_emails_are_refused(email):
    assert fields(email=email) == {"email"}


@pytest.mark.parametrize("password", ["short", "123456789", "1234567890", "QwertyUiop", "password123",
                                      "ada.lovelace", "ADA@EXAMPLE.ORG", "ababababababab", "x" * 1025])
def test_short_common_or_personal_passwords_are_refused(password):
    assert fields(username="ada.lovelace", email="ada@example.org", password=password) == {"password"}


def test_emails_are_normalised_to_lower_case_without_spaces():
    assert validation.normalise_email("  Ada@Example.ORG ") == "ada@example.org"
