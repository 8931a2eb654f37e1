# os module of the tsfrig virtual board (MicroPython unix port; never run by CPython).
#
# Found ahead of the firmware's built-in `os` through MICROPYPATH, as machine.py is (`os` is
# an extensible built-in). Everything here is the firmware's own `os` - imported under the
# name `uos`, which always means the built-in - except where the unix port answers
# differently from a board's filesystem in ways clients see:
#   ilistdir(): (name, type, inode, size) as VfsFat and VfsLfs give; the unix port's VfsPosix
#     gives no size, so `mpremote fs ls` showed every file as 0 bytes;
#   stat(): a directory's size is 0, as on a board (the unix port gives the block size);
#   uname(): every board has it (the unix port doesn't); its machine names the virtual board,
#     and, when the board emulates a port (TSFRIG_EMULATE), sysname and machine are that
#     port's (sys.platform, a built-in, stays the unix port's).
from uos import *  # noqa: F401,F403

import sys as _sys
import uos as _uos

_S_IFMT = 0xF000
_S_IFDIR = 0x4000


def _join(path, name):
    if path in (".", b".", "", b""):
        return name
    sep = "/" if isinstance(path, str) else b"/"
    return path + name if path.endswith(sep) else path + sep + name


def ilistdir(*args):
    path = args[0] if args else "."
    for entry in _uos.ilistdir(*args):
        size = 0
        if entry[1] != _S_IFDIR:
            try:
                size = _uos.stat(_join(path, entry[0]))[6]
            except OSError:
                pass  # a dangling link: listed, with no size
        yield (entry[0], entry[1], entry[2], size)


def stat(path):
    st = _uos.stat(path)
    if st[0] & _S_IFMT == _S_IFDIR:
        return st[:6] + (0,) + st[7:]
    return st


_uname = None


def uname():
    global _uname
    if _uname is None:
        from collections import namedtuple

        impl = _sys.implementation
        machine = "tsfrig virtual board with " + getattr(impl, "_machine", _sys.platform)
        port = _uos.getenv("TSFRIG_EMULATE")
        if port:  # the board emulates a port (machine.py): it names that port and board
            machine = "%s (tsfrig virtual board emulating %s)" % (
                _uos.getenv("TSFRIG_EMULATE_MACHINE"), port)
        v = impl.version
        release = "%d.%d.%d" % (v[0], v[1], v[2])
        if len(v) > 3 and v[3]:
            release += "-" + v[3]
        _uname = namedtuple("uname_result", ("sysname", "nodename", "release", "version",
                                             "machine"))(
            _uos.getenv("TSFRIG_EMULATE_SYSNAME") or _sys.platform, _sys.platform, release,
            _sys.version.split("MicroPython ", 1)[-1], machine)
    return _uname
