"""Settings: read from PIXELCHECK_* variables over an optional .env file, checked before use."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pixelcheck.settings import DEFAULT_JWT_SECRET, Settings, SettingsError

NO_FILE = "/nonexistent/.env"
STRONG_SECRET = "s" * 40


def settings_from(env_file: str | Path = NO_FILE, **variables: str) -> Settings:
    return Settings.from_env(environ=variables, env_file=env_file)


def test_defaults_give_a_development_setup_on_the_loopback_address() -> None:
    settings = settings_from()
    assert settings.env == "development"
    assert not settings.is_production
    assert settings.grpc_address == "127.0.0.1:50051"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_database_defaults_to_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = settings_from(PIXELCHECK_DATA_DIR=str(tmp_path))
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'pixelcheck.db'}"
    assert settings.uses_sqlite
    assert settings.resolved_blob_dir == tmp_path / "blobs"


def test_an_explicit_database_url_wins_over_the_data_dir() -> None:
    settings = settings_from(PIXELCHECK_DATABASE_URL="mysql+pymysql://app:pw@db/pixelcheck")
    assert settings.resolved_database_url == "mysql+pymysql://app:pw@db/pixelcheck"
    assert not settings.uses_sqlite


def test_variables_are_converted_to_the_fields_types() -> None:
    settings = settings_from(
        PIXELCHECK_UPLOAD_MAX_BYTES="2048",
        PIXELCHECK_GRACE_SECONDS="2.5",
        PIXELCHECK_LOG_FORMAT="json",
    )
    assert settings.upload_max_bytes == 2048
    assert settings.grace_seconds == 2.5
    assert settings.log_format == "json"


def test_variables_without_the_prefix_are_ignored() -> None:
    assert settings_from(GRPC_ADDRESS="0.0.0.0:1").grpc_address == "127.0.0.1:50051"


def test_an_explicit_environ_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELCHECK_GRPC_ADDRESS", "127.0.0.1:6000")
    assert settings_from().grpc_address == "127.0.0.1:50051"
    assert Settings.from_env(env_file=NO_FILE).grpc_address == "127.0.0.1:6000"


def test_env_file_values_are_read_with_comments_quotes_and_export(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# local overrides\n"
        "\n"
        "PIXELCHECK_GRPC_ADDRESS=127.0.0.1:7000\n"
        "export PIXELCHECK_LOG_LEVEL=DEBUG\n"
        "PIXELCHECK_JWT_ISSUER='issuer with spaces'\n"
        'PIXELCHECK_JWT_AUDIENCE="audience"\n'
        "not a setting line\n"
    )
    settings = settings_from(env_file)
    assert settings.grpc_address == "127.0.0.1:7000"
    assert settings.log_level == "DEBUG"
    assert settings.jwt_issuer == "issuer with spaces"
    assert settings.jwt_audience == "audience"


def test_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PIXELCHECK_GRPC_ADDRESS=127.0.0.1:7000\nPIXELCHECK_LOG_LEVEL=DEBUG\n")
    settings = settings_from(env_file, PIXELCHECK_GRPC_ADDRESS="127.0.0.1:8000")
    assert settings.grpc_address == "127.0.0.1:8000"
    assert settings.log_level == "DEBUG"


def test_a_missing_env_file_is_not_an_error() -> None:
    assert settings_from(NO_FILE).env == "development"


def test_production_refuses_the_default_jwt_secret() -> None:
    with pytest.raises(SettingsError, match="PIXELCHECK_JWT_SECRET"):
        settings_from(PIXELCHECK_ENV="production")
    with pytest.raises(SettingsError, match="PIXELCHECK_JWT_SECRET"):
        settings_from(PIXELCHECK_ENV="production", PIXELCHECK_JWT_SECRET=DEFAULT_JWT_SECRET)


def test_production_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(SettingsError, match="at least 32 characters"):
        settings_from(PIXELCHECK_ENV="production", PIXELCHECK_JWT_SECRET="short-but-not-default")


def test_production_accepts_a_long_secret_of_its_own() -> None:
    settings = settings_from(PIXELCHECK_ENV="production", PIXELCHECK_JWT_SECRET=STRONG_SECRET)
    assert settings.is_production


def test_development_accepts_the_default_secret() -> None:
    assert settings_from().jwt_secret == DEFAULT_JWT_SECRET


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIXELCHECK_UPLOAD_MAX_BYTES", "ten"),
        ("PIXELCHECK_GRACE_SECONDS", "soon"),
        ("PIXELCHECK_WORKER_CONCURRENCY", "1.5"),
    ],
)
def test_a_malformed_number_is_named_with_its_value(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        settings_from(**{variable: value})
    assert variable in str(error.value)
    assert repr(value) in str(error.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIXELCHECK_UPLOAD_MAX_BYTES", "0"),
        ("PIXELCHECK_WORKER_CONCURRENCY", "-1"),
        ("PIXELCHECK_REPORT_MAX_IMAGES", "0"),
    ],
)
def test_a_limit_that_is_not_positive_is_named(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable} must be positive"):
        settings_from(**{variable: value})


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"PIXELCHECK_ENV": "staging"}, "PIXELCHECK_ENV"),
        ({"PIXELCHECK_JWT_ALGORITHM": "none"}, "PIXELCHECK_JWT_ALGORITHM"),
        ({"PIXELCHECK_JWT_ALGORITHM": "EdDSA"}, "PIXELCHECK_JWT_PUBLIC_KEY_FILE"),
        ({"PIXELCHECK_TLS_CERT_FILE": "/etc/cert.pem"}, "PIXELCHECK_TLS_KEY_FILE"),
        ({"PIXELCHECK_BLOB_STORE": "tape"}, "PIXELCHECK_BLOB_STORE"),
        ({"PIXELCHECK_BLOB_STORE": "s3"}, "PIXELCHECK_S3_BUCKET"),
        ({"PIXELCHECK_S3_ADDRESSING_STYLE": "dns"}, "PIXELCHECK_S3_ADDRESSING_STYLE"),
        ({"PIXELCHECK_S3_ACCESS_KEY_ID": "AKIA"}, "PIXELCHECK_S3_SECRET_ACCESS_KEY"),
        ({"PIXELCHECK_S3_SESSION_TOKEN": "token"}, "PIXELCHECK_S3_ACCESS_KEY_ID"),
        ({"PIXELCHECK_LOG_FORMAT": "xml"}, "PIXELCHECK_LOG_FORMAT"),
        ({"PIXELCHECK_WORKER_BACKLOG_NICE": "20"}, "PIXELCHECK_WORKER_BACKLOG_NICE"),
        ({"PIXELCHECK_WORKER_BACKLOG_NICE": "-5"}, "PIXELCHECK_WORKER_BACKLOG_NICE"),
        ({"PIXELCHECK_WORKER_PROMPT_POLL_SECONDS": "0"}, "PIXELCHECK_WORKER_PROMPT_POLL_SECONDS"),
    ],
)
def test_an_unsupported_choice_is_named(variables: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        settings_from(**variables)


def test_with_overrides_returns_a_checked_copy() -> None:
    settings = settings_from()
    changed = settings.with_overrides(grpc_address="127.0.0.1:9000")
    assert changed.grpc_address == "127.0.0.1:9000"
    assert settings.grpc_address == "127.0.0.1:50051"
    with pytest.raises(SettingsError, match="PIXELCHECK_JWT_SECRET"):
        settings.with_overrides(env="production")


def test_settings_cannot_be_changed_in_place() -> None:
    settings = settings_from()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.grpc_address = "0.0.0.0:1"  # type: ignore[misc]


def test_an_s3_store_needs_only_a_bucket_and_leaves_credentials_to_boto3() -> None:
    settings = settings_from(PIXELCHECK_BLOB_STORE="s3", PIXELCHECK_S3_BUCKET="pixelcheck-blobs")
    assert (settings.blob_store, settings.s3_bucket, settings.s3_access_key_id) == ("s3", "pixelcheck-blobs", "")
    assert (settings.s3_endpoint_url, settings.s3_addressing_style) == ("", "auto")


def test_beat_sweeps_orphan_blobs_twice_per_grace_period_at_most_hourly() -> None:
    from pixelcheck.worker import SWEEP_ORPHAN_BLOBS, make_celery

    for grace, every in ((600, 300.0), (3600, 1800.0), (86_400, 3600.0), (10, 60.0)):
        schedule = make_celery(settings_from(PIXELCHECK_BLOB_ORPHAN_GRACE_SECONDS=str(grace))).conf.beat_schedule
        assert schedule["sweep-orphan-blobs"] == {"task": SWEEP_ORPHAN_BLOBS, "schedule": every}


def test_webhook_tasks_go_to_the_webhook_queue_and_analyses_stay_on_the_inference_queue() -> None:
    from pixelcheck.keys import RedisKeys
    from pixelcheck.worker import BUILD_REPORT, DELIVER_WEBHOOK, DISPATCH_WEBHOOKS, MAP_REGIONS, RUN_NEXT, make_celery

    settings = settings_from(PIXELCHECK_REDIS_KEY_PREFIX="tenant")
    router, keys = make_celery(settings).amqp.router, RedisKeys("tenant")
    for name in (DELIVER_WEBHOOK, DISPATCH_WEBHOOKS):
        assert router.route({}, name)["queue"].name == keys.webhook_queue == "tenant.webhooks"
    for name in (RUN_NEXT, MAP_REGIONS, BUILD_REPORT):
        assert router.route({}, name)["queue"].name == keys.celery_queue


def test_tasks_that_run_analyses_get_the_clip_time_limit_and_the_others_keep_the_task_limit() -> None:
    from pixelcheck.worker import ANALYZE_IMAGE, BUILD_REPORT, MAP_REGIONS, RUN_NEXT, make_celery

    app = make_celery(settings_from(PIXELCHECK_TASK_TIME_LIMIT_SECONDS="120",
                                    PIXELCHECK_VIDEO_TIME_LIMIT_SECONDS="1800"), include_tasks=True)
    app.loader.import_default_modules()
    for name in (RUN_NEXT, ANALYZE_IMAGE):
        assert (app.tasks[name].soft_time_limit, app.tasks[name].time_limit) == (1790, 1800)
    for name in (MAP_REGIONS, BUILD_REPORT):  # the app's limits: 110 s soft, 120 s hard
        assert (app.tasks[name].soft_time_limit, app.tasks[name].time_limit) in ((None, None), (110, 120))
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == (110, 120)
    assert app.conf.broker_transport_options["visibility_timeout"] == 1860  # above the longest limit
    shorter = make_celery(settings_from(PIXELCHECK_TASK_TIME_LIMIT_SECONDS="2000",
                                        PIXELCHECK_VIDEO_TIME_LIMIT_SECONDS="60"))
    assert shorter.conf.task_annotations[RUN_NEXT] == {"time_limit": 2000, "soft_time_limit": 1990}


def test_video_limits_must_be_positive() -> None:
    for name in ("PIXELCHECK_VIDEO_MAX_MEGAPIXELS", "PIXELCHECK_VIDEO_TIME_LIMIT_SECONDS"):
        with pytest.raises(SettingsError, match=name):
            settings_from(**{name: "0"})


def test_webhook_worker_concurrency_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="PIXELCHECK_WEBHOOK_WORKER_CONCURRENCY"):
        settings_from(PIXELCHECK_WEBHOOK_WORKER_CONCURRENCY="0")


def test_settings_know_no_context_and_the_composition_root_resolves_the_shipped_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, pixelcheck.settings; print(any(m.startswith('pixelcheck.analysis') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
    from pixelcheck.analysis.shipped_model import SHIPPED_MODEL_DIR
    from pixelcheck.bootstrap import model_dir

    assert settings_from().model_dir == "" and model_dir(settings_from()) == SHIPPED_MODEL_DIR
    assert model_dir(settings_from(PIXELCHECK_MODEL_DIR=str(tmp_path))) == tmp_path
