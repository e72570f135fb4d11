"""Imports every context's models so Base.metadata knows all tables (for Alembic and tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import pixelcheck.analysis.models
    import pixelcheck.audit.models
    import pixelcheck.blobs.database
    import pixelcheck.iam.models
    import pixelcheck.ingestion.models
    import pixelcheck.reports.models
    import pixelcheck.webhooks.models  # noqa: F401
