"""Reflection answers from documented descriptors and resolves every kind of fully-qualified symbol."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from pixelcheck.api.reflection import DescriptorIndex, ReflectionServicer, build_index

SERVICES = [*(f"pixelcheck.v1.{n}Service" for n in ("Auth", "Ingestion", "Results", "Reports", "Audit", "Webhooks")),
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
Request = reflection_pb2.ServerReflectionRequest


@pytest.fixture(scope="module")
def servicer() -> ReflectionServicer:
    return ReflectionServicer(build_index(SERVICES), SERVICES)


def files_of(response: reflection_pb2.ServerReflectionResponse) -> list[descriptor_pb2.FileDescriptorProto]:
    assert response.WhichOneof("message_response") == "file_descriptor_response", response.error_response
    return [descriptor_pb2.FileDescriptorProto.FromString(data)
            for data in response.file_descriptor_response.file_descriptor_proto]


def comments(file: descriptor_pb2.FileDescriptorProto) -> str:
    return "".join(location.leading_comments for location in file.source_code_info.location)


@pytest.mark.parametrize(("symbol", "kind"), [
    ("pixelcheck.v1.IngestionService", "service"),
    ("pixelcheck.v1.IngestionService.UploadImage", "method"),
    ("pixelcheck.v1.Image", "message"),
    ("pixelcheck.v1.Image.filename", "field"),
    ("pixelcheck.v1.UploadImageRequest.payload", "oneof"),
    ("pixelcheck.v1.Label", "enum"),
    ("pixelcheck.v1.LABEL_AI", "enum value, protobuf scope"),
    ("pixelcheck.v1.Label.LABEL_AI", "enum value, under its enum"),
    (".pixelcheck.v1.Image", "leading dot"),
])
def test_every_symbol_kind_resolves_to_its_documented_file(servicer: ReflectionServicer, symbol: str,
                                                           kind: str) -> None:
    files = files_of(servicer.answer(Request(file_containing_symbol=symbol)))
    wanted = "pixelcheck/v1/common.proto" if "Label" in symbol or "LABEL" in symbol else \
        "pixelcheck/v1/ingestion.proto"
    assert files[0].name == wanted, kind
    assert files[0].source_code_info.location, f"{kind}: the file must carry its source info"


def test_a_file_comes_with_its_comments_and_every_dependency_once(servicer: ReflectionServicer) -> None:
    files = files_of(servicer.answer(Request(file_by_filename="pixelcheck/v1/results.proto")))
    names = [f.name for f in files]
    assert names[0] == "pixelcheck/v1/results.proto"
    assert len(names) == len(set(names))
    assert {"pixelcheck/v1/common.proto", "google/protobuf/timestamp.proto"} <= set(names)
    assert "WatchAnalysis" in comments(files[0])
    for file in files:  # a client can build every file from what it received
        assert set(file.dependency) <= set(names)


def test_standard_services_and_both_reflection_versions_resolve(servicer: ReflectionServicer) -> None:
    for symbol in ("grpc.health.v1.Health.Watch", "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
                   "grpc.reflection.v1.ServerReflection.ServerReflectionInfo", "grpc.reflection.v1.ErrorResponse"):
        assert files_of(servicer.answer(Request(file_containing_symbol=symbol)))


def test_list_services_names_every_service_and_reflection(servicer: ReflectionServicer) -> None:
    response = servicer.answer(Request(list_services="*", host="example.org"))
    listed = [s.name for s in response.list_services_response.service]
    assert listed == sorted({*SERVICES, "grpc.reflection.v1.ServerReflection",
                             "grpc.reflection.v1alpha.ServerReflection"})
    assert response.valid_host == "example.org"
    assert response.original_request.list_services == "*"


@pytest.mark.parametrize("request_", [
    Request(file_containing_symbol="pixelcheck.v1.NoSuchThing"),
    Request(file_containing_symbol="pixelcheck.v1.IngestionService.NoSuchMethod"),
    Request(file_by_filename="pixelcheck/v1/nothing.proto"),
    Request(file_containing_extension=reflection_pb2.ExtensionRequest(containing_type="pixelcheck.v1.Image",
                                                                      extension_number=100)),
    Request(all_extension_numbers_of_type="pixelcheck.v1.NoSuchThing"),
])
def test_unknown_names_are_not_found_and_say_what_was_asked(servicer: ReflectionServicer,
                                                            request_: reflection_pb2.ServerReflectionRequest) -> None:
    response = servicer.answer(request_)
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "not found" in response.error_response.error_message
    assert response.original_request == request_


def test_a_request_without_a_query_is_invalid(servicer: ReflectionServicer) -> None:
    response = servicer.answer(Request(host="h"))
    assert response.error_response.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def _file_with_nested_types_and_extensions() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="acme/v1/things.proto", package="acme.v1", syntax="proto2")
    outer = file.message_type.add(name="Outer")
    outer.extension_range.add(start=100, end=200)
    inner = outer.nested_type.add(name="Inner")
    inner.field.add(name="size", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32)
    outer.enum_type.add(name="Colour").value.add(name="COLOUR_RED", number=0)
    outer.extension.add(name="nested_note", number=150, extendee=".acme.v1.Outer",
                        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    file.extension.add(name="note", number=101, extendee=".acme.v1.Outer",
                       type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    return file


def test_nested_types_their_members_and_extensions_are_indexed() -> None:
    index = DescriptorIndex()
    index.add(_file_with_nested_types_and_extensions())
    for symbol in ("acme.v1.Outer.Inner", "acme.v1.Outer.Inner.size", "acme.v1.Outer.Colour",
                   "acme.v1.Outer.COLOUR_RED", "acme.v1.Outer.Colour.COLOUR_RED", "acme.v1.note",
                   "acme.v1.Outer.nested_note"):
        assert index.file_containing_symbol(symbol) == "acme/v1/things.proto", symbol
    assert index.file_containing_extension("acme.v1.Outer", 101) == "acme/v1/things.proto"
    assert index.file_containing_extension("acme.v1.Outer", 102) is None
    servicer = ReflectionServicer(index, [])
    response = servicer.answer(Request(all_extension_numbers_of_type="acme.v1.Outer"))
    assert response.all_extension_numbers_response.base_type_name == "acme.v1.Outer"
    assert list(response.all_extension_numbers_response.extension_number) == [101, 150]
    response = servicer.answer(Request(all_extension_numbers_of_type="acme.v1.Outer.Inner"))
    assert list(response.all_extension_numbers_response.extension_number) == []


def test_error_detail_types_resolve_so_clients_can_decode_status_details(servicer: ReflectionServicer) -> None:
    from google.rpc import error_details_pb2  # noqa: F401 - grpcio-status's types, as the server has them

    files = files_of(servicer.answer(Request(file_containing_symbol="google.rpc.ErrorInfo")))
    assert files[0].name == "google/rpc/error_details.proto"


def test_fields_keep_their_proto_names_in_json_as_before(servicer: ReflectionServicer) -> None:
    # grpcurl prints access_token, not accessToken, as it did with the stubs' descriptors.
    files = files_of(servicer.answer(Request(file_containing_symbol="pixelcheck.v1.SignInResponse")))
    fields = {f.name: f for m in files[0].message_type if m.name == "SignInResponse" for f in m.field}
    assert not fields["access_token"].HasField("json_name")
