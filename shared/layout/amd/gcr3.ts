/**
 * AMD IOMMU GCR3 table entry (8 B): one slot of the PASID-indexed table of guest CR3s.
 *
 * Models: the entry as Linux writes it — GCR3_VALID (bit 0) and the 4 KiB aligned pointer
 * (51:12) to either the next GCR3 level or, at the leaf, the guest page-table root of that
 * PASID; the table geometry (512 entries per 4 KiB level, 9 PASID bits per level, GLX =
 * levels − 1) and Linux's level count get_gcr3_levels().
 * Positions: Linux amd_iommu_types.h (GCR3_VALID) and iommu.c (__get_gcr3_pte,
 * get_gcr3_levels: "level must be 4-Kbyte page and can contain up to 512 entries");
 * HARDWARE.md §1.3.
 * Does not model: the guest CR3 attribute bits (PCD/PWT, 4:3 — Linux clears them), the
 * guest page-table format itself.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';

export const GCR3_ENTRY_BYTES = 8;
export const GCR3_ENTRIES_PER_LEVEL = 512;
export const GCR3_LEVEL_BITS = 9;
/** Largest GLX the DTE field holds (2 bits); hardware supports up to EFR.GLX (Linux amd_iommu_max_glx_val). */
export const GLX_MAX = 3;

export const GCR3_ENTRY_FIELDS: readonly TypedField[] = [
  { name: 'valid', word: 0, hi: 0, lo: 0, t: 'b' },
  { name: 'ptr', word: 0, hi: 51, lo: 12, t: 'a', shift: 12 },
];
checkFieldTable('AMD_GCR3_ENTRY', GCR3_ENTRY_FIELDS, 1);

export interface Gcr3Entry {
  valid: boolean;
  /** Next-level table, or the guest page-table root at the leaf; 4 KiB aligned. */
  ptr: bigint;
}

export function encodeGcr3Entry(e: Gcr3Entry): bigint {
  return encodeTyped(GCR3_ENTRY_FIELDS, 1, e as unknown as Record<string, unknown>)[0];
}

export function decodeGcr3Entry(v: bigint): Gcr3Entry {
  return decodeTyped(GCR3_ENTRY_FIELDS, [v]) as unknown as Gcr3Entry;
}

/**
 * GLX for a table that must index `pasids` PASIDs, as Linux get_gcr3_levels(): with
 * order = ceil(log2(pasids)), GLX = ceil(order / 9) − 1 (0 for a single PASID).
 */
export function gcr3Glx(pasids: number): number {
  if (!Number.isInteger(pasids) || pasids < 1) throw new RangeError(`pasids ${pasids}`);
  const order = Math.ceil(Math.log2(pasids));
  return order === 0 ? 0 : Math.ceil(order / GCR3_LEVEL_BITS) - 1;
}

/** Index of `pasid` in the GCR3 table level `level` (0 = leaf). */
export function gcr3Index(pasid: number, level: number): number {
  return Math.floor(pasid / 2 ** (GCR3_LEVEL_BITS * level)) % GCR3_ENTRIES_PER_LEVEL;
}
