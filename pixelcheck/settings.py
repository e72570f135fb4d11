"""One typed Settings object, read from PIXELCHECK_* environment variables (and an optional .env file).

Nothing else in the project reads os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

PREFIX = "PIXELCHECK_"
DEFAULT_JWT_SECRET = "change-me-development-only-secret"
MIB = 1024 * 1024


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Each field is read from PIXELCHECK_<FIELD NAME IN CAPITALS>."""

    env: str = "development"  # development | production
    data_dir: str = "var"  # SQLite file, embedded Redis and file blobs live here by default
    database_url: str = ""  # default: sqlite:///<data_dir>/pixelcheck.db
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "pixelcheck"  # namespaces every Redis key and channel

    grpc_address: str = "127.0.0.1:50051"
    grpc_max_workers: int = 16  # threads for blocking database work
    grace_seconds: float = 10.0  # how long in-flight calls may finish after SIGTERM
    tls_cert_file: str = ""
    tls_key_file: str = ""
    health_check_interval_seconds: float = 2.0

    jwt_algorithm: str = "HS256"  # HS256 | EdDSA | RS256
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_private_key_file: str = ""  # PEM, for EdDSA / RS256
    jwt_public_key_file: str = ""  # PEM, for EdDSA / RS256
    jwt_issuer: str = "pixelcheck"
    jwt_audience: str = "pixelcheck-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    argon2_time_cost: int = 2
    argon2_memory_cost_kib: int = 19 * 1024
    argon2_parallelism: int = 1
    signin_max_failures: int = 5
    signin_window_seconds: int = 900

    upload_max_bytes: int = 10 * MIB
    upload_chunk_max_bytes: int = MIB
    image_max_side: int = 12_000
    image_max_pixels: int = 50_000_000
    blob_store: str = "database"  # database | filesystem
    blob_dir: str = ""  # default: <data_dir>/blobs

    model_dir: str = ""  # detector model folder; "" = the model shipped with the package
    detector_threshold: float = -1.0  # < 0: the model's own threshold
    analysis_stale_seconds: int = 120  # re-enqueue analyses queued or running longer than this
    analysis_max_attempts: int = 5
    task_time_limit_seconds: int = 120
    worker_concurrency: int = 1

    report_max_images: int = 100
    audit_flush_interval_seconds: float = 0.2
    audit_batch_size: int = 500
    audit_retention_days: int = 0  # 0 = keep forever
    image_retention_days: int = 0  # 0 = keep forever
    metrics_port: int = 0  # the server's Prometheus endpoint; 0 = none
    worker_metrics_port: int = 0  # a worker's first pool process serves here, the next on +1 ...; 0 = none
    log_format: str = "text"  # text | json
    log_level: str = "INFO"

    # -- derived values ---------------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'pixelcheck.db'}"

    @property
    def resolved_blob_dir(self) -> Path:
        return Path(self.blob_dir or Path(self.data_dir) / "blobs").resolve()

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path = ".env") -> Settings:
        """Read settings from the environment, over values from env_file when it exists.

        Raises SettingsError for a malformed value or an unsafe production configuration.
        """
        values: dict[str, str] = {}
        path = Path(env_file)
        if path.is_file():
            values.update(_parse_env_file(path))
        values.update(os.environ if environ is None else environ)
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            raw = values.get(PREFIX + f.name.upper())
            if raw is not None:
                kwargs[f.name] = _convert(f.name, raw, hints[f.name])
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """These settings as PIXELCHECK_* variables, for a child process (worker, beat, server)."""
        return {PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated)."""
        settings = replace(self, **changes)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raises SettingsError when a value is out of range or unsafe for production."""
        if self.env not in ("development", "production"):
            raise SettingsError("PIXELCHECK_ENV must be 'development' or 'production'")
        if self.jwt_algorithm not in ("HS256", "EdDSA", "RS256"):
            raise SettingsError("PIXELCHECK_JWT_ALGORITHM must be HS256, EdDSA or RS256")
        if self.jwt_algorithm == "HS256":
            if self.is_production and self.jwt_secret == DEFAULT_JWT_SECRET:
                raise SettingsError("PIXELCHECK_JWT_SECRET must be set to a secret of your own in production")
            if self.is_production and len(self.jwt_secret) < 32:
                raise SettingsError("PIXELCHECK_JWT_SECRET must be at least 32 characters in production")
        elif not self.jwt_public_key_file:
            raise SettingsError(f"{self.jwt_algorithm} needs PIXELCHECK_JWT_PUBLIC_KEY_FILE")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("PIXELCHECK_TLS_CERT_FILE and PIXELCHECK_TLS_KEY_FILE go together")
        if self.blob_store not in ("database", "filesystem"):
            raise SettingsError("PIXELCHECK_BLOB_STORE must be 'database' or 'filesystem'")
        if self.log_format not in ("text", "json"):
            raise SettingsError("PIXELCHECK_LOG_FORMAT must be 'text' or 'json'")
        for name in ("upload_max_bytes", "upload_chunk_max_bytes", "image_max_side", "image_max_pixels",
                     "access_token_ttl_seconds", "refresh_token_ttl_seconds", "signin_max_failures",
                     "worker_concurrency", "report_max_images", "audit_batch_size"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")


def _convert(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return raw
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def _parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values
