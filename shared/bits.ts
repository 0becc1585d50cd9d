/**
 * Bit fields over 64-bit words: the one place field tables are turned into bits.
 *
 * Models: a hardware structure as a list of `{ name, word, hi, lo }` rows (bit numbers
 * within 64-bit word `word`, both inclusive, as the specs print them), with generic encode
 * and decode, and the read/write of whole entries in a Uint32Array view of shared memory.
 * Does not model: any particular format — those are the tables in shared/layout/.
 *
 * Writing an entry stores the high half of every 64-bit word before its low half, and
 * word 0 (which holds the present/valid bit in every format here) last, so a reader that
 * sees the present bit also sees the rest of the entry (the rule of DESIGN.md §4).
 */

export interface Field {
  readonly name: string;
  /** 64-bit word index within the entry. */
  readonly word: number;
  /** Most significant bit, inclusive. */
  readonly hi: number;
  /** Least significant bit, inclusive. */
  readonly lo: number;
}

export type FieldTable = readonly Field[];
export type FieldValues = Record<string, bigint>;

export function fieldMask(f: Field): bigint {
  return (1n << BigInt(f.hi - f.lo + 1)) - 1n;
}

/** Checks that a table's fields fit their words and do not overlap; throws if not. */
export function checkFieldTable(name: string, table: FieldTable, words: number): void {
  const used = new Map<string, string>();
  for (const f of table) {
    if (f.word < 0 || f.word >= words || f.lo < 0 || f.hi > 63 || f.hi < f.lo) {
      throw new Error(`${name}.${f.name}: bits ${f.word}:${f.hi}:${f.lo} outside a ${words}-word entry`);
    }
    for (let b = f.lo; b <= f.hi; b++) {
      const key = `${f.word}:${b}`;
      const prev = used.get(key);
      if (prev) throw new Error(`${name}.${f.name} overlaps ${prev} at word ${f.word} bit ${b}`);
      used.set(key, f.name);
    }
  }
}

/**
 * Encodes field values into `words` 64-bit words. Fields not given are 0; a value that
 * does not fit its field throws (a caller bug, not a user error).
 */
export function encodeFields(table: FieldTable, words: number, values: Partial<FieldValues>): bigint[] {
  const out = new Array<bigint>(words).fill(0n);
  for (const f of table) {
    const v = values[f.name];
    if (v === undefined || v === 0n) continue;
    if (v < 0n || v > fieldMask(f)) throw new RangeError(`field ${f.name}: 0x${v.toString(16)} does not fit bits ${f.hi}:${f.lo}`);
    out[f.word] |= v << BigInt(f.lo);
  }
  return out;
}

/** Decodes every field of the table from the words (missing words read as 0). */
export function decodeFields(table: FieldTable, words: readonly bigint[]): FieldValues {
  const out: FieldValues = {};
  for (const f of table) out[f.name] = ((words[f.word] ?? 0n) >> BigInt(f.lo)) & fieldMask(f);
  return out;
}

/** Bits of the words not covered by any field (reserved): a mask per word. */
export function reservedMasks(table: FieldTable, words: number): bigint[] {
  const m = new Array<bigint>(words).fill((1n << 64n) - 1n);
  for (const f of table) m[f.word] &= ~(fieldMask(f) << BigInt(f.lo));
  return m;
}

/** Reads `words` 64-bit words from a Uint32Array at u32 index `at` (little-endian pairs). */
export function readWords(u32: Uint32Array, at: number, words: number): bigint[] {
  const out = new Array<bigint>(words);
  for (let i = 0; i < words; i++) {
    out[i] = (BigInt(u32[at + 2 * i + 1]) << 32n) | BigInt(u32[at + 2 * i]);
  }
  return out;
}

/**
 * Writes 64-bit words into a Uint32Array at u32 index `at`: for each word the high half
 * first, and word 0's low half (the present bit) last of all.
 */
export function writeWords(u32: Uint32Array, at: number, words: readonly bigint[]): void {
  for (let i = words.length - 1; i >= 0; i--) {
    const w = words[i];
    u32[at + 2 * i + 1] = Number((w >> 32n) & 0xffffffffn);
    if (i !== 0) u32[at + 2 * i] = Number(w & 0xffffffffn);
  }
  if (words.length > 0) u32[at] = Number(words[0] & 0xffffffffn);
}

/**
 * Clears an entry by zeroing only word 0's low half (the present bit). The other halves
 * keep their old values: a reader racing with the clear sees either the whole old entry
 * or a non-present one, never a torn mix. Frames are zeroed when reallocated.
 */
export function clearPresentWord(u32: Uint32Array, at: number): void {
  u32[at] = 0;
}

// --- The BigInt-free path, for hot encoders and decoders (queues). ---

/** A field value as a JS number (exact below 2^53) or a bigint (any width). */
export type FieldValue = number | bigint;

/**
 * Writes fields into `words` 64-bit words at u32 index `at` without BigInt arithmetic for
 * number values (each an integer below 2^53; bigint values are accepted and split). The
 * entry is zeroed first; fields not given are 0. A value that does not fit its field
 * throws RangeError, as encodeFields does. Same bits as encodeFields + writeWords.
 */
export function writeFieldsU32(table: FieldTable, words: number, u32: Uint32Array, at: number, values: Readonly<Record<string, FieldValue | undefined>>): void {
  scratch.fill(0, 0, 2 * words);
  for (const f of table) {
    const v = values[f.name];
    if (v === undefined || v === 0 || v === 0n) continue;
    const width = f.hi - f.lo + 1;
    let rem: number;
    if (typeof v === 'bigint') {
      if (v < 0n || v > fieldMask(f)) throw new RangeError(`field ${f.name}: 0x${v.toString(16)} does not fit bits ${f.hi}:${f.lo}`);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
        const w = encodeFields([f], words, { [f.name]: v });
        for (let i = 0; i < words; i++) {
          scratch[2 * i] |= Number(w[i] & 0xffffffffn);
          scratch[2 * i + 1] |= Number(w[i] >> 32n);
        }
        continue;
      }
      rem = Number(v);
    } else {
      if (!Number.isSafeInteger(v) || v < 0 || (width < 53 && v >= 2 ** width)) {
        throw new RangeError(`field ${f.name}: ${v} does not fit bits ${f.hi}:${f.lo}`);
      }
      rem = v;
    }
    let idx = 2 * f.word + (f.lo >= 32 ? 1 : 0);
    let bit = f.lo & 31;
    let left = width;
    while (rem !== 0 && left > 0) {
      const take = Math.min(32 - bit, left);
      const span = 2 ** take;
      const part = rem % span;
      scratch[idx] |= part * 2 ** bit; // part < 2^(32-bit): stays below 2^32
      rem = (rem - part) / span;
      left -= take;
      bit = 0;
      idx++;
    }
  }
  // High halves first, word 0's low half last (the order writeWords keeps).
  for (let i = 2 * words - 1; i >= 1; i--) u32[at + i] = scratch[i];
  u32[at] = scratch[0];
}

/**
 * Reads fields from u32 words as JS numbers (a field wider than 53 bits is exact only
 * while its value is below 2^53 — use decodeFields for such values).
 */
export function readFieldsU32(table: FieldTable, u32: Uint32Array, at: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of table) {
    let idx = 2 * f.word + (f.lo >= 32 ? 1 : 0);
    let bit = f.lo & 31;
    let left = f.hi - f.lo + 1;
    let v = 0;
    let scale = 1;
    while (left > 0) {
      const take = Math.min(32 - bit, left);
      const part = take === 32 ? u32[at + idx] : (u32[at + idx] >>> bit) & (2 ** take - 1);
      v += part * scale;
      scale *= 2 ** take;
      left -= take;
      bit = 0;
      idx++;
    }
    out[f.name] = v;
  }
  return out;
}

const scratch = new Uint32Array(32);
