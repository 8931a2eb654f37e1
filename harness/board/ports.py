"""What each MicroPython port can do and what to expect of it: one Profile per port (the
README's "Board profiles"). The config checks `profile:` and `emulate:` against these names;
harness/board/profiles.py picks the one a probed board runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.board.sources import IRQ_SOURCES

UNSUPPORTED = "not supported by this port"  # skip reason prefix; compare knows it
NO_HARD_ESP32 = "Pin.irq(hard=True) raises TypeError: extra keyword arguments given"
NO_THREAD = "no _thread module"
SECOND_WINS = "second-wins"  # frozen asyncio is built with opt=3: asserts stripped


@dataclass(frozen=True)
class Profile:
    """One port's defaults; resolve_profile returns a copy with the config's keys applied."""

    name: str
    boards: str  # the boards this was written for
    platforms: tuple[str, ...]  # sys.platform (= os.uname().sysname) of the port
    machine: str  # a typical os.uname().machine (the virtual board's when it emulates this)
    pin_example: str
    reset_pin: str  # the pin the Pi pulls low to hard-reset the board
    irq_kinds: tuple[str, ...]  # set sources the port supports
    unsupported: dict[str, str]  # set source -> how the port refuses it
    latency_us: dict[str, float]  # IRQ -> wake budgets
    latency_source: str  # where the budget figures come from
    sched_depth: int  # micropython.schedule queue (MICROPY_SCHEDULER_DEPTH)
    second_waiter: str = SECOND_WINS
    variants: tuple[tuple[str, str], ...] = ()  # (text in the machine name, variant)
    variant: str = ""  # resolved: the variant the probe found
    ticks_period: int = 1 << 30  # time.ticks_add(0, -1) + 1

    def variant_of(self, machine: str) -> str:
        m = machine.upper()
        return next((v for needle, v in self.variants if needle in m), self.name)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["variants"] = [list(v) for v in self.variants]
        return d


def _budget(p50: float, p90: float, p99: float, mx: float) -> dict[str, float]:
    return {"p50": p50, "p90": p90, "p99": p99, "max": mx}


# MICROPY_SCHEDULER_DEPTH is 8 in the rp2, esp32, stm32 and mimxrt ports' mpconfigport.h;
# samd, nrf and unix keep py/mpconfig.h's default of 4. _thread: on in rp2 and esp32, off in
# stm32 unless a THREAD variant is built (PYBV11 has one), absent in samd, mimxrt and nrf.
# esp32's Pin.irq takes handler, trigger and wake only: a `hard` keyword (any value) is
# refused by the argument parser. Every port freezes extmod/asyncio with opt=3, which strips
# asserts, so a second concurrent waiter silently takes the wake-up.
PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("rp2", "Raspberry Pi Pico (RP2040), Pico 2 (RP2350)", ("rp2",),
            "Raspberry Pi Pico with RP2040", "GP2 (or 2)", "RUN", IRQ_SOURCES, {},
            # upstream issue #6957 measured a hard IRQ's entry at 20-25 us on an RP2040, about
            # 100 us when the other core is busy; the loop leaves __wfe on the IRQ
            _budget(50, 80, 150, 500), "rp2040 hard IRQ 20-25 us, ~100 us loaded (#6957)", 8,
            variants=(("RP2350", "rp2350"), ("RP2040", "rp2040"))),
    Profile("esp32", "ESP32, ESP32-S3, ESP32-C3 (and other esp32 chips)", ("esp32",),
            "Generic ESP32 module with ESP32", "4 (the GPIO number)", "EN",
            ("soft", "thread"), {"hard": NO_HARD_ESP32},
            # no published flag-wake figure: every pin IRQ is scheduled from a FreeRTOS task
            # notification, so the budget is loose; `tsfrig compare` is the fine gate
            _budget(300, 600, 1500, 10000), "none published; soft IRQs only (loose)", 8,
            variants=(("ESP32-S3", "esp32s3"), ("ESP32-C3", "esp32c3"),
                      ("ESP32-S2", "esp32s2"), ("ESP32-C6", "esp32c6"))),
    Profile("stm32", "Pyboard v1.x, Nucleo boards", ("pyboard",),
            "PYBv1.1 with STM32F405RG", "'X1' or 'PA0'", "NRST", ("hard", "soft"),
            {"thread": NO_THREAD},
            # the Pyboard's documented IRQ latency is about 15 us (17 us worst seen)
            _budget(40, 60, 120, 500), "Pyboard IRQ ~15 us, 17 us max", 8),
    Profile("samd", "SAMD21/SAMD51 boards (ItsyBitsy, Feather M0/M4 ...)", ("samd",),
            "ItsyBitsy M4 Express with SAMD51G19A", "'D2' or 'PA02'", "RESET",
            ("hard", "soft"), {"thread": NO_THREAD},
            # none published: rp2's figures scaled for a 48-120 MHz core
            _budget(100, 200, 400, 2000), "none published; rp2's scaled by clock", 4),
    Profile("mimxrt", "Teensy 4.x, i.MX RT EVK boards", ("mimxrt",),
            "Teensy 4.1 with MIMXRT1062DVJ6A", "'D2' or 'GPIO_AD_B0_02'", "RESET",
            ("hard", "soft"), {"thread": NO_THREAD},
            # upstream PR #7357 measured a hard IRQ's entry under 3 us on an i.MX RT1062
            _budget(15, 25, 50, 200), "i.MX RT hard IRQ < 3 us (PR #7357)", 8),
    Profile("nrf", "nRF52 boards (PCA10056/nRF52840 DK, micro:bit v2 ...)", ("nrf",),
            "PCA10056 with NRF52840", "'P0_13' or 13", "RESET", ("hard", "soft"),
            {"thread": NO_THREAD},
            _budget(100, 200, 400, 2000), "none published; rp2's scaled by clock", 4),
    Profile("unix", "the simulated bench's virtual board (unix port)",
            ("linux", "darwin", "freebsd"), "tsfrig virtual board", "2 or 'GP2'", "RUN",
            IRQ_SOURCES, {},
            # measured on this bench (README, "The simulated bench"): the loop wakes on a 1 ms
            # re-poll and shares the host's CPUs
            _budget(3000, 30000, 100000, 500000), "measured on the simulated bench", 4,
            ticks_period=1 << 62),
)}
EMULATED = tuple(n for n in PROFILES if n != "unix")  # what `emulate:` takes
GENERIC = Profile("generic", "a port with no profile", (), "", "as the port names them", "RESET",
                  IRQ_SOURCES, {}, _budget(2000, 3000, 5000, 20000), "tsfrig's defaults",
                  0)  # schedule depth unknown: the board's measured one is used
