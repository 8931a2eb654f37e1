// The virtual Pico's board process: rp2040js running an RPI_PICO UF2 image.
//
// stdin/stdout carry the USB-CDC serial bytes (the Python side bridges them to a pty);
// stderr carries one-line events for people and for the bench ("vpico: ..."); the GPIO
// link is the simulated Pi's board wire (harness/sim/wire.py: 8-byte frames over TCP).
//
// Time: the emulator's clock counts CLOCK_MONOTONIC-based nanoseconds and runs up to the
// horizon the bench grants (grant frames on the wire, in order with the edges, see
// harness/vpico/clock.py) and no further; it reports its clock back on fd 3.
// Edges from the Pi carry their tick and are applied exactly then; serial bytes carry the
// Pi's clock when the bridge read them and reach the board no earlier. The board's clock is
// reported back so the bench's horizon (the Pi's clock) never runs far ahead of it.
//
// Usage: node board.mjs --uf2 IMAGE --bootrom ROM --wire PORT [--drop DIR] [--uid HEX16]
//        (fd 3: clock reports)
//
// The parts, each a module beside this one: chip.mjs (arguments, events, the clock and the
// chip's state, shared by all), flash.mjs (the flash, the bootrom's flash routines, the UF2
// volume), usb.mjs (the serial port, paced by the board's reads), wire.mjs (the Pi's wire:
// edges, pins, grants, the RUN line), horizon.mjs (the run loop up to the granted horizon).
// This one runs the chip's life: power on, reset, the RUN pin, the bootloader, shutdown.

import fs from 'node:fs';
import path from 'node:path';
import { RP2040, ConsoleLogger, LogLevel } from 'rp2040js';
// in this order: chip.mjs reads the arguments and flash.mjs loads the image and the bootrom
// (a bad one ends the process) before horizon.mjs opens fd 3 and usb.mjs reads stdin
import {
  args, clock, die, IO_IRQ_BANK0, life, log, mcu, pins, setMcu, setState, state, truth, truthFd,
} from './chip.mjs';
import { answerUniqueId, flash, image, onRomCall, patchedRom, ROM_HOOKS } from './flash.mjs';
import { grantNs, kick } from './horizon.mjs';
import { attachUsb, detachUsb } from './usb.mjs';
import {
  armEdges, connectWire, helloSeen, keepEdgesDue, lateEdges, scheduleEdgeAlarm, watchPins,
} from './wire.mjs';

// ---- the chip's life ------------------------------------------------------------------------
function stopChip() {
  setMcu(null);
  detachUsb();
  clock.nextAlarm = null; // the stopped chip's timers and USB transfers die with it
  keepEdgesDue();
}

function bootChip(why) {
  clock.nextAlarm = null; // a fresh chip: none of the old chip's alarms survive (ours re-made)
  setMcu(new RP2040(clock));
  mcu.logger = new ConsoleLogger(LogLevel.Error);
  mcu.loadBootrom(patchedRom);
  mcu.flash = flash;
  mcu.flash16 = new Uint16Array(flash.buffer);
  mcu.flashView = new DataView(flash.buffer);
  mcu.onBreak = (n) => {
    if (n < ROM_HOOKS.length && mcu.core.PC - 2 < 0x4000) onRomCall(n);
    else log(`breakpoint ${n} at ${(mcu.core.PC - 2).toString(16)}`);
  };
  mcu.peripherals[0x40058].onWatchdogTrigger = () => setImmediate(() => reboot('machine.reset()'));
  for (const [pin, level] of pins.levels) mcu.gpio[pin].setInputValue(!!level);
  watchPins();
  answerUniqueId(mcu);
  if (truthFd >= 0) {
    const entry = mcu.core.exceptionEntry.bind(mcu.core);
    mcu.core.exceptionEntry = (n) => {
      if (n === IO_IRQ_BANK0) truth(`I ${clock.nanos}`);
      entry(n);
    };
  }
  attachUsb();
  armEdges();
  scheduleEdgeAlarm();
  mcu.core.PC = 0x10000000; // boot2 at the start of flash, as the bootrom would run it
  setState('running');
  log(`boot (${why})`);
  kick();
}

function reboot(why) {
  stopChip();
  bootChip(why);
}

function powerOn() {
  if (state === 'off' && helloSeen && grantNs >= 0) bootChip('power on');
}

// ---- lifetime -------------------------------------------------------------------------------
let stopping = false;

function shutdown(why) {
  if (stopping) return;
  stopping = true;
  log(`stopped: ${why}; ${lateEdges} edge(s) applied late`);
  if (args.drop) fs.rmSync(args.drop, { recursive: true, force: true });
  process.exit(0);
}

// the parts call these through chip.mjs (importing this module would make a cycle)
Object.assign(life, { boot: bootChip, stop: stopChip, powerOn, shutdown });
process.on('uncaughtException', (e) => die(`internal error: ${e.stack.split('\n').slice(0, 2).join(' ')}`));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('disconnect', () => shutdown('parent gone'));
connectWire(args.wire);
log(`image ${path.basename(args.uf2)} (${image.length} bytes)`);
