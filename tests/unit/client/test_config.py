"""The saved login: where it lives, who may read it, and what a damaged file does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pixelcheck.client.config import SavedLogin, credentials_path, forget_login, load_login, save_login
from pixelcheck.client.sdk import Session

LOGIN = SavedLogin("127.0.0.1:50051", Session("access", "refresh", 1_900_000_000.0, "alice"))


def test_credentials_path_honours_xdg_config_home_then_home():
    assert credentials_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path("/x/pixelcheck/credentials.json")
    assert credentials_path({"HOME": "/h"}) == Path("/h/.config/pixelcheck/credentials.json")


def test_saved_credentials_are_readable_by_the_owner_only(tmp_path: Path):
    path = tmp_path / "config" / "pixelcheck" / "credentials.json"
    old_umask = os.umask(0o000)  # even a permissive umask must not widen the file's mode
    try:
        save_login(path, LOGIN)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_rewriting_a_too_open_file_makes_it_0600(tmp_path: Path):
    path = tmp_path / "credentials.json"
    path.write_text("{}")
    path.chmod(0o644)
    save_login(path, LOGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]  # no temporary file left behind


def test_saved_login_round_trips(tmp_path: Path):
    path = tmp_path / "credentials.json"
    save_login(path, LOGIN)
    assert load_login(path) == LOGIN


def test_missing_file_means_not_signed_in_and_forget_says_so(tmp_path: Path):
    path = tmp_path / "credentials.json"
    assert load_login(path) is None
    assert forget_login(path) is False
    save_login(path, LOGIN)
    assert forget_login(path) is True
    assert not path.exists()


@pytest.mark.parametrize("content", ["not json", '{"address": "x"}', '{"address": "x", "session": {"a": 1}}'])
def test_damaged_file_is_reported_with_its_path(tmp_path: Path, content: str):
    path = tmp_path / "credentials.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="credentials.json"):
        load_login(path)
