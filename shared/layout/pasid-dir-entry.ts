/**
 * Scalable-mode PASID directory entry: the upper level of the two-level PASID table.
 *
 * Models: the 8-byte directory entry (P, FPD, SMPTBLPTR) and the PASID split: PASID bits
 * 19:6 index the directory (up to 2^14 entries, sized by the context entry's PDTS) and
 * bits 5:0 index a 4 KiB table of 64 PASID entries.
 * Does not model: reserved-bit checks against the host address width.
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const PASID_DIR_ENTRY_BYTES = 8;
/** 4096 / 64: PASID entries in one leaf table. */
export const PASID_ENTRIES_PER_TABLE = 64;
/** PASID bits below the directory index (Linux PASID_PDE_SHIFT). */
export const PASID_PDE_SHIFT = 6;

/** Directory slot of a PASID (QEMU VTD_PASID_DIR_INDEX). */
export function PASID_DIR_INDEX(pasid: number): number {
  return pasid >>> PASID_PDE_SHIFT;
}
/** Slot of a PASID within its 64-entry table (QEMU VTD_PASID_TABLE_INDEX). */
export function PASID_TABLE_INDEX(pasid: number): number {
  return pasid & (PASID_ENTRIES_PER_TABLE - 1);
}

export const PASID_DIR_ENTRY_FIELDS: FieldTable = [
  { name: 'present', word: 0, hi: 0, lo: 0 },
  /** FPD: fault processing disable for every PASID behind this entry. */
  { name: 'fpd', word: 0, hi: 1, lo: 1 },
  /** SMPTBLPTR: scalable-mode PASID table pointer, bits 63:12. */
  { name: 'tablePtr', word: 0, hi: 63, lo: 12 },
];
checkFieldTable('PASID_DIR_ENTRY', PASID_DIR_ENTRY_FIELDS, 1);

export interface PasidDirEntry {
  present: boolean;
  fpd: boolean;
  /** Physical address of the 64-entry PASID table, 4 KiB aligned. */
  tablePtr: bigint;
}

const b = (v: boolean) => (v ? 1n : 0n);

export function encodePasidDirEntry(e: PasidDirEntry): bigint {
  return encodeFields(PASID_DIR_ENTRY_FIELDS, 1, {
    present: b(e.present), fpd: b(e.fpd), tablePtr: e.tablePtr >> 12n,
  })[0];
}

export function decodePasidDirEntry(w: bigint): PasidDirEntry {
  const f = decodeFields(PASID_DIR_ENTRY_FIELDS, [w]);
  return { present: f.present === 1n, fpd: f.fpd === 1n, tablePtr: f.tablePtr << 12n };
}

// --- Hot path over u32 halves. ---

export const PDE_P = 1 << 0;
export const PDE_FPD = 1 << 1;
const ADDR_HI_MASK = 0xfffff;

export function pdePresent(lo: number): boolean { return (lo & PDE_P) !== 0; }
export function pdeFpd(lo: number): boolean { return (lo & PDE_FPD) !== 0; }
/** Frame number (address >> 12) of the PASID table. */
export function pdeTableFrame(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}
