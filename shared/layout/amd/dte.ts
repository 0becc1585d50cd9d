/**
 * AMD IOMMU Device Table Entry (DTE, 256 bits): the per-DeviceID translation configuration.
 *
 * Models: QW0 — V, TV, HAD (host access/dirty), Mode (host page-table levels), Host Page
 * Table Root Pointer, PPR, GPRP, GIoV, GV, GLX, GCR3 root pointer bits 14:12, IR, IW; QW1 —
 * DomainID, GCR3 root pointer bits 30:15, I (IOTLB/ATS enable), SE, SA, IoCtl, Cache, SD,
 * EX, SysMgt, GCR3 root pointer bits 51:31; QW2 — the interrupt-remapping fields (IV,
 * IntTabLen, IG, interrupt table root, InitPass, EIntPass, NMIPass, IntCtl, Lint0Pass,
 * Lint1Pass) and GuestPagingMode (55:54). The GCR3 root pointer is one `gcr3Root` value,
 * split and joined here.
 * Positions: Linux drivers/iommu/amd/amd_iommu_types.h (DTE_FLAG_*, DEV_ENTRY_*, DTE_GCR3_*,
 * DTE_GPT_LEVEL_SHIFT, DTE_IRQ_*); HARDWARE.md §1.3. GPRP (bit 53) and the QW1 bits SE/SA/
 * IoCtl/Cache/SD follow the AMD IOMMU specification table as Linux's DEV_ENTRY_* bit numbers
 * imply (SA = 0x62, EX = 0x67, SysMgt = 0x68/0x69); Linux has no macro for GPRP.
 * Does not model: QW3 (vIOMMU / SNP fields: reserved here), the SNP rule that Mode 0 is
 * illegal, the legality checks that raise ILLEGAL_DEV_TABLE_ENTRY.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';

export const DTE_BYTES = 32;
export const DTE_WORDS = 4;
/** Linux MAX_DEV_TABLE_ENTRIES + 1: one DTE per 16-bit DeviceID. */
export const DEV_TABLE_ENTRIES = 0x10000;

/** Mode: host page-table levels (Linux PAGE_MODE_*); 0 = no translation (pass-through when TV). */
export const DTE_MODE_NONE = 0;
export const DTE_MODE_4_LEVEL = 4;
export const DTE_MODE_6_LEVEL = 6;
/** GuestPagingMode (QW2 55:54; Linux GUEST_PGTABLE_*). */
export const GUEST_PGTABLE_4_LEVEL = 0;
export const GUEST_PGTABLE_5_LEVEL = 1;

/** The rows as stored; `gcr3Lo/Mid/Hi` are the three pieces of the GCR3 root pointer. */
export const DTE_FIELDS: readonly TypedField[] = [
  { name: 'v', word: 0, hi: 0, lo: 0, t: 'b' },
  /** TV: the translation fields (Mode, root, GCR3) are valid. */
  { name: 'tv', word: 0, hi: 1, lo: 1, t: 'b' },
  { name: 'had', word: 0, hi: 8, lo: 7 },
  { name: 'mode', word: 0, hi: 11, lo: 9 },
  { name: 'ptRoot', word: 0, hi: 51, lo: 12, t: 'a', shift: 12 },
  /** PPR: peripheral page requests enabled (Linux DEV_ENTRY_PPR 0x34). */
  { name: 'ppr', word: 0, hi: 52, lo: 52, t: 'b' },
  /** GPRP: guest PPR responses carry the PASID. */
  { name: 'gprp', word: 0, hi: 53, lo: 53, t: 'b' },
  /** GIoV: guest I/O protection valid (requests without PASID use the GCR3 entry of PASID 0). */
  { name: 'giov', word: 0, hi: 54, lo: 54, t: 'b' },
  /** GV: guest translation (GCR3 table) valid. */
  { name: 'gv', word: 0, hi: 55, lo: 55, t: 'b' },
  /** GLX: GCR3 table levels − 1 (0: one level of 512 entries, 1: two levels). */
  { name: 'glx', word: 0, hi: 57, lo: 56 },
  { name: 'gcr3Lo', word: 0, hi: 60, lo: 58 },
  { name: 'ir', word: 0, hi: 61, lo: 61, t: 'b' },
  { name: 'iw', word: 0, hi: 62, lo: 62, t: 'b' },
  { name: 'domainId', word: 1, hi: 15, lo: 0 },
  { name: 'gcr3Mid', word: 1, hi: 31, lo: 16 },
  /** I: IOTLB (ATS) enabled for the device (Linux DTE_FLAG_IOTLB). */
  { name: 'i', word: 1, hi: 32, lo: 32, t: 'b' },
  { name: 'se', word: 1, hi: 33, lo: 33, t: 'b' },
  /** SA: suppress all I/O page fault events (Linux DEV_ENTRY_NO_PAGE_FAULT). */
  { name: 'sa', word: 1, hi: 34, lo: 34, t: 'b' },
  { name: 'ioctl', word: 1, hi: 36, lo: 35 },
  { name: 'cache', word: 1, hi: 37, lo: 37, t: 'b' },
  { name: 'sd', word: 1, hi: 38, lo: 38, t: 'b' },
  { name: 'ex', word: 1, hi: 39, lo: 39, t: 'b' },
  { name: 'sysMgt', word: 1, hi: 41, lo: 40 },
  { name: 'gcr3Hi', word: 1, hi: 63, lo: 43 },
  { name: 'iv', word: 2, hi: 0, lo: 0, t: 'b' },
  { name: 'intTabLen', word: 2, hi: 4, lo: 1 },
  { name: 'ig', word: 2, hi: 5, lo: 5, t: 'b' },
  { name: 'intTableRoot', word: 2, hi: 51, lo: 6, t: 'a', shift: 6 },
  { name: 'guestPagingMode', word: 2, hi: 55, lo: 54 },
  { name: 'initPass', word: 2, hi: 56, lo: 56, t: 'b' },
  { name: 'eintPass', word: 2, hi: 57, lo: 57, t: 'b' },
  { name: 'nmiPass', word: 2, hi: 58, lo: 58, t: 'b' },
  { name: 'intCtl', word: 2, hi: 61, lo: 60 },
  { name: 'lint0Pass', word: 2, hi: 62, lo: 62, t: 'b' },
  { name: 'lint1Pass', word: 2, hi: 63, lo: 63, t: 'b' },
];
checkFieldTable('AMD_DTE', DTE_FIELDS, DTE_WORDS);

export interface Dte {
  v: boolean; tv: boolean; had: number;
  /** DTE_MODE_*: host (v1) page-table levels. */
  mode: number;
  /** Host page-table root, 4 KiB aligned. */
  ptRoot: bigint;
  ppr: boolean; gprp: boolean; giov: boolean; gv: boolean; glx: number;
  /** GCR3 table root pointer, 4 KiB aligned, below 2^52 (stored split three ways). */
  gcr3Root: bigint;
  ir: boolean; iw: boolean;
  /** 16-bit DomainID tagging this device's IOTLB entries. */
  domainId: number;
  i: boolean; se: boolean; sa: boolean; ioctl: number; cache: boolean; sd: boolean; ex: boolean; sysMgt: number;
  iv: boolean; intTabLen: number; ig: boolean; intTableRoot: bigint; guestPagingMode: number;
  initPass: boolean; eintPass: boolean; nmiPass: boolean; intCtl: number; lint0Pass: boolean; lint1Pass: boolean;
}

const SPLIT = new Set(['gcr3Lo', 'gcr3Mid', 'gcr3Hi']);

/** An invalid entry with every field zero. */
export const DTE_ZERO: Readonly<Dte> = Object.freeze({
  ...Object.fromEntries(DTE_FIELDS.filter((f) => !SPLIT.has(f.name))
    .map((f) => [f.name, f.t === 'b' ? false : f.t === 'a' ? 0n : 0])),
  gcr3Root: 0n,
} as unknown as Dte);

/** The three DTE pieces of a GCR3 root pointer (Linux DTE_GCR3_VAL_A/B/C). */
export function splitGcr3Root(root: bigint): { gcr3Lo: number; gcr3Mid: number; gcr3Hi: number } {
  if (root < 0n || root >= 1n << 52n || (root & 0xfffn) !== 0n) {
    throw new RangeError(`GCR3 root 0x${root.toString(16)} is not a 4 KiB aligned 52-bit address`);
  }
  return { gcr3Lo: Number((root >> 12n) & 0x7n), gcr3Mid: Number((root >> 15n) & 0xffffn), gcr3Hi: Number(root >> 31n) };
}

export function joinGcr3Root(lo: number, mid: number, hi: number): bigint {
  return (BigInt(hi) << 31n) | (BigInt(mid) << 15n) | (BigInt(lo) << 12n);
}

export function encodeDte(d: Dte): bigint[] {
  return encodeTyped(DTE_FIELDS, DTE_WORDS, { ...d, ...splitGcr3Root(d.gcr3Root) } as unknown as Record<string, unknown>);
}

export function decodeDte(words: readonly bigint[]): Dte {
  const { gcr3Lo, gcr3Mid, gcr3Hi, ...rest } = decodeTyped(DTE_FIELDS, words);
  return { ...rest, gcr3Root: joinGcr3Root(Number(gcr3Lo), Number(gcr3Mid), Number(gcr3Hi)) } as unknown as Dte;
}
