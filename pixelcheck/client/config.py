"""The command-line client's saved sign-in: $XDG_CONFIG_HOME/pixelcheck/credentials.json, mode 0600."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from pixelcheck.client.sdk import Session

FILE_MODE = 0o600  # tokens are secrets: owner only
DIR_MODE = 0o700


@dataclass
class SavedLogin:
    """Where the user signed in and the session to continue with."""

    address: str
    session: Session
    ca_file: str = ""  # PEM of a private CA, when the server needs one


def credentials_path(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/pixelcheck/credentials.json, else ~/.config/pixelcheck/credentials.json."""
    # The XDG base-directory variables belong to the user's desktop, not to PIXELCHECK_* settings.
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "pixelcheck" / "credentials.json"


def load_login(path: Path) -> SavedLogin | None:
    """The saved login, or None when there is none. Raises ValueError for a file that is not ours."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    try:
        return SavedLogin(raw["address"], Session(**raw["session"]), raw.get("ca_file", ""))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a PixelCheck credentials file ({exc})") from None


def save_login(path: Path, login: SavedLogin) -> None:
    """Write the login atomically, readable by the owner only (0600), in a 0700 folder."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    text = json.dumps({"address": login.address, "ca_file": login.ca_file, "session": asdict(login.session)},
                      indent=2)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the first byte: the tokens are never readable by others, not even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is masked by the umask; make it exact
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def forget_login(path: Path) -> bool:
    """Delete the saved login; True when there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
