"""Pins the Sanic internals realtime/sanic_ws.py relies on: a Sanic upgrade that changes them
fails here, by name, instead of letting invalid UTF-8 wedge sockets again."""

import inspect

from sanic.server.websockets.frame import WebsocketFrameAssembler

from nubo_backend.realtime.sanic_ws import _Utf8CheckedAssembler


def test_the_assembler_decodes_text_in_put_and_keeps_its_protocol_and_decoder() -> None:
    source = inspect.getsource(WebsocketFrameAssembler.put)
    assert "self.decoder.decode(" in source
    assert {"decoder", "protocol"} <= set(WebsocketFrameAssembler.__slots__)


def test_the_checked_assembler_can_take_the_place_of_sanics() -> None:
    assert _Utf8CheckedAssembler.__slots__ == ()
    assert _Utf8CheckedAssembler.__mro__[1] is WebsocketFrameAssembler
