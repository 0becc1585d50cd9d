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
