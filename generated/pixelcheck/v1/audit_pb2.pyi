import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditEvent(_message.Message):
    __slots__ = ("id", "actor_id", "action", "target", "method", "status_code", "peer", "request_id", "duration_ms", "payload", "occurred_time", "hash", "prev_hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_TIME_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    id: int
    actor_id: str
    action: str
    target: str
    method: str
    status_code: str
    peer: str
    request_id: str
    duration_ms: int
    payload: _struct_pb2.Struct
    occurred_time: _timestamp_pb2.Timestamp
    hash: str
    prev_hash: str
    def __init__(self, id: _Optional[int] = ..., actor_id: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., method: _Optional[str] = ..., status_code: _Optional[str] = ..., peer: _Optional[str] = ..., request_id: _Optional[str] = ..., duration_ms: _Optional[int] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., occurred_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hash: _Optional[str] = ..., prev_hash: _Optional[str] = ...) -> None: ...

class RecordEventRequest(_message.Message):
    __slots__ = ("action", "target", "payload")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    action: str
    target: str
    payload: _struct_pb2.Struct
    def __init__(self, action: _Optional[str] = ..., target: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RecordEventResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: AuditEvent
    def __init__(self, event: _Optional[_Union[AuditEvent, _Mapping]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "actor_id", "action", "method", "status_code", "since", "until")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    actor_id: str
    action: str
    method: str
    status_code: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., actor_id: _Optional[str] = ..., action: _Optional[str] = ..., method: _Optional[str] = ..., status_code: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("ok", "checked_count", "first_broken_event_id")
    OK_FIELD_NUMBER: _ClassVar[int]
    CHECKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    checked_count: int
    first_broken_event_id: int
    def __init__(self, ok: _Optional[bool] = ..., checked_count: _Optional[int] = ..., first_broken_event_id: _Optional[int] = ...) -> None: ...

class GetUsageStatisticsRequest(_message.Message):
    __slots__ = ("since", "until")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetUsageStatisticsResponse(_message.Message):
    __slots__ = ("images_analysed", "labelled_ai", "labelled_real", "mean_analysis_ms", "p95_analysis_ms", "failures", "active_users", "reports_built", "images_uploaded")
    IMAGES_ANALYSED_FIELD_NUMBER: _ClassVar[int]
    LABELLED_AI_FIELD_NUMBER: _ClassVar[int]
    LABELLED_REAL_FIELD_NUMBER: _ClassVar[int]
    MEAN_ANALYSIS_MS_FIELD_NUMBER: _ClassVar[int]
    P95_ANALYSIS_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_USERS_FIELD_NUMBER: _ClassVar[int]
    REPORTS_BUILT_FIELD_NUMBER: _ClassVar[int]
    IMAGES_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    images_analysed: int
    labelled_ai: int
    labelled_real: int
    mean_analysis_ms: float
    p95_analysis_ms: float
    failures: int
    active_users: int
    reports_built: int
    images_uploaded: int
    def __init__(self, images_analysed: _Optional[int] = ..., labelled_ai: _Optional[int] = ..., labelled_real: _Optional[int] = ..., mean_analysis_ms: _Optional[float] = ..., p95_analysis_ms: _Optional[float] = ..., failures: _Optional[int] = ..., active_users: _Optional[int] = ..., reports_built: _Optional[int] = ..., images_uploaded: _Optional[int] = ...) -> None: ...
