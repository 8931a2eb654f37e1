// UF2 images (the format the RP2040's bootloader takes): parse the 512-byte blocks and write
// their payloads into a flash array.

const MAGIC_START0 = 0x0a324655;
const MAGIC_START1 = 0x9e5d5157;
const MAGIC_END = 0x0ab16f30;
const FLAG_NOT_MAIN_FLASH = 0x1;
const FLAG_FAMILY_ID = 0x2000;
export const RP2040_FAMILY = 0xe48bff56;
const FLASH_BASE = 0x10000000;

/** The flash writes [offset, payload] of a UF2 image; throws naming the first bad block. */
export function parseUF2(data) {
  if (data.length === 0 || data.length % 512) {
    throw new Error(`${data.length} bytes is not a whole number of 512-byte UF2 blocks`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const writes = [];
  for (let at = 0; at < data.length; at += 512) {
    const word = (i) => view.getUint32(at + i, true);
    if (word(0) !== MAGIC_START0 || word(4) !== MAGIC_START1 || word(508) !== MAGIC_END) {
      throw new Error(`block ${at / 512} is not a UF2 block (bad magic)`);
    }
    const flags = word(8);
    if (flags & FLAG_NOT_MAIN_FLASH) continue;
    if (flags & FLAG_FAMILY_ID && word(28) !== RP2040_FAMILY) {
      throw new Error(`block ${at / 512} is for family 0x${word(28).toString(16)}, not RP2040`);
    }
    const addr = word(12);
    const size = word(16);
    if (size > 476 || addr < FLASH_BASE || addr + size > FLASH_BASE + 0x1000000) {
      throw new Error(`block ${at / 512} writes ${size} bytes at 0x${addr.toString(16)}`);
    }
    writes.push([addr - FLASH_BASE, data.subarray(at + 32, at + 32 + size)]);
  }
  if (!writes.length) throw new Error('no block writes the RP2040 flash');
  return writes;
}

/** Write a parsed image into flash: what the bootloader does with a dropped file. */
export function writeUF2(writes, flash) {
  for (const [offset, payload] of writes) flash.set(payload, offset);
}
