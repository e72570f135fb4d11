"""Page sizes and signed page tokens (pixelcheck.paging)."""

from __future__ import annotations

import pytest

from pixelcheck import paging
from pixelcheck.errors import InvalidInput

KEY = paging.token_key("a-server-secret", "audit-events")
FILTERS = {"actor_id": "u1", "action": ""}


@pytest.mark.parametrize(("given", "effective"),
                         [(0, 50), (1, 1), (50, 50), (500, 500), (501, 500), (10**6, 500)])
def test_page_size_defaults_to_50_and_is_capped_at_500(given: int, effective: int) -> None:
    assert paging.page_size(given) == effective


def test_negative_page_size_is_invalid_with_its_own_reason() -> None:
    with pytest.raises(InvalidInput) as caught:
        paging.page_size(-1)
    assert caught.value.reason == "INVALID_PAGE_SIZE"
    assert caught.value.violations[0][0] == "page_size"


def test_token_round_trips_its_cursor() -> None:
    token = paging.encode_token(KEY, {"before_id": 1234}, FILTERS)
    assert paging.decode_token(KEY, token, dict(FILTERS)) == {"before_id": 1234}


def test_token_is_opaque_url_safe_text() -> None:
    token = paging.encode_token(KEY, {"before_id": 1234}, FILTERS)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert "1234" not in token or "before_id" not in token  # not readable as plain JSON


def test_token_reused_with_other_filters_is_rejected() -> None:
    token = paging.encode_token(KEY, {"before_id": 1234}, FILTERS)
    with pytest.raises(InvalidInput) as caught:
        paging.decode_token(KEY, token, {**FILTERS, "action": "rpc"})
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_token_with_a_forged_cursor_is_rejected() -> None:
    token = paging.encode_token(KEY, {"before_id": 1234}, FILTERS)
    forged_body = paging.encode_token(KEY, {"before_id": 99}, FILTERS).split(".")[0]
    with pytest.raises(InvalidInput) as caught:
        paging.decode_token(KEY, f"{forged_body}.{token.split('.')[1]}", FILTERS)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_token_signed_with_another_key_is_rejected() -> None:
    other = paging.encode_token(paging.token_key("a-server-secret", "images"), {"before_id": 1}, FILTERS)
    with pytest.raises(InvalidInput) as caught:
        paging.decode_token(KEY, other, FILTERS)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize("garbage", ["x", ".", "abc.def", "%%%.%%%", "eyJ9.", "a" * 500])
def test_malformed_tokens_are_rejected_not_crashing(garbage: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        paging.decode_token(KEY, garbage, FILTERS)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
