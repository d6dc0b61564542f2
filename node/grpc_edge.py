"""The gRPC edge: requests that do not parse are answered, not thrown.

gRPC's generated registration decodes each request with ``Message.FromString``; bytes that are
not a valid protobuf message make it raise inside the library, which answers ``UNKNOWN`` with
the Python exception text and logs a full traceback per request, so a stream of 7-byte requests
becomes a stream of 800-byte log entries.  ``add_service`` registers the same methods, read
from the service descriptor, with a decoder that turns a parse failure into a marker; the method
then answers ``INVALID_ARGUMENT`` with the code ``MALFORMED_REQUEST``, and one log line per
second at most says how many such requests arrived.  An ``on_malformed`` hook hears of every
one (the node's audit log aggregates them by caller).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import message as pb_message
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

log = logging.getLogger("ibledger.edge")

MALFORMED_REQUEST = "MALFORMED_REQUEST"


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ("reason", "size")

    def __init__(self, size: int, reason: str) -> None:
        self.size = size
        self.reason = reason


class RateLimitedLog:
    """Logs at most one line per ``interval_s`` for a kind of bad input, with a count of the
    lines it held back; never a traceback."""

    def __init__(self, logger: logging.Logger, interval_s: float = 1.0) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def bad_input(self, kind: str, message: str, **fields: object) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self._interval_s:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        self._log.warning(message, extra={"kind": kind, "suppressed": held, **fields})


def _decoder(message_class: type[pb_message.Message]) -> Callable[[bytes], object]:
    def decode(data: bytes) -> object:
        try:
            return message_class.FromString(data)
        except (pb_message.DecodeError, RuntimeWarning, ValueError) as exc:
            return _Malformed(len(data), str(exc) or type(exc).__name__)

    return decode


def _refusal(method: str, request: _Malformed) -> str:
    return (
        f"{MALFORMED_REQUEST}: the {method} request is not a valid protobuf message "
        f"({request.size} bytes)"
    )


MalformedHook = Callable[[str, str, int], None]
"""Told of each malformed request: the method, the caller's gRPC peer string, its size."""


def _wrap(
    method: MethodDescriptor,
    implementation: Callable[..., Any],
    bad_input: RateLimitedLog,
    on_malformed: MalformedHook | None,
) -> Callable[..., Any]:
    name = method.name

    def note(request: _Malformed, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if on_malformed is not None:
            on_malformed(name, context.peer(), request.size)
        bad_input.bad_input(
            MALFORMED_REQUEST,
            "malformed request refused",
            method=name,
            bytes=request.size,
            reason=request.reason,
            peer=context.peer(),
        )

    if method.client_streaming:  # bidirectional: every request of the stream is checked

        async def checked_stream(
            requests: AsyncIterator[object], context: Any
        ) -> AsyncIterator[Any]:
            async def parsed() -> AsyncIterator[object]:
                async for request in requests:
                    if isinstance(request, _Malformed):
                        note(request, context)
                        await context.abort(
                            grpc.StatusCode.INVALID_ARGUMENT, _refusal(name, request)
                        )
                    yield request

            async for response in implementation(parsed(), context):
                yield response

        return checked_stream

    if method.server_streaming:

        async def checked_server_stream(request: object, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, _Malformed):
                note(request, context)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _refusal(name, request))
            async for response in implementation(request, context):
                yield response

        return checked_server_stream

    async def checked_unary(request: object, context: Any) -> Any:
        if isinstance(request, _Malformed):
            note(request, context)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _refusal(name, request))
        return await implementation(request, context)

    return checked_unary


def add_service(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    bad_input: RateLimitedLog,
    on_malformed: MalformedHook | None = None,
) -> None:
    """Register every method of ``service`` on ``servicer`` with parse failures refused."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        implementation = getattr(servicer, method.name)
        behaviour = _wrap(method, implementation, bad_input, on_malformed)
        if method.client_streaming and not method.server_streaming:
            raise ValueError(f"{service.full_name}.{method.name}: client streaming is not used")
        if method.client_streaming:
            make = grpc.stream_stream_rpc_method_handler
        elif method.server_streaming:
            make = grpc.unary_stream_rpc_method_handler
        else:
            make = grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(
            behaviour,
            request_deserializer=_decoder(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
