"""Pins the Sanic internals realtime/sanic_ws.py relies on: a Sanic upgrade that changes them
fails here, by name, instead of letting invalid UTF-8 wedge sockets again."""

import inspect

from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol

from nubo_backend.realtime.sanic_ws import _Utf8CheckedAssembler


def test_the_assembler_decodes_text_in_put_and_keeps_its_protocol_and_decoder() -> None:
    source = inspect.getsource(WebsocketFrameAssembler.put)
    assert "self.decoder.decode(" in source
    assert {"decoder", "protocol"} <= set(WebsocketFrameAssembler.__slots__)


def test_the_checked_assembler_can_take_the_place_of_sanics() -> None:
    assert _Utf8CheckedAssembler.__slots__ == ()
    assert _Utf8CheckedAssembler.__mro__[1] is WebsocketFrameAssembler


def test_sanics_pong_handling_resolves_the_pings_that_ping_now_registers() -> None:
    """ping_now puts its future in `pings` (payload -> future) and writes through io_proto's
    transport; Sanic's process_pong must still resolve futures from that dict."""
    assert "self.pings = {}" in inspect.getsource(WebsocketImplProtocol.__init__)
    pong = inspect.getsource(WebsocketImplProtocol.process_pong)
    assert "self.pings.items()" in pong and "set_result(None)" in pong
    assert "self.pings[data] = self.io_proto.loop.create_future()" in inspect.getsource(WebsocketImplProtocol.ping)

