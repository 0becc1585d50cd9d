/**
 * Arm SMMUv3 PRI-queue record (16 B): one PCIe PRI Page Request as the SMMU logs it.
 *
 * Models: DW0 — StreamID (31:0), SubstreamID (51:32), Priv (58), Exec (59), Read (60),
 * Write (61), Last (62: last request of the page request group), SSV (63); DW1 — PRG index
 * (8:0) and the page address (63:12). Linux PRIQ_ENT_SZ_SHIFT.
 * Positions: Linux arm-smmu-v3.h (PRIQ_0_*, PRIQ_1_*); HARDWARE.md §1.2.4.
 * Does not model: the queue registers and overflow (queue-pointer.ts), the PRI response
 * (CMD_PRI_RESP in commands.ts), stop markers. Decoding drops reserved bits (57:52, 11:9).
 *
 * Writers store DW0's low half last: a reader polling the slot sees whole records.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped, readTypedU32, writeTypedU32 } from '../../bits.js';

export const SMMU_PRI_BYTES = 16;
export const SMMU_PRI_WORDS = 2;
export const SMMU_PRI_U32 = 4;
/** Linux PRIQ_ENT_SZ_SHIFT. */
export const PRIQ_ENT_SZ_SHIFT = 4;

export const SMMU_PRI_FIELDS: readonly TypedField[] = [
  { name: 'sid', word: 0, hi: 31, lo: 0 },
  { name: 'ssid', word: 0, hi: 51, lo: 32 },
  { name: 'priv', word: 0, hi: 58, lo: 58, t: 'b' },
  { name: 'exec', word: 0, hi: 59, lo: 59, t: 'b' },
  { name: 'read', word: 0, hi: 60, lo: 60, t: 'b' },
  { name: 'write', word: 0, hi: 61, lo: 61, t: 'b' },
  { name: 'last', word: 0, hi: 62, lo: 62, t: 'b' },
  { name: 'ssv', word: 0, hi: 63, lo: 63, t: 'b' },
  { name: 'prgIndex', word: 1, hi: 8, lo: 0 },
  { name: 'addr', word: 1, hi: 63, lo: 12, t: 'a', shift: 12 },
];
checkFieldTable('SMMU_PRI', SMMU_PRI_FIELDS, SMMU_PRI_WORDS);

export interface SmmuPriRecord {
  sid: number;
  ssid: number;
  priv: boolean;
  exec: boolean;
  read: boolean;
  write: boolean;
  /** End of the page request group: a CMD_PRI_RESP is owed. */
  last: boolean;
  ssv: boolean;
  prgIndex: number;
  /** Requested page, 4 KiB aligned. */
  addr: bigint;
}

export function encodeSmmuPri(r: SmmuPriRecord): bigint[] {
  return encodeTyped(SMMU_PRI_FIELDS, SMMU_PRI_WORDS, r as unknown as Record<string, unknown>);
}

export function decodeSmmuPri(words: readonly bigint[]): SmmuPriRecord {
  return decodeTyped(SMMU_PRI_FIELDS, words) as unknown as SmmuPriRecord;
}

export function writeSmmuPri(u32: Uint32Array, at: number, r: SmmuPriRecord): void {
  writeTypedU32(SMMU_PRI_FIELDS, SMMU_PRI_WORDS, u32, at, r as unknown as Record<string, unknown>);
}

export function readSmmuPri(u32: Uint32Array, at: number): SmmuPriRecord {
  return readTypedU32(SMMU_PRI_FIELDS, u32, at) as unknown as SmmuPriRecord;
}
