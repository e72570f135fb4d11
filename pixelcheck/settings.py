"""One typed Settings object, read from PIXELCHECK_* environment variables (and an optional .env file).

Nothing else in the project reads os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
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
    server_processes: int = 0  # `pixelcheck serve` processes sharing the port; 0 = one per core
    malloc_arenas: int = 2  # glibc malloc arenas of server processes and the webhooks worker; 0 = glibc's default
    grace_seconds: float = 10.0  # how long in-flight calls may finish after SIGTERM
    # A client's connection is asked to move on (GOAWAY, calls in flight finish on it) after this long, so
    # clients spread over the server processes again after one restarts; 0 = never.
    grpc_max_connection_age_seconds: float = 300.0
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
    signin_max_failures: int = 5  # per (login, client address): this many failures lock that pair only
    signin_window_seconds: int = 900  # the window every sign-in counter counts failures in
    signin_login_max_failures: int = 20  # per login, any address: from here on an exponential delay
    signin_login_delay_seconds: float = 1.0  # the first delay; it doubles with every further failure
    signin_login_max_delay_seconds: float = 900.0
    signin_address_max_failures: int = 100  # per client address, any login: further failures are refused
    signin_familiar_address_seconds: int = 30 * 24 * 3600  # a successful sign-in makes its address familiar
    trusted_proxies: str = ""  # CIDR list of proxies whose x-forwarded-for is believed
    revocation_refresh_seconds: float = 2.0  # how often a server re-reads revocations and token versions
    service_token_last_used_flush_seconds: float = 60.0  # how often last-used times are written
    account_cache_seconds: float = 2.0  # how stale GetCurrentUser may be after another process's change

    upload_max_bytes: int = 10 * MIB
    upload_chunk_max_bytes: int = MIB
    image_max_side: int = 12_000
    image_max_pixels: int = 50_000_000
    animation_max_frames: int = 10_000  # frames in an animated GIF, WebP or PNG (ANIMATION_TOO_MANY_FRAMES)
    animation_max_duration_seconds: float = 600.0  # an animation's running time (ANIMATION_TOO_LONG)
    animation_max_megapixels: int = 2_000  # frames x canvas, what decoding them all costs (ANIMATION_TOO_LARGE)
    animation_analysed_frames: int = 60  # frames of an animation the pixel model reads, at most
    # Video clips (MP4, MOV, WebM). A clip is never held whole in memory: it goes to a temporary file in spool_dir
    # while it is received, imported or analysed, and to the blob store a piece at a time.
    video_max_bytes: int = 200 * MIB  # a clip's bytes, when its upload declares a video type (VIDEO_TOO_LARGE)
    video_max_duration_seconds: float = 600.0  # a clip's running time as its container declares it (VIDEO_TOO_LONG)
    video_max_side: int = 8192  # a clip's frame size, pixels per side (VIDEO_FRAME_TOO_LARGE) ...
    video_max_pixels: int = 8192 * 4320  # ... and pixels per frame
    video_max_frames: int = 36_000  # frames a clip declares, and frames decoded from one (VIDEO_TOO_MANY_FRAMES)
    # Frames x frame pixels: what decoding a whole clip costs (VIDEO_TOO_MUCH_TO_DECODE). 150,000 is 10 minutes of
    # 4K at 30 fps, ~500 s of one core at the ~300 MP/s FFmpeg decodes H.264 at here: within video_time_limit.
    video_max_megapixels: int = 150_000
    video_time_limit_seconds: int = 1800  # the longest a worker may spend on one analysis of a clip (hard limit)
    url_fetch_allow: str = ""  # ImportImage: CIDRs, addresses or host names let in despite the address rules
    url_fetch_ports: str = ""  # ImportImage: ports fetched besides 80 and 443 (public addresses)
    url_fetch_connect_timeout_seconds: float = 5.0
    url_fetch_read_timeout_seconds: float = 10.0  # longest silence while reading
    url_fetch_timeout_seconds: float = 30.0  # the whole fetch, redirects included
    url_import_rate_limit: int = 60  # ImportImage calls per user per window
    url_import_rate_window_seconds: int = 60
    webhook_max_endpoints: int = 10  # per user
    webhook_connect_timeout_seconds: float = 5.0
    webhook_timeout_seconds: float = 10.0  # one delivery attempt, start to finish
    webhook_retry_base_seconds: float = 5.0  # the first retry's delay; it doubles with each attempt
    webhook_retry_max_delay_seconds: float = 3600.0
    webhook_retry_window_seconds: int = 24 * 3600  # retry this long; an endpoint failing this long is disabled
    webhook_max_in_flight: int = 2  # attempts at once per endpoint, over every worker
    webhook_lease_margin_seconds: float = 30.0  # a killed worker's attempt is retried this long after its timeout
    webhook_dispatch_interval_seconds: float = 5.0  # how often beat looks for due deliveries
    webhook_worker_concurrency: int = 16  # threads of one `pixelcheck worker --webhooks`
    blob_store: str = "database"  # database | filesystem | s3
    blob_dir: str = ""  # default: <data_dir>/blobs
    spool_dir: str = ""  # temporary files of clips being received, imported or analysed; default: the system's
    blob_orphan_grace_seconds: int = 3600  # the sweep removes unreferenced objects older than this (s3)
    s3_bucket: str = ""  # required with blob_store=s3
    s3_prefix: str = ""  # prepended to every object key, e.g. "pixelcheck/"
    s3_endpoint_url: str = ""  # empty: AWS; else e.g. http://minio:9000
    s3_region: str = ""  # empty: boto3's default (AWS_REGION, the config file)
    s3_addressing_style: str = "auto"  # auto | path | virtual
    s3_access_key_id: str = ""  # empty: boto3's default credential chain
    s3_secret_access_key: str = ""
    s3_session_token: str = ""

    model_dir: str = ""  # detector model folder; "" = the model shipped with the package
    detector_threshold: float = -1.0  # < 0: the model's own threshold
    analysis_stale_seconds: int = 120  # re-enqueue analyses queued or running longer than this
    analysis_max_attempts: int = 5
    task_time_limit_seconds: int = 120  # every task's hard limit; analyses (which may be clips) get the larger of
    # this and video_time_limit_seconds
    worker_concurrency: int = 1
    # An inference worker runs a backlog at this much lower CPU priority (nice) than the work somebody waits for
    # alone (an account's only analysis, a requested region map), which its prompt lane runs; 0 = no lane.
    worker_backlog_nice: int = 10
    worker_prompt_poll_seconds: float = 0.05  # how often a busy worker's prompt lane looks for such work

    # Fair scheduling and admission (pixelcheck.scheduling), per principal class: USER, PROFESSIONAL, ADMIN,
    # SERVICE (a principal's class is its strongest role; SERVICE for service tokens).
    scheduling_weights: str = "USER=1,PROFESSIONAL=2,ADMIN=2,SERVICE=4"  # turns per round when others wait
    admission_pending_caps: str = "USER=500,PROFESSIONAL=2000,ADMIN=2000,SERVICE=10000"  # queued+running; 0=none
    admission_service_pending_cap: int = 50_000  # queued + running analyses of everyone; 0 = no cap
    upload_rate_limits: str = "USER=10/100,PROFESSIONAL=20/200,ADMIN=20/200,SERVICE=100/1000"  # per s/burst; 0=none
    admission_retry_after_seconds: float = 5.0  # the RetryInfo delay of ANALYSIS_QUEUE_FULL
    region_map_idle_max_age_seconds: int = 24 * 3600  # idle workers map unrequested images younger than this

    report_max_images: int = 100
    audit_flush_interval_seconds: float = 0.2
    audit_batch_size: int = 500
    audit_retention_days: int = 0  # 0 = keep forever
    image_retention_days: int = 0  # 0 = keep forever
    metrics_port: int = 0  # the server's Prometheus endpoint; 0 = none
    worker_metrics_port: int = 0  # a worker's first pool process serves here, the next on +1 ...; 0 = none
    otlp_endpoint: str = ""  # OTLP/gRPC collector (e.g. http://collector:4317); empty = tracing off
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
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """PIXELCHECK_TRUSTED_PROXIES parsed (comma- or space-separated CIDRs or single addresses)."""
        return _networks(self.trusted_proxies)

    @property
    def scheduling_weight_map(self) -> dict[str, float]:
        """PIXELCHECK_SCHEDULING_WEIGHTS parsed: principal class -> weight (> 0)."""
        return {name: _positive(name, float(value), "PIXELCHECK_SCHEDULING_WEIGHTS")
                for name, value in _class_values("SCHEDULING_WEIGHTS", self.scheduling_weights).items()}

    @property
    def admission_pending_cap_map(self) -> dict[str, int]:
        """PIXELCHECK_ADMISSION_PENDING_CAPS parsed: principal class -> cap (0 = none)."""
        return {name: int(value) for name, value in _class_values("ADMISSION_PENDING_CAPS",
                                                                  self.admission_pending_caps).items()}

    @property
    def upload_rate_limit_map(self) -> dict[str, tuple[float, int]]:
        """PIXELCHECK_UPLOAD_RATE_LIMITS parsed: principal class -> (uploads per second, burst); rate 0 = none."""
        limits: dict[str, tuple[float, int]] = {}
        for name, value in _class_values("UPLOAD_RATE_LIMITS", self.upload_rate_limits).items():
            rate, _, burst = value.partition("/")
            limits[name] = (float(rate), int(burst or max(1, int(float(rate)))))
        return limits

    @property
    def url_fetch_allowed(self) -> tuple[tuple[IPv4Network | IPv6Network, ...], frozenset[str]]:
        """PIXELCHECK_URL_FETCH_ALLOW parsed: (networks, lower-case host names)."""
        networks: list[IPv4Network | IPv6Network] = []
        hosts: set[str] = set()
        for entry in self.url_fetch_allow.replace(",", " ").split():
            try:
                networks.append(ip_network(entry, strict=False))
            except ValueError:
                host = entry.lower().rstrip(".")
                if not host or "/" in host or ":" in host:
                    raise SettingsError(f"PIXELCHECK_URL_FETCH_ALLOW: {entry!r} is neither a CIDR, an address "
                                        "nor a host name") from None
                hosts.add(host)
        return tuple(networks), frozenset(hosts)

    @property
    def url_fetch_extra_ports(self) -> frozenset[int]:
        """PIXELCHECK_URL_FETCH_PORTS parsed."""
        ports = self.url_fetch_ports.replace(",", " ").split()
        if not all(p.isdigit() and 0 < int(p) < 65536 for p in ports):
            raise SettingsError(f"PIXELCHECK_URL_FETCH_PORTS={self.url_fetch_ports!r}: expected TCP ports, e.g. 8080")
        return frozenset(int(p) for p in ports)

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
        if not values.get(PREFIX + "OTLP_ENDPOINT") and values.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            values[PREFIX + "OTLP_ENDPOINT"] = values["OTEL_EXPORTER_OTLP_ENDPOINT"]  # the standard variable
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
        if self.blob_store not in ("database", "filesystem", "s3"):
            raise SettingsError("PIXELCHECK_BLOB_STORE must be 'database', 'filesystem' or 's3'")
        if self.blob_store == "s3" and not self.s3_bucket:
            raise SettingsError("PIXELCHECK_BLOB_STORE=s3 needs PIXELCHECK_S3_BUCKET")
        if self.s3_addressing_style not in ("auto", "path", "virtual"):
            raise SettingsError("PIXELCHECK_S3_ADDRESSING_STYLE must be 'auto', 'path' or 'virtual'")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise SettingsError("PIXELCHECK_S3_ACCESS_KEY_ID and PIXELCHECK_S3_SECRET_ACCESS_KEY go together")
        if self.s3_session_token and not self.s3_access_key_id:
            raise SettingsError("PIXELCHECK_S3_SESSION_TOKEN needs PIXELCHECK_S3_ACCESS_KEY_ID")
        if self.log_format not in ("text", "json"):
            raise SettingsError("PIXELCHECK_LOG_FORMAT must be 'text' or 'json'")
        if self.server_processes < 0:
            raise SettingsError("PIXELCHECK_SERVER_PROCESSES must be 0 (one per core) or more")
        if self.grpc_max_connection_age_seconds < 0:
            raise SettingsError("PIXELCHECK_GRPC_MAX_CONNECTION_AGE_SECONDS must be 0 (never) or more")
        if self.malloc_arenas < 0:
            raise SettingsError("PIXELCHECK_MALLOC_ARENAS must be 0 (glibc's default) or more")
        if self.account_cache_seconds < 0:
            raise SettingsError("PIXELCHECK_ACCOUNT_CACHE_SECONDS must be 0 (off) or more")
        if not 0 <= self.worker_backlog_nice <= 19:
            raise SettingsError("PIXELCHECK_WORKER_BACKLOG_NICE must be 0 (no prompt lane) to 19")
        for name in ("upload_max_bytes", "upload_chunk_max_bytes", "image_max_side", "image_max_pixels",
                     "animation_max_frames", "animation_max_duration_seconds", "animation_max_megapixels",
                     "animation_analysed_frames", "video_max_bytes", "video_max_duration_seconds", "video_max_side",
                     "video_max_pixels", "video_max_frames", "video_max_megapixels", "video_time_limit_seconds",
                     "access_token_ttl_seconds", "refresh_token_ttl_seconds", "signin_max_failures",
                     "signin_window_seconds", "signin_login_max_failures", "signin_login_delay_seconds",
                     "signin_login_max_delay_seconds", "signin_address_max_failures",
                     "signin_familiar_address_seconds", "revocation_refresh_seconds",
                     "service_token_last_used_flush_seconds", "worker_concurrency", "report_max_images",
                     "audit_batch_size", "blob_orphan_grace_seconds", "url_fetch_connect_timeout_seconds",
                     "url_fetch_read_timeout_seconds", "url_fetch_timeout_seconds", "url_import_rate_limit",
                     "url_import_rate_window_seconds", "webhook_max_endpoints", "webhook_connect_timeout_seconds",
                     "webhook_timeout_seconds", "webhook_retry_base_seconds", "webhook_retry_max_delay_seconds",
                     "webhook_retry_window_seconds", "webhook_max_in_flight", "webhook_dispatch_interval_seconds",
                     "webhook_worker_concurrency", "worker_prompt_poll_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        _networks(self.trusted_proxies)
        _ = self.url_fetch_allowed, self.url_fetch_extra_ports
        self._validate_scheduling()

    def _validate_scheduling(self) -> None:
        try:
            self.scheduling_weight_map  # noqa: B018 - parsing is the check
            caps, rates = self.admission_pending_cap_map, self.upload_rate_limit_map
        except ValueError as exc:
            raise SettingsError(f"a scheduling setting is malformed: {exc}") from None
        if any(cap < 0 for cap in caps.values()) or self.admission_service_pending_cap < 0:
            raise SettingsError("admission caps must be 0 (no cap) or more")
        if any(rate < 0 or burst < 1 for rate, burst in rates.values()):
            raise SettingsError("PIXELCHECK_UPLOAD_RATE_LIMITS: each entry is CLASS=PER_SECOND/BURST, burst >= 1")
        if self.admission_retry_after_seconds <= 0 or self.region_map_idle_max_age_seconds < 0:
            raise SettingsError("PIXELCHECK_ADMISSION_RETRY_AFTER_SECONDS must be positive and "
                                "PIXELCHECK_REGION_MAP_IDLE_MAX_AGE_SECONDS 0 or more")


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part, strict=False) for part in text.replace(",", " ").split())
    except ValueError as exc:
        raise SettingsError(f"PIXELCHECK_TRUSTED_PROXIES: {exc} (expected CIDRs like 10.0.0.0/8, ::1)") from None


_PRINCIPAL_CLASSES = ("USER", "PROFESSIONAL", "ADMIN", "SERVICE")


def _class_values(name: str, text: str) -> dict[str, str]:
    """"USER=1,SERVICE=4" -> {"USER": "1", "SERVICE": "4"}; every class must be named once."""
    values: dict[str, str] = {}
    for part in text.replace(" ", "").split(","):
        key, sep, value = part.partition("=")
        if not sep or key.upper() not in _PRINCIPAL_CLASSES or key.upper() in values or not value:
            raise SettingsError(f"{PREFIX}{name}={text!r}: expected CLASS=VALUE for each of "
                                f"{', '.join(_PRINCIPAL_CLASSES)}")
        values[key.upper()] = value
    missing = [c for c in _PRINCIPAL_CLASSES if c not in values]
    if missing:
        raise SettingsError(f"{PREFIX}{name} does not name {', '.join(missing)}")
    return values


def _positive(name: str, value: float, setting: str) -> float:
    if value <= 0:
        raise SettingsError(f"{setting}: the weight of {name} must be positive")
    return value


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
