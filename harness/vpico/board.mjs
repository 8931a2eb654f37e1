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

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { RP2040, USBCDC, ConsoleLogger, LogLevel } from 'rp2040js';
import { parseUF2, writeUF2 } from './uf2.mjs';

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
const truthFd = process.env.TSFRIG_VPICO_TRUTH ? fs.openSync(process.env.TSFRIG_VPICO_TRUTH, 'a') : -1;
const IO_IRQ_BANK0 = 16 + 13; // its exception number

function truth(line) {
  if (truthFd >= 0) fs.writeSync(truthFd, `${line}\n`);
}

function log(line) {
  process.stderr.write(`vpico: ${line}\n`);
}

function die(line) {
  log(line);
  process.exit(2);
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  die(e.message);
}

const RUN_PIN = 255; // the wire's pin number for the RUN line (harness/vpico/bench.py)
// rp2040js exports no clock class; a chip built with the default clock names it
const SimulationClock = new RP2040().clock.constructor;
const hostNanos = () => Number(process.hrtime.bigint()); // wall time, for slicing only

// ---- persistent state: what survives a reset (flash) ---------------------------------------
const flash = new Uint8Array(16 * 1024 * 1024).fill(0xff); // the XIP window; a Pico has 2 MiB
let image;
try {
  image = fs.readFileSync(args.uf2);
  writeUF2(parseUF2(image), flash);
} catch (e) {
  die(`firmware image ${args.uf2}: ${e.message}`);
}
let bootrom;
try {
  const raw = fs.readFileSync(args.bootrom);
  if (raw.length !== 16384) throw new Error(`${raw.length} bytes, an RP2040 bootrom has 16384`);
  bootrom = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
} catch (e) {
  die(`bootrom ${args.bootrom}: ${e.message}`);
}

// ---- the chip -------------------------------------------------------------------------------
const clock = new SimulationClock(); // set to the first grant before the chip boots
let grantNs = -1; // the horizon: emulated time may not pass it
let helloSeen = false;
let mcu = null; // null while RUN is low, in the bootloader, or powered off
let state = 'off'; // 'running' | 'reset' (RUN low) | 'bootloader'
let cdc = null;
const pins = { levels: new Map(), outputs: new Map() }; // pin -> level from the Pi; board outputs

// ROM functions the emulator can't run (rp2040js has no SPI flash behind its SSI): each is
// replaced by a BKPT whose number says which; the host does the work and returns to LR.
const ROM_HOOKS = ['RE', 'RP', 'IF', 'EX', 'FC', 'CX', 'UB'];

function romTable(rom16) {
  const table = new Map();
  let at = rom16[0x14 / 2] / 2;
  for (; rom16[at] !== 0; at += 2) {
    const code = String.fromCharCode(rom16[at] & 0xff, rom16[at] >> 8);
    table.set(code, rom16[at + 1] & ~1);
  }
  return table;
}

const patchedRom = (() => {
  const rom = bootrom.slice();
  const rom16 = new Uint16Array(rom.buffer);
  const table = romTable(rom16);
  ROM_HOOKS.forEach((code, n) => {
    const addr = table.get(code);
    if (addr === undefined) die(`bootrom has no ${code} function; give an RP2040 B1/B2 bootrom`);
    rom16[addr / 2] = 0xbe00 | n; // BKPT #n
  });
  return rom;
})();

function readRam(mcuNow, addr, count) {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = mcuNow.readUint8(addr + i);
  return out;
}

// The flash chip's unique ID (command 0x4B: 4 dummy bytes, then 8 ID bytes), which the SDK
// reads at boot for machine.unique_id() and the USB serial number. rp2040js's SSI answers
// every read with 0; a command starts after the SDK's connect/exit-XIP calls (hooked).
const UID = Buffer.from((args.uid || '').padEnd(16, '0').slice(0, 16), 'hex');
const ssiCmd = { tx: [], rx: 0 };

function answerUniqueId(chip) {
  const ssi = chip.peripherals[0x18000];
  const [read, write] = [ssi.readUint32.bind(ssi), ssi.writeUint32.bind(ssi)];
  const DR0 = 0x60;
  ssi.writeUint32 = (offset, value) => {
    if (offset === DR0) ssiCmd.tx.push(value & 0xff);
    write(offset, value);
  };
  ssi.readUint32 = (offset) => {
    if (offset !== DR0) return read(offset);
    const i = ssiCmd.rx++;
    return ssiCmd.tx[0] === 0x4b && i >= 5 && i < 13 ? UID[i - 5] : read(offset);
  };
}

function onRomCall(n) {
  const core = mcu.core;
  const [r0, r1, r2] = [core.registers[0] >>> 0, core.registers[1] >>> 0, core.registers[2] >>> 0];
  switch (ROM_HOOKS[n]) {
    case 'RE': // flash_range_erase(offset, count, block_size, block_cmd)
      flash.fill(0xff, r0, Math.min(r0 + r1, flash.length));
      break;
    case 'RP': { // flash_range_program(offset, data, count): NOR flash only clears bits
      const data = readRam(mcu, r1, r2);
      for (let i = 0; i < r2; i++) flash[r0 + i] &= data[i];
      break;
    }
    case 'UB': // reset_to_usb_boot(gpio_mask, disable_interface_mask)
      setImmediate(() => enterBootloader());
      mcu.core.waiting = true;
      stopChip();
      return;
    case 'IF': // connect_internal_flash / flash_exit_xip: a direct command may follow
    case 'EX':
      ssiCmd.tx = [];
      ssiCmd.rx = 0;
      break;
    default: // flush-cache/enter-xip: nothing to do without a real SSI
      break;
  }
  core.PC = core.LR & ~1;
}

function stopChip() {
  mcu = null;
  cdc = null;
  pendingRead = 0;
  clock.nextAlarm = null; // the stopped chip's timers and USB transfers die with it
  if (edgeAlarm) {
    edgeAlarm.scheduled = false;
    scheduleEdgeAlarm();
  }
}

function bootChip(why) {
  clock.nextAlarm = null; // a fresh chip: none of the old chip's alarms survive (ours re-made)
  mcu = new RP2040(clock);
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
  edgeAlarm = clock.createAlarm(applyDueEdges);
  inputAlarm = clock.createAlarm(feedUsb);
  scheduleEdgeAlarm();
  mcu.core.PC = 0x10000000; // boot2 at the start of flash, as the bootrom would run it
  state = 'running';
  log(`boot (${why})`);
  kick();
}

function reboot(why) {
  stopChip();
  bootChip(why);
}

// ---- USB CDC: serial bytes, paced by the board's own reads ----------------------------------
const input = []; // [host ns when it arrived, Buffer] not yet read by the board
let inputAlarm = null;
let pendingRead = 0; // bytes the board's OUT endpoint asked for and has not been given

function attachUsb() {
  cdc = new USBCDC(mcu.usbCtrl);
  const usb = mcu.usbCtrl;
  const cdcRead = usb.onEndpointRead;
  usb.onEndpointRead = (endpoint, size) => {
    if (endpoint !== cdc.outEndpoint) return cdcRead(endpoint, size);
    pendingRead = size; // held until the host has data: the CPU may sleep meanwhile
    feedUsb();
  };
  cdc.onSerialData = (data) => process.stdout.write(Buffer.from(data));
  cdc.onDeviceConnected = () => log('usb connected');
}

function feedUsb() {
  // bytes go to the board once its clock has reached the moment they arrived: the host
  // wrote them after everything it did before, so the board sees them after it too
  if (!cdc || !pendingRead || !input.length) return;
  if (input[0][0] > clock.nanos) {
    inputAlarm.schedule(input[0][0] - clock.nanos);
    return;
  }
  const chunk = Buffer.alloc(pendingRead);
  let filled = 0;
  while (filled < chunk.length && input.length && input[0][0] <= clock.nanos) {
    const [at, head] = input[0];
    const take = Math.min(head.length, chunk.length - filled);
    head.copy(chunk, filled, 0, take);
    filled += take;
    if (take === head.length) input.shift();
    else input[0] = [at, head.subarray(take)];
  }
  pendingRead = 0;
  mcu.usbCtrl.endpointReadDone(cdc.outEndpoint, new Uint8Array(chunk.subarray(0, filled)));
  kick();
}

// stdin: frames of serial bytes, each stamped with the Pi's clock when the bridge read them
// (harness/vpico/board.py SERIAL_HEADER): 'S', pad, µs high 16 / low 32 bits, length u32
let stdinBuf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  stdinBuf = Buffer.concat([stdinBuf, chunk]);
  while (stdinBuf.length >= 12) {
    const len = stdinBuf.readUInt32LE(8);
    if (stdinBuf.length < 12 + len) break;
    if (stdinBuf[0] !== 0x53) die('serial frames out of step on stdin');
    const ns = (stdinBuf.readUInt16LE(2) * 2 ** 32 + stdinBuf.readUInt32LE(4)) * 1000;
    input.push([ns, Buffer.from(stdinBuf.subarray(12, 12 + len))]);
    stdinBuf = stdinBuf.subarray(12 + len);
  }
  feedUsb();
  kick();
});
process.stdin.on('end', () => shutdown('stdin closed'));

// ---- GPIO: the Pi's wire --------------------------------------------------------------------
const WIRE_EDGE = 0x45; // 'E'
const WIRE_MODE = 0x4d; // 'M'
const WIRE_HELLO = 0x48; // 'H'
const WIRE_GRANT = 0x47; // 'G': the horizon, µs in 48 bits (harness/vpico/clock.py)
const edges = []; // [emulated ns, pin, level], sorted by time
let edgeAlarm = null;
let lateEdges = 0;
let wire = null;

function frame(type, pin, value, tickUs, pull = 0) {
  const b = Buffer.alloc(8);
  b.writeUInt8(type, 0);
  b.writeUInt8(pin, 1);
  b.writeUInt8(value, 2);
  b.writeUInt8(pull, 3);
  b.writeUInt32LE(Math.floor(tickUs) % 2 ** 32, 4);
  return b;
}

function unwrapTick(tick) {
  // the Pi's tick is µs of CLOCK_MONOTONIC mod 2^32: the emulated µs nearest to it
  const nowUs = Math.floor(clock.nanos / 1000);
  const diff = ((tick - (nowUs % 2 ** 32)) << 0) | 0; // signed 32-bit
  return (nowUs + diff) * 1000;
}

function onWireEdge(pin, level, tick) {
  const at = unwrapTick(tick);
  let i = edges.length;
  while (i > 0 && edges[i - 1][0] > at) i--;
  edges.splice(i, 0, [at, pin, level]);
  scheduleEdgeAlarm();
  kick();
}

function scheduleEdgeAlarm() {
  if (!edgeAlarm) return;
  edgeAlarm.cancel();
  if (edges.length) edgeAlarm.schedule(Math.max(0, edges[0][0] - clock.nanos));
}

function applyDueEdges() {
  while (edges.length && edges[0][0] <= clock.nanos) {
    const [at, pin, level] = edges.shift();
    truth(`E ${pin} ${level} ${at} ${clock.nanos}`);
    if (clock.nanos - at > 1000 && (++lateEdges & (lateEdges - 1)) === 0) {
      log(`edge on pin ${pin} level ${level} at ${at / 1000} applied ${Math.round((clock.nanos - at) / 1000)} us late, grant ${grantNs / 1000} ` +
        `(${lateEdges} so far): its timing is off by that much`);
    }
    applyEdge(pin, level);
  }
  scheduleEdgeAlarm();
}

function applyEdge(pin, level) {
  if (pin === RUN_PIN) {
    if (!level && state !== 'off') {
      stopChip();
      state = 'reset';
      log('held in reset (RUN low)');
    } else if (level && state === 'reset') {
      bootChip('RUN pin');
    }
    return;
  }
  if (pins.levels.get(pin) === level) return;
  pins.levels.set(pin, level);
  if (mcu && pin < 30) mcu.gpio[pin].setInputValue(!!level);
}

function watchPins() {
  for (const pin of mcu.gpio) {
    pin.addListener((value) => {
      const idx = pin.index;
      if (value === 0 || value === 1) { // GPIOPinState Low/High: the board drives it
        if (pins.outputs.get(idx) === undefined) sendWire(frame(WIRE_MODE, idx, 1, 0));
        // the pad's input buffer sees what the pin drives, as on silicon
        pin.setInputValue(!!value);
        if (pins.outputs.get(idx) !== value) {
          pins.outputs.set(idx, value);
          sendWire(frame(WIRE_EDGE, idx, value, clock.nanos / 1000));
          truth(`O ${idx} ${value} ${clock.nanos}`);
        }
      } else if (pins.outputs.has(idx)) { // back to an input
        pins.outputs.delete(idx);
        const pull = value === 3 ? 1 : value === 4 ? 2 : 0;
        sendWire(frame(WIRE_MODE, idx, 0, 0, pull));
        const level = pins.levels.get(idx);
        pin.setInputValue(level !== undefined ? !!level : value === 3);
      }
    });
  }
}

function sendWire(buf) {
  if (wire && !wire.destroyed) wire.write(buf);
}

let wireBuf = Buffer.alloc(0);

function readWire() {
  // frames in the order the Pi sent them: a grant never overtakes an edge it covers
  for (; wireBuf.length >= 8; wireBuf = wireBuf.subarray(8)) {
    const type = wireBuf[0];
    if (type === WIRE_GRANT) {
      const ns = (wireBuf.readUInt16LE(2) * 2 ** 32 + wireBuf.readUInt32LE(4)) * 1000;
      if (grantNs < 0) clock.nanosCounter = ns;
      grantNs = Math.max(grantNs, ns);
      powerOn();
      kick();
    } else if (grantNs < 0) { // before the first grant (which sets the clock): the hello and
      if (type === WIRE_EDGE) pins.levels.set(wireBuf[1], wireBuf[2]); // the levels at power-on
      else if (type === WIRE_HELLO) helloSeen = true;
    } else if (type === WIRE_EDGE) onWireEdge(wireBuf[1], wireBuf[2], wireBuf.readUInt32LE(4));
    else if (type === WIRE_HELLO) {
      helloSeen = true;
      powerOn();
    }
  }
}

function connectWire(port) {
  wire = net.connect({ host: '127.0.0.1', port: Number(port) });
  wire.setNoDelay(true);
  wire.on('data', (chunk) => {
    wireBuf = Buffer.concat([wireBuf, chunk]);
    readWire();
  });
  wire.on('error', (e) => shutdown(`GPIO wire: ${e.message}`));
  wire.on('close', () => shutdown('GPIO wire closed'));
}

// ---- the bootloader's UF2 volume -------------------------------------------------------------
let dropTimer = null;

function enterBootloader() {
  state = 'bootloader';
  log('bootloader (UF2 drop)');
  if (!args.drop) return;
  fs.rmSync(args.drop, { recursive: true, force: true });
  fs.mkdirSync(args.drop, { recursive: true });
  fs.writeFileSync(path.join(args.drop, 'INFO_UF2.TXT'),
    'UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: RPI-RP2 (tsfrig vpico)\r\n');
  let seen = '';
  dropTimer = setInterval(() => {
    let files;
    try {
      files = fs.readdirSync(args.drop).filter((f) => f.toLowerCase().endsWith('.uf2'));
    } catch {
      return;
    }
    if (!files.length) return;
    const file = path.join(args.drop, files[0]);
    const st = fs.statSync(file);
    const sig = `${file}:${st.size}:${st.mtimeMs}`;
    if (sig !== seen || st.size === 0 || st.size % 512) { // still being copied
      seen = sig;
      return;
    }
    clearInterval(dropTimer);
    dropTimer = null;
    try {
      const data = fs.readFileSync(file);
      writeUF2(parseUF2(data), flash);
      log(`flashed ${path.basename(file)} (${data.length} bytes)`);
    } catch (e) {
      log(`rejected ${path.basename(file)}: ${e.message}`);
    }
    fs.rmSync(args.drop, { recursive: true, force: true }); // the volume unmounts
    bootChip('UF2 drop');
  }, 200);
}

// ---- the run loop: emulate up to the granted horizon --------------------------------------
let slice = 0;
let reportedUs = -1;
const control = new net.Socket({ fd: 3, readable: true, writable: true });

function powerOn() {
  if (state === 'off' && helloSeen && grantNs >= 0) bootChip('power on');
}

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

control.on('error', (e) => shutdown(`control: ${e.message}`));
control.on('close', () => shutdown('control closed'));

function kick() {
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

// ---- lifetime -------------------------------------------------------------------------------
let stopping = false;

function shutdown(why) {
  if (stopping) return;
  stopping = true;
  log(`stopped: ${why}; ${lateEdges} edge(s) applied late`);
  if (args.drop) fs.rmSync(args.drop, { recursive: true, force: true });
  process.exit(0);
}

process.on('uncaughtException', (e) => die(`internal error: ${e.stack.split('\n').slice(0, 2).join(' ')}`));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('disconnect', () => shutdown('parent gone'));
connectWire(args.wire);
log(`image ${path.basename(args.uf2)} (${image.length} bytes)`);
