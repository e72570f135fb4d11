"""Logging set-up: plain text, or one JSON object per line when PIXELCHECK_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pixelcheck.api.calls import current_request_id
from pixelcheck.settings import Settings
from pixelcheck.tracing import current_trace_id

_EXTRA_FIELDS = ("request_id", "trace_id", "method", "actor", "code", "duration_ms", "image_id", "task")


class RequestIdFilter(logging.Filter):
    """Stamps every record logged during an RPC (also from offloaded threads) with the call's request id,
    and every record logged inside a recorded trace (an RPC, a worker task) with its trace id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            request_id = current_request_id()
            if request_id:
                record.request_id = request_id
        if not getattr(record, "trace_id", ""):
            trace_id = current_trace_id()
            if trace_id:
                record.trace_id = trace_id
        rid = getattr(record, "request_id", "")
        record.request_tag = f" [{rid}]" if rid else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(), "level": record.levelname,
               "logger": record.name, "message": record.getMessage()}
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                doc[name] = getattr(record, name)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
