/**
 * Scalable-mode PASID table entry: the per-(device, PASID) translation configuration.
 *
 * Models: the 64-byte entry (8 words), 64 per 4 KiB table. Word 0: P, FPD, AW, PGTT
 * (first-stage only / second-stage only / nested / pass-through), SSADE and the
 * second-stage table pointer. Word 1: DID, PWSNP, PGSNP and the memory-type controls (CD,
 * EMTE, EMT, PWT, PCD, PAT). Word 2: SRE, FLPM (4- or 5-level first stage), WPE, EAFE and
 * the first-stage table pointer. Bit positions follow the Linux pasid_set_* setters
 * (drivers/iommu/intel/pasid.{h,c}) and QEMU's VTD_SM_PASID_ENTRY_* macros.
 * Does not model: ERE/NXE/SMEP and second-stage execute enable (Linux never sets them; left
 * reserved here), words 3–7 (reserved), reserved-bit checks against the host address
 * width. Memory-type fields are stored, not used. Decoded on a PASID-cache miss, so there
 * are no u32 hot-path accessors.
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const PASID_ENTRY_BYTES = 64;
export const PASID_ENTRY_WORDS = 8;

/** PGTT: PASID-granular translation type (Linux PASID_ENTRY_PGTT_*). */
export const PGTT_FL = 1;
export const PGTT_SL = 2;
export const PGTT_NESTED = 3;
export const PGTT_PT = 4;

/** AW: second-stage adjusted guest address width (same encoding as CAP.SAGAW bit numbers). */
export const AW_39_3LEVEL = 1;
export const AW_48_4LEVEL = 2;
export const AW_57_5LEVEL = 3;

/** FLPM: first-stage paging mode. */
export const FLPM_4LEVEL = 0;
export const FLPM_5LEVEL = 1;

export const PASID_ENTRY_FIELDS: FieldTable = [
  { name: 'present', word: 0, hi: 0, lo: 0 },
  { name: 'fpd', word: 0, hi: 1, lo: 1 },
  { name: 'aw', word: 0, hi: 4, lo: 2 },
  { name: 'pgtt', word: 0, hi: 8, lo: 6 },
  /** SSADE: second-stage accessed/dirty enable (bit 9). */
  { name: 'ssade', word: 0, hi: 9, lo: 9 },
  /** SSPTPTR (SLPTPTR): second-stage page-table pointer, bits 63:12. */
  { name: 'ssptptr', word: 0, hi: 63, lo: 12 },
  /** DID: domain id tagging IOTLB/PASID-cache entries, bits 79:64. */
  { name: 'did', word: 1, hi: 15, lo: 0 },
  /** PWSNP: page-walk snoop, bit 87. */
  { name: 'pwsnp', word: 1, hi: 23, lo: 23 },
  /** PGSNP: page snoop, bit 88. */
  { name: 'pgsnp', word: 1, hi: 24, lo: 24 },
  /** CD: cache disable, bit 89. */
  { name: 'cd', word: 1, hi: 25, lo: 25 },
  /** EMTE: extended memory type enable, bit 90. */
  { name: 'emte', word: 1, hi: 26, lo: 26 },
  /** EMT: extended memory type, bits 93:91. */
  { name: 'emt', word: 1, hi: 29, lo: 27 },
  /** PWT: page-level write-through, bit 94. */
  { name: 'pwt', word: 1, hi: 30, lo: 30 },
  /** PCD: page-level cache disable, bit 95. */
  { name: 'pcd', word: 1, hi: 31, lo: 31 },
  /** PAT: page attribute table, bits 127:96. */
  { name: 'pat', word: 1, hi: 63, lo: 32 },
  /** SRE: supervisor requests enable, bit 128. */
  { name: 'sre', word: 2, hi: 0, lo: 0 },
  /** FLPM (FSPM): first-stage paging mode, bits 131:130. */
  { name: 'flpm', word: 2, hi: 3, lo: 2 },
  /** WPE: write-protect enable (supervisor writes honour R/W), bit 132. */
  { name: 'wpe', word: 2, hi: 4, lo: 4 },
  /** EAFE: extended access flag enable, bit 135. */
  { name: 'eafe', word: 2, hi: 7, lo: 7 },
  /** FSPTPTR (FLPTR): first-stage page-table pointer, bits 191:140. */
  { name: 'fsptptr', word: 2, hi: 63, lo: 12 },
];
checkFieldTable('PASID_ENTRY', PASID_ENTRY_FIELDS, PASID_ENTRY_WORDS);

export interface PasidEntry {
  present: boolean;
  fpd: boolean;
  /** AW_39_3LEVEL / AW_48_4LEVEL / AW_57_5LEVEL. */
  aw: number;
  /** PGTT_FL / PGTT_SL / PGTT_NESTED / PGTT_PT; other values are invalid entries. */
  pgtt: number;
  ssade: boolean;
  /** Second-stage root table, 4 KiB aligned physical address. */
  ssptptr: bigint;
  did: number;
  pwsnp: boolean;
  pgsnp: boolean;
  cd: boolean;
  emte: boolean;
  emt: number;
  pwt: boolean;
  pcd: boolean;
  pat: number;
  sre: boolean;
  /** FLPM_4LEVEL / FLPM_5LEVEL. */
  flpm: number;
  wpe: boolean;
  eafe: boolean;
  /** First-stage root table, 4 KiB aligned (a guest-physical address when nested). */
  fsptptr: bigint;
}

const b = (v: boolean) => (v ? 1n : 0n);

/** A non-present entry with every field zero: spread it and set what you need. */
export const PASID_ENTRY_ZERO: Readonly<PasidEntry> = Object.freeze({
  present: false, fpd: false, aw: 0, pgtt: 0, ssade: false, ssptptr: 0n, did: 0, pwsnp: false,
  pgsnp: false, cd: false, emte: false, emt: 0, pwt: false, pcd: false, pat: 0, sre: false,
  flpm: 0, wpe: false, eafe: false, fsptptr: 0n,
});

export function encodePasidEntry(e: PasidEntry): bigint[] {
  return encodeFields(PASID_ENTRY_FIELDS, PASID_ENTRY_WORDS, {
    present: b(e.present), fpd: b(e.fpd), aw: BigInt(e.aw), pgtt: BigInt(e.pgtt),
    ssade: b(e.ssade), ssptptr: e.ssptptr >> 12n,
    did: BigInt(e.did), pwsnp: b(e.pwsnp), pgsnp: b(e.pgsnp), cd: b(e.cd), emte: b(e.emte),
    emt: BigInt(e.emt), pwt: b(e.pwt), pcd: b(e.pcd), pat: BigInt(e.pat),
    sre: b(e.sre), flpm: BigInt(e.flpm), wpe: b(e.wpe), eafe: b(e.eafe),
    fsptptr: e.fsptptr >> 12n,
  });
}

export function decodePasidEntry(words: readonly bigint[]): PasidEntry {
  const f = decodeFields(PASID_ENTRY_FIELDS, words);
  return {
    present: f.present === 1n, fpd: f.fpd === 1n, aw: Number(f.aw), pgtt: Number(f.pgtt),
    ssade: f.ssade === 1n, ssptptr: f.ssptptr << 12n,
    did: Number(f.did), pwsnp: f.pwsnp === 1n, pgsnp: f.pgsnp === 1n, cd: f.cd === 1n,
    emte: f.emte === 1n, emt: Number(f.emt), pwt: f.pwt === 1n, pcd: f.pcd === 1n,
    pat: Number(f.pat),
    sre: f.sre === 1n, flpm: Number(f.flpm), wpe: f.wpe === 1n, eafe: f.eafe === 1n,
    fsptptr: f.fsptptr << 12n,
  };
}
