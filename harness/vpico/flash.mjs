// The virtual Pico's flash: the image in a 16 MiB array that survives resets, the bootrom's
// flash routines (which rp2040js can't run: it has no SPI flash behind its SSI) served on that
// array, the flash chip's unique ID, and the bootloader's UF2 volume that rewrites the flash.
// Loading the image and the bootrom happens on import, right after chip.mjs has read the
// arguments: a bad file is reported before the board starts.

import fs from 'node:fs';
import path from 'node:path';
import { args, die, life, log, mcu, setState } from './chip.mjs';
import { parseUF2, writeUF2 } from './uf2.mjs';

// ---- persistent state: what survives a reset (flash) ---------------------------------------
export const flash = new Uint8Array(16 * 1024 * 1024).fill(0xff); // the XIP window; a Pico has 2 MiB
export let image;
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

// ROM functions the emulator can't run (rp2040js has no SPI flash behind its SSI): each is
// replaced by a BKPT whose number says which; the host does the work and returns to LR.
export const ROM_HOOKS = ['RE', 'RP', 'IF', 'EX', 'FC', 'CX', 'UB'];

function romTable(rom16) {
  const table = new Map();
  let at = rom16[0x14 / 2] / 2;
  for (; rom16[at] !== 0; at += 2) {
    const code = String.fromCharCode(rom16[at] & 0xff, rom16[at] >> 8);
    table.set(code, rom16[at + 1] & ~1);
  }
  return table;
}

export const patchedRom = (() => {
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

export function answerUniqueId(chip) {
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

export function onRomCall(n) {
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
      life.stop();
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

// ---- the bootloader's UF2 volume -------------------------------------------------------------
let dropTimer = null;

function enterBootloader() {
  setState('bootloader');
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
    life.boot('UF2 drop');
  }, 200);
}
