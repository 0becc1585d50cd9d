/**
 * Arm SMMUv3 Stream Table Entry (STE, 64 B) and the level-1 stream table descriptor.
 *
 * Models: the STE fields Linux and the simulator use — DW0: V, Config (abort / bypass / S1 /
 * S2 / nested), S1Fmt, S1ContextPtr, S1CDMax; DW1: S1DSS, S1CIR/S1COR/S1CSH, MEV, S2FWB,
 * S1STALLD, EATS, STRW, SHCFG; DW2: S2VMID and the VTCR fields (S2T0SZ, S2SL0, S2IR0, S2OR0,
 * S2SH0, S2TG, S2PS), S2AA64, S2ENDI, S2AFFD, S2PTW, S2HD, S2HA, S2S, S2R; DW3: S2TTB. The
 * 2-level stream table L1 descriptor (SPAN, L2Ptr) and STRTAB_SPLIT.
 * Positions: Linux drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h (STRTAB_STE_*), gem5
 * src/dev/arm/smmu_v3_defs.hh (StreamTableEntry) and QEMU hw/arm/smmuv3-internal.h (STE_*),
 * which agree; HARDWARE.md §1.2.2.
 * Does not model: DRE/CONT/DCP/PPAR (DW1 17:12), MEMATTR/MTCFG/ALLOCCFG/NSCFG/PRIVCFG/
 * INSTCFG, the S2HWU bits, DW4–7 (secure and MPAM fields) — all kept reserved (dropped on
 * decode); the legality checks of C_BAD_STE (the walker's job).
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';

export const STE_BYTES = 64;
export const STE_WORDS = 8;
/** Linux STRTAB_SPLIT: 2^8 STEs per level-2 table ("each table covers a PCI bus"). */
export const STRTAB_SPLIT = 8;
/** Linux STRTAB_MAX_L1_ENTRIES. */
export const STRTAB_MAX_L1_ENTRIES = 1 << 17;

/** STE.Config (DW0 3:1). */
export const STE_CFG_ABORT = 0;
export const STE_CFG_BYPASS = 4;
export const STE_CFG_S1_TRANS = 5;
export const STE_CFG_S2_TRANS = 6;
export const STE_CFG_NESTED = 7;
/** STE.S1Fmt (DW0 5:4): linear CD table, 2-level with 4 KiB or 64 KiB leaf tables. */
export const S1FMT_LINEAR = 0;
export const S1FMT_4K_L2 = 1;
export const S1FMT_64K_L2 = 2;
/** STE.S1DSS (DW1 1:0): what non-SSID traffic does when S1CDMax > 0. */
export const S1DSS_TERMINATE = 0;
export const S1DSS_BYPASS = 1;
export const S1DSS_SSID0 = 2;
/** STE.EATS (DW1 29:28): ATS translation requests aborted / full / stage-1 checked. */
export const EATS_ABT = 0;
export const EATS_TRANS = 1;
export const EATS_S1CHK = 2;
/** STE.STRW (DW1 31:30): translation regime. */
export const STRW_NSEL1 = 0;
export const STRW_EL2 = 2;
/** S2TG / CD.TG0 granule encodings (TG0: 0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB). */
export const TG0_4K = 0;
export const TG0_64K = 1;
export const TG0_16K = 2;

export const STE_FIELDS: readonly TypedField[] = [
  { name: 'v', word: 0, hi: 0, lo: 0, t: 'b' },
  { name: 'config', word: 0, hi: 3, lo: 1 },
  { name: 's1fmt', word: 0, hi: 5, lo: 4 },
  /** S1ContextPtr: the CD table (or L1 CD table), 64-byte aligned. */
  { name: 's1ContextPtr', word: 0, hi: 51, lo: 6, t: 'a', shift: 6 },
  /** S1CDMax: log2 of the number of CDs (0 = one CD, SSIDs not used). */
  { name: 's1CdMax', word: 0, hi: 63, lo: 59 },
  { name: 's1dss', word: 1, hi: 1, lo: 0 },
  { name: 's1cir', word: 1, hi: 3, lo: 2 },
  { name: 's1cor', word: 1, hi: 5, lo: 4 },
  { name: 's1csh', word: 1, hi: 7, lo: 6 },
  { name: 'mev', word: 1, hi: 19, lo: 19, t: 'b' },
  { name: 's2fwb', word: 1, hi: 25, lo: 25, t: 'b' },
  /** S1STALLD: stall faults disabled for stage 1. */
  { name: 's1stalld', word: 1, hi: 27, lo: 27, t: 'b' },
  { name: 'eats', word: 1, hi: 29, lo: 28 },
  { name: 'strw', word: 1, hi: 31, lo: 30 },
  { name: 'shcfg', word: 1, hi: 45, lo: 44 },
  { name: 's2vmid', word: 2, hi: 15, lo: 0 },
  { name: 's2t0sz', word: 2, hi: 37, lo: 32 },
  { name: 's2sl0', word: 2, hi: 39, lo: 38 },
  { name: 's2ir0', word: 2, hi: 41, lo: 40 },
  { name: 's2or0', word: 2, hi: 43, lo: 42 },
  { name: 's2sh0', word: 2, hi: 45, lo: 44 },
  { name: 's2tg', word: 2, hi: 47, lo: 46 },
  { name: 's2ps', word: 2, hi: 50, lo: 48 },
  { name: 's2aa64', word: 2, hi: 51, lo: 51, t: 'b' },
  { name: 's2endi', word: 2, hi: 52, lo: 52, t: 'b' },
  { name: 's2affd', word: 2, hi: 53, lo: 53, t: 'b' },
  { name: 's2ptw', word: 2, hi: 54, lo: 54, t: 'b' },
  { name: 's2hd', word: 2, hi: 55, lo: 55, t: 'b' },
  { name: 's2ha', word: 2, hi: 56, lo: 56, t: 'b' },
  { name: 's2s', word: 2, hi: 57, lo: 57, t: 'b' },
  { name: 's2r', word: 2, hi: 58, lo: 58, t: 'b' },
  /** S2TTB: stage-2 translation table base, 16-byte aligned. */
  { name: 's2ttb', word: 3, hi: 51, lo: 4, t: 'a', shift: 4 },
];
checkFieldTable('SMMU_STE', STE_FIELDS, STE_WORDS);

export interface Ste {
  v: boolean;
  /** STE_CFG_*; 1–3 are reserved encodings (C_BAD_STE). */
  config: number;
  s1fmt: number;
  s1ContextPtr: bigint;
  s1CdMax: number;
  s1dss: number;
  s1cir: number;
  s1cor: number;
  s1csh: number;
  mev: boolean;
  s2fwb: boolean;
  s1stalld: boolean;
  eats: number;
  strw: number;
  shcfg: number;
  s2vmid: number;
  s2t0sz: number;
  s2sl0: number;
  s2ir0: number;
  s2or0: number;
  s2sh0: number;
  s2tg: number;
  s2ps: number;
  s2aa64: boolean;
  s2endi: boolean;
  s2affd: boolean;
  s2ptw: boolean;
  s2hd: boolean;
  s2ha: boolean;
  s2s: boolean;
  s2r: boolean;
  s2ttb: bigint;
}

/** An invalid (V = 0) entry with every field zero: spread it and set what you need. */
export const STE_ZERO: Readonly<Ste> = Object.freeze(
  Object.fromEntries(STE_FIELDS.map((f) => [f.name, f.t === 'b' ? false : f.t === 'a' ? 0n : 0])) as unknown as Ste);

export function encodeSte(e: Ste): bigint[] {
  return encodeTyped(STE_FIELDS, STE_WORDS, e as unknown as Record<string, unknown>);
}

export function decodeSte(words: readonly bigint[]): Ste {
  return decodeTyped(STE_FIELDS, words) as unknown as Ste;
}

/** Config stage bits as QEMU reads them: bit 0 = stage 1 enabled, bit 1 = stage 2 enabled (only when bit 2 is set). */
export function steStage1(config: number): boolean {
  return (config & 4) !== 0 && (config & 1) !== 0;
}
export function steStage2(config: number): boolean {
  return (config & 4) !== 0 && (config & 2) !== 0;
}

// --- Level-1 stream table descriptor (8 B) of a 2-level stream table. ---

export const STE_L1_DESC_BYTES = 8;
export const STE_L1_DESC_FIELDS: readonly TypedField[] = [
  /** SPAN: log2(STEs in the L2 table) + 1; 0 = invalid. Linux writes STRTAB_SPLIT + 1. */
  { name: 'span', word: 0, hi: 4, lo: 0 },
  { name: 'l2Ptr', word: 0, hi: 51, lo: 6, t: 'a', shift: 6 },
];
checkFieldTable('SMMU_STE_L1', STE_L1_DESC_FIELDS, 1);

export interface SteL1Desc { span: number; l2Ptr: bigint }

export function encodeSteL1Desc(d: SteL1Desc): bigint {
  return encodeTyped(STE_L1_DESC_FIELDS, 1, d as unknown as Record<string, unknown>)[0];
}
export function decodeSteL1Desc(word: bigint): SteL1Desc {
  return decodeTyped(STE_L1_DESC_FIELDS, [word]) as unknown as SteL1Desc;
}

/** L1 index and L2 index of a StreamID in a 2-level stream table (Linux arm_smmu_strtab_l1_idx / l2_idx). */
export function steIndex2l(sid: number): { l1: number; l2: number } {
  return { l1: Math.floor(sid / (1 << STRTAB_SPLIT)), l2: sid % (1 << STRTAB_SPLIT) };
}
