/**
 * Arm AArch64 (VMSAv8-64) translation-table descriptors, 4 KiB granule: stage 1, the format
 * an SMMUv3 CD's TTB0 points at (T0SZ=16 → 4 levels / 48-bit input, T0SZ=25 → 3 levels /
 * 39-bit) and that Linux io-pgtable-arm.c (ARM_64_LPAE_S1) writes for DMA domains; and the
 * stage-2 leaves (ARM_64_LPAE_S2) an STE's S2TTB points at (MemAttr, S2AP, XN).
 *
 * Models: table descriptors (valid, bit 1 = 1, next-level table address 47:12, PXNTable,
 * XNTable, APTable, NSTable); page descriptors (level 1, bit 1 = 1) and block descriptors
 * (level 2 = 2 MiB, level 3 = 1 GiB, bit 1 = 0) with AttrIndx, NS, AP[1] (unprivileged
 * access), AP[2] (read-only), SH, AF, nG, output address 47:12, DBM, Contiguous, PXN, UXN
 * and the software bits 58:55. Levels are numbered as the walk goes down, as in fs-pte.ts:
 * level 4 here is Arm's level 0, level 1 is Arm's level 3.
 * Does not model: the hierarchical table attributes (PXNTable/XNTable/APTable/NSTable are
 * stored, never applied — Linux does not set them); the access flag (the writer always sets
 * AF; a walk does not fault on AF=0); memory attributes (AttrIndx/SH/NS stored, not used);
 * DBM/dirty state and Contiguous TLB hints; PXN (privileged execute never — stored, the
 * exec permission is UXN's: requests count as unprivileged); WXN/UWXN; the reserved
 * encodings a real walk faults on (block at level 4, bit 1 = 0 at level 1); 52-bit output
 * addresses (FEAT_LPA/LPA2: bits 49:48, 9:8); the 16 KiB and 64 KiB granules; TTB1; bit 50
 * (GP) and bits 62:59 of leaves (PBHA).
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../bits.js';

export const ARM64_PTE_BYTES = 8;
export const ARM64_PTE_PER_TABLE = 512;

/** Page (level 1) and block (levels 2, 3) descriptors. */
export const ARM64_LEAF_FIELDS: readonly TypedField[] = [
  { name: 'valid', word: 0, hi: 0, lo: 0, t: 'b' },
  /** Bit 1: 1 = page descriptor (level 1), 0 = block descriptor (levels 2 and 3). */
  { name: 'page', word: 0, hi: 1, lo: 1, t: 'b' },
  /** Index into MAIR (the CD's MAIR field): the memory attributes. */
  { name: 'attrIndx', word: 0, hi: 4, lo: 2 },
  { name: 'ns', word: 0, hi: 5, lo: 5, t: 'b' },
  /** AP[1]: unprivileged (EL0) access allowed (Linux ARM_LPAE_PTE_AP_UNPRIV). */
  { name: 'ap1', word: 0, hi: 6, lo: 6, t: 'b' },
  /** AP[2]: read-only at every privilege (Linux ARM_LPAE_PTE_AP_RDONLY). */
  { name: 'ap2', word: 0, hi: 7, lo: 7, t: 'b' },
  /** Shareability: 0 non-, 2 outer, 3 inner shareable. */
  { name: 'sh', word: 0, hi: 9, lo: 8 },
  { name: 'af', word: 0, hi: 10, lo: 10, t: 'b' },
  /** nG: not global, the TLB entry is ASID-tagged. */
  { name: 'ng', word: 0, hi: 11, lo: 11, t: 'b' },
  { name: 'addr', word: 0, hi: 47, lo: 12, t: 'a', shift: 12 },
  { name: 'dbm', word: 0, hi: 51, lo: 51, t: 'b' },
  { name: 'contiguous', word: 0, hi: 52, lo: 52, t: 'b' },
  { name: 'pxn', word: 0, hi: 53, lo: 53, t: 'b' },
  /** UXN (XN at a single-privilege regime): unprivileged execute never. */
  { name: 'uxn', word: 0, hi: 54, lo: 54, t: 'b' },
  /** Bits 58:55, ignored by hardware (Linux uses bit 55 as ARM_LPAE_PTE_SW_SYNC). */
  { name: 'sw', word: 0, hi: 58, lo: 55 },
];
checkFieldTable('ARM64_LEAF', ARM64_LEAF_FIELDS, 1);

/** Table descriptors (levels 4..2, bit 1 = 1). Bits 11:2 and 58:51 are ignored. */
export const ARM64_TABLE_FIELDS: readonly TypedField[] = [
  { name: 'valid', word: 0, hi: 0, lo: 0, t: 'b' },
  /** Bit 1: 1 = table descriptor. */
  { name: 'table', word: 0, hi: 1, lo: 1, t: 'b' },
  { name: 'addr', word: 0, hi: 47, lo: 12, t: 'a', shift: 12 },
  { name: 'pxnTable', word: 0, hi: 59, lo: 59, t: 'b' },
  { name: 'xnTable', word: 0, hi: 60, lo: 60, t: 'b' },
  { name: 'apTable', word: 0, hi: 62, lo: 61 },
  { name: 'nsTable', word: 0, hi: 63, lo: 63, t: 'b' },
];
checkFieldTable('ARM64_TABLE', ARM64_TABLE_FIELDS, 1);

export interface Arm64Leaf {
  valid: boolean;
  /** true: page descriptor (level 1); false: block descriptor (levels 2, 3). */
  page: boolean;
  attrIndx: number;
  ns: boolean;
  ap1: boolean;
  ap2: boolean;
  sh: number;
  af: boolean;
  ng: boolean;
  /** Output address, 4 KiB aligned (2 MiB / 1 GiB for blocks), below 2^48. */
  addr: bigint;
  dbm: boolean;
  contiguous: boolean;
  pxn: boolean;
  uxn: boolean;
  sw: number;
}

export interface Arm64Table {
  valid: boolean;
  table: boolean;
  /** Next-level table address, 4 KiB aligned, below 2^48. */
  addr: bigint;
  pxnTable: boolean;
  xnTable: boolean;
  apTable: number;
  nsTable: boolean;
}

export function encodeArm64Leaf(e: Arm64Leaf): bigint {
  return encodeTyped(ARM64_LEAF_FIELDS, 1, e as unknown as Record<string, unknown>)[0];
}
export function decodeArm64Leaf(w: bigint): Arm64Leaf {
  return decodeTyped(ARM64_LEAF_FIELDS, [w]) as unknown as Arm64Leaf;
}
export function encodeArm64Table(e: Arm64Table): bigint {
  return encodeTyped(ARM64_TABLE_FIELDS, 1, e as unknown as Record<string, unknown>)[0];
}
export function decodeArm64Table(w: bigint): Arm64Table {
  return decodeTyped(ARM64_TABLE_FIELDS, [w]) as unknown as Arm64Table;
}

// --- Linux io-pgtable-arm.c values the writer uses. ---

/** MAIR indices Linux programs (ARM_LPAE_MAIR_ATTR_IDX_*): 0 NC, 1 WBRWA cacheable, 2 device nGnRE, 3 inner-NC/outer-WB. */
export const ARM64_MAIR_IDX_NC = 0;
export const ARM64_MAIR_IDX_CACHE = 1;
export const ARM64_MAIR_IDX_DEV = 2;
export const ARM64_MAIR_IDX_INC_OCACHE = 3;
export const ARM64_SH_NS = 0;
export const ARM64_SH_OS = 2;
export const ARM64_SH_IS = 3;

// --- Hot path: the descriptor as two u32 halves (lo = bits 31:0, hi = bits 63:32). ---

export const ARM64_VALID = 1 << 0;
/** Bit 1: table (levels 4..2) or page (level 1); clear = block (levels 3, 2). */
export const ARM64_TYPE = 1 << 1;
export const ARM64_ATTRINDX_SHIFT = 2;
export const ARM64_NS = 1 << 5;
export const ARM64_AP_UNPRIV = 1 << 6;
export const ARM64_AP_RDONLY = 1 << 7;
export const ARM64_SH_SHIFT = 8;
export const ARM64_AF = 1 << 10;
export const ARM64_NG = 1 << 11;
/** High-half bit of DBM (descriptor bit 51). */
export const ARM64_HI_DBM = 1 << (51 - 32);
/** High-half bit of Contiguous (bit 52). */
export const ARM64_HI_CONT = 1 << (52 - 32);
/** High-half bit of PXN (bit 53). */
export const ARM64_HI_PXN = 1 << (53 - 32);
/** High-half bit of UXN/XN (bit 54). */
export const ARM64_HI_UXN = 1 << (54 - 32);
/** High-half bits of PXNTable (59), XNTable (60), APTable (62:61 shift), NSTable (63). */
export const ARM64_HI_PXN_TABLE = 1 << (59 - 32);
export const ARM64_HI_XN_TABLE = 1 << (60 - 32);
export const ARM64_HI_AP_TABLE_SHIFT = 61 - 32;
export const ARM64_HI_NS_TABLE = 0x80000000;
/** Address bits 47:32 in the high half. */
const ARM64_ADDR_HI_MASK = 0xffff;
/** Frames the 48-bit output address can name. */
export const ARM64_MAX_FRAME = 2 ** 36;

export function arm64Valid(lo: number): boolean { return (lo & ARM64_VALID) !== 0; }
/** Bit 1 clear: a block descriptor (meaningful at levels 2 and 3 only). */
export function arm64Block(lo: number): boolean { return (lo & ARM64_TYPE) === 0; }
export function arm64ReadOnly(lo: number): boolean { return (lo & ARM64_AP_RDONLY) !== 0; }
export function arm64Unpriv(lo: number): boolean { return (lo & ARM64_AP_UNPRIV) !== 0; }
export function arm64Uxn(hi: number): boolean { return (hi & ARM64_HI_UXN) !== 0; }
export function arm64Pxn(hi: number): boolean { return (hi & ARM64_HI_PXN) !== 0; }
/** Frame number (address >> 12) of any descriptor (address bits 47:12). */
export function arm64Frame(lo: number, hi: number): number {
  return (hi & ARM64_ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}

export interface Arm64LeafFlags {
  write: boolean;
  exec: boolean;
  /** AP[1]: unprivileged access allowed. */
  user: boolean;
  /** Block descriptor (level 2 or 3) rather than a page (level 1). */
  block?: boolean;
}

function checkFrame(frame: number): void {
  if (!(frame >= 0 && frame < ARM64_MAX_FRAME)) throw new RangeError(`arm64 descriptor: frame 0x${frame.toString(16)} beyond the 48-bit output address`);
}

/**
 * Low half of a page/block descriptor as arm_lpae_prot_to_pte writes it for a stage-1
 * cacheable mapping (IOMMU_CACHE): valid, page/block type, AttrIndx = ARM64_MAIR_IDX_CACHE,
 * SH inner shareable, AF, nG, AP[1] when `user`, AP[2] when not writable.
 */
export function arm64MakeLeafLo(frame: number, f: Arm64LeafFlags): number {
  checkFrame(frame);
  return ((((frame % 0x100000) << 12) | ARM64_VALID | (f.block ? 0 : ARM64_TYPE) | (ARM64_MAIR_IDX_CACHE << ARM64_ATTRINDX_SHIFT)
    | (f.user ? ARM64_AP_UNPRIV : 0) | (f.write ? 0 : ARM64_AP_RDONLY) | (ARM64_SH_IS << ARM64_SH_SHIFT) | ARM64_AF | ARM64_NG) >>> 0);
}
/** High half of a page/block descriptor: address 47:32, PXN|UXN (Linux ARM_LPAE_PTE_XN) when not executable. */
export function arm64MakeLeafHi(frame: number, f: Arm64LeafFlags): number {
  checkFrame(frame);
  return ((Math.floor(frame / 0x100000) & ARM64_ADDR_HI_MASK) | (f.exec ? 0 : ARM64_HI_PXN | ARM64_HI_UXN)) >>> 0;
}
/** Low half of a table descriptor (no table attributes, as Linux writes it). */
export function arm64MakeTableLo(frame: number): number {
  checkFrame(frame);
  return ((((frame % 0x100000) << 12) | ARM64_VALID | ARM64_TYPE) >>> 0);
}
// --- Stage 2 (VMSAv8-64 stage-2 descriptors, Linux ARM_64_LPAE_S2): the same table and
// address layout; leaves carry MemAttr 5:2, S2AP 7:6 (bit 6 read, bit 7 write), SH, AF and
// XN 54:53 instead of AttrIndx/AP/nG/PXN/UXN. ---

/** S2AP[0]: reads allowed. */
export const ARM64_S2AP_READ = 1 << 6;
/** S2AP[1]: writes allowed. */
export const ARM64_S2AP_WRITE = 1 << 7;
/** MemAttr 0xf (bits 5:2): normal memory, inner and outer write-back cacheable (ARM_LPAE_PTE_MEMATTR_OIWB). */
export const ARM64_S2_MEMATTR_OIWB = 0xf << 2;
/** XN[1:0] both set: execute never at EL0 and EL1 (Linux ARM_LPAE_PTE_XN). */
export const ARM64_HI_S2_XN = (1 << (53 - 32)) | (1 << (54 - 32));

/** Low half of a stage-2 page/block descriptor as arm_lpae_prot_to_pte writes it for a cacheable mapping. */
export function arm64MakeS2LeafLo(frame: number, f: { read: boolean; write: boolean; block?: boolean }): number {
  checkFrame(frame);
  return ((((frame % 0x100000) << 12) | ARM64_VALID | (f.block ? 0 : ARM64_TYPE) | ARM64_S2_MEMATTR_OIWB
    | (f.read ? ARM64_S2AP_READ : 0) | (f.write ? ARM64_S2AP_WRITE : 0) | (ARM64_SH_IS << ARM64_SH_SHIFT) | ARM64_AF) >>> 0);
}
/** High half of a stage-2 page/block descriptor: address 47:32, XN when not executable. */
export function arm64MakeS2LeafHi(frame: number, f: { exec: boolean }): number {
  checkFrame(frame);
  return ((Math.floor(frame / 0x100000) & ARM64_ADDR_HI_MASK) | (f.exec ? 0 : ARM64_HI_S2_XN)) >>> 0;
}

export function arm64MakeTableHi(frame: number): number {
  checkFrame(frame);
  return Math.floor(frame / 0x100000) & ARM64_ADDR_HI_MASK;
}
