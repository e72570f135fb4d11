"""The installed package is complete: every subpackage is listed and the generated stubs import as pixelcheck.v1."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_python_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pixelcheck").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert "pixelcheck.v1" in listed


def test_generated_stubs_import_as_pixelcheck_v1() -> None:
    from pixelcheck.v1 import auth_pb2, ingestion_pb2_grpc

    assert auth_pb2.DESCRIPTOR.package == "pixelcheck.v1"
    assert hasattr(ingestion_pb2_grpc, "IngestionServiceStub")
