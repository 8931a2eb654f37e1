"""`tsfrig doctor`: the first command on a new bench. Brings the target's bench up through its
provider and checks it in order, one line per check: `✓ <check>: <detail>` or
`✗ <check>: <problem> — <fix>`. Every check has a deadline; a check whose prerequisite
failed says `skipped: needs <check>` instead of running. Exit 0 when none failed, else 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import bringup
from harness.benches import BenchAddress, BenchProvider
from harness.board.log_protocol import LogParser
from harness.board.wiring import LATE_GRACE_S, WiringError
from harness.config import ConfigError, RigConfig, TargetConfig, load_config
from harness.config.registry import GPIO, KIND, spec

CLOCK_PULSES = 7
CLOCK_GAP_S = 0.5  # pulses this far apart: a drift check over ~3 s
DRIFT_LIMIT_PPM = 1000.0  # crystals are within ~50 ppm: surely beyond this ticks_us is off
RESET_SEEN_S = 3.0  # a board that neither prints its banner nor drops its port did not reset
# where a harness message's fix starts: "...: check the cable" / "...; start the daemon"
FIX_RE = re.compile(r"[:;] (?=(?:check|start|fix|use|add|declare|plug|install|run|give|"
                    r"power-cycle|restart|pass|pick|set|wire|put|free|save|write|remove|"
                    r"is it|are you)\b)")


class Skipped(Exception):
    """A check that does not apply here (said why, not a failure)."""


class Failed(Exception):
    """A check's finding: the problem and what to do about it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclass
class Result:
    check: str
    status: str  # pass | fail | skip
    detail: str
    fix: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        mark = {"pass": "✓", "fail": "✗", "skip": "-"}[self.status]
        return f"{mark} {self.check}: {self.detail}" + (f" — {self.fix}" if self.fix else "")


def split_fix(message: str, default_fix: str) -> tuple[str, str]:
    """A harness error ('problem: fix the thing') as (problem, fix)."""
    m = FIX_RE.search(message)
    if m is None:
        return message, default_fix
    return message[:m.start()], message[m.end():]


class Doctor:
    """The bench under examination and what the checks found so far."""

    def __init__(self, config: str, target: str | None, emit: Callable[[Result], None]) -> None:
        self.config_path, self.target_name, self.emit = config, target, emit
        self.results: list[Result] = []
        self.rig: RigConfig | None = None
        self.target: TargetConfig | None = None
        self.provider: BenchProvider | None = None
        self.address: BenchAddress | None = None
        self.port_error = ""
        self.gpio: Any = None
        self.board: Any = None
        self.identity: dict = {}
        self.profile: Any = None  # the resolved board profile, where profiles exist
        self.stuck = ""  # a check that overran its deadline and may still hold the bench

    # ---- running ---------------------------------------------------------------------------
    def status(self, check: str) -> str:
        return next((r.status for r in self.results if r.check == check), "")

    def record(self, r: Result) -> None:
        self.results.append(r)
        self.emit(r)

    def run(self, check: str, fn: Callable[[], str], needs: tuple[str, ...],
            deadline_s: float, fix: str, inline: bool = False) -> None:
        """Run one check on a helper thread with a deadline (a hung check is a failed one and
        the rest still run). inline: on this thread, for a check that starts processes (they
        die with the thread that started them) and has its own deadline."""
        missing = [n for n in needs if self.status(n) != "pass"]
        if missing or self.stuck:
            self.record(Result(check, "skip", f"skipped: needs {missing[0]}" if missing else
                               f"skipped: {self.stuck} is still running"))
            return
        box: list[Any] = []

        def call() -> None:
            try:
                box.append(fn())
            except (Failed, Skipped) as e:
                box.append(e)
            except WiringError as e:  # the check's name already says which wire
                box.append(Failed(*split_fix(str(e).removeprefix("wiring self-test: "), fix)))
            except Exception as e:  # noqa: BLE001 - any failure is this check's finding
                box.append(Failed(*split_fix(str(e) or type(e).__name__, fix)))

        t0 = time.monotonic()
        if inline:
            call()
        else:
            t = threading.Thread(target=call, name=f"doctor-{check}", daemon=True)
            t.start()
            t.join(deadline_s)
        took = time.monotonic() - t0
        if not box:
            self.stuck = check
            self.record(Result(check, "fail", f"no result within {deadline_s:g} s", fix, took))
        elif isinstance(box[0], Failed):
            self.record(Result(check, "fail", box[0].problem, box[0].fix or fix, took))
        elif isinstance(box[0], Skipped):
            self.record(Result(check, "skip", f"skipped: {box[0]}", seconds=took))
        else:
            self.record(Result(check, "pass", box[0], seconds=took))

    def examine(self) -> bool:
        """All checks in order; True when none failed."""
        self.run("config", self.check_config, (), 10, "fix that key (see README, Config "
                 "reference)")
        if self.status("config") != "pass":
            return False  # nothing else can be known
        t = self.target
        self.run("bench", self.check_bench, ("config",), 40, "see `tsfrig sim` for the error",
                 inline=True)
        self.run("GPIO daemon", self.check_gpio, ("bench",), 20,
                 f"start the GPIO daemon on the Pi ({spec(GPIO, t.gpio.backend).start}) or fix "
                 "gpio.host/port")
        self.run("serial port", self.check_port, ("bench",), 10,
                 "plug the board in, or fix serial: in the rig config")
        self.run("raw REPL", self.check_repl, ("serial port",), 20,
                 "power-cycle the board; check it runs MicroPython at serial.baudrate")
        self.run("identity", self.check_identity, ("raw REPL",), 60,
                 "check the board's filesystem is writable (device scripts are uploaded)")
        self.run("profile", self.check_profile, ("identity",), 30,
                 "fix the target's settings to match the board, or the board to match them")
        for wire in ("stimulus", "ack"):
            self.run(f"wire {wire}", self.check_wire(wire), ("identity", "GPIO daemon"),
                     20 + LATE_GRACE_S,  # a short count is looked at again for late edges
                     f"check the {wire} jumper, the shared ground and wiring.{wire}")
        if getattr(t.wiring, "stimulus_sense", None) is not None:
            self.run("wire stimulus_sense", self.check_sense, ("GPIO daemon",), 20,
                     "check the jumper from the stimulus GPIO to the sense GPIO and "
                     "wiring.stimulus_sense")
        if t.wiring.reset is not None:
            self.run("wire reset", self.check_reset, ("identity", "GPIO daemon"), 20,
                     "check the reset jumper goes to the board's RUN/EN pin and "
                     "wiring.reset.pi_gpio")
        if t.power is not None:
            self.run("power switch", self.check_power, ("bench",), 10,
                     "fix power: in the rig config (see README, Config reference)")
        self.run("clock drift", self.check_clock, ("wire stimulus",),
                 CLOCK_PULSES * CLOCK_GAP_S + 15, "check the stimulus wire and the board's "
                 "clock configuration")
        return not any(r.status == "fail" for r in self.results)

    def close(self) -> None:
        for closing in (self.board, self.gpio, self.provider):
            if closing is None:
                continue
            try:
                closing.stop() if closing is self.provider else closing.close()
            except Exception:  # noqa: BLE001, S110 - taking down what is left, best effort
                pass

    # ---- the checks ------------------------------------------------------------------------
    def check_config(self) -> str:
        try:
            self.rig = load_config(self.config_path)
        except ConfigError as e:
            raise Failed(*split_fix(str(e), "fix that key (see README, Config reference)")) \
                from None
        try:
            self.target = self.rig.target(self.target_name) if self.target_name \
                else self.rig.targets[0]
        except ConfigError as e:
            raise Failed(str(e), "pass --target with one of those") from None
        t = self.target
        # doctor looks at the bench as it is: it never flashes the board
        self.target = dataclasses.replace(t, firmware=dataclasses.replace(t.firmware,
                                                                          image=None))
        return f"{self.rig.path.name}, target {t.name} (kind {t.kind})"

    def check_bench(self) -> str:
        t = self.target
        self.provider = bringup.bench(t, self.rig)
        if spec(KIND, t.kind).simulated:
            self.address = self.provider.start()
            a = self.address
            return f"simulated bench started (serial {a.serial_port}, GPIO daemon " \
                   f"{a.gpio_host}:{a.gpio_port})"
        try:
            self.address = self.provider.start()
        except Exception as e:  # noqa: BLE001 - the board's port not found: its own check
            self.port_error = str(e)
            self.address = BenchAddress("", t.gpio.host, t.gpio.port)
        return f"{t.kind} bench: GPIO daemon at {t.gpio.host}:{t.gpio.port}"

    def check_gpio(self) -> str:
        t, a = self.target, self.address
        self.gpio = bringup.gpio(t, a)
        ident = self.gpio.identity()
        about = ", ".join(f"{k.replace('_', ' ')} {_show(v)}" for k, v in ident.items())
        timing = getattr(self.gpio, "edge_timing", None)
        res = timing() if timing is not None else \
            "this backend does not measure its edge timestamps' resolution"
        return f"{t.gpio.backend} at {a.gpio_host}:{a.gpio_port}, {about}; {res}"

    def check_port(self) -> str:
        import os

        port = self.address.serial_port
        if port and os.path.exists(port):
            return port
        if port and "://" in port:  # a network serial port (e.g. ser2net's rfc2217)
            return f"{port} (network; the raw REPL check opens it)"
        problem = self.port_error or f"{port or self.target.serial.port} does not exist"
        raise Failed(split_fix(problem, "")[0], usb_serial_devices())

    def check_repl(self) -> str:
        t = self.target
        self.board = bringup.board(t, self.address, min(t.budgets.device_timeout_s, 5.0))
        t0 = time.monotonic()
        self.board.soft_reset()
        return f"answers on {self.address.serial_port} (soft reset {_ms(t0)} ms)"

    def check_identity(self) -> str:
        bringup.upload(self.board)
        self.identity = bringup.identity(self.board)
        i = self.identity
        version = str(i.get("sys_version", "")).split("; ", 1)[-1]  # after CPython's version
        return f"{version or i.get('implementation', '?')}; asyncio {i.get('asyncio', '?')}"

    def check_profile(self) -> str:
        """The board's probe (hard IRQs, _thread, schedule depth, asyncio ...) against the
        target's settings and its port's profile: a contradiction is a finding."""
        probe, self.profile, warnings = bringup.probe(self.board, self.target)
        name = f"{self.profile.name} ({probe.machine})"
        if warnings:
            raise Failed(f"{name}: {'; '.join(warnings)}",
                         "make the target's settings match the board (see README, Board "
                         "profiles)")
        return f"{name}: the probe agrees with the target's settings"

    def check_wire(self, name: str) -> Callable[[], str]:
        """One wire's loopback (harness/board/wiring.py), its line naming the wire."""
        from harness.board import wiring

        def check() -> str:
            w = self.target.wiring
            seen = getattr(wiring, f"check_{name}")(self.board, self.gpio, w)
            return f"{_wire(w, name)}: {seen}"
        return check

    def check_sense(self) -> str:
        """A pulse on the stimulus GPIO must reach the sense input jumpered to it (the rig's
        pulse() waits for that edge and says which jumper is missing)."""
        w = self.target.wiring
        self.gpio.reset_capture()
        self.gpio.pulse()
        return f"Pi GPIO {w.stimulus.pi_gpio} -> Pi GPIO {w.stimulus_sense}: " \
               f"{self.gpio.stimulus.count()} edge(s) for 1 pulse"

    def check_reset(self) -> str:
        """Pulse RUN/EN and watch for the reboot: the boot banner, or the port going away
        (a board with native USB re-enumerates)."""
        import serial

        from harness.board.session import RESET_MARKERS

        w, b = self.target.wiring.reset, self.board
        b.soft_reset()
        self.gpio.hard_reset(w.pi_gpio)
        deadline = time.monotonic() + RESET_SEEN_S
        seen, how = b"", ""
        while not how and time.monotonic() < deadline:
            try:
                seen += b.serial.read(256)
            except (serial.SerialException, OSError):
                how = "its port went away and came back"
            if any(m.encode() in seen for m in (*RESET_MARKERS, "MicroPython v")):
                how = "it rebooted (boot banner)"
        if not how:
            raise Failed(f"Pi GPIO {w.pi_gpio} -> board {w.board_pin}: the board did not "
                         f"reset (no boot banner, port stayed) within {RESET_SEEN_S:g} s")
        b.reopen(10.0)
        b.soft_reset()
        return f"Pi GPIO {w.pi_gpio} -> board {w.board_pin}: {how}"

    def check_power(self) -> str:
        from harness.power import PowerJob, check_switch

        s = self.target.serial
        return check_switch(PowerJob(self.target.power, self.address.serial_port,
                                     s.serial_number, self.address.power_control))

    def check_clock(self) -> str:
        """Pulses seconds apart; the board stamps each with ticks_us, the Pi with its edge
        tick; the slope between the two sets of intervals is the drift."""
        t, b, g = self.target, self.board, self.gpio
        b.soft_reset()
        b.exec(f"import tsf_clock\ntsf_clock.arm({t.wiring.stimulus.board_pin!r}, "
               f"{'hard' in (self.profile or t).irq_kinds})")
        g.reset_capture()
        span_ms = int(CLOCK_PULSES * CLOCK_GAP_S * 1000)
        b.start(f"tsf_clock.wait({CLOCK_PULSES}, {span_ms + 2000})")
        for i in range(CLOCK_PULSES):
            if i:
                time.sleep(CLOCK_GAP_S)  # the spacing of the stimulus, not a wait for it
            g.pulse()
        parser = LogParser()
        err = b.read_to_end(parser, 5.0)
        if err:
            raise Failed(f"the board's clock script raised: {err.splitlines()[-1]}",
                         "check the device scripts uploaded (identity above)")
        board_us = json.loads(parser.log.lines[-1])
        pi_us = [e.us - g.stimulus.edges[0].us for e in g.stimulus.edges]
        if len(board_us) != len(pi_us):
            raise Failed(f"the board stamped {len(board_us)} of {len(pi_us)} pulses",
                         "check the stimulus wire (wire stimulus above)")
        ppm, uncertain = drift_ppm(pi_us, board_us)
        said = f"{ppm:+.0f} ± {uncertain:.0f} ppm over {pi_us[-1] / 1e6:.1f} s " \
               f"({len(pi_us)} pulses)"
        if abs(ppm) - uncertain > DRIFT_LIMIT_PPM:
            raise Failed(f"board clock runs {said}, beyond {DRIFT_LIMIT_PPM:g} ppm",
                         "check the board's crystal and clock configuration (time.ticks_us)")
        return f"board vs Pi {said}"


def drift_ppm(pi_us: list[int], board_us: list[int]) -> tuple[float, float]:
    """The board's clock rate against the Pi's, in ppm, and how uncertain that is (ppm). Each
    board stamp is late by its IRQ latency, so the slope is the median of the pairwise
    slopes (a few late stamps don't move it) and the uncertainty is the spread of the
    stamps around that line over the span: a jittery IRQ can't claim a precise drift."""
    pts = list(zip(pi_us, board_us, strict=True))
    slope = statistics.median((by - ay) / (bx - ax) for i, (ax, ay) in enumerate(pts)
                              for bx, by in pts[i + 1:] if bx != ax)
    residuals = [y - slope * x for x, y in pts]
    span = max(pi_us) - min(pi_us)
    return (slope - 1.0) * 1e6, (max(residuals) - min(residuals)) / span * 1e6


def usb_serial_devices() -> str:
    """The USB serial devices present, in the form serial: takes."""
    import serial.tools.list_ports

    found = [p for p in serial.tools.list_ports.comports() if p.vid is not None]
    if not found:
        return "no USB serial device is present: plug the board in (with a data cable)"
    return "USB serial devices present: " + "; ".join(
        f"{p.device} ({p.description}): serial: {{port: auto, vid: 0x{p.vid:04x}, "
        f"pid: 0x{p.pid:04x}" + (f", serial_number: '{p.serial_number}'"
                                 if p.serial_number else "") + "}" for p in found)


def _wire(w: Any, name: str) -> str:
    wire = getattr(w, name)
    if name == "ack":
        return f"board pin {wire.board_pin} -> Pi GPIO {wire.pi_gpio}"
    return f"Pi GPIO {wire.pi_gpio} -> board pin {wire.board_pin}"


def _show(v: Any) -> str:
    return f"0x{v:x}" if isinstance(v, int) and v > 0xFFFF else str(v)


def _ms(t0: float) -> str:
    return f"{(time.monotonic() - t0) * 1000:.0f}"


def cmd_doctor(args: argparse.Namespace) -> int:
    """`tsfrig doctor`: exit 0 when every check passed, 2 otherwise."""
    t0 = time.monotonic()

    def emit(r: Result) -> None:
        if not args.json:
            print(r.line(), flush=True)

    doc = Doctor(args.config, args.target, emit)
    try:
        ok = doc.examine()
    except KeyboardInterrupt:
        print("tsfrig doctor: interrupted", file=sys.stderr)
        return 130
    finally:
        doc.close()
    if args.json:
        print(json.dumps({
            "target": doc.target.name if doc.target else args.target,
            "config": str(Path(args.config)), "passed": ok,
            "seconds": round(time.monotonic() - t0, 2),
            "checks": [dataclasses.asdict(r) | {"seconds": round(r.seconds, 3)}
                       for r in doc.results]}, indent=1))
    return 0 if ok else 2


def add_doctor_parser(sub: Any, default_config: str) -> None:
    p = sub.add_parser("doctor", help="check a bench, one line per check, with the fix")
    p.add_argument("--config", default=default_config, help="rig config file")
    p.add_argument("--target", help="target to check (default: the first)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_doctor)

