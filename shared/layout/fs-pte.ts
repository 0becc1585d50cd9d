/**
 * First-stage page-table entry: the x86-64 (IA-32e) paging format that VT-d scalable
 * mode uses for first-stage (FL) translation and that SVA shares with the CPU.
 *
 * Models: 4-level (48-bit) and 5-level (57-bit) tables; non-leaf entries and leaves of
 * 4 KiB (level 1), 2 MiB (level 2, PS=1) and 1 GiB (level 3, PS=1); P, R/W, U/S, PWT,
 * PCD, A, D, PS, G, PAT (large leaves), protection key and XD.
 * Does not model: HLAT restart bit 11, memory types (PWT/PCD/PAT are stored, not used).
 *
 * Levels are numbered as the walk goes down: 5 (PML5) … 2 (PD), 1 (PT). A level-L entry
 * indexes VA bits [12 + 9(L-1) + 8 : 12 + 9(L-1)].
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const FS_PTE_BYTES = 8;
export const FS_PTE_PER_TABLE = 512;

/** Non-leaf entries and 4 KiB leaves. */
export const FS_PTE_FIELDS: FieldTable = [
  { name: 'present', word: 0, hi: 0, lo: 0 },
  { name: 'rw', word: 0, hi: 1, lo: 1 },
  { name: 'us', word: 0, hi: 2, lo: 2 },
  { name: 'pwt', word: 0, hi: 3, lo: 3 },
  { name: 'pcd', word: 0, hi: 4, lo: 4 },
  { name: 'accessed', word: 0, hi: 5, lo: 5 },
  { name: 'dirty', word: 0, hi: 6, lo: 6 },
  /** PS in a level-2/3 entry; PAT in a 4 KiB leaf. */
  { name: 'ps', word: 0, hi: 7, lo: 7 },
  { name: 'global', word: 0, hi: 8, lo: 8 },
  { name: 'avl', word: 0, hi: 11, lo: 9 },
  { name: 'addr', word: 0, hi: 51, lo: 12 },
  { name: 'avlHigh', word: 0, hi: 58, lo: 52 },
  { name: 'pk', word: 0, hi: 62, lo: 59 },
  { name: 'xd', word: 0, hi: 63, lo: 63 },
];

/** 2 MiB and 1 GiB leaves (PS=1): PAT moves to bit 12 and the address starts at bit 13. */
export const FS_PTE_LARGE_FIELDS: FieldTable = [
  ...FS_PTE_FIELDS.filter((f) => f.name !== 'addr'),
  { name: 'pat', word: 0, hi: 12, lo: 12 },
  { name: 'addr', word: 0, hi: 51, lo: 13 },
];

checkFieldTable('FS_PTE', FS_PTE_FIELDS, 1);
checkFieldTable('FS_PTE_LARGE', FS_PTE_LARGE_FIELDS, 1);

export interface FsPte {
  present: boolean;
  rw: boolean;
  us: boolean;
  pwt: boolean;
  pcd: boolean;
  accessed: boolean;
  dirty: boolean;
  /** Page size (large leaf) at levels 2 and 3. */
  ps: boolean;
  global: boolean;
  /** Bits 11:9, ignored by hardware (available to software). */
  avl: number;
  /** Physical address the entry points at (next table or page frame), 4 KiB aligned. */
  addr: bigint;
  /** Bits 58:52, ignored by hardware (available to software). */
  avlHigh: number;
  pk: number;
  xd: boolean;
}

const b = (v: boolean) => (v ? 1n : 0n);

export function encodeFsPte(e: FsPte): bigint {
  return encodeFields(FS_PTE_FIELDS, 1, {
    present: b(e.present), rw: b(e.rw), us: b(e.us), pwt: b(e.pwt), pcd: b(e.pcd),
    accessed: b(e.accessed), dirty: b(e.dirty), ps: b(e.ps), global: b(e.global),
    avl: BigInt(e.avl), addr: e.addr >> 12n, avlHigh: BigInt(e.avlHigh), pk: BigInt(e.pk), xd: b(e.xd),
  })[0];
}

export function decodeFsPte(w: bigint): FsPte {
  const f = decodeFields(FS_PTE_FIELDS, [w]);
  return {
    present: f.present === 1n, rw: f.rw === 1n, us: f.us === 1n, pwt: f.pwt === 1n,
    pcd: f.pcd === 1n, accessed: f.accessed === 1n, dirty: f.dirty === 1n, ps: f.ps === 1n,
    global: f.global === 1n, avl: Number(f.avl), addr: f.addr << 12n, avlHigh: Number(f.avlHigh), pk: Number(f.pk),
    xd: f.xd === 1n,
  };
}

// --- Hot path: the entry as two u32 halves (lo = bits 31:0, hi = bits 63:32). ---

export const FS_P = 1 << 0;
export const FS_RW = 1 << 1;
export const FS_US = 1 << 2;
export const FS_PS = 1 << 7;
const FS_ADDR_HI_MASK = 0xfffff; // address bits 51:32

export function fsPresent(lo: number): boolean { return (lo & FS_P) !== 0; }
export function fsWritable(lo: number): boolean { return (lo & FS_RW) !== 0; }
export function fsUser(lo: number): boolean { return (lo & FS_US) !== 0; }
export function fsLarge(lo: number): boolean { return (lo & FS_PS) !== 0; }
export function fsNoExec(hi: number): boolean { return hi < 0 || hi >>> 31 === 1; }
/** Frame number (address >> 12) of a non-leaf entry or 4 KiB leaf. */
export function fsFrame(lo: number, hi: number): number {
  return (hi & FS_ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}
/** Frame number of a large leaf (PAT at bit 12 excluded). */
export function fsLargeFrame(lo: number, hi: number): number {
  return (hi & FS_ADDR_HI_MASK) * 0x100000 + ((lo >>> 13) << 1);
}

export interface FsPteFlags { write: boolean; user: boolean; exec: boolean; large?: boolean }

/** Low half of an entry pointing at `frame` (non-leaf: always RW|US, the leaf decides). */
export function fsMakeLo(frame: number, f: FsPteFlags): number {
  return ((((frame % 0x100000) << 12) | FS_P | (f.write ? FS_RW : 0) | (f.user ? FS_US : 0) | (f.large ? FS_PS : 0)) >>> 0);
}
export function fsMakeHi(frame: number, f: FsPteFlags): number {
  return ((Math.floor(frame / 0x100000) & FS_ADDR_HI_MASK) | (f.exec ? 0 : 0x80000000)) >>> 0;
}
