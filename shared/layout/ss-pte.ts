/**
 * Second-stage page-table entry: the VT-d second-level (SL) paging-structure format used
 * for IOVA → HPA translation (and as the host stage of nested translation).
 *
 * Models: 3-, 4- and 5-level tables (AW 39/48/57 bits); non-leaf entries and leaves of
 * 4 KiB, 2 MiB (level 2, PS=1) and 1 GiB (level 3, PS=1); R, W, X, EMT, IPAT, PS, A, D,
 * SNP. An entry is present when any of R, W, X is set.
 * Does not model: memory types (EMT/IPAT are stored, not used), the removed TM bit.
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const SS_PTE_BYTES = 8;

export const SS_PTE_FIELDS: FieldTable = [
  { name: 'r', word: 0, hi: 0, lo: 0 },
  { name: 'w', word: 0, hi: 1, lo: 1 },
  { name: 'x', word: 0, hi: 2, lo: 2 },
  { name: 'emt', word: 0, hi: 5, lo: 3 },
  { name: 'ipat', word: 0, hi: 6, lo: 6 },
  { name: 'ps', word: 0, hi: 7, lo: 7 },
  { name: 'accessed', word: 0, hi: 8, lo: 8 },
  { name: 'dirty', word: 0, hi: 9, lo: 9 },
  { name: 'snp', word: 0, hi: 11, lo: 11 },
  { name: 'addr', word: 0, hi: 51, lo: 12 },
];
checkFieldTable('SS_PTE', SS_PTE_FIELDS, 1);

export interface SsPte {
  r: boolean;
  w: boolean;
  x: boolean;
  emt: number;
  ipat: boolean;
  ps: boolean;
  accessed: boolean;
  dirty: boolean;
  snp: boolean;
  addr: bigint;
}

const b = (v: boolean) => (v ? 1n : 0n);

export function encodeSsPte(e: SsPte): bigint {
  return encodeFields(SS_PTE_FIELDS, 1, {
    r: b(e.r), w: b(e.w), x: b(e.x), emt: BigInt(e.emt), ipat: b(e.ipat), ps: b(e.ps),
    accessed: b(e.accessed), dirty: b(e.dirty), snp: b(e.snp), addr: e.addr >> 12n,
  })[0];
}

export function decodeSsPte(w: bigint): SsPte {
  const f = decodeFields(SS_PTE_FIELDS, [w]);
  return {
    r: f.r === 1n, w: f.w === 1n, x: f.x === 1n, emt: Number(f.emt), ipat: f.ipat === 1n,
    ps: f.ps === 1n, accessed: f.accessed === 1n, dirty: f.dirty === 1n, snp: f.snp === 1n,
    addr: f.addr << 12n,
  };
}

// --- Hot path over u32 halves. ---

export const SS_R = 1 << 0;
export const SS_W = 1 << 1;
export const SS_X = 1 << 2;
export const SS_PS = 1 << 7;
const SS_ADDR_HI_MASK = 0xfffff;

export function ssPresent(lo: number): boolean { return (lo & (SS_R | SS_W | SS_X)) !== 0; }
export function ssLarge(lo: number): boolean { return (lo & SS_PS) !== 0; }
export function ssFrame(lo: number, hi: number): number {
  return (hi & SS_ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}

export interface SsPteFlags { read: boolean; write: boolean; exec: boolean; large?: boolean }

export function ssMakeLo(frame: number, f: SsPteFlags): number {
  return ((((frame % 0x100000) << 12) | (f.read ? SS_R : 0) | (f.write ? SS_W : 0) | (f.exec ? SS_X : 0) | (f.large ? SS_PS : 0)) >>> 0);
}
export function ssMakeHi(frame: number): number {
  return Math.floor(frame / 0x100000) & SS_ADDR_HI_MASK;
}
