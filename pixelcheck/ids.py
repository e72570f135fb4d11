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


# A caller's own id for an image: printable ASCII without spaces, so it survives logs, CSVs and URLs.
EXTERNAL_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
EXTERNAL_ID_RULE = "must be 1-128 printable ASCII characters without spaces"


def check_external_id_filter(value: str, field: str = "external_id") -> None:
    """A list filter by external_id ("" = none) must be a valid external_id. Raises InvalidInput (INVALID_FILTER)."""
    if value and not EXTERNAL_ID.match(value):
        raise InvalidInput(f"{field} {EXTERNAL_ID_RULE}", reason="INVALID_FILTER",
                           violations=[(field, EXTERNAL_ID_RULE)])
