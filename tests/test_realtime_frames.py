"""Frames built once and written as is must be valid WebSocket text frames of any size."""

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from nubo_backend.realtime.frames import error_frame, text_frame


def parse(wire: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(wire)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frames_of_every_length_encoding_parse_back(size: int) -> None:
    payload = ("é" * size).encode()[:size] if size % 2 == 0 else b"x" * size
    parsed = parse(text_frame(payload))
    assert parsed.opcode is Opcode.TEXT and parsed.fin and parsed.data == payload


def test_error_frames_name_the_code_and_the_command() -> None:
    parsed = parse(error_frame("unknown_type", "Unknown frame type: x", "c-1"))
    assert parsed.data == b'{"type":"error","code":"unknown_type","error":"Unknown frame type: x","ref":"c-1"}'
