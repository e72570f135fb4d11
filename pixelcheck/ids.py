"""Checks ids at the edge: a malformed id is INVALID_ARGUMENT, a well-formed unknown one NOT_FOUND."""

from __future__ import annotations

import re

from pixelcheck.errors import InvalidInput

_ID = re.compile(r"^[0-9a-f]{32}$")


def check_id(value: str, field: str) -> str:
    """value when it is a well-formed id (32 lowercase hex characters); raises InvalidInput otherwise."""
    if not _ID.match(value or ""):
        raise InvalidInput(f"{field} must be an id of 32 lowercase hexadecimal characters",
                           reason="INVALID_ID", violations=[(field, "must be 32 lowercase hex characters")])
    return value
