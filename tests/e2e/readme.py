"""Running a README section's commands as written: its one ```sh block, in bash, and grpcurl's JSON output."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def section_sh_block(title: str) -> str:
    """The only ```sh block of the README section headed `title`, up to the next heading of any level."""
    text = README.read_text(encoding="utf-8")
    start = text.index(title)
    following = re.search(r"\n#{1,6} ", text[start + len(title):])
    section = text[start:start + len(title) + following.start()] if following else text[start:]
    [block] = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    return block


async def run_grpcurl_script(script: str, *, token: str, cwd: Path, timeout: float = 60) -> list[dict]:  # type: ignore[type-arg]
    """Every JSON document the script printed; skips the test where grpcurl (.venv/bin) or jq is missing."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "grpcurl").exists() or shutil.which("jq") is None:
        pytest.skip("grpcurl (in .venv/bin) and jq are needed to run the README commands")
    env = {**os.environ, "TOKEN": token, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    process = await asyncio.create_subprocess_exec("bash", "-euo", "pipefail", "-c", script, cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    assert process.returncode == 0, err.decode()
    decoder, position, documents, text = json.JSONDecoder(), 0, [], out.decode()
    while (position := text.find("{", position)) >= 0:
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents
