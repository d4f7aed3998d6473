"""The parts of Sanic's HTTP internals that nubo_backend/serving/http_protocol.py relies on: a Sanic
upgrade that moves them fails here, by name, rather than quietly in production."""

from __future__ import annotations

import inspect

from sanic.http import Http
from sanic.server.protocols.http_protocol import HttpProtocol, HttpProtocolMixin

from nubo_backend.serving.http_protocol import NuboHttp, NuboProtocol, NuboSanic


def test_http_keeps_the_methods_and_state_the_adapter_uses() -> None:
    assert inspect.iscoroutinefunction(Http.http1)
    assert inspect.iscoroutinefunction(Http.read)
    state = inspect.getsource(Http.__init__) + inspect.getsource(Http.init_for_request)
    for name in ("expecting_continue", "request_body", "request_bytes", "request_max_size", "protocol"):
        assert f"self.{name}" in state, name
    assert NuboHttp.__slots__ == ()  # no __dict__: instances stay as lean as Sanic's


def test_protocol_builds_its_http_from_http_class() -> None:
    assert "self.HTTP_CLASS(self" in inspect.getsource(HttpProtocolMixin._setup_connection)
    assert inspect.iscoroutinefunction(HttpProtocol.receive_more)
    assert "recv_buffer" in HttpProtocol.__slots__
    assert NuboProtocol.HTTP_CLASS is NuboHttp


def test_sanic_prepare_takes_a_protocol() -> None:
    assert "protocol" in inspect.signature(NuboSanic.__mro__[1].prepare).parameters


def test_sanic_sends_continue_from_read_when_expected() -> None:
    # The Expect fix intercepts read() before Sanic's own 100-continue, which it sends there.
    assert "expecting_continue" in inspect.getsource(Http.read)


def test_sanic_reads_the_head_from_recv_buffer_up_to_header_max_size() -> None:
    # check_head waits for the head in the same buffer, with the same bound, before Sanic parses it.
    source = inspect.getsource(Http.http1_request_header)
    assert "self.recv_buffer" in source and "self.HEADER_MAX_SIZE" in source
    assert 'b"\\r\\n\\r\\n"' in source and "await self._receive_more()" in source
