/**
 * Arm SMMUv3 Context Descriptor (CD, 64 B) and the level-1 CD table descriptor.
 *
 * Models: DW0 — the TCR fields for both TTBs (T0SZ, TG0, IR0, OR0, SH0, EPD0, T1SZ, TG1,
 * IR1, OR1, SH1, EPD1), ENDI, V, IPS, AFFD, WXN, UWXN, TBI (TBI0 = bit 38, TBI1 = bit 39),
 * PAN, AA64, HD, HA, S (stall), R, A, ASET and the 16-bit ASID; DW1/DW2 — NSCFG, HAD and
 * TTB0/TTB1; DW3 — MAIR (MAIR0 | MAIR1 << 32); DW4 — AMAIR. The CD table geometry (linear
 * up to CTXDESC_LINEAR_CDMAX, 2-level with 1024-entry leaves) and the L1 descriptor.
 * Positions: Linux arm-smmu-v3.h (CTXDESC_CD_*), gem5 smmu_v3_defs.hh (ContextDescriptor)
 * and QEMU smmuv3-internal.h (CD_*); HARDWARE.md §1.2.2.
 * Does not model: the HWU bits (DW1/DW2 63:60), DW5–7 (PARTID/PMG, reserved), the
 * C_BAD_CD legality rules.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';

export const CD_BYTES = 64;
export const CD_WORDS = 8;
/** Linux CTXDESC_L2_ENTRIES: CDs per leaf table of a 2-level CD table. */
export const CTXDESC_L2_ENTRIES = 1024;
/** Linux CTXDESC_LINEAR_CDMAX = ilog2(64 KiB / 64 B): the largest linear table is 2^10 CDs. */
export const CTXDESC_LINEAR_CDMAX = 10;

export const CD_FIELDS: readonly TypedField[] = [
  { name: 't0sz', word: 0, hi: 5, lo: 0 },
  { name: 'tg0', word: 0, hi: 7, lo: 6 },
  { name: 'ir0', word: 0, hi: 9, lo: 8 },
  { name: 'or0', word: 0, hi: 11, lo: 10 },
  { name: 'sh0', word: 0, hi: 13, lo: 12 },
  { name: 'epd0', word: 0, hi: 14, lo: 14, t: 'b' },
  { name: 'endi', word: 0, hi: 15, lo: 15, t: 'b' },
  { name: 't1sz', word: 0, hi: 21, lo: 16 },
  { name: 'tg1', word: 0, hi: 23, lo: 22 },
  { name: 'ir1', word: 0, hi: 25, lo: 24 },
  { name: 'or1', word: 0, hi: 27, lo: 26 },
  { name: 'sh1', word: 0, hi: 29, lo: 28 },
  { name: 'epd1', word: 0, hi: 30, lo: 30, t: 'b' },
  { name: 'v', word: 0, hi: 31, lo: 31, t: 'b' },
  { name: 'ips', word: 0, hi: 34, lo: 32 },
  /** AFFD: access flag fault disable. */
  { name: 'affd', word: 0, hi: 35, lo: 35, t: 'b' },
  { name: 'wxn', word: 0, hi: 36, lo: 36, t: 'b' },
  { name: 'uwxn', word: 0, hi: 37, lo: 37, t: 'b' },
  /** TBI: bit 0 = TBI0 (CD bit 38), bit 1 = TBI1 (CD bit 39). */
  { name: 'tbi', word: 0, hi: 39, lo: 38 },
  { name: 'pan', word: 0, hi: 40, lo: 40, t: 'b' },
  { name: 'aa64', word: 0, hi: 41, lo: 41, t: 'b' },
  { name: 'hd', word: 0, hi: 42, lo: 42, t: 'b' },
  { name: 'ha', word: 0, hi: 43, lo: 43, t: 'b' },
  /** S: stall faults (instead of terminate) for this context. */
  { name: 's', word: 0, hi: 44, lo: 44, t: 'b' },
  /** R: record faults in the event queue. */
  { name: 'r', word: 0, hi: 45, lo: 45, t: 'b' },
  /** A: abort (rather than RAZ/WI) on a terminated fault. */
  { name: 'a', word: 0, hi: 46, lo: 46, t: 'b' },
  /** ASET: the ASID is not shared with the PE's broadcast TLBI (Linux sets it unless BTM/SVA). */
  { name: 'aset', word: 0, hi: 47, lo: 47, t: 'b' },
  { name: 'asid', word: 0, hi: 63, lo: 48 },
  { name: 'nscfg0', word: 1, hi: 0, lo: 0, t: 'b' },
  { name: 'had0', word: 1, hi: 1, lo: 1, t: 'b' },
  { name: 'ttb0', word: 1, hi: 51, lo: 4, t: 'a', shift: 4 },
  { name: 'nscfg1', word: 2, hi: 0, lo: 0, t: 'b' },
  { name: 'had1', word: 2, hi: 1, lo: 1, t: 'b' },
  { name: 'ttb1', word: 2, hi: 51, lo: 4, t: 'a', shift: 4 },
  { name: 'mair', word: 3, hi: 63, lo: 0, t: 'g' },
  { name: 'amair', word: 4, hi: 63, lo: 0, t: 'g' },
];
checkFieldTable('SMMU_CD', CD_FIELDS, CD_WORDS);

export interface Cd {
  t0sz: number; tg0: number; ir0: number; or0: number; sh0: number; epd0: boolean; endi: boolean;
  t1sz: number; tg1: number; ir1: number; or1: number; sh1: number; epd1: boolean;
  v: boolean; ips: number; affd: boolean; wxn: boolean; uwxn: boolean; tbi: number; pan: boolean;
  aa64: boolean; hd: boolean; ha: boolean; s: boolean; r: boolean; a: boolean; aset: boolean;
  /** 16-bit ASID tagging this context's TLB entries (8-bit without IDR0.ASID16). */
  asid: number;
  nscfg0: boolean; had0: boolean;
  /** Stage-1 table for the lower VA range, 16-byte aligned. */
  ttb0: bigint;
  nscfg1: boolean; had1: boolean; ttb1: bigint;
  mair: bigint;
  amair: bigint;
}

/** An invalid (V = 0) CD with every field zero. */
export const CD_ZERO: Readonly<Cd> = Object.freeze(
  Object.fromEntries(CD_FIELDS.map((f) => [f.name, f.t === 'b' ? false : f.t === 'a' || f.t === 'g' ? 0n : 0])) as unknown as Cd);

export function encodeCd(c: Cd): bigint[] {
  return encodeTyped(CD_FIELDS, CD_WORDS, c as unknown as Record<string, unknown>);
}

export function decodeCd(words: readonly bigint[]): Cd {
  return decodeTyped(CD_FIELDS, words) as unknown as Cd;
}

// --- Level-1 CD table descriptor (8 B) and CD table geometry. ---

export const CD_L1_DESC_BYTES = 8;
export const CD_L1_DESC_FIELDS: readonly TypedField[] = [
  { name: 'v', word: 0, hi: 0, lo: 0, t: 'b' },
  /** L2Ptr: the 4 KiB-aligned leaf table (Linux CTXDESC_L1_DESC_L2PTR_MASK 51:12). */
  { name: 'l2Ptr', word: 0, hi: 51, lo: 12, t: 'a', shift: 12 },
];
checkFieldTable('SMMU_CD_L1', CD_L1_DESC_FIELDS, 1);

export interface CdL1Desc { v: boolean; l2Ptr: bigint }

export function encodeCdL1Desc(d: CdL1Desc): bigint {
  return encodeTyped(CD_L1_DESC_FIELDS, 1, d as unknown as Record<string, unknown>)[0];
}
export function decodeCdL1Desc(word: bigint): CdL1Desc {
  return decodeTyped(CD_L1_DESC_FIELDS, [word]) as unknown as CdL1Desc;
}

/**
 * Where the CD of an SSID lives: a linear table when S1CDMax ≤ CTXDESC_LINEAR_CDMAX (or the
 * SMMU lacks CD2L), else L1 index ssid / 1024 and leaf index ssid % 1024 (Linux
 * arm_smmu_cdtab_l1_idx / l2_idx).
 */
export function cdIndex(ssid: number, twoLevel: boolean): { l1: number; l2: number } {
  return twoLevel ? { l1: Math.floor(ssid / CTXDESC_L2_ENTRIES), l2: ssid % CTXDESC_L2_ENTRIES } : { l1: 0, l2: ssid };
}
