// The virtual Pico's run loop on the emulator's clock: emulate up to the horizon the bench
// grants (grant frames on the board wire, wire.mjs) and no further, skip idle time to the
// next alarm, and report the board's clock to the bench on fd 3 (harness/vpico/clock.py), so
// the bench's horizon never runs far ahead of it. kick() schedules a slice after anything
// that may let the board run on (a grant, serial input, an edge).

import net from 'node:net';
import { clock, life, mcu } from './chip.mjs';

const hostNanos = () => Number(process.hrtime.bigint()); // wall time, for slicing only
export let grantNs = -1; // the horizon: emulated time may not pass it

/** A grant frame's horizon: the first sets the clock (before the chip boots). */
export function grant(ns) {
  if (grantNs < 0) clock.nanosCounter = ns;
  grantNs = Math.max(grantNs, ns);
}

// ---- the run loop: emulate up to the granted horizon --------------------------------------
let slice = 0;
let reportedUs = -1;
const control = new net.Socket({ fd: 3, readable: true, writable: true });

function report() {
  const us = Math.floor(clock.nanos / 1000);
  if (us === reportedUs) return;
  reportedUs = us;
  const b = Buffer.alloc(8);
  b.write('T', 0);
  b.writeUInt16LE(Math.floor(us / 2 ** 32) & 0xffff, 2);
  b.writeUInt32LE(us % 2 ** 32, 4);
  control.write(b);
}

control.on('error', (e) => life.shutdown(`control: ${e.message}`));
control.on('close', () => life.shutdown('control closed'));

export function kick() {
  if (!slice) slice = setImmediate(run);
}

function run() {
  slice = 0;
  const wallEnd = hostNanos() + 10e6; // give I/O a turn every 10 ms of wall time
  for (;;) {
    if (hostNanos() > wallEnd) {
      report();
      slice = setImmediate(run);
      return;
    }
    const limit = grantNs;
    if (!mcu || mcu.core.waiting) { // asleep (WFE/WFI) or no chip: skip to the next event
      const next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
      if (next <= limit) {
        clock.tick(next - clock.nanos);
        continue;
      }
      if (limit > clock.nanos) clock.tick(limit - clock.nanos);
      report();
      return; // at the horizon: a grant, serial input or an edge kicks us
    }
    if (clock.nanos >= limit) {
      report();
      return;
    }
    const cycleNanos = 1e9 / mcu.clkSys;
    for (let i = 0; i < 5000 && mcu && !mcu.core.waiting && clock.nanos < limit; i++) {
      const cycles = mcu.core.executeInstruction();
      clock.tick(cycles * cycleNanos);
    }
  }
}
