/**
 * The generic tests every binary layout gets (field tables, round trips at zero and at the
 * field maxima, reserved bits, spec spot values, queue-slot writes): shared by the SMMUv3
 * and AMD layout suites. Not a test file itself (vitest collects *.test.ts only).
 */
import { describe, expect, it } from 'vitest';
import { type TypedField, checkFieldTable, fieldMask, reservedMasks } from '../../shared/bits.js';


export const U64 = (1n << 64n) - 1n;

/** One layout as the generic tests see it. */
export interface Layout {
  name: string;
  table: readonly TypedField[];
  words: number;
  encode(v: unknown): bigint[];
  decode(w: readonly bigint[]): unknown;
  zero: object;
  max: object;
  spot: { value: object; words: bigint[] }[];
  /** Bits every encoding carries (the opcode). */
  fixed?: bigint[];
  /** Rows not exercised alone (the opcode). */
  skip?: string[];
  write?(u32: Uint32Array, at: number, v: unknown): void;
  read?(u32: Uint32Array, at: number): unknown;
}
export function layout<T>(l: Omit<Layout, 'encode' | 'decode' | 'zero' | 'max' | 'spot' | 'write' | 'read'> & {
  encode(v: T): bigint[]; decode(w: readonly bigint[]): T; zero: T; max: T; spot: { value: T; words: bigint[] }[];
  write?(u32: Uint32Array, at: number, v: T): void; read?(u32: Uint32Array, at: number): T;
}): Layout {
  return l as unknown as Layout;
}
/** Every field of a typed table at its largest value (true, all-ones, the widest aligned address). */
export function maxOf(table: readonly TypedField[], extra: object = {}): Record<string, unknown> {
  return {
    ...Object.fromEntries(table.map((f) => [f.name,
      f.t === 'b' ? true : f.t === 'g' ? fieldMask(f) : f.t === 'a' ? fieldMask(f) << BigInt(f.shift ?? 0) : Number(fieldMask(f))])),
    ...extra,
  };
}
export function zeroOf(table: readonly TypedField[], extra: object = {}): Record<string, unknown> {
  return { ...Object.fromEntries(table.map((f) => [f.name, f.t === 'b' ? false : f.t === 'g' || f.t === 'a' ? 0n : 0])), ...extra };
}
export const pad = (w: bigint[], n: number) => [...w, ...new Array<bigint>(n - w.length).fill(0n)];
export function fieldBits(l: Layout, names: readonly string[] = []): bigint[] {
  const m = new Array<bigint>(l.words).fill(0n);
  for (const f of l.table) if (names.includes(f.name)) m[f.word] |= fieldMask(f) << BigInt(f.lo);
  return m;
}
/** What re-encoding a decode of `words` must give: reserved bits cleared, fixed bits forced. */
export function survivors(l: Layout, words: readonly bigint[]): bigint[] {
  const reserved = reservedMasks(l.table, l.words);
  const forced = fieldBits(l, l.skip);
  const fixed = l.fixed ?? new Array<bigint>(l.words).fill(0n);
  return words.map((w, i) => ((w & ~reserved[i] & ~forced[i]) | fixed[i]) & U64);
}

/** Runs the generic layout tests over `layouts`. */
export function layoutSuite(layouts: Layout[]): void {
  describe.each(layouts.map((l) => [l.name, l] as const))('%s', (_name, l) => {
    it('has a field table whose fields fit its words without overlapping', () => {
      expect(() => checkFieldTable(l.name, l.table, l.words)).not.toThrow();
    });
  
    it('round-trips zero, the field maxima and the spec examples; zero encodes to nothing but the opcode', () => {
      for (const v of [l.zero, l.max, ...l.spot.map((s) => s.value)]) expect(l.decode(l.encode(v))).toEqual(v);
      expect(l.encode(l.zero)).toEqual(l.fixed ?? new Array<bigint>(l.words).fill(0n));
    });
  
    it('encodes the maximum value to every non-reserved bit set', () => {
      expect(l.encode(l.max)).toEqual(survivors(l, new Array<bigint>(l.words).fill(U64)));
    });
  
    it('keeps each field alone at all ones through decode and re-encode, and sees it in the decoded value', () => {
      const fixed = l.fixed ?? new Array<bigint>(l.words).fill(0n);
      for (const f of l.table) {
        if (l.skip?.includes(f.name)) continue;
        const words = fixed.map((w, i) => (i === f.word ? w | (fieldMask(f) << BigInt(f.lo)) : w));
        expect(l.encode(l.decode(words)), f.name).toEqual(survivors(l, words));
        expect(l.decode(words), f.name).not.toEqual(l.decode(fixed));
      }
    });
  
    it('keeps reserved bits zero: all-ones words lose exactly the reserved bits', () => {
      const fixed = l.fixed ?? new Array<bigint>(l.words).fill(0n);
      const ones = fieldBits(l, l.skip).map((op, i) => (U64 & ~op) | fixed[i]);
      expect(l.encode(l.decode(ones))).toEqual(survivors(l, ones));
    });
  
    it('encodes the spec examples to the exact words', () => {
      for (const s of l.spot) {
        expect(l.encode(s.value)).toEqual(s.words);
        expect(l.decode(s.words)).toEqual(s.value);
      }
    });
  
    it.runIf(l.write !== undefined)('writes and reads queue slots with the same bits as encode, leaving neighbours alone', () => {
      const at = 6;
      const u32 = new Uint32Array(at + 2 * l.words + 4).fill(0xa5a5a5a5);
      for (const v of [l.max, l.zero, ...l.spot.map((s) => s.value)]) {
        l.write!(u32, at, v);
        const enc = l.encode(v);
        for (let i = 0; i < l.words; i++) {
          expect(u32[at + 2 * i]).toBe(Number(enc[i] & 0xffffffffn));
          expect(u32[at + 2 * i + 1]).toBe(Number(enc[i] >> 32n));
        }
        expect(l.read!(u32, at)).toEqual(v);
      }
      expect([...u32.subarray(0, at), ...u32.subarray(at + 2 * l.words)].every((x) => x === 0xa5a5a5a5)).toBe(true);
    });
  });
}
