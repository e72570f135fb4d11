#!/usr/bin/env python3
"""Worker overhead: the time AnalysisPipeline.run spends outside detector.analyze (claim, blob read, stage
publishes, saving), per analysis, on the database and Redis given. The detector is replaced by one that
returns a stored verdict at once (calling every stage), so what is timed is the bookkeeping alone; the
number of SQL statements and Redis publishes per analysis is counted too.

    .venv/bin/python scripts/bench/worker_overhead.py [--count 200] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from stack import add_stack_arguments, distribution, pixelcheck_stack, print_table, synthetic_jpeg

from pixelcheck.analysis.detector import DEFAULT_MODEL_DIR, Stage, load_detector
from pixelcheck.analysis.detector.verdict import Verdict
from pixelcheck.analysis.models import Analysis
from pixelcheck.bootstrap import build_container
from pixelcheck.db import new_id, unit_of_work
from pixelcheck.iam.models import User
from pixelcheck.ingestion.models import Image

STAGES = (Stage.DECODING, Stage.PROVENANCE, Stage.PIXEL_MODEL, Stage.FUSION)


class InstantDetector:
    """Calls every stage and returns a verdict computed beforehand by the real detector."""

    def __init__(self, verdict: Verdict, info: Any) -> None:
        self._verdict, self.info = verdict, info

    def analyze(self, data: bytes, *, on_stage: Callable[[Stage], None] | None = None) -> Verdict:
        for stage in STAGES:
            if on_stage is not None:
                on_stage(stage)
        return self._verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    add_stack_arguments(parser)
    args = parser.parse_args()
    data = synthetic_jpeg(1152, 864, seed=4242)
    real = load_detector(DEFAULT_MODEL_DIR)
    verdict = real.analyze(data)
    with pixelcheck_stack(args, server=False) as stack:
        container = build_container(stack.settings, role="worker")
        container.__dict__["detector"] = InstantDetector(verdict, real.info)
        owner = new_id()
        ids = [new_id() for _ in range(args.count)]
        with unit_of_work(container.sessions) as session:
            session.add(User(id=owner, username="bench", email="bench@example.test", display_name="Bench"))
            session.flush()
            for image_id in ids:
                session.add(Image(id=image_id, owner_id=owner, filename="b.jpg", content_type="image/jpeg",
                                  size_bytes=len(data), width=1152, height=864, sha256=image_id * 2))
            session.flush()
            for image_id in ids:
                session.add(Analysis(image_id=image_id, owner_id=owner, filename="b.jpg"))
                container.blobs.put(session, f"image/{image_id}", data)
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        commits = 0

        def count_commit(*_: Any) -> None:
            nonlocal commits
            commits += 1

        event.listen(container.engine, "before_cursor_execute", count)
        event.listen(container.engine, "commit", count_commit)
        publishes = 0
        publish = container.redis.publish

        def counted_publish(*a: Any, **k: Any) -> Any:
            nonlocal publishes
            publishes += 1
            return publish(*a, **k)

        container.redis.publish = counted_publish  # type: ignore[method-assign]
        pipeline = container.analysis_pipeline
        times = []
        for image_id in ids:
            began = time.perf_counter()
            assert pipeline.run(image_id) == "succeeded"
            times.append((time.perf_counter() - began) * 1000)
        container.close()
    print_table(f"Worker overhead outside detector.analyze ({args.count} analyses of a 1 MP JPEG, one process)",
                ["measure", "value"],
                [["overhead p50 / p95 / p99 ms", distribution(times)],
                 ["overhead mean ms", f"{sum(times) / len(times):.1f}"],
                 ["SQL statements per analysis", f"{statements / args.count:.1f}"],
                 ["transactions committed per analysis", f"{commits / args.count:.1f}"],
                 ["Redis publishes per analysis", f"{publishes / args.count:.1f}"]])


if __name__ == "__main__":
    main()
