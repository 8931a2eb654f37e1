// The virtual Pico's USB serial port (USB CDC): the host's bytes arrive on stdin in frames
// stamped with the Pi's clock, wait until the board's clock reaches that stamp, and are given
// to the board only when its OUT endpoint asks, at most what it asked for (its own flow
// control: stock rp2040js answers an empty read at once and drops past 512 bytes). The
// board's output goes to stdout as it comes. The Python side (board.py) bridges both to a pty.

import { USBCDC } from 'rp2040js';
import { clock, die, life, log, mcu } from './chip.mjs';
import { kick } from './horizon.mjs';

// ---- USB CDC: serial bytes, paced by the board's own reads ----------------------------------
const input = []; // [host ns when it arrived, Buffer] not yet read by the board
let inputAlarm = null;
let pendingRead = 0; // bytes the board's OUT endpoint asked for and has not been given
let cdc = null;

export function attachUsb() {
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
  inputAlarm = clock.createAlarm(feedUsb);
}

/** The chip stopped: its USB device and the read it was waiting on went with it. */
export function detachUsb() {
  cdc = null;
  pendingRead = 0;
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
process.stdin.on('end', () => life.shutdown('stdin closed'));
