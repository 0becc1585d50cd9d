/**
 * AMD IOMMU v1 (host) page-table entries, 4 KiB pages: the format a DTE's Host Page Table
 * Root Pointer and Mode point at, as Linux drivers/iommu/amd/io_pgtable.c writes it for DMA
 * domains (amd_iommu_pgtable=v1, the default).
 *
 * Models: PR (bit 0, present); Next Level (11:9) — in a PDE the level of the table it points
 * at, 0 in a PTE (a leaf of the level's default size: 4 KiB at level 1, 2 MiB at level 2,
 * 1 GiB at level 3); the address (51:12); U (59), FC (60, force coherent, set on leaves as
 * Linux does); IR (61) and IW (62), the read and write permissions. Linux writes every PDE
 * with IR = IW = 1 (IOMMU_PDE_FLAGS), so the leaf's IR/IW decide: the format is marked
 * leaf-permission-only. There is no execute or user/supervisor control in v1 tables: a
 * readable page is executable and user-accessible.
 * Does not model: Next Level 7 (page sizes other than the levels' defaults, encoded in the
 * address bits, with replicated entries), skipped levels (a PDE whose Next Level is more
 * than one below its own), the growing address space of Linux v1 tables (mode 3 growing to
 * 6; here a fixed number of levels), the SME C-bit.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';

export const AMD_V1_PTE_FIELDS: readonly TypedField[] = [
  { name: 'pr', word: 0, hi: 0, lo: 0, t: 'b' },
  { name: 'nextLevel', word: 0, hi: 11, lo: 9 },
  { name: 'addr', word: 0, hi: 51, lo: 12, t: 'a', shift: 12 },
  { name: 'u', word: 0, hi: 59, lo: 59, t: 'b' },
  { name: 'fc', word: 0, hi: 60, lo: 60, t: 'b' },
  { name: 'ir', word: 0, hi: 61, lo: 61, t: 'b' },
  { name: 'iw', word: 0, hi: 62, lo: 62, t: 'b' },
];
checkFieldTable('AMD_V1_PTE', AMD_V1_PTE_FIELDS, 1);

export interface AmdV1Pte {
  pr: boolean;
  nextLevel: number;
  addr: bigint;
  u: boolean;
  fc: boolean;
  ir: boolean;
  iw: boolean;
}

export function encodeAmdV1Pte(e: AmdV1Pte): bigint {
  return encodeTyped(AMD_V1_PTE_FIELDS, 1, e as unknown as Record<string, unknown>)[0];
}

export function decodeAmdV1Pte(w: bigint): AmdV1Pte {
  return decodeTyped(AMD_V1_PTE_FIELDS, [w]) as unknown as AmdV1Pte;
}

// --- Hot path: the entry as two u32 halves. ---

export const AMD_V1_PR = 1;
export const AMD_V1_NEXT_LEVEL_SHIFT = 9;
export const AMD_V1_NEXT_LEVEL_MASK = 7 << AMD_V1_NEXT_LEVEL_SHIFT;
/** High-half bits: FC (60), IR (61), IW (62). */
export const AMD_V1_HI_FC = 1 << (60 - 32);
export const AMD_V1_HI_IR = 1 << (61 - 32);
export const AMD_V1_HI_IW = 1 << (62 - 32);
/** Address bits 51:32 in the high half. */
const ADDR_HI_MASK = 0xfffff;
/** Frames the 52-bit address field can name. */
export const AMD_V1_MAX_FRAME = 2 ** 40;

export function amdV1Present(lo: number): boolean {
  return (lo & AMD_V1_PR) !== 0;
}

/** A leaf above level 1 (Next Level 0: a 2 MiB or 1 GiB page). */
export function amdV1Large(lo: number): boolean {
  return (lo & AMD_V1_NEXT_LEVEL_MASK) === 0;
}

export function amdV1Frame(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}

function checkFrame(frame: number): void {
  if (!(frame >= 0 && frame < AMD_V1_MAX_FRAME)) throw new RangeError(`AMD v1 entry: frame 0x${frame.toString(16)} beyond the 52-bit address`);
}

/** Low half of a PDE pointing at a table of level `nextLevel` (1–6). */
export function amdV1PdeLo(frame: number, nextLevel: number): number {
  checkFrame(frame);
  return ((((frame % 0x100000) << 12) | ((nextLevel & 7) << AMD_V1_NEXT_LEVEL_SHIFT) | AMD_V1_PR) >>> 0);
}

/** High half of a PDE: the address, IR and IW (Linux IOMMU_PDE_FLAGS). */
export function amdV1PdeHi(frame: number): number {
  checkFrame(frame);
  return ((Math.floor(frame / 0x100000) & ADDR_HI_MASK) | AMD_V1_HI_IR | AMD_V1_HI_IW) >>> 0;
}

/** Low half of a leaf PTE (Next Level 0). */
export function amdV1PteLo(frame: number): number {
  checkFrame(frame);
  return ((((frame % 0x100000) << 12) | AMD_V1_PR) >>> 0);
}

/** High half of a leaf PTE: the address, FC, and IR/IW from the mapping's protection. */
export function amdV1PteHi(frame: number, prot: { read?: boolean; write?: boolean }): number {
  checkFrame(frame);
  return ((Math.floor(frame / 0x100000) & ADDR_HI_MASK) | AMD_V1_HI_FC | (prot.read ? AMD_V1_HI_IR : 0) | (prot.write ? AMD_V1_HI_IW : 0)) >>> 0;
}
