"""Results use cases: one analysis, a filtered list, and the detector's description with live statistics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from pixelcheck import paging
from pixelcheck.analysis.detector import ModelInfo
from pixelcheck.analysis.models import Analysis
from pixelcheck.errors import InvalidInput, NotFound
from pixelcheck.iam.principal import Principal
from pixelcheck.ids import check_external_id_filter, check_id

ORDERINGS = ("create_time desc", "confidence desc")


@dataclass(frozen=True)
class ResultFilters:
    label: str = ""  # "", "AI" or "REAL"
    since: datetime | None = None
    until: datetime | None = None
    filename_contains: str = ""
    order_by: str = "create_time desc"
    external_id: str = ""  # exact match; "" = any


@dataclass(frozen=True)
class ResultPage:
    results: list[Analysis]
    next_page_token: str
    total_size: int


@dataclass(frozen=True)
class ModelStatistics:
    inference_count: int
    failure_count: int
    mean_latency_ms: float
    p95_latency_ms: float


class Results:
    def __init__(self, *, read_sessions: sessionmaker[Session], page_token_key: bytes,
                 statistics_max_age_seconds: float = 1.0) -> None:
        self._read = read_sessions
        self._page_key = page_token_key
        self._stats_max_age = statistics_max_age_seconds
        self._stats_cache: dict[str, tuple[float, ModelStatistics]] = {}

    def get_result(self, principal: Principal, image_id: str) -> Analysis:
        """The analysis of an image the caller may see. Raises NotFound otherwise (existence is not leaked)."""
        check_id(image_id, "image_id")
        with self._read() as session:
            row = session.scalar(select(Analysis).where(Analysis.image_id == image_id))
        if row is None or not principal.can_see(row.owner_id):
            raise NotFound(f"No analysis for image {image_id}", reason="IMAGE_NOT_FOUND")
        return row

    def pending_count(self, owner_id: str) -> int:
        """The owner's turns queued or running, as the database has them: a queued analysis counts its cost, a
        running one 1, as the fair queue counts them (admission asks while the fair queue in Redis is being
        refilled after Redis lost its data)."""
        with self._read() as session:
            queued, running = session.execute(select(
                func.coalesce(func.sum(case((Analysis.state == "QUEUED", Analysis.cost), else_=0)), 0),
                func.coalesce(func.sum(case((Analysis.state == "RUNNING", 1), else_=0)), 0),
            ).where(Analysis.state.in_(("QUEUED", "RUNNING")), Analysis.owner_id == owner_id)).one()
            return int(queued) + int(running)

    def list_results(self, principal: Principal, filters: ResultFilters, *, page_size: int,
                     page_token: str) -> ResultPage:
        """The caller's analyses matching filters, in the requested order, paginated (AIP-158)."""
        size = paging.page_size(page_size)
        order_by = " ".join(filters.order_by.split()).lower() or "create_time desc"
        if order_by not in ORDERINGS:
            raise InvalidInput(f"order_by must be one of: {', '.join(ORDERINGS)}", reason="INVALID_ORDER_BY",
                               violations=[("order_by", "unsupported ordering")])
        if len(filters.filename_contains) > 255:
            raise InvalidInput("filename_contains must be at most 255 characters", reason="INVALID_FILTER",
                               violations=[("filename_contains", "too long")])
        check_external_id_filter(filters.external_id)
        if filters.since and filters.until and filters.since >= filters.until:
            raise InvalidInput("since must be before until", reason="INVALID_FILTER",
                               violations=[("since", "must be before until")])
        key = {"owner": principal.user_id, "label": filters.label, "order": order_by,
               "since": filters.since.isoformat() if filters.since else "",
               "until": filters.until.isoformat() if filters.until else "", "name": filters.filename_contains,
               "external_id": filters.external_id}
        cursor = paging.decode_token(self._page_key, page_token, key) if page_token else None
        conditions = [Analysis.owner_id == principal.user_id]
        if filters.label:
            conditions.append(Analysis.label == filters.label)
        if filters.since:
            conditions.append(Analysis.create_time >= filters.since)
        if filters.until:
            conditions.append(Analysis.create_time < filters.until)
        if filters.external_id:
            conditions.append(Analysis.external_id == filters.external_id)
        if filters.filename_contains:
            pattern = "%" + filters.filename_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            conditions.append(func.lower(Analysis.filename).like(pattern, escape="\\"))
        with self._read() as session:
            total = session.scalar(select(func.count()).select_from(Analysis).where(*conditions)) or 0
            query = select(Analysis).where(*conditions)
            if order_by == "confidence desc":
                conf = func.coalesce(Analysis.confidence, -1.0)
                if cursor:
                    c = float(cursor["c"])
                    query = query.where(or_(conf < c, and_(conf == c, Analysis.id < cursor["id"])))
                query = query.order_by(conf.desc(), Analysis.id.desc())
            else:
                if cursor:
                    at = datetime.fromisoformat(cursor["t"])
                    query = query.where(or_(Analysis.create_time < at,
                                            and_(Analysis.create_time == at, Analysis.id < cursor["id"])))
                query = query.order_by(Analysis.create_time.desc(), Analysis.id.desc())
            rows = list(session.scalars(query.limit(size + 1)))
        page = rows[:size]
        token = ""
        if len(rows) > size:
            last = page[-1]
            cur = ({"c": last.confidence if last.confidence is not None else -1.0, "id": last.id}
                   if order_by == "confidence desc" else {"t": last.create_time.isoformat(), "id": last.id})
            token = paging.encode_token(self._page_key, cur, key)
        return ResultPage(page, token, int(total))

    def model_statistics(self, info: ModelInfo) -> ModelStatistics:
        """Live statistics of one model version over every worker, from the stored analyses (at most a second
        old: four aggregate queries per GetModelInfo call would make a cheap call expensive)."""
        version = f"{info.name}-{info.version}"
        cached = self._stats_cache.get(version)
        if cached is not None and time.monotonic() - cached[0] < self._stats_max_age:
            return cached[1]
        stats = self._compute_statistics(version)
        self._stats_cache[version] = (time.monotonic(), stats)
        return stats

    def _compute_statistics(self, version: str) -> ModelStatistics:
        with self._read() as session:
            done = select(Analysis.duration_ms).where(Analysis.model_version == version,
                                                      Analysis.state == "SUCCEEDED", Analysis.duration_ms.is_not(None))
            count = session.scalar(select(func.count()).select_from(done.subquery())) or 0
            mean = session.scalar(select(func.avg(done.subquery().c.duration_ms))) or 0.0
            p95 = 0.0
            if count:
                offset = max(0, int(round(0.95 * count)) - 1)
                p95 = session.scalar(done.order_by(Analysis.duration_ms).offset(offset).limit(1)) or 0.0
            failures = session.scalar(select(func.count()).select_from(Analysis).where(
                Analysis.model_version == version, Analysis.state == "FAILED")) or 0
        return ModelStatistics(int(count), int(failures), float(mean), float(p95))
