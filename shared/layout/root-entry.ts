/**
 * Scalable-mode root entry: the first level of the VT-d device lookup, indexed by the
 * requester's bus number in the 4 KiB root table that RTADDR_REG points at (RTADDR.SMT=1).
 *
 * Models: the 16-byte scalable-mode root entry with its two context-table pointers — the
 * lower one (LP/LCTP) for devfn 0x00–0x7f and the upper one (UP/UCTP) for devfn 0x80–0xff,
 * because a scalable-mode context entry is 32 B and only 128 fit in a 4 KiB table.
 * Does not model: the legacy-mode root entry (one 16 B context table per bus; the upper
 * word reserved), reserved-bit checks against the host address width (the caller checks
 * the pointers against its MGAW).
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const ROOT_ENTRY_BYTES = 16;
export const ROOT_ENTRY_WORDS = 2;
/** 4096 / 16: one entry per bus. */
export const ROOT_ENTRIES_PER_TABLE = 256;

export const ROOT_ENTRY_FIELDS: FieldTable = [
  /** LP: lower context table present (devfn 0x00–0x7f). */
  { name: 'lowerPresent', word: 0, hi: 0, lo: 0 },
  /** LCTP: lower context-table pointer, bits 63:12. */
  { name: 'lowerCtp', word: 0, hi: 63, lo: 12 },
  /** UP: upper context table present (devfn 0x80–0xff). */
  { name: 'upperPresent', word: 1, hi: 0, lo: 0 },
  /** UCTP: upper context-table pointer, bits 127:76. */
  { name: 'upperCtp', word: 1, hi: 63, lo: 12 },
];
checkFieldTable('ROOT_ENTRY', ROOT_ENTRY_FIELDS, ROOT_ENTRY_WORDS);

export interface RootEntry {
  lowerPresent: boolean;
  /** Physical address of the context table for devfn 0x00–0x7f, 4 KiB aligned. */
  lowerCtp: bigint;
  upperPresent: boolean;
  /** Physical address of the context table for devfn 0x80–0xff, 4 KiB aligned. */
  upperCtp: bigint;
}

const b = (v: boolean) => (v ? 1n : 0n);

export function encodeRootEntry(e: RootEntry): bigint[] {
  return encodeFields(ROOT_ENTRY_FIELDS, ROOT_ENTRY_WORDS, {
    lowerPresent: b(e.lowerPresent), lowerCtp: e.lowerCtp >> 12n,
    upperPresent: b(e.upperPresent), upperCtp: e.upperCtp >> 12n,
  });
}

export function decodeRootEntry(words: readonly bigint[]): RootEntry {
  const f = decodeFields(ROOT_ENTRY_FIELDS, words);
  return {
    lowerPresent: f.lowerPresent === 1n, lowerCtp: f.lowerCtp << 12n,
    upperPresent: f.upperPresent === 1n, upperCtp: f.upperCtp << 12n,
  };
}

/** Which half of the root entry, and which slot of that context table, a devfn uses. */
export function smContextSlot(devfn: number): { upper: boolean; index: number } {
  return { upper: (devfn & 0x80) !== 0, index: devfn & 0x7f };
}

// --- Hot path over u32 halves: lo/hi of the word that holds the wanted half (word 0 for
// devfn < 0x80, word 1 otherwise). The present bit and pointer layout are the same. ---

export const ROOT_P = 1 << 0;
const ADDR_HI_MASK = 0xfffff; // pointer bits 51:32 (physical addresses are at most 52 bits)

export function rootHalfPresent(lo: number): boolean { return (lo & ROOT_P) !== 0; }
/** Frame number (address >> 12) of the context table a root-entry half points at. */
export function rootHalfFrame(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}
