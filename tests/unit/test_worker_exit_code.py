"""`pixelcheck worker` exits with the Celery worker's exit code, so that a process manager restarts a worker
that stopped on an error (app.worker_main() alone always returns normally)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from pixelcheck.settings import Settings
from tests.processes import free_port

# `pixelcheck worker --webhooks`, with a broker nobody listens on and connection retries at start turned off:
# the Celery worker stops at once with exit code 1.
WEBHOOKS_WORKER_WITHOUT_RETRIES = textwrap.dedent("""
    import sys
    import pixelcheck.worker
    from pixelcheck.cli import main

    make_celery = pixelcheck.worker.make_celery

    def make_celery_without_retries(*args, **kwargs):
        app = make_celery(*args, **kwargs)
        app.conf.broker_connection_retry_on_startup = False
        return app

    pixelcheck.worker.make_celery = make_celery_without_retries
    sys.exit(main(["worker", "--webhooks", "--concurrency", "1"]))
""")


def test_pixelcheck_worker_whose_celery_worker_stops_on_an_error_exits_non_zero(
        base_settings: Settings, tmp_path: Path) -> None:
    settings = base_settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    done = subprocess.run([sys.executable, "-c", WEBHOOKS_WORKER_WITHOUT_RETRIES], cwd=tmp_path,
                          env={**os.environ, **settings.to_env()}, capture_output=True, timeout=60)
    output = done.stdout.decode() + done.stderr.decode()
    assert "Retrying to establish a connection to the message broker" in output, output[-3000:]
    assert done.returncode == 1, output[-3000:]
