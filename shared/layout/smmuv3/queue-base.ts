/**
 * Arm SMMUv3 queue and stream-table base registers, and the CMDQ_CONS error field.
 *
 * Models: Q_BASE of the command, event and PRI queues (RWA 62, ADDR 51:5, LOG2SIZE 4:0);
 * the queue sizes IDR1 advertises (CMDQS 25:21, EVTQS 20:16, PRIQS 15:11, SSIDSIZE 10:6,
 * SIDSIZE 5:0); CMDQ_CONS.ERR (30:24) with the CERROR codes; STRTAB_BASE (RA 62, ADDR
 * 51:6) and STRTAB_BASE_CFG (FMT 17:16, SPLIT 10:6, LOG2SIZE 5:0); the register offsets.
 * The PROD/CONS index, wrap and overflow bits are shared/layout/queue-pointer.ts; this file
 * adds only what that one leaves out (its header lists CMDQ_CONS.ERR as not modelled).
 * Positions: Linux arm-smmu-v3.h (Q_BASE_*, IDR1_*, CMDQ_CONS_ERR, STRTAB_BASE*), QEMU
 * smmuv3-internal.h (SMMU_CERROR_*); HARDWARE.md §1.2.1.
 * Does not model: the IRQ_CFG registers, GERROR, page-1 aliases beyond their offsets.
 * encodeQBase refuses LOG2SIZE above Q_LOG2_MAX (30): the simulator's pointers keep bit 31
 * for the overflow flag; decoding accepts the whole 5-bit field.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';
import { Q_LOG2_MAX } from '../queue-pointer.js';

/** Register offsets (page 0; the event/PRI PROD/CONS also appear in page 1 at +0x10000). */
export const SMMU_REG = {
  IDR0: 0x0, IDR1: 0x4, STRTAB_BASE: 0x80, STRTAB_BASE_CFG: 0x88,
  CMDQ_BASE: 0x90, CMDQ_PROD: 0x98, CMDQ_CONS: 0x9c,
  EVTQ_BASE: 0xa0, EVTQ_PROD: 0xa8, EVTQ_CONS: 0xac,
  PRIQ_BASE: 0xc0, PRIQ_PROD: 0xc8, PRIQ_CONS: 0xcc,
} as const;
export const SMMU_PAGE1_OFFSET = 0x10000;

export const Q_BASE_FIELDS: readonly TypedField[] = [
  { name: 'log2size', word: 0, hi: 4, lo: 0 },
  /** ADDR: queue base, aligned to the queue size (at least 32 B). */
  { name: 'addr', word: 0, hi: 51, lo: 5, t: 'a', shift: 5 },
  /** RWA: read/write allocate hint. */
  { name: 'rwa', word: 0, hi: 62, lo: 62, t: 'b' },
];
checkFieldTable('SMMU_Q_BASE', Q_BASE_FIELDS, 1);

export interface QBase { log2size: number; addr: bigint; rwa: boolean }

export function encodeQBase(q: QBase): bigint {
  if (q.log2size > Q_LOG2_MAX) throw new RangeError(`Q_BASE.LOG2SIZE ${q.log2size} > ${Q_LOG2_MAX}`);
  return encodeTyped(Q_BASE_FIELDS, 1, q as unknown as Record<string, unknown>)[0];
}
export function decodeQBase(v: bigint): QBase {
  return decodeTyped(Q_BASE_FIELDS, [v]) as unknown as QBase;
}

/** IDR1 (32 bits) fields that size the queues and the ID spaces. */
export const IDR1_FIELDS: readonly TypedField[] = [
  { name: 'sidsize', word: 0, hi: 5, lo: 0 },
  { name: 'ssidsize', word: 0, hi: 10, lo: 6 },
  { name: 'priqs', word: 0, hi: 15, lo: 11 },
  { name: 'evtqs', word: 0, hi: 20, lo: 16 },
  { name: 'cmdqs', word: 0, hi: 25, lo: 21 },
];
checkFieldTable('SMMU_IDR1', IDR1_FIELDS, 1);

export interface Idr1 { sidsize: number; ssidsize: number; priqs: number; evtqs: number; cmdqs: number }

export function encodeIdr1(i: Idr1): number {
  return Number(encodeTyped(IDR1_FIELDS, 1, i as unknown as Record<string, unknown>)[0]);
}
export function decodeIdr1(v: number): Idr1 {
  return decodeTyped(IDR1_FIELDS, [BigInt(v >>> 0)]) as unknown as Idr1;
}

/** IDR0 bits that widen ASIDs and VMIDs to 16 bits (Linux IDR0_ASID16 / IDR0_VMID16). */
export const IDR0_ASID16 = 1 << 12;
export const IDR0_VMID16 = 1 << 18;

// --- CMDQ_CONS.ERR (bits 30:24): why the command at CONS was not executed. ---

export const CMDQ_CONS_ERR_SHIFT = 24;
export const CMDQ_CONS_ERR_MASK = 0x7f << CMDQ_CONS_ERR_SHIFT;
/** CERROR codes (Linux CMDQ_ERR_CERROR_*_IDX, QEMU SMMUCmdError). */
export const CERROR_NONE = 0;
/** Illegal command: unknown opcode or bad field. */
export const CERROR_ILL = 1;
/** Abort reading the command. */
export const CERROR_ABT = 2;
/** An ATC_INV before this CMD_SYNC timed out (QEMU SMMU_CERROR_ATC_INV_SYNC). */
export const CERROR_ATC_INV_SYNC = 3;

/** The ERR field of a CMDQ_CONS value. */
export function cmdqConsErr(cons: number): number {
  return (cons >>> CMDQ_CONS_ERR_SHIFT) & 0x7f;
}

/** CMDQ_CONS with ERR set to `err` (0..127); the index, wrap and bit 31 are kept. */
export function cmdqConsWithErr(cons: number, err: number): number {
  if (!Number.isInteger(err) || err < 0 || err > 0x7f) throw new RangeError(`CMDQ_CONS.ERR ${err}`);
  return ((cons & ~CMDQ_CONS_ERR_MASK) | (err << CMDQ_CONS_ERR_SHIFT)) >>> 0;
}

// --- Stream table base registers. ---

export const STRTAB_BASE_FIELDS: readonly TypedField[] = [
  { name: 'addr', word: 0, hi: 51, lo: 6, t: 'a', shift: 6 },
  { name: 'ra', word: 0, hi: 62, lo: 62, t: 'b' },
];
checkFieldTable('SMMU_STRTAB_BASE', STRTAB_BASE_FIELDS, 1);

export const STRTAB_BASE_CFG_FIELDS: readonly TypedField[] = [
  { name: 'log2size', word: 0, hi: 5, lo: 0 },
  { name: 'split', word: 0, hi: 10, lo: 6 },
  /** FMT: 0 linear, 1 two-level. */
  { name: 'fmt', word: 0, hi: 17, lo: 16 },
];
checkFieldTable('SMMU_STRTAB_BASE_CFG', STRTAB_BASE_CFG_FIELDS, 1);
export const STRTAB_FMT_LINEAR = 0;
export const STRTAB_FMT_2LVL = 1;

export interface StrtabBase { addr: bigint; ra: boolean }
export interface StrtabBaseCfg { log2size: number; split: number; fmt: number }

export function encodeStrtabBase(s: StrtabBase): bigint {
  return encodeTyped(STRTAB_BASE_FIELDS, 1, s as unknown as Record<string, unknown>)[0];
}
export function decodeStrtabBase(v: bigint): StrtabBase {
  return decodeTyped(STRTAB_BASE_FIELDS, [v]) as unknown as StrtabBase;
}
export function encodeStrtabBaseCfg(s: StrtabBaseCfg): number {
  return Number(encodeTyped(STRTAB_BASE_CFG_FIELDS, 1, s as unknown as Record<string, unknown>)[0]);
}
export function decodeStrtabBaseCfg(v: number): StrtabBaseCfg {
  return decodeTyped(STRTAB_BASE_CFG_FIELDS, [BigInt(v >>> 0)]) as unknown as StrtabBaseCfg;
}
