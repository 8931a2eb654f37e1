"""The side of the virtual board a client sees: its serial port, which goes away and comes
back with resets as a USB board's does, and the bytes through it both ways.

- Cooked output: the VM's lone `\\n` reaches the client as `\\r\\n`, as every bare-metal port
  sends it (`\\r\\n` the VM already sends stays as it is; the raw-paste window header and the
  raw REPL's `\\x04` framing pass untouched).
- Input is never lost across a restart: bytes the old VM did not read (the bridge keeps its
  own handle on each VM's pty, so they survive the VM) and bytes sent while the new VM
  boots reach the new VM once it is at its prompt. After a raw-REPL program's end markers
  the bridge waits for the VM's next prompt (or its exit) before passing input on, so a
  Ctrl-C meant for the next command can't hit a VM that is exiting. Likewise after a line
  (or Ctrl-A) typed at the friendly prompt: the unix port flushes its tty's input as it
  switches mode to run the line, and a board's UART loses nothing that way.
- Ctrl-C while code runs reaches the VM as SIGINT -> KeyboardInterrupt because the VM's pty
  is its controlling terminal with ISIG on (the unix REPL turns ISIG off only while it
  reads a line).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import tty

from harness.sim.firmware import Firmware
from harness.sim.tempdirs import owned_temp_dir

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"
END_HOLD_S = 0.5      # after a raw program's end markers, input waits this long for the prompt
LINE_HOLD_S = 1.0     # after a line (or Ctrl-A) at the friendly prompt, input waits this long
PORT_RECLAIM_S = 3.0  # a hard reset brings the port back under its old name if free by then
SIGINT_FOLD_S = 0.05  # Ctrl-Cs this close together reach the VM as one SIGINT ...
SIGINT_RETRY_S = 0.3  # ... unless its program still runs this long after: then a second
INFO_UF2 = "INFO_UF2.TXT"  # what a UF2 bootloader's volume holds (the flasher looks for it)


class ClientPort:
    """VirtualBoard's client side (a mixin: the state is the board's, set up in its
    __init__): the port's coming and going, and the filters between client and VM."""

    # ---- the client's port -----------------------------------------------------------------
    def _adopt_port(self, master: int, slave: int) -> None:
        tty.setraw(slave)  # kept open so the master never sees a hang-up
        os.set_blocking(master, False)
        self._client_fd, self._client_slave = master, slave
        self.port = os.ttyname(slave)

    def _drop_port(self) -> None:
        """The device vanishes: clients' handles on it fail from now on."""
        for fd in (self._client_fd, self._client_slave):
            if fd >= 0:
                os.close(fd)
        self._client_fd = self._client_slave = -1
        self._out.clear()

    def _port_step(self, now: float) -> None:
        """While the port is away: once the minimum time is up, bring it back under its old
        name as soon as that is free (a client still holding the old device keeps it busy,
        as with a USB board); past the reclaim time take whatever name comes."""
        if now < self._away_until:
            return
        found = reopen_pty(self._away_name, now >= self._reclaim_until, 64)
        if found is None:
            return
        self._away_name = ""
        self._adopt_port(*found)
        if self._run_level:
            self._boot(raw=False)

    def _drop_step(self) -> None:
        """In the bootloader: an image copied to the volume (its size and mtime unchanged
        since the last look: the copy is complete) becomes the firmware; the volume goes,
        the board boots it and its port comes back."""
        try:
            files = [f for f in self.drop_dir.iterdir() if f.name != INFO_UF2 and f.is_file()]
        except OSError:
            files = []
        if not files:
            return
        f = files[0]
        st = f.stat()
        seen = (f.name, st.st_size, st.st_mtime_ns)
        if seen != self._drop_seen or not st.st_size:
            self._drop_seen = seen
            return
        data = f.read_bytes()
        shutil.rmtree(self.drop_dir, ignore_errors=True)  # the volume unmounts
        self._in_bootloader = False
        if data.startswith(b"#!"):  # else not an image for this board: the old one boots
            if self._image_dir is None:
                self._image_dir = owned_temp_dir("vb-images")  # swept if we are SIGKILLed
            image = self._image_dir / f"image-{self.reboots}"
            image.write_bytes(data)
            image.chmod(0o755)
            self.firmware = Firmware(image, self.firmware.overlay)
        now = time.monotonic()
        self._away_until, self._reclaim_until = now, now + PORT_RECLAIM_S

    # ---- the bridge ------------------------------------------------------------------------
    def _takes_input(self, now: float) -> bool:
        if self._hold_until and now >= self._hold_until:
            self._hold_until = 0.0  # no prompt came: the program's own \x04s, pass input on
            self._prompt_hold = False
        return self._vm is None or (self._boot_wait is None and not self._hold_until)

    # ---- output: VM -> client ----------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._client_fd < 0 or not data:
            return
        self._out += data
        self._flush_out()

    def _flush_out(self) -> None:
        while self._out:
            try:
                n = os.write(self._client_fd, self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._out.clear()
                return
            del self._out[:n]

    def _cook(self, data: bytes) -> bytes:
        """A lone \\n becomes \\r\\n, as a bare-metal port's cooked stdout sends it (a \\r\\n
        the VM sends itself stays one)."""
        if not data:
            return data
        lead = b""
        if self._last_cr and data[:1] == b"\n":
            lead, data = b"\n", data[1:]
        self._last_cr = data.endswith(b"\r")
        return lead + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def _from_vm(self, data: bytes) -> None:
        if self._hold_until and not self._prompt_hold:
            self._hold_until = 0.0  # the VM spoke again: its prompt or more output
        head = b""
        if self._verbatim:  # the raw-paste header: binary, passed as it is
            head, data = data[:self._verbatim], data[self._verbatim:]
            self._verbatim -= len(head)
            self._paste_hdr += head
            if self._paste_hdr[:2] == b"R\x00":  # no raw-paste here: the client falls back
                head, data = b"R\x00", self._paste_hdr[2:] + data
                self._verbatim = self._paste_state = self._eofs_due = 0
            elif not self._verbatim and self._paste_hdr[:2] == b"R\x01":
                self._paste_window = self._paste_hdr[2] | self._paste_hdr[3] << 8
            self._last_cr = False
        if self._paste_window:  # the VM's own flow-control credits: the bridge gives them
            end = data.find(b"\x04")
            if end < 0:
                data = data.replace(b"\x01", b"")
            else:  # the paste ended (or the VM cut it short)
                data = data[:end].replace(b"\x01", b"") + data[end:]
                self._paste_window = 0
        ended_here = False
        if self._eofs_due:
            for i, b in enumerate(data):
                if b == 0x04:
                    self._eofs_due -= 1
                    if not self._eofs_due:
                        ended_here = i == len(data) - 1
                        break
        self._send(head + self._cook(data))
        self._tail = (self._tail + head + data)[-64:]
        if self._tail.endswith(RAW_PROMPT) or self._tail.endswith(b"\x04>"):
            self._raw, self._raw_empty = True, True
            self._pasted_code_runs = False
            self._eofs_due = 0
            self._hold_until, self._prompt_hold = 0.0, False
        elif self._tail.endswith(b">>> "):
            self._raw = self._raw_empty = self._pasted_code_runs = False
            self._eofs_due = 0
            self._hold_until, self._prompt_hold = 0.0, False
        elif self._prompt_hold and self._tail.endswith(b"... "):  # the line goes on
            self._hold_until, self._prompt_hold = 0.0, False
        elif ended_here:  # the program ended: its prompt, or its exit, comes next
            self._hold_until = time.monotonic() + END_HOLD_S

    # ---- input: client -> VM -----------------------------------------------------------------
    def _passes(self, b: int, mode: str | None) -> bool:
        """Newlines in REPL input as a board takes them. The unix port's REPL input turns every
        \\n into \\r, so a client's \\r\\n would be two newlines where a board's lexer (raw
        REPL code) and line editor (friendly REPL lines and input(); \\n\\r too) see one: the
        second byte of such a pair is dropped. A program's own reads of sys.stdin are not
        touched (in the friendly REPL: the VM's line editor is not reading, its tty has ISIG
        on)."""
        prev, self._nl_prev = self._nl_prev, 0
        if b not in (0x0A, 0x0D):
            return True
        if prev == 0x0D and b == 0x0A or prev == 0x0A and b == 0x0D and self._nl_line:
            return False
        if mode is not None:
            self._nl_prev, self._nl_line = b, mode == "line"
        return True

    def _from_client(self, data: bytes) -> None:
        out = bytearray()
        line_editing = not self._raw and self._vm is not None and not self._vm.isig()
        for i, b in enumerate(data):
            if self._raw and self._paste_state == 3:
                if b == 0x04:
                    self._paste_state = 0
                    self._pasted_code_runs = True
                    self._nl_prev = 0
                    out.append(b)
                    continue
                self._paste_rx += 1  # credit the client as the VM would for every byte sent
                if self._paste_window and not self._paste_rx % self._paste_window:
                    self._send(b"\x01")
                if self._passes(b, "code"):
                    out.append(b)
                continue
            if b == 0x03 and self._pasted_code_runs and self._interrupt_vm():
                continue
            if self._raw and self._raw_empty and b == 0x04:
                self._soft_reboot_raw()
                self._held = data[i + 1:]  # the rebooting board takes these once booted
                return
            if self._raw:
                mode = "code" if not self._eofs_due and not self._pasted_code_runs else None
            else:
                mode = "line" if line_editing else None
            if not self._passes(b, mode):
                continue
            if self._raw and self._raw_empty and b == 0x05:
                self._paste_state = 1
            elif self._paste_state == 1 and b == ord("A"):
                self._paste_state = 2
            elif self._paste_state == 2 and b == 0x01:
                self._paste_state = 3
                self._raw_empty = False
                self._eofs_due = 3  # paste end acknowledged, then stdout's and stderr's ends
                self._verbatim = 5  # "R\x01", the 16-bit window size, the first credit
                self._paste_hdr, self._paste_window, self._paste_rx = b"", 0, 0
            else:
                self._paste_state = 0
                if b == 0x02:
                    self._raw = False
                elif self._raw and b == 0x03:
                    self._raw_empty = True  # the raw REPL clears its line
                elif self._raw and b == 0x04:  # a program submitted: OK, output, \x04, \x04
                    self._eofs_due = 2
                    self._raw_empty = False
                elif b != 0x01:
                    self._raw_empty = False
            out.append(b)
            if line_editing and b in (0x01, 0x0A, 0x0D):
                # The unix port flushes its tty's input (TCSAFLUSH) as it switches mode to run
                # a line or enter the raw REPL, which a board's UART never does: the rest
                # waits for its next prompt (else a Ctrl-A typed after a line is lost).
                self._later = data[i + 1:] + self._later
                self._hold_until, self._prompt_hold = time.monotonic() + LINE_HOLD_S, True
                break
        self._to_vm += out
        self._flush_to_vm()

    def _flush_to_vm(self) -> None:
        vm = self._vm
        while self._to_vm and vm is not None and self._boot_wait is None:
            try:
                n = os.write(vm.master, self._to_vm)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            del self._to_vm[:n]

    def _interrupt_vm(self) -> bool:
        """Ctrl-C while raw-paste code runs. The unix port leaves its tty's ISIG off then, so
        the byte would reach the program's stdin instead of interrupting it, which no board
        does; deliver it as the SIGINT the tty would have sent."""
        vm = self._vm
        if vm is None or vm.isig():
            return False
        now = time.monotonic()
        if now - self._last_sigint >= SIGINT_FOLD_S:  # "\x03\x03" is one interrupt, not two
            self._last_sigint = now
            try:
                os.kill(vm.pid, signal.SIGINT)
            except ProcessLookupError:
                return False
        else:  # a board would take this one too, if the first was lost (code not yet running)
            self._sigint_again_at = self._last_sigint + SIGINT_RETRY_S
        return True

    def _sigint_again(self, now: float) -> None:
        """A folded Ctrl-C whose program still runs long after the first: the VM got the
        first before its handler was in place, so this one is a real second interrupt."""
        if not self._sigint_again_at or now < self._sigint_again_at:
            return
        self._sigint_again_at = 0.0
        vm = self._vm
        if vm is not None and self._pasted_code_runs and not vm.isig():
            self._last_sigint = now
            with contextlib.suppress(ProcessLookupError):
                os.kill(vm.pid, signal.SIGINT)


def reopen_pty(name: str, any_name: bool, tries: int) -> tuple[int, int] | None:
    """A new pty (master, slave) named `name`, as a USB board's port comes back under its old
    name once that is free: ptys take the lowest free number, so open up to `tries` of them
    until one has it (with any_name, the first will do) and close the rest. None: not yet."""
    tried: list[tuple[int, int]] = []
    found = None
    try:
        for _ in range(tries):
            m, s = os.openpty()
            if os.ttyname(s) == name or any_name:
                found = (m, s)
                break
            tried.append((m, s))
    except OSError:
        pass
    for m, s in tried:
        os.close(m)
        os.close(s)
    return found
