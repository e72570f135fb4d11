"""README.md's grpcurl session, run as written against the live test server (only the address changes)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Sign up and sign in with grpcurl"
DOCUMENTED_ADDRESS = "127.0.0.1:50051"


def section_blocks(kind: str) -> list[str]:
    """The ```kind code blocks of the README section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(rf"```{kind}\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


def json_documents(output: str) -> list[dict]:
    """The JSON documents grpcurl printed one after another."""
    decoder, docs, position = json.JSONDecoder(), [], 0
    while (position := output.find("{", position)) >= 0:
        doc, position = decoder.raw_decode(output, position)
        docs.append(doc)
    return docs


async def test_the_readme_grpcurl_session_signs_up_signs_in_and_gets_the_user(live_server: LiveServer):
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "grpcurl").exists() or shutil.which("jq") is None:
        pytest.skip("grpcurl (in .venv/bin) and jq are needed to run the README session")
    session = section_blocks("sh")[0].replace(DOCUMENTED_ADDRESS, live_server.address)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = await asyncio.to_thread(subprocess.run, ["bash", "-euo", "pipefail", "-c", session], env=env,
                                     capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    signed_up, current = json_documents(result.stdout)
    documented = json_documents(section_blocks("json")[0])[0]
    for field in ("username", "email", "display_name", "roles"):
        assert signed_up["user"][field] == documented["user"][field]
    assert current == signed_up
    assert set(current["user"]) == set(documented["user"])
