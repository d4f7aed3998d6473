"""The parts of Sanic's HTTP internals that nubo_backend/serving/http_protocol.py relies on: a Sanic
upgrade that moves them fails here, by name, rather than quietly in production."""

from __future__ import annotations

import inspect
import sys

from sanic.http import Http
from sanic.response import HTTPResponse
from sanic.response import types as response_types
from sanic.response.types import HEADER_TRANSLATION_TABLE, BaseHTTPResponse
from sanic.server.protocols.http_protocol import HttpProtocol, HttpProtocolMixin

from nubo_backend.serving.http_protocol import NuboHttp, NuboProtocol, NuboSanic, sanitize_header_value


def test_http_keeps_the_methods_and_state_the_adapter_uses() -> None:
    assert inspect.iscoroutinefunction(Http.http1)
    assert inspect.iscoroutinefunction(Http.read)
    state = inspect.getsource(Http.__init__) + inspect.getsource(Http.init_for_request)
    for name in ("expecting_continue", "request_body", "request_bytes", "request_max_size", "protocol",
                 "request", "response", "keep_alive"):
        assert f"self.{name}" in state, name
    # No __dict__: every class of NuboHttp declares its slots, so instances stay as lean as Sanic's.
    assert all("__slots__" in vars(cls) for cls in NuboHttp.__mro__[:-1])


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


def test_sanic_sends_every_response_head_through_http1_response_header() -> None:
    # The response head hooks run there: http1() makes it the first send of each request, and
    # it writes the head that the response's headers make (after the hooks have added theirs).
    assert "self.response_func = self.http1_response_header" in inspect.getsource(Http.http1)
    assert list(inspect.signature(Http.http1_response_header).parameters) == ["self", "data", "end_stream"]
    source = inspect.getsource(Http.http1_response_header)
    assert "res.processed_headers" in source and "self.keep_alive" in source


def test_the_header_sanitizer_is_sanics_with_its_result() -> None:
    # Sanic's processed_headers calls this staticmethod on every header name and value, and
    # Sanic's own is a translate on this table.
    assert "self._sanitize_header_value(" in inspect.getsource(BaseHTTPResponse.__dict__["processed_headers"].fget)
    assert isinstance(BaseHTTPResponse.__dict__["_sanitize_header_value"], staticmethod)
    assert "return value.translate(HEADER_TRANSLATION_TABLE)" in inspect.getsource(response_types)
    assert HEADER_TRANSLATION_TABLE == {ord("\r"): None, ord("\n"): None, 0: None}

    def sanic_own(value: str) -> str:
        return value.translate(HEADER_TRANSLATION_TABLE)

    every_character = [chr(n) for n in range(sys.maxunicode + 1)]
    assert [sanitize_header_value(c) for c in every_character] == [sanic_own(c) for c in every_character]
    text = "".join(every_character)
    for start in range(0, len(text), 4096):
        assert sanitize_header_value(text[start:start + 4096]) == sanic_own(text[start:start + 4096])
    for value in ("", "application/json", "é à", "a\tb", "x\ry", "x\ny", "x\x00y", "\u2028"):
        assert sanitize_header_value(value) == sanic_own(value)


def test_a_nubo_app_sanitizes_headers_as_sanic_does() -> None:
    NuboSanic("nubo_test_sanitizer")
    response = HTTPResponse(b"", headers={"X-A": "one\r\nInjected: two", "X-B": "plain"})
    assert dict(response.processed_headers)[b"X-A"] == b"oneInjected: two"
    assert dict(response.processed_headers)[b"X-B"] == b"plain"
