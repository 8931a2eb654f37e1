"""Host side of the device log protocol (device_scripts/tsf_log.py writes it).

A protocol line is ``@TSF1 <seq> <TYPE> <json> #<crc32>``. Anything else the board
prints is kept as device output and never breaks parsing. A protocol line that is
truncated, corrupt or out of sequence is an error that names the line, so a lost
line is reported as such rather than as a timeout.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field

PREFIX = "@TSF"
VERSION = "1"
_LINE = re.compile(r"^@TSF(\d+) (\d+) ([A-Z_]+) (.*) #([0-9a-f]{8})$")


class ProtocolError(Exception):
    """A protocol line that cannot be trusted (truncated, corrupt, lost, wrong version)."""


@dataclass
class Record:
    seq: int
    type: str  # HELLO, READY, IRQ, COUNT, END ...
    payload: dict
    line_no: int


@dataclass
class DeviceLog:
    """Everything one scenario printed: protocol records plus plain device output."""

    records: list[Record] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    ended: bool = False

    def first(self, record_type: str) -> dict | None:
        for r in self.records:
            if r.type == record_type:
                return r.payload
        return None

    def array(self, record_type: str) -> list[int]:
        """Reassemble a chunked array record (IRQ, WAKE, WAKEN)."""
        out: list[int] = []
        for r in self.records:
            if r.type == record_type:
                if r.payload["i0"] != len(out):
                    raise ProtocolError(
                        f"device log line {r.line_no}: {record_type} chunk starts at "
                        f"{r.payload['i0']}, expected {len(out)}"
                    )
                out.extend(r.payload["v"])
        return out

    def text(self) -> str:
        return "\n".join(self.lines)


class LogParser:
    """Feeds lines one at a time; checks version, checksum and sequence as they arrive."""

    def __init__(self) -> None:
        self.log = DeviceLog()
        self._next_seq = 0

    def feed(self, line: str) -> Record | None:
        """Take one line of device output; return the record if it was a protocol line."""
        line = line.rstrip("\r\n")
        self.log.lines.append(line)
        line_no = len(self.log.lines)
        start = line.find(PREFIX)
        if start < 0:
            return None
        text = line[start:]
        m = _LINE.match(text)
        if not m:
            raise ProtocolError(f"device log line {line_no}: truncated or malformed: {text[:80]!r}")
        version, seq, record_type, body, crc = m.groups()
        if version != VERSION:
            raise ProtocolError(
                f"device log line {line_no}: protocol version {version}, host speaks {VERSION}: "
                "upload the device scripts that match this harness"
            )
        signed = text[: text.rindex(" #")]
        if zlib.crc32(signed.encode()) != int(crc, 16):
            raise ProtocolError(f"device log line {line_no}: checksum mismatch: {text[:80]!r}")
        seq_no = int(seq)
        if seq_no != self._next_seq:
            raise ProtocolError(
                f"device log line {line_no}: protocol line {self._next_seq} lost "
                f"(got {seq_no} next)"
            )
        self._next_seq += 1
        try:
            payload = json.loads(body)
        except ValueError as e:
            raise ProtocolError(f"device log line {line_no}: bad payload: {e}") from None
        rec = Record(seq_no, record_type, payload, line_no)
        self.log.records.append(rec)
        if record_type == "END":
            if payload.get("lines") != self._next_seq:
                raise ProtocolError(
                    f"device log line {line_no}: END says {payload.get('lines')} protocol lines, "
                    f"received {self._next_seq}"
                )
            self.log.ended = True
        return rec
