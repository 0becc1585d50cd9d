/**
 * Scalable-mode context entry: the per-device (bus, devfn) entry that points at the
 * device's PASID directory.
 *
 * Models: the 32-byte scalable-mode context entry, 128 per 4 KiB context table (devfn &
 * 0x7f; the root entry's lower/upper pointer picks the half): P, FPD, DTE (device-TLB /
 * ATS enable), PASIDE (requests with PASID allowed), PRE (page requests allowed), PDTS
 * (PASID directory size, 2^(PDTS+7) entries), the PASID-directory pointer, RID_PASID (the
 * PASID used for requests without one) and RID_PRIV.
 * Does not model: the legacy 16-byte context entry (TT/SLPTPTR/AW/DID), reserved-bit checks
 * against the host address width. Words 2 and 3 are reserved.
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const SM_CONTEXT_ENTRY_BYTES = 32;
export const SM_CONTEXT_ENTRY_WORDS = 4;
/** 4096 / 32. */
export const SM_CONTEXT_ENTRIES_PER_TABLE = 128;

export const SM_CONTEXT_ENTRY_FIELDS: FieldTable = [
  { name: 'present', word: 0, hi: 0, lo: 0 },
  /** FPD: fault processing disable (faults are not recorded). */
  { name: 'fpd', word: 0, hi: 1, lo: 1 },
  /** DTE: device-TLB enable (translation requests and device-TLB invalidation allowed). */
  { name: 'dte', word: 0, hi: 2, lo: 2 },
  /** PASIDE: requests with PASID are allowed. */
  { name: 'paside', word: 0, hi: 3, lo: 3 },
  /** PRE: page requests are allowed. */
  { name: 'pre', word: 0, hi: 4, lo: 4 },
  /** PDTS: PASID directory has 2^(PDTS+7) entries. */
  { name: 'pdts', word: 0, hi: 11, lo: 9 },
  /** PASIDDIRPTR: PASID directory pointer, bits 63:12. */
  { name: 'pasidDirPtr', word: 0, hi: 63, lo: 12 },
  /** RID_PASID: PASID used to translate requests without a PASID. */
  { name: 'ridPasid', word: 1, hi: 19, lo: 0 },
  /** RID_PRIV: privilege of requests without a PASID (1 = supervisor). */
  { name: 'ridPriv', word: 1, hi: 20, lo: 20 },
];
checkFieldTable('SM_CONTEXT_ENTRY', SM_CONTEXT_ENTRY_FIELDS, SM_CONTEXT_ENTRY_WORDS);

export interface SmContextEntry {
  present: boolean;
  fpd: boolean;
  dte: boolean;
  paside: boolean;
  pre: boolean;
  /** 0..7: the directory holds pasidDirEntries(pdts) entries. */
  pdts: number;
  /** Physical address of the PASID directory, 4 KiB aligned. */
  pasidDirPtr: bigint;
  ridPasid: number;
  ridPriv: boolean;
}

/** Number of 8-byte entries in the PASID directory of a context entry with this PDTS. */
export function pasidDirEntries(pdts: number): number {
  return 1 << (pdts + 7);
}

const b = (v: boolean) => (v ? 1n : 0n);

export function encodeSmContextEntry(e: SmContextEntry): bigint[] {
  return encodeFields(SM_CONTEXT_ENTRY_FIELDS, SM_CONTEXT_ENTRY_WORDS, {
    present: b(e.present), fpd: b(e.fpd), dte: b(e.dte), paside: b(e.paside), pre: b(e.pre),
    pdts: BigInt(e.pdts), pasidDirPtr: e.pasidDirPtr >> 12n,
    ridPasid: BigInt(e.ridPasid), ridPriv: b(e.ridPriv),
  });
}

export function decodeSmContextEntry(words: readonly bigint[]): SmContextEntry {
  const f = decodeFields(SM_CONTEXT_ENTRY_FIELDS, words);
  return {
    present: f.present === 1n, fpd: f.fpd === 1n, dte: f.dte === 1n, paside: f.paside === 1n,
    pre: f.pre === 1n, pdts: Number(f.pdts), pasidDirPtr: f.pasidDirPtr << 12n,
    ridPasid: Number(f.ridPasid), ridPriv: f.ridPriv === 1n,
  };
}

// --- Hot path over the u32 halves of word 0 (lo = bits 31:0, hi = bits 63:32). ---

export const CE_P = 1 << 0;
export const CE_FPD = 1 << 1;
export const CE_DTE = 1 << 2;
export const CE_PASIDE = 1 << 3;
export const CE_PRE = 1 << 4;
const ADDR_HI_MASK = 0xfffff;

export function cePresent(lo: number): boolean { return (lo & CE_P) !== 0; }
export function cePdts(lo: number): number { return (lo >>> 9) & 0x7; }
/** Frame number (address >> 12) of the PASID directory. */
export function cePasidDirFrame(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * 0x100000 + (lo >>> 12);
}
