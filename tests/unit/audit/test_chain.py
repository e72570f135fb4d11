"""Hash chain: canonical serialisation, linking and verification of a walk."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pixelcheck.audit.chain import (
    GENESIS_HASH,
    ChainedEvent,
    EventContent,
    canonical_bytes,
    event_hash,
    link,
    verify_events,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def contents(n: int) -> list[EventContent]:
    return [EventContent(action="rpc", actor_id=f"user{i % 3}", method="/pixelcheck.v1.AuthService/SignIn",
                         status_code="OK", peer="ipv4:127.0.0.1:5000", request_id=f"req-{i}", duration_ms=i,
                         payload={"n": i, "nested": {"b": [1, 2], "a": "é"}},
                         occurred_time=T0 + timedelta(seconds=i)) for i in range(n)]


def chain_of(n: int) -> list[ChainedEvent]:
    return link(1, GENESIS_HASH, contents(n))


def verify(events: list[ChainedEvent], **end: int | str) -> tuple[bool, int, int]:
    head = events[-1] if events else None
    result = verify_events(events, start_id=0, start_hash=GENESIS_HASH,
                           end_id=int(end.get("end_id", head.id if head else 0)),
                           end_hash=str(end.get("end_hash", head.hash if head else GENESIS_HASH)))
    return result.ok, result.checked_count, result.first_broken_event_id


def test_canonical_bytes_do_not_depend_on_payload_key_order() -> None:
    a = EventContent(action="x", payload={"a": 1, "b": 2}, occurred_time=T0)
    b = EventContent(action="x", payload={"b": 2, "a": 1}, occurred_time=T0)
    assert canonical_bytes(1, a, GENESIS_HASH) == canonical_bytes(1, b, GENESIS_HASH)


def test_canonical_time_is_utc_with_microseconds_whatever_the_zone() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert event_hash(1, EventContent(action="x", occurred_time=T0), GENESIS_HASH) == event_hash(
        1, EventContent(action="x", occurred_time=plus_two), GENESIS_HASH)
    assert b'"occurred_time":"2026-01-02T03:04:05.678901Z"' in canonical_bytes(
        1, EventContent(action="x", occurred_time=T0), GENESIS_HASH)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        event_hash(1, EventContent(action="x", occurred_time=T0.replace(tzinfo=None)), GENESIS_HASH)


@pytest.mark.parametrize("field", ["actor_id", "action", "target", "method", "status_code", "peer",
                                   "request_id"])
def test_every_field_is_covered_by_the_hash(field: str) -> None:
    content = contents(1)[0]
    assert event_hash(1, content, GENESIS_HASH) != event_hash(1, replace(content, **{field: "changed"}),
                                                              GENESIS_HASH)


def test_id_duration_payload_time_and_previous_hash_are_covered_by_the_hash() -> None:
    c = contents(1)[0]
    base = event_hash(1, c, GENESIS_HASH)
    assert base != event_hash(2, c, GENESIS_HASH)
    assert base != event_hash(1, replace(c, duration_ms=999), GENESIS_HASH)
    assert base != event_hash(1, replace(c, payload={"n": 1}), GENESIS_HASH)
    assert base != event_hash(1, replace(c, occurred_time=T0 + timedelta(microseconds=1)), GENESIS_HASH)
    assert base != event_hash(1, c, "1" * 64)


def test_linked_events_point_at_their_predecessor() -> None:
    events = chain_of(3)
    assert [e.id for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash


def test_an_intact_chain_verifies() -> None:
    assert verify(chain_of(20)) == (True, 20, 0)


def test_an_empty_chain_verifies() -> None:
    assert verify([], end_id=0, end_hash=GENESIS_HASH) == (True, 0, 0)


def test_an_edited_event_is_named() -> None:
    events = chain_of(10)
    events[4] = replace(events[4], content=replace(events[4].content, status_code="PERMISSION_DENIED"))
    assert verify(events) == (False, 4, 5)


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    events = chain_of(10)
    edited = replace(events[4].content, actor_id="someone-else")
    events[4] = replace(events[4], content=edited, hash=event_hash(5, edited, events[4].prev_hash))
    assert verify(events) == (False, 5, 6)


def test_a_deleted_event_is_named_by_the_event_after_the_gap() -> None:
    events = chain_of(10)
    del events[3]
    assert verify(events) == (False, 3, 5)


def test_deleting_the_newest_events_is_caught_by_the_head() -> None:
    events = chain_of(10)
    assert verify(events[:8], end_id=10, end_hash=events[-1].hash) == (False, 8, 9)


def test_reordered_events_are_caught() -> None:
    events = chain_of(10)
    events[2], events[3] = events[3], events[2]
    assert verify(events) == (False, 2, 4)


def test_swapped_contents_keeping_ids_are_caught() -> None:
    events = chain_of(10)
    a, b = events[2], events[3]
    events[2] = replace(a, content=b.content)
    events[3] = replace(b, content=a.content)
    assert verify(events) == (False, 2, 3)


def test_a_rewritten_tail_is_caught_by_the_head_hash() -> None:
    events = chain_of(5)
    forged = link(4, events[2].hash, [replace(events[3].content, actor_id="x"), events[4].content])
    assert verify(events[:3] + forged, end_id=5, end_hash=events[-1].hash) == (False, 5, 5)


def test_verification_resumes_from_a_checkpoint() -> None:
    events = chain_of(10)
    result = verify_events(events[6:], start_id=6, start_hash=events[5].hash, end_id=10,
                           end_hash=events[-1].hash)
    assert (result.ok, result.checked_count) == (True, 4)
    wrong_checkpoint = verify_events(events[6:], start_id=6, start_hash=events[4].hash)
    assert (wrong_checkpoint.ok, wrong_checkpoint.first_broken_event_id) == (False, 7)
