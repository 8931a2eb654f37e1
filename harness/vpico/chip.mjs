// What every part of the virtual Pico's board process shares: its arguments, its event lines
// and ground truth, the emulator's clock, the chip and its state, and the hooks the parts
// call to boot or stop the chip (board.mjs runs the chip's life and imports the parts, so
// they reach it through `life` rather than by importing it).
//
// Imported first (every part imports it), so a bad argument or an old Node is the first
// thing reported, as before the board's code was split into modules.

import fs from 'node:fs';
import { RP2040 } from 'rp2040js';

const major = Number(process.versions.node.split('.')[0]);
if (major < 18) {
  process.stderr.write(`vpico: Node ${process.versions.node} is too old; install Node 18 or newer\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ['uf2', 'bootrom', 'wire']) {
    if (!out[key]) throw new Error(`--${key} is required`);
  }
  return out;
}

// Ground truth for benchmarks (TSFRIG_VPICO_TRUTH=FILE): every Pi edge as applied (E pin
// level stamped_ns applied_ns), every IO_BANK0 interrupt entry (I ns), every board output
// edge (O pin level ns), in emulated ns.
export const truthFd = process.env.TSFRIG_VPICO_TRUTH ? fs.openSync(process.env.TSFRIG_VPICO_TRUTH, 'a') : -1;
export const IO_IRQ_BANK0 = 16 + 13; // its exception number

export function truth(line) {
  if (truthFd >= 0) fs.writeSync(truthFd, `${line}\n`);
}

export function log(line) {
  process.stderr.write(`vpico: ${line}\n`);
}

export function die(line) {
  log(line);
  process.exit(2);
}

export let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  die(e.message);
}

// rp2040js exports no clock class; a chip built with the default clock names it
const SimulationClock = new RP2040().clock.constructor;

// ---- the chip -------------------------------------------------------------------------------
export const clock = new SimulationClock(); // set to the first grant before the chip boots
export let mcu = null; // null while RUN is low, in the bootloader, or powered off
export let state = 'off'; // 'running' | 'reset' (RUN low) | 'bootloader'
export const pins = { levels: new Map(), outputs: new Map() }; // pin -> level from the Pi; board outputs

export function setMcu(chip) {
  mcu = chip;
}

export function setState(to) {
  state = to;
}

// set by board.mjs: boot(why), stop(), powerOn(), shutdown(why)
export const life = {};
