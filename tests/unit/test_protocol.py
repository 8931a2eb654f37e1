"""The device log protocol: plain output is kept, damaged protocol lines are named."""

import json
import zlib

import pytest

from harness.board.log_protocol import LogParser, ProtocolError


def line(seq: int, kind: str, payload: dict, version: str = "1") -> str:
    body = f"@TSF{version} {seq} {kind} {json.dumps(payload)}"
    return f"{body} #{zlib.crc32(body.encode()):08x}"


def test_records_and_device_output_are_separated():
    p = LogParser()
    p.feed("boot noise from the board\r\n")
    p.feed(line(0, "HELLO", {"proto": 1}))
    p.feed("print from user code")
    p.feed(line(1, "IRQ", {"i0": 0, "v": [5, 9]}))
    p.feed(line(2, "IRQ", {"i0": 2, "v": [12]}))
    p.feed(line(3, "END", {"lines": 4}))
    assert p.log.ended
    assert p.log.array("IRQ") == [5, 9, 12]
    assert [r.type for r in p.log.records] == ["HELLO", "IRQ", "IRQ", "END"]
    assert "print from user code" in p.log.text()


def test_lost_line_is_reported_as_lost():
    p = LogParser()
    p.feed(line(0, "HELLO", {}))
    with pytest.raises(ProtocolError, match="line 2: protocol line 1 lost"):
        p.feed(line(2, "COUNT", {}))


def test_corrupt_line_names_the_line():
    p = LogParser()
    good = line(0, "HELLO", {"scenario": "wake"})
    with pytest.raises(ProtocolError, match="device log line 1: checksum mismatch"):
        p.feed(good.replace("wake", "wako"))


def test_truncated_line_is_an_error():
    p = LogParser()
    with pytest.raises(ProtocolError, match="truncated or malformed"):
        p.feed(line(0, "HELLO", {"a": 1})[:20])


def test_wrong_protocol_version_says_what_to_do():
    p = LogParser()
    with pytest.raises(ProtocolError, match="upload the device scripts"):
        p.feed(line(0, "HELLO", {}, version="2"))


def test_end_with_wrong_count_is_caught():
    p = LogParser()
    p.feed(line(0, "HELLO", {}))
    with pytest.raises(ProtocolError, match="END says 5"):
        p.feed(line(1, "END", {"lines": 5}))


def test_chunk_gap_is_caught():
    p = LogParser()
    p.feed(line(0, "WAKE", {"i0": 0, "v": [1, 2]}))
    p.feed(line(1, "WAKE", {"i0": 3, "v": [4]}))
    with pytest.raises(ProtocolError, match="starts at 3, expected 2"):
        p.log.array("WAKE")
