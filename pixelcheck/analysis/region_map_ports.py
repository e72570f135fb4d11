"""What region maps are keyed by, and the ports they talk through: the task queue and the marks of maps that
somebody asked for lately."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from pixelcheck.analysis.models import Analysis, FrameRegionMap


class MapQueue(Protocol):
    """Where region-map work is sent (pixelcheck.worker.TaskQueue)."""

    def map_regions(self, image_id: str, *, requested: bool, frame_index: int | None = None) -> None: ...

    def map_for_report(self, image_id: str, owner_id: str) -> None: ...

    def build_report(self, report_id: str) -> None: ...


class MapRequests(Protocol):
    """Which maps somebody asked for lately (so a poll does not send the same request twice), by MapKey.mark."""

    def mark(self, key: str) -> bool: ...  # True when newly marked

    def marked(self, key: str) -> bool: ...

    def clear(self, key: str) -> None: ...


@dataclass(frozen=True)
class MapKey:
    """Which map: an image's own (of its first frame, on its Analysis row) or one frame's (a FrameRegionMap row)."""

    image_id: str
    frame: int | None = None

    @property
    def model(self) -> type[Analysis] | type[FrameRegionMap]:
        return Analysis if self.frame is None else FrameRegionMap

    def where(self) -> list[ColumnElement[bool]]:
        if self.frame is None:
            return [Analysis.image_id == self.image_id]
        return [FrameRegionMap.image_id == self.image_id, FrameRegionMap.frame_index == self.frame]

    def load(self, session: Session, *, for_update: bool = False) -> Analysis | FrameRegionMap | None:
        """The row holding this map."""
        if self.frame is None:
            query = select(Analysis).where(*self.where())
            return session.scalar(query.with_for_update() if for_update else query)
        frame_query = select(FrameRegionMap).where(*self.where())
        return session.scalar(frame_query.with_for_update() if for_update else frame_query)

    @property
    def mark(self) -> str:
        """Its key in MapRequests (an image's own map: the image id, as before frames had maps)."""
        return self.image_id if self.frame is None else f"{self.image_id}:frame:{self.frame}"

    def __str__(self) -> str:
        return f"image {self.image_id}" if self.frame is None else f"frame {self.frame} of image {self.image_id}"


class RedisMapRequests:
    """MapRequests in Redis, each mark living as long as the stale period (then a poll asks again)."""

    def __init__(self, client: Any, prefix: str, ttl_seconds: int) -> None:
        self._redis, self._prefix, self._ttl = client, f"{prefix}:map-requested", max(1, ttl_seconds)

    def mark(self, key: str) -> bool:
        return bool(self._redis.set(f"{self._prefix}:{key}", b"1", nx=True, ex=self._ttl))

    def marked(self, key: str) -> bool:
        return bool(self._redis.exists(f"{self._prefix}:{key}"))

    def clear(self, key: str) -> None:
        self._redis.delete(f"{self._prefix}:{key}")
