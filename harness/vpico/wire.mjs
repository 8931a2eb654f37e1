// The virtual Pico's GPIO link: the simulated Pi's board wire (harness/sim/wire.py: 8-byte
// frames over TCP). The Pi's edges carry their tick and are applied exactly then on the
// emulator's clock (late ones are logged); the board's output edges go back stamped with its
// own clock; grant frames, in order with the edges, move the horizon (horizon.mjs); the RUN
// line (pin 255) holds the chip in reset or boots it.

import net from 'node:net';
import { clock, life, log, mcu, pins, setState, state, truth } from './chip.mjs';
import { grant, grantNs, kick } from './horizon.mjs';

const RUN_PIN = 255; // the wire's pin number for the RUN line (harness/vpico/bench.py)
const WIRE_EDGE = 0x45; // 'E'
const WIRE_MODE = 0x4d; // 'M'
const WIRE_HELLO = 0x48; // 'H'
const WIRE_GRANT = 0x47; // 'G': the horizon, µs in 48 bits (harness/vpico/clock.py)
const edges = []; // [emulated ns, pin, level], sorted by time
let edgeAlarm = null;
export let lateEdges = 0;
let wire = null;
export let helloSeen = false;

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

export function scheduleEdgeAlarm() {
  if (!edgeAlarm) return;
  edgeAlarm.cancel();
  if (edges.length) edgeAlarm.schedule(Math.max(0, edges[0][0] - clock.nanos));
}

/** A new chip: the alarm that applies the Pi's edges on its clock. */
export function armEdges() {
  edgeAlarm = clock.createAlarm(applyDueEdges);
}

/** The chip stopped and its clock's alarms with it: the edges still wait for the next one. */
export function keepEdgesDue() {
  if (edgeAlarm) {
    edgeAlarm.scheduled = false;
    scheduleEdgeAlarm();
  }
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
      life.stop();
      setState('reset');
      log('held in reset (RUN low)');
    } else if (level && state === 'reset') {
      life.boot('RUN pin');
    }
    return;
  }
  if (pins.levels.get(pin) === level) return;
  pins.levels.set(pin, level);
  if (mcu && pin < 30) mcu.gpio[pin].setInputValue(!!level);
}

export function watchPins() {
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
      grant(ns);
      life.powerOn();
      kick();
    } else if (grantNs < 0) { // before the first grant (which sets the clock): the hello and
      if (type === WIRE_EDGE) pins.levels.set(wireBuf[1], wireBuf[2]); // the levels at power-on
      else if (type === WIRE_HELLO) helloSeen = true;
    } else if (type === WIRE_EDGE) onWireEdge(wireBuf[1], wireBuf[2], wireBuf.readUInt32LE(4));
    else if (type === WIRE_HELLO) {
      helloSeen = true;
      life.powerOn();
    }
  }
}

export function connectWire(port) {
  wire = net.connect({ host: '127.0.0.1', port: Number(port) });
  wire.setNoDelay(true);
  wire.on('data', (chunk) => {
    wireBuf = Buffer.concat([wireBuf, chunk]);
    readWire();
  });
  wire.on('error', (e) => life.shutdown(`GPIO wire: ${e.message}`));
  wire.on('close', () => life.shutdown('GPIO wire closed'));
}
