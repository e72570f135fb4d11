"""Server reflection (v1 and v1alpha) that serves the protos' documentation and resolves every symbol.

grpcio-reflection answers from the process's descriptor pool, whose descriptors carry no source info (so
`grpcurl describe` shows no comments), and it cannot find method symbols (grpc/grpc#34743). This servicer
answers from a DescriptorIndex instead: PixelCheck's files come from the descriptor set that
scripts/gen-protos writes with --include_source_info (generated/pixelcheck/v1/pixelcheck.binpb), the
standard services' files (health, reflection) from the default pool. v1 is v1alpha under another package
name, wire-identical, so one servicer with v1alpha's messages serves both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from importlib import resources
from typing import Any, TypeAlias

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2

V1ALPHA_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
V1_SERVICE = "grpc.reflection.v1.ServerReflection"
DESCRIPTOR_SET = "pixelcheck.binpb"  # in the pixelcheck.v1 package, written by scripts/gen-protos

FileProto: TypeAlias = descriptor_pb2.FileDescriptorProto


class DescriptorIndex:
    """Files as FileDescriptorProto (source info kept), the file of every fully-qualified symbol, extensions.

    Symbols are packages' services, methods, messages (nested too), fields, oneofs, enums, enum values
    (under the enum's scope, as protobuf names them, and under the enum itself) and extensions.
    """

    def __init__(self, fallback: descriptor_pool.DescriptorPool | None = None) -> None:
        self._fallback = fallback  # asked for files and symbols not indexed (e.g. google.rpc.ErrorInfo)
        self._files: dict[str, FileProto] = {}
        self._symbols: dict[str, str] = {}
        self._extensions: dict[str, dict[int, str]] = {}  # extendee -> field number -> file name

    def add(self, file: FileProto) -> None:
        """Index file (a file already indexed under its name is kept)."""
        if file.name in self._files:
            return
        self._files[file.name] = file
        scope = f"{file.package}." if file.package else ""
        for service in file.service:
            self._symbols[scope + service.name] = file.name
            for method in service.method:
                self._symbols[f"{scope}{service.name}.{method.name}"] = file.name
        for message in file.message_type:
            self._add_message(file.name, scope, message)
        for enum in file.enum_type:
            self._add_enum(file.name, scope, enum)
        self._add_extensions(file.name, scope, file.extension)

    def _add_message(self, file_name: str, scope: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = scope + message.name
        self._symbols[name] = file_name
        inner = f"{name}."
        for member in (*message.field, *message.oneof_decl):
            self._symbols[inner + member.name] = file_name
        for nested in message.nested_type:
            self._add_message(file_name, inner, nested)
        for enum in message.enum_type:
            self._add_enum(file_name, inner, enum)
        self._add_extensions(file_name, inner, message.extension)

    def _add_enum(self, file_name: str, scope: str, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self._symbols[scope + enum.name] = file_name
        for value in enum.value:
            self._symbols[scope + value.name] = file_name
            self._symbols[f"{scope}{enum.name}.{value.name}"] = file_name

    def _add_extensions(self, file_name: str, scope: str,
                        extensions: Iterable[descriptor_pb2.FieldDescriptorProto]) -> None:
        for extension in extensions:
            self._symbols[scope + extension.name] = file_name
            self._extensions.setdefault(extension.extendee.lstrip("."), {})[extension.number] = file_name

    # -- look-ups ---------------------------------------------------------------------------------------
    def file_names(self) -> list[str]:
        return sorted(self._files)

    def file(self, name: str) -> FileProto | None:
        if name not in self._files and self._fallback is not None:
            self._add_from_fallback(lambda pool: pool.FindFileByName(name))
        return self._files.get(name)

    def file_containing_symbol(self, symbol: str) -> str | None:
        symbol = symbol.lstrip(".")
        if symbol not in self._symbols and self._fallback is not None:
            self._add_from_fallback(lambda pool: pool.FindFileContainingSymbol(symbol))
        return self._symbols.get(symbol)

    def _add_from_fallback(self, find: Callable[[descriptor_pool.DescriptorPool], Any]) -> None:
        assert self._fallback is not None
        try:
            name = find(self._fallback).name
        except KeyError:
            return
        for file in _from_pool(name, self._fallback):
            self.add(file)

    def file_containing_extension(self, extendee: str, number: int) -> str | None:
        return self._extensions.get(extendee.lstrip("."), {}).get(number)

    def extension_numbers(self, extendee: str) -> list[int] | None:
        """The extension numbers of message type extendee; None when no such message is indexed."""
        name = extendee.lstrip(".")
        if self.file_containing_symbol(name) is None:
            return None
        return sorted(self._extensions.get(name, {}))

    def with_dependencies(self, name: str) -> Iterator[FileProto]:
        """The file called name, then every file it depends on, transitively, each once."""
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop(0)
            file = self._files.get(current)
            if current in seen or file is None:
                continue
            seen.add(current)
            yield file
            pending.extend(file.dependency)


def _from_pool(name: str, pool: descriptor_pool.DescriptorPool) -> Iterator[FileProto]:
    """The pool's file called name and its dependencies, as protos (the pool keeps no source info)."""
    seen: set[str] = set()
    pending = [pool.FindFileByName(name)]
    while pending:
        descriptor = pending.pop()
        if descriptor.name in seen:
            continue
        seen.add(descriptor.name)
        proto = FileProto()
        descriptor.CopyToProto(proto)
        yield proto
        pending.extend(descriptor.dependencies)


def _reflection_v1_file() -> FileProto:
    """grpc/reflection/v1/reflection.proto, made from v1alpha's (grpcio-reflection ships only v1alpha)."""
    proto = FileProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = "grpc.reflection.v1"
    for message in proto.message_type:
        for field in message.field:
            field.type_name = field.type_name.replace(".v1alpha.", ".v1.")
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(".v1alpha.", ".v1.")
        method.output_type = method.output_type.replace(".v1alpha.", ".v1.")
    return proto


def load_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The descriptor set shipped in pixelcheck.v1 (the protos with their comments, and their imports)."""
    data = resources.files("pixelcheck.v1").joinpath(DESCRIPTOR_SET).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


def _json_name(field_name: str) -> str:
    """protoc's default JSON name: underscores removed, the letter after each one capitalised."""
    head, *rest = field_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _drop_default_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    # protoc writes every field's json_name; the stubs' descriptors (served until now) leave the default
    # ones out, and grpcurl prints proto field names (access_token) only without them. Keep that output.
    for message in messages:
        for field in message.field:
            if field.json_name == _json_name(field.name):
                field.ClearField("json_name")
        _drop_default_json_names(message.nested_type)


def build_index(service_names: Iterable[str]) -> DescriptorIndex:
    """An index of PixelCheck's documented files, plus the files of any other service in service_names
    (health), of reflection itself and, on demand, of any type the process knows (error details).
    Raises KeyError for a service no descriptor describes."""
    index = DescriptorIndex(fallback=descriptor_pool.Default())
    for file in load_descriptor_set().file:
        _drop_default_json_names(file.message_type)
        index.add(file)
    index.add(_reflection_v1_file())
    for service in (*service_names, V1ALPHA_SERVICE):
        if index.file_containing_symbol(service) is None:
            raise KeyError(f"no descriptor describes the service {service}")
    return index


class ReflectionServicer:
    """ServerReflectionInfo over a DescriptorIndex: one answer per request, in order."""

    def __init__(self, index: DescriptorIndex, service_names: Iterable[str]) -> None:
        self._index = index
        self._services = sorted({*service_names, V1ALPHA_SERVICE, V1_SERVICE})

    async def ServerReflectionInfo(  # noqa: N802 - the protocol's method name
        self, requests: AsyncIterator[reflection_pb2.ServerReflectionRequest], context: object,
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        """The response to one reflection request (an error_response when nothing matches)."""
        kind = request.WhichOneof("message_request")
        response = reflection_pb2.ServerReflectionResponse(valid_host=request.host, original_request=request)
        if kind == "list_services":
            response.list_services_response.service.extend(
                reflection_pb2.ServiceResponse(name=name) for name in self._services)
            return response
        file_name: str | None = None
        if kind == "file_by_filename":
            file_name = request.file_by_filename if self._index.file(request.file_by_filename) else None
        elif kind == "file_containing_symbol":
            file_name = self._index.file_containing_symbol(request.file_containing_symbol)
        elif kind == "file_containing_extension":
            wanted = request.file_containing_extension
            file_name = self._index.file_containing_extension(wanted.containing_type, wanted.extension_number)
        elif kind == "all_extension_numbers_of_type":
            numbers = self._index.extension_numbers(request.all_extension_numbers_of_type)
            if numbers is not None:
                response.all_extension_numbers_response.base_type_name = \
                    request.all_extension_numbers_of_type.lstrip(".")
                response.all_extension_numbers_response.extension_number.extend(numbers)
                return response
        else:
            return _error(response, grpc.StatusCode.INVALID_ARGUMENT, "the request names no reflection query")
        if file_name is None:
            return _error(response, grpc.StatusCode.NOT_FOUND, f"{kind} not found: {_subject(request, kind)}")
        response.file_descriptor_response.file_descriptor_proto.extend(
            file.SerializeToString() for file in self._index.with_dependencies(file_name))
        return response


def _subject(request: reflection_pb2.ServerReflectionRequest, kind: str) -> str:
    value = getattr(request, kind)
    if kind == "file_containing_extension":
        return f"{value.containing_type} extension {value.extension_number}"
    return str(value)


def _error(response: reflection_pb2.ServerReflectionResponse, code: grpc.StatusCode,
           message: str) -> reflection_pb2.ServerReflectionResponse:
    response.error_response.error_code = code.value[0]
    response.error_response.error_message = message
    return response


def enable_reflection(service_names: list[str], server: grpc.aio.Server) -> None:
    """Serve reflection (v1 and v1alpha) listing service_names and the reflection services themselves."""
    servicer = ReflectionServicer(build_index(service_names), service_names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (V1ALPHA_SERVICE, V1_SERVICE):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),))
