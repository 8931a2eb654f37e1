# tsfrig device log protocol, version 1 (MicroPython; uploaded to the target).
# Every protocol line is
#     @TSF1 <seq> <TYPE> <json payload> #<crc32 hex of everything before " #">
# <seq> counts protocol lines from 0 so the host can tell a dropped line from a
# slow board; the last line of a scenario is END with the number of lines sent.
# Lines are only printed outside timed sections.
import json

try:
    from binascii import crc32
except ImportError:  # ports built without binascii.crc32
    crc32 = None

PREFIX = "@TSF1"
_seq = 0


def _crc(text):
    b = text.encode()
    if crc32 is not None:
        return crc32(b) & 0xFFFFFFFF
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    return c ^ 0xFFFFFFFF


def reset():
    global _seq
    _seq = 0


def emit(kind, payload=None):
    """Print one protocol line."""
    global _seq
    body = "%s %d %s %s" % (PREFIX, _seq, kind, json.dumps(payload if payload is not None else {}))
    print("%s #%08x" % (body, _crc(body)))
    _seq += 1


def emit_array(kind, arr, n, chunk=64):
    """Print the first n entries of a preallocated array in chunks."""
    i = 0
    while i < n:
        j = min(n, i + chunk)
        emit(kind, {"i0": i, "v": list(arr[i:j])})
        i = j


def end():
    emit("END", {"lines": _seq + 1})
