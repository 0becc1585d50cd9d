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

// --- Typed rows: a field table that also says how each field maps to a JS value. ---

/**
 * A field with the JS type of its value: `n` number (the default), `b` boolean (0/1),
 * `g` bigint as stored, `a` bigint address whose low `shift` bits are implied zero (the
 * field holds addr >> shift). Lets a layout turn a typed object into field values and back
 * without a hand-written converter per format.
 */
export interface TypedField extends Field {
  readonly t?: 'n' | 'b' | 'g' | 'a';
  /** For `a`: how many low address bits the field leaves out (12 for a 4 KiB page address). */
  readonly shift?: number;
}

export type TypedValue = number | bigint | boolean;

/** Field values of `obj` by the rows' types; missing keys are 0. A misaligned address throws RangeError. */
export function toFieldValues(table: readonly TypedField[], obj: Readonly<Record<string, unknown>>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const f of table) {
    const v = obj[f.name];
    if (v === undefined) continue;
    switch (f.t ?? 'n') {
      case 'b': out[f.name] = v ? 1 : 0; break;
      case 'g': out[f.name] = v as bigint; break;
      case 'a': {
        const a = v as bigint;
        const s = BigInt(f.shift ?? 0);
        if (a < 0n || (a & ((1n << s) - 1n)) !== 0n) throw new RangeError(`field ${f.name}: address 0x${a.toString(16)} is not aligned to 2^${s}`);
        out[f.name] = a >> s;
        break;
      }
      default: out[f.name] = v as number;
    }
  }
  return out;
}

/** The typed object of decoded field values (numbers or bigints) by the rows' types. */
export function fromFieldValues(table: readonly TypedField[], f: Readonly<Record<string, FieldValue>>): Record<string, TypedValue> {
  const out: Record<string, TypedValue> = {};
  for (const r of table) {
    const v = f[r.name] ?? 0;
    switch (r.t ?? 'n') {
      case 'b': out[r.name] = Number(v) === 1; break;
      case 'g': out[r.name] = BigInt(v); break;
      case 'a': out[r.name] = BigInt(v) << BigInt(r.shift ?? 0); break;
      default: out[r.name] = Number(v);
    }
  }
  return out;
}

/** encodeFields of a typed object. */
export function encodeTyped(table: readonly TypedField[], words: number, obj: Readonly<Record<string, unknown>>): bigint[] {
  const v = toFieldValues(table, obj);
  const big: FieldValues = {};
  for (const k of Object.keys(v)) big[k] = BigInt(v[k]);
  return encodeFields(table, words, big);
}

/** decodeFields into a typed object. */
export function decodeTyped(table: readonly TypedField[], words: readonly bigint[]): Record<string, TypedValue> {
  return fromFieldValues(table, decodeFields(table, words));
}

/** writeFieldsU32 of a typed object: the bits of encodeTyped + writeWords, word 0's low half last. */
export function writeTypedU32(table: readonly TypedField[], words: number, u32: Uint32Array, at: number, obj: Readonly<Record<string, unknown>>): void {
  writeFieldsU32(table, words, u32, at, toFieldValues(table, obj));
}

/**
 * readFieldsU32 into a typed object; fields wider than 53 bits are read exactly through
 * BigInt (they are rare: 64-bit data words).
 */
export function readTypedU32(table: readonly TypedField[], u32: Uint32Array, at: number): Record<string, TypedValue> {
  const narrow = table.filter((f) => f.hi - f.lo < 53);
  const f: Record<string, FieldValue> = readFieldsU32(narrow, u32, at);
  for (const w of table) {
    if (w.hi - w.lo < 53) continue;
    const word = (BigInt(u32[at + 2 * w.word + 1]) << 32n) | BigInt(u32[at + 2 * w.word]);
    f[w.name] = (word >> BigInt(w.lo)) & fieldMask(w);
  }
  return fromFieldValues(table, f);
}
