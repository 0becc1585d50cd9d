import { mulberry32 } from '../../shared/prng.js';
import { describe, expect, it } from 'vitest';
import { type FieldTable, checkFieldTable, decodeFields, fieldMask, readWords, reservedMasks, writeWords } from '../../shared/bits.js';
import {
  FS_PTE_FIELDS, FS_PTE_LARGE_FIELDS, type FsPte, decodeFsPte, encodeFsPte, fsFrame, fsLarge, fsLargeFrame, fsMakeHi,
  fsMakeLo, fsNoExec, fsPresent, fsUser, fsWritable,
} from '../../shared/layout/fs-pte.js';
import {
  SS_PTE_FIELDS, type SsPte, decodeSsPte, encodeSsPte, ssFrame, ssLarge, ssMakeHi, ssMakeLo, ssPresent,
} from '../../shared/layout/ss-pte.js';
import {
  ROOT_ENTRIES_PER_TABLE, ROOT_ENTRY_BYTES, ROOT_ENTRY_FIELDS, ROOT_ENTRY_WORDS, type RootEntry, decodeRootEntry,
  encodeRootEntry, rootHalfFrame, rootHalfPresent, smContextSlot,
} from '../../shared/layout/root-entry.js';
import {
  SM_CONTEXT_ENTRIES_PER_TABLE, SM_CONTEXT_ENTRY_BYTES, SM_CONTEXT_ENTRY_FIELDS, SM_CONTEXT_ENTRY_WORDS, type SmContextEntry,
  cePasidDirFrame, cePdts, cePresent, decodeSmContextEntry, encodeSmContextEntry, pasidDirEntries,
} from '../../shared/layout/context-entry.js';
import {
  PASID_DIR_ENTRY_BYTES, PASID_DIR_ENTRY_FIELDS, PASID_DIR_INDEX, PASID_ENTRIES_PER_TABLE, PASID_TABLE_INDEX, type PasidDirEntry,
  decodePasidDirEntry, encodePasidDirEntry, pdeFpd, pdePresent, pdeTableFrame,
} from '../../shared/layout/pasid-dir-entry.js';
import {
  PASID_ENTRY_BYTES, PASID_ENTRY_FIELDS, PASID_ENTRY_WORDS, PASID_ENTRY_ZERO, PGTT_FL, PGTT_SL, type PasidEntry,
  decodePasidEntry, encodePasidEntry,
} from '../../shared/layout/pasid-entry.js';
import {
  INV_DESC_BYTES, INV_DESC_FIELDS, INV_DESC_TYPE, INV_DESC_U32, INV_DESC_WORDS, type InvDesc, type InvDescKind, amForRange,
  decodeAtsRange, decodeInvDesc, encodeAtsRange, encodeInvDesc, invDescTypeCode, rangeForAm, readInvDesc, writeInvDesc,
} from '../../shared/layout/inv-desc.js';
import {
  FAULT_RECORD_BYTES, FAULT_RECORD_FIELDS, FAULT_RECORD_U32, FAULT_RECORD_WORDS, FR, type FaultRecord, decodeFaultRecord, encodeFaultRecord,
  faultRecordPending, faultReasonName, readFaultRecord, writeFaultRecord,
} from '../../shared/layout/fault-record.js';

const U64 = (1n << 64n) - 1n;
const ADDR_63_12 = U64 & ~0xfffn;
const ADDR_51_12 = ((1n << 52n) - 1n) & ~0xfffn;

/** One layout as the generic round-trip tests see it. */
interface Layout {
  name: string;
  table: FieldTable;
  words: number;
  encode(v: unknown): bigint[];
  decode(w: readonly bigint[]): unknown;
  max: object;
  /** Values with the exact words the spec (or Linux's QI_* and pasid_set_* macros) give for them. */
  spot: { value: object; words: bigint[] }[];
  /** Bits every encoding carries (an invalidation descriptor's type code). */
  fixed?: bigint[];
  /** Fields not exercised alone (the type code rows). */
  skip?: string[];
  /** Fields in the table that the typed interface does not carry: lost like reserved bits. */
  dropped?: string[];
}
function layout<T>(l: Omit<Layout, 'encode' | 'decode' | 'max' | 'spot'> & {
  encode(v: T): bigint[]; decode(w: readonly bigint[]): T; max: T; spot: { value: T; words: bigint[] }[];
}): Layout {
  return l as unknown as Layout;
}
/** The value with every flag false and every number 0 (the discriminant kept). */
function zeroOf(v: object): object {
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k,
    k === 'type' ? x : typeof x === 'boolean' ? false : typeof x === 'bigint' ? 0n : 0]));
}
const pad = (w: bigint[], n: number) => [...w, ...new Array<bigint>(n - w.length).fill(0n)];

const FS_MAX: FsPte = {
  present: true, rw: true, us: true, pwt: true, pcd: true, accessed: true, dirty: true, ps: true, global: true,
  avl: 7, addr: ADDR_51_12, avlHigh: 0x7f, pk: 15, xd: true,
};
const SS_MAX: SsPte = { r: true, w: true, x: true, emt: 7, ipat: true, ps: true, accessed: true, dirty: true, snp: true, addr: ADDR_51_12 };

const INV_MAX: { [K in InvDescKind]: Extract<InvDesc, { type: K }> } = {
  'context-cache': { type: 'context-cache', granularity: 3, did: 0xffff, sid: 0xffff, fm: 3 },
  iotlb: { type: 'iotlb', granularity: 3, dw: true, dr: true, did: 0xffff, addr: ADDR_63_12, ih: true, am: 63 },
  'device-tlb': { type: 'device-tlb', sid: 0xffff, pfsid: 0xffff, qdep: 31, addr: ADDR_63_12, s: true },
  iec: { type: 'iec', global: true, im: 31, iidx: 0xffff },
  wait: { type: 'wait', interrupt: true, statusWrite: true, fence: true, pageDrain: true, statusData: 0xffffffff, statusAddr: U64 & ~3n },
  'pasid-iotlb': { type: 'pasid-iotlb', granularity: 3, did: 0xffff, pasid: 0xfffff, addr: ADDR_63_12, ih: true, am: 63 },
  'pasid-cache': { type: 'pasid-cache', granularity: 3, did: 0xffff, pasid: 0xfffff },
  'pasid-device-tlb': {
    type: 'pasid-device-tlb', sid: 0xffff, pfsid: 0xffff, qdep: 31, pasid: 0xfffff, addr: ADDR_63_12, s: true, global: true,
  },
  'page-group-response': { type: 'page-group-response', pasidPresent: true, pdp: true, responseCode: 15, rid: 0xffff,
    pasid: 0xfffff, lpig: true, prgIndex: 0x1ff, privData0: U64, privData1: U64 },
};
const w4 = (...w: bigint[]) => pad(w, 4);
const INV_SPOT: { [K in InvDescKind]: { value: Extract<InvDesc, { type: K }>; words: bigint[] } } = {
  'context-cache': { value: { type: 'context-cache', granularity: 3, did: 7, sid: 0x0208, fm: 3 }, words: w4(0x0003_0208_0007_0031n) },
  iotlb: { value: { type: 'iotlb', granularity: 3, dw: true, dr: true, did: 0x42, addr: 0x1234_5000n, ih: true, am: 9 },
    words: w4(0x0042_00f2n, 0x1234_5049n) },
  'device-tlb': { value: { type: 'device-tlb', sid: 0x0100, pfsid: 0xabcd, qdep: 0x10, ...encodeAtsRange(0x20_0000n, 0x20_0000n) },
    words: w4(0xabc0_0100_0010_d003n, 0x2f_f001n) },
  iec: { value: { type: 'iec', global: true, im: 0x1f, iidx: 0xbeef }, words: w4(0x0000_beef_f800_0014n) },
  wait: {
    value: { type: 'wait', interrupt: false, statusWrite: true, fence: true, pageDrain: false, statusData: 1, statusAddr: 0x1_0000_1008n },
    words: w4(0x1_0000_0065n, 0x1_0000_1008n),
  },
  'pasid-iotlb': { value: { type: 'pasid-iotlb', granularity: 3, did: 1, pasid: 0xabcde, addr: 0x7fff_0000_0000n, ih: false, am: 4 },
    words: w4(0x000a_bcde_0001_0036n, 0x7fff_0000_0004n) },
  'pasid-cache': { value: { type: 'pasid-cache', granularity: 1, did: 5, pasid: 0x10 }, words: w4(0x0000_0010_0005_0017n) },
  'pasid-device-tlb': {
    value: { type: 'pasid-device-tlb', sid: 0x0100, pfsid: 0x1234, qdep: 0x1f, pasid: 0x55, addr: 0x5000n, s: true, global: false },
    words: w4(0x1230_0055_0100_41f8n, 0x5800n),
  },
  'page-group-response': {
    value: {
      type: 'page-group-response', pasidPresent: true, pdp: false, responseCode: 0xf, rid: 0x0102, pasid: 0x33, lpig: true,
      prgIndex: 0x1ff, privData0: 0n, privData1: 0n,
    },
    words: w4(0x0000_0033_0102_f019n, 0xffcn),
  },
};

const LAYOUTS: Layout[] = [
  layout<FsPte>({
    name: 'first-stage PTE', table: FS_PTE_FIELDS, words: 1, encode: (v) => [encodeFsPte(v)], decode: (w) => decodeFsPte(w[0]),
    max: FS_MAX,
    spot: [{ value: { ...zeroOf(FS_MAX) as FsPte, present: true, rw: true, addr: ADDR_51_12, xd: true }, words: [0x800f_ffff_ffff_f003n] }],
  }),
  layout<SsPte>({
    name: 'second-stage PTE', table: SS_PTE_FIELDS, words: 1, encode: (v) => [encodeSsPte(v)], decode: (w) => decodeSsPte(w[0]),
    max: SS_MAX,
    spot: [{ value: { ...zeroOf(SS_MAX) as SsPte, r: true, w: true, snp: true, addr: 0x1234_5678_9000n }, words: [0x1234_5678_9803n] }],
  }),
  layout<RootEntry>({
    name: 'root entry', table: ROOT_ENTRY_FIELDS, words: ROOT_ENTRY_WORDS, encode: encodeRootEntry, decode: decodeRootEntry,
    max: { lowerPresent: true, lowerCtp: ADDR_63_12, upperPresent: true, upperCtp: ADDR_63_12 },
    spot: [{ value: { lowerPresent: true, lowerCtp: 0x1000n, upperPresent: true, upperCtp: 0x2000n }, words: [0x1001n, 0x2001n] }],
  }),
  layout<SmContextEntry>({
    name: 'scalable-mode context entry', table: SM_CONTEXT_ENTRY_FIELDS, words: SM_CONTEXT_ENTRY_WORDS,
    encode: encodeSmContextEntry, decode: decodeSmContextEntry,
    max: {
      present: true, fpd: true, dte: true, paside: true, pre: true, pdts: 7, pasidDirPtr: ADDR_63_12, ridPasid: 0xfffff, ridPriv: true,
    },
    spot: [
      {
        value: { present: true, fpd: false, dte: false, paside: true, pre: false, pdts: 7, pasidDirPtr: 0x5000n, ridPasid: 0xfffff, ridPriv: true },
        words: pad([0x5e09n, 0x1f_ffffn], 4),
      },
      { value: { present: true, fpd: true, dte: true, paside: false, pre: true, pdts: 0, pasidDirPtr: 0n, ridPasid: 0, ridPriv: false },
        words: pad([0x17n], 4) },
    ],
  }),
  layout<PasidDirEntry>({
    name: 'PASID directory entry', table: PASID_DIR_ENTRY_FIELDS, words: 1, encode: (v) => [encodePasidDirEntry(v)],
    decode: (w) => decodePasidDirEntry(w[0]), max: { present: true, fpd: true, tablePtr: ADDR_63_12 },
    spot: [
      { value: { present: true, fpd: false, tablePtr: 0x7000n }, words: [0x7001n] },
      { value: { present: true, fpd: true, tablePtr: 0x7000n }, words: [0x7003n] },
    ],
  }),
  layout<PasidEntry>({
    name: 'PASID table entry', table: PASID_ENTRY_FIELDS, words: PASID_ENTRY_WORDS, encode: encodePasidEntry, decode: decodePasidEntry,
    max: { present: true, fpd: true, aw: 7, pgtt: 7, ssade: true, ssptptr: ADDR_63_12, did: 0xffff, pwsnp: true, pgsnp: true, cd: true,
      emte: true, emt: 7, pwt: true, pcd: true, pat: 0xffffffff, sre: true, flpm: 3, wpe: true, eafe: true, fsptptr: ADDR_63_12 },
    spot: [
      { value: { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_FL, did: 0x1234, fsptptr: 0x1_2345_6000n, flpm: 1, sre: true },
        words: pad([0x41n, 0x1234n, 0x1_2345_6005n], 8) },
      { value: { ...PASID_ENTRY_ZERO, present: true, aw: 2, pgtt: PGTT_SL, ssptptr: 0xabcd_e000n, did: 7, pwsnp: true, pgsnp: true },
        words: pad([0xabcd_e089n, 0x0180_0007n], 8) },
      { value: { ...PASID_ENTRY_ZERO, pcd: true, pwt: true, cd: true, emte: true, emt: 6, pat: 0x0007_0406, wpe: true, eafe: true,
        ssade: true },
        words: pad([0x200n, 0x0007_0406_f600_0000n, 0x90n], 8) },
    ],
  }),
  ...(Object.keys(INV_DESC_TYPE) as InvDescKind[]).map((k) => layout<InvDesc>({
    name: `${k} descriptor`, table: INV_DESC_FIELDS[k], words: INV_DESC_WORDS, encode: encodeInvDesc, decode: decodeInvDesc,
    max: INV_MAX[k], spot: [INV_SPOT[k]], fixed: w4(BigInt(INV_DESC_TYPE[k])), skip: ['type', 'typeHigh'],
  })),
  layout<FaultRecord>({
    name: 'fault record', table: FAULT_RECORD_FIELDS, words: FAULT_RECORD_WORDS, encode: encodeFaultRecord, decode: decodeFaultRecord,
    max: { addr: ADDR_63_12, sid: 0xffff, pasidPresent: true, reason: 0xff, pasid: 0xfffff, addressType: 3, read: true, fault: true },
    spot: [{ value: { addr: 0xdead_b000n, sid: 0xff, pasidPresent: true, reason: 0x59, pasid: 0x12345, addressType: 0, read: true,
      fault: true },
      words: [0xdead_b000n, 0xc123_4559_8000_00ffn] }],
  }),
];

/** Mask of the bits of the named fields, per word. */
function fieldBits(l: Layout, names: readonly string[] = []): bigint[] {
  const m = new Array<bigint>(l.words).fill(0n);
  for (const f of l.table) if (names.includes(f.name)) m[f.word] |= fieldMask(f) << BigInt(f.lo);
  return m;
}
/** What re-encoding a decode of `words` must give: reserved and dropped bits cleared, fixed bits forced. */
function survivors(l: Layout, words: readonly bigint[]): bigint[] {
  const reserved = reservedMasks(l.table, l.words);
  const gone = fieldBits(l, l.dropped);
  const forced = fieldBits(l, l.skip);
  const fixed = l.fixed ?? new Array<bigint>(l.words).fill(0n);
  return words.map((w, i) => ((w & ~reserved[i] & ~gone[i] & ~forced[i]) | fixed[i]) & U64);
}

describe.each(LAYOUTS.map((l) => [l.name, l] as const))('%s', (_name, l) => {
  it('has a field table whose fields fit its words without overlapping', () => {
    expect(() => checkFieldTable(l.name, l.table, l.words)).not.toThrow();
  });

  it('round-trips the zero value, the all-ones value of every field and the spec examples', () => {
    for (const v of [zeroOf(l.max), l.max, ...l.spot.map((s) => s.value)]) expect(l.decode(l.encode(v))).toEqual(v);
    expect(l.encode(zeroOf(l.max))).toEqual(l.fixed ?? new Array<bigint>(l.words).fill(0n));
  });

  it('encodes the maximum value to every non-reserved bit set', () => {
    expect(l.encode(l.max)).toEqual(survivors(l, new Array<bigint>(l.words).fill(U64)));
  });

  it('keeps each field alone at all ones through decode and re-encode', () => {
    const fixed = l.fixed ?? new Array<bigint>(l.words).fill(0n);
    for (const f of l.table) {
      if (l.skip?.includes(f.name)) continue;
      const words = fixed.map((w, i) => (i === f.word ? w | (fieldMask(f) << BigInt(f.lo)) : w));
      expect(l.encode(l.decode(words)), f.name).toEqual(survivors(l, words));
      if (!l.dropped?.includes(f.name)) expect(l.decode(words), f.name).not.toEqual(l.decode(fixed));
    }
  });

  it('loses exactly the reserved bits (and any listed as dropped) when all-ones words are decoded and re-encoded', () => {
    const fixed = l.fixed ?? new Array<bigint>(l.words).fill(0n);
    const ones = fieldBits(l, l.skip).map((type, i) => (U64 & ~type) | fixed[i]);
    expect(l.encode(l.decode(ones))).toEqual(survivors(l, ones));
  });

  it('encodes the spec examples to the exact words', () => {
    for (const s of l.spot) {
      expect(l.encode(s.value)).toEqual(s.words);
      expect(l.decode(s.words)).toEqual(s.value);
    }
  });

  it('reads back what was written through a Uint32Array at a non-zero offset, leaving neighbours alone', () => {
    const at = 6;
    const u32 = new Uint32Array(at + 2 * l.words + 4).fill(0xa5a5a5a5);
    const value = l.spot[0].value;
    writeWords(u32, at, l.encode(value));
    expect(l.decode(readWords(u32, at, l.words))).toEqual(value);
    expect([...u32.subarray(0, at), ...u32.subarray(at + 2 * l.words)].every((x) => x === 0xa5a5a5a5)).toBe(true);
  });
});

describe('field tables and table-level constants', () => {
  it('rejects overlapping or out-of-word fields, so the table checks can fail', () => {
    expect(() => checkFieldTable('bad', [{ name: 'a', word: 0, hi: 4, lo: 0 }, { name: 'b', word: 0, hi: 8, lo: 4 }], 1)).toThrow();
    expect(() => checkFieldTable('bad', [{ name: 'a', word: 1, hi: 4, lo: 0 }], 1)).toThrow();
    expect(() => checkFieldTable('FS_PTE_LARGE', FS_PTE_LARGE_FIELDS, 1)).not.toThrow();
  });

  it('sizes every table to fill exactly one 4 KiB page', () => {
    expect(ROOT_ENTRIES_PER_TABLE * ROOT_ENTRY_BYTES).toBe(4096);
    expect(SM_CONTEXT_ENTRIES_PER_TABLE * SM_CONTEXT_ENTRY_BYTES).toBe(4096);
    expect(PASID_ENTRIES_PER_TABLE * PASID_ENTRY_BYTES).toBe(4096);
    expect(pasidDirEntries(7) * 8).toBe(128 * 1024);
    expect(pasidDirEntries(0)).toBe(128);
    expect([ROOT_ENTRY_BYTES, SM_CONTEXT_ENTRY_BYTES, PASID_ENTRY_BYTES, INV_DESC_BYTES, FAULT_RECORD_BYTES, PASID_DIR_ENTRY_BYTES])
      .toEqual([ROOT_ENTRY_WORDS, SM_CONTEXT_ENTRY_WORDS, PASID_ENTRY_WORDS, INV_DESC_WORDS, FAULT_RECORD_WORDS, 1].map((w) => w * 8));
  });

  it('splits devfn by bit 7 and PASIDs into a 14-bit directory index and a 6-bit table index', () => {
    expect(smContextSlot(0x7f)).toEqual({ upper: false, index: 0x7f });
    expect(smContextSlot(0x80)).toEqual({ upper: true, index: 0 });
    expect([PASID_DIR_INDEX(0xfffff), PASID_TABLE_INDEX(0xfffff)]).toEqual([0x3fff, 0x3f]);
    expect([PASID_DIR_INDEX(0x12345), PASID_TABLE_INDEX(0x12345)]).toEqual([0x48d, 0x05]);
  });

  it('rejects field values that do not fit their bits', () => {
    expect(() => encodePasidEntry({ ...PASID_ENTRY_ZERO, did: 0x10000 })).toThrow(RangeError);
    expect(() => encodeSmContextEntry({ ...decodeSmContextEntry([0n]), pdts: 8 })).toThrow(RangeError);
    expect(() => encodeInvDesc({ type: 'pasid-cache', granularity: 1, did: 1, pasid: 0x100000 })).toThrow(RangeError);
    expect(() => encodeInvDesc({ ...INV_MAX['device-tlb'], pfsid: 0x10000 })).toThrow(RangeError);
  });
});

describe('invalidation descriptor types', () => {
  it('decodes unknown type codes, including a set type-high, as unknown and re-encodes them', () => {
    expect(decodeInvDesc(w4(0n))).toEqual({ type: 'unknown', code: 0 });
    expect(decodeInvDesc(w4(0xan))).toEqual({ type: 'unknown', code: 0xa });
    expect(decodeInvDesc(w4(0x202n))).toEqual({ type: 'unknown', code: 0x12 });
    expect(encodeInvDesc({ type: 'unknown', code: 0x12 })).toEqual(w4(0x202n));
    expect(() => encodeInvDesc({ type: 'unknown', code: 0x80 })).toThrow(RangeError);
  });

  it('writes descriptors into queue slots and reads the type code from the first u32 alone', () => {
    const u32 = new Uint32Array(INV_DESC_U32 * 12).fill(0xdeadbeef);
    const kinds = Object.keys(INV_DESC_TYPE) as InvDescKind[];
    kinds.forEach((k, i) => writeInvDesc(u32, (i + 1) * INV_DESC_U32, INV_SPOT[k].value));
    kinds.forEach((k, i) => {
      expect(readInvDesc(u32, (i + 1) * INV_DESC_U32)).toEqual(INV_SPOT[k].value);
      expect(invDescTypeCode(u32, (i + 1) * INV_DESC_U32)).toBe(INV_DESC_TYPE[k]);
    });
    writeInvDesc(u32, 11 * INV_DESC_U32, { type: 'unknown', code: 0x7a });
    expect(invDescTypeCode(u32, 11 * INV_DESC_U32)).toBe(0x7a);
    expect([...u32.subarray(0, INV_DESC_U32)].every((x) => x === 0xdeadbeef)).toBe(true);
  });
});

describe('ATS and AM range encodings', () => {
  const sizes = Array.from({ length: 53 }, (_, i) => 4096n << BigInt(i)); // 4 KiB … 2^64

  it('encodes ATS ranges as PCIe specifies: S=0 for 4 KiB, lowest clear bit for larger', () => {
    expect(encodeAtsRange(0x1000n, 0x1000n)).toEqual({ addr: 0x1000n, s: false });
    expect(encodeAtsRange(0x2000n, 0x2000n)).toEqual({ addr: 0x2000n, s: true });
    expect(encodeAtsRange(0x4000n, 0x4000n)).toEqual({ addr: 0x5000n, s: true });
    expect(encodeAtsRange(0n, 1n << 64n)).toEqual({ addr: 0x7fff_ffff_ffff_f000n, s: true });
    expect(decodeAtsRange(U64, true)).toEqual({ base: 0n, bytes: 1n << 64n });
    expect(decodeAtsRange(0x5fffn, false)).toEqual({ base: 0x5000n, bytes: 0x1000n });
  });

  it('round-trips every ATS and AM range size at aligned bases', () => {
    sizes.forEach((bytes, am) => {
      for (const base of [0n, bytes * 3n, (1n << 64n) - bytes].filter((b) => b + bytes <= 1n << 64n)) {
        const { addr, s } = encodeAtsRange(base, bytes);
        expect(decodeAtsRange(addr, s)).toEqual({ base, bytes });
        expect(amForRange(base, bytes)).toBe(am);
        expect(rangeForAm(base, am)).toEqual({ base, bytes });
      }
    });
    expect(rangeForAm(0x20_1000n, 9)).toEqual({ base: 0x20_0000n, bytes: 0x20_0000n });
  });

  it('rejects ranges that are not naturally aligned powers of two of at least 4 KiB', () => {
    const bad = [[0n, 0n], [0n, 0x800n], [0n, 0x3000n], [0x1000n, 0x2000n], [-0x1000n, 0x1000n], [0n, 1n << 65n]] as const;
    for (const [base, bytes] of bad) {
      expect(() => encodeAtsRange(base, bytes)).toThrow(RangeError);
      expect(() => amForRange(base, bytes)).toThrow(RangeError);
    }
    for (const am of [-1, 53, 1.5]) expect(() => rangeForAm(0n, am)).toThrow(RangeError);
  });
});

describe('fault records', () => {
  const rec: FaultRecord = {
    addr: 0xffff_ffff_ffff_f000n, sid: 0xbeef, pasidPresent: true, reason: FR.PASID_ENTRY_NOT_PRESENT, pasid: 0xfffff,
    addressType: 2, read: false, fault: true,
  };

  it('agree between the u32 writer/reader and the bigint encoder, at a non-zero offset', () => {
    for (const r of [rec, { ...rec, pasidPresent: false, read: true, fault: false, addr: 0x1000n, sid: 0, pasid: 1 }]) {
      const u32 = new Uint32Array(3 * FAULT_RECORD_U32).fill(0x5a5a5a5a);
      writeFaultRecord(u32, FAULT_RECORD_U32, r);
      expect(readWords(u32, FAULT_RECORD_U32, FAULT_RECORD_WORDS)).toEqual(encodeFaultRecord(r));
      expect(readFaultRecord(u32, FAULT_RECORD_U32)).toEqual(r);
      expect(faultRecordPending(u32, FAULT_RECORD_U32)).toBe(r.fault);
      expect([...u32.subarray(0, 4), ...u32.subarray(8)].every((x) => x === 0x5a5a5a5a)).toBe(true);
    }
  });

  it('stores the u32 holding F last', () => {
    const order: number[] = [];
    const u32 = new Proxy(new Uint32Array(8), {
      set(t, k, v) { order.push(Number(k)); t[Number(k)] = v as number; return true; },
    }) as unknown as Uint32Array;
    writeFaultRecord(u32, 4, rec);
    expect(order.at(-1)).toBe(7);
  });

  it('rejects fields that do not fit the record', () => {
    expect(() => writeFaultRecord(new Uint32Array(4), 0, { ...rec, pasid: 0x100000 })).toThrow(RangeError);
    expect(() => writeFaultRecord(new Uint32Array(4), 0, { ...rec, reason: 0x100 })).toThrow(RangeError);
  });

  it('names fault reasons with the Linux iommu_fault_reason categories', () => {
    const codes = [0x50, 0x58, 0x45, 0x46, 0x51, 0x59, 0x5b, 0x70, 0x78, 0x71, 0x79, 0x85, 0x86, 0x81, 0x7c, 0x83, 0x80, 0x39, 0x41, 0, 0xff];
    expect(Object.fromEntries(codes.map((c) => [c, faultReasonName(c)]))).toEqual({
      0x50: 'pasid-fetch', 0x58: 'pasid-fetch', 0x45: 'pasid-invalid', 0x46: 'pasid-invalid', 0x51: 'pasid-invalid',
      0x59: 'bad-pasid-entry', 0x5b: 'bad-pasid-entry', 0x70: 'walk-abort', 0x78: 'walk-abort', 0x71: 'pte-fetch',
      0x79: 'pte-fetch', 0x85: 'permission', 0x86: 'permission', 0x81: 'permission', 0x7c: 'access',
      0x83: 'out-of-range', 0x80: 'out-of-range', 0x39: 'unknown', 0x41: 'unknown', 0x00: 'unknown', 0xff: 'unknown',
    });
    const all = Object.values(FR);
    expect(new Set(all).size).toBe(all.length);
    expect(all.every((c) => c >= 0x30 && c <= 0xff)).toBe(true);
  });
});

/** Seeded u32 generator (the simulator's mulberry32) for random entry words. */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 4294967296;
}
const FRAMES = [0, 1, 0xfffff, 0x100000, 0x12345678, 0xffffffff, 0x1_0000_0000, 0xab_cdef_0123, 2 ** 40 - 1];
const FLAGS = [false, true].flatMap((a) => [false, true].flatMap((b) => [false, true].map((c) => [a, b, c] as const)));
const word = (lo: number, hi: number) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

describe('hot-path u32 accessors', () => {
  it('build first-stage entries identical to encodeFsPte, for frames above 2^20 and 2^32', () => {
    for (const frame of FRAMES) for (const [write, user, exec] of FLAGS) {
      const f = { write, user, exec };
      const lo = fsMakeLo(frame, f);
      const hi = fsMakeHi(frame, f);
      const addr = BigInt(frame) << 12n;
      expect(word(lo, hi)).toBe(encodeFsPte({ ...zeroOf(FS_MAX) as FsPte, present: true, rw: write, us: user, xd: !exec, addr }));
      expect([fsFrame(lo, hi), fsFrame(lo | 0, hi | 0), fsNoExec(hi | 0), fsWritable(lo), fsUser(lo)])
        .toEqual([frame, frame, !exec, write, user]);
      const big = frame - (frame % 512);
      const llo = fsMakeLo(big, { ...f, large: true }) | (1 << 12); // PAT set: not part of the frame
      expect([fsLarge(llo), fsLargeFrame(llo, fsMakeHi(big, f))]).toEqual([true, big]);
    }
  });

  it('build second-stage entries identical to encodeSsPte, for frames above 2^20 and 2^32', () => {
    for (const frame of FRAMES) for (const [read, write, exec] of FLAGS) for (const large of [false, true]) {
      const lo = ssMakeLo(frame, { read, write, exec, large });
      const hi = ssMakeHi(frame);
      const addr = BigInt(frame) << 12n;
      expect(word(lo, hi)).toBe(encodeSsPte({ ...zeroOf(SS_MAX) as SsPte, r: read, w: write, x: exec, ps: large, addr }));
      expect([ssFrame(lo, hi), ssPresent(lo), ssLarge(lo)]).toEqual([frame, read || write || exec, large]);
    }
  });

  it('read random entry words the same way as the bigint decoders', () => {
    const next = rng(0x1f2e3d4c);
    const ADDR = (1n << 52n) - 1n; // the u32 accessors cover physical addresses up to bit 51
    for (let i = 0; i < 2000; i++) {
      const lo = next();
      const hi = next();
      const w = word(lo, hi);
      const fs = decodeFsPte(w);
      expect([fsPresent(lo), fsWritable(lo), fsUser(lo), fsLarge(lo), fsNoExec(hi | 0), fsFrame(lo, hi)])
        .toEqual([fs.present, fs.rw, fs.us, fs.ps, fs.xd, Number(fs.addr >> 12n)]);
      expect(fsLargeFrame(lo, hi)).toBe(Number(decodeFields(FS_PTE_LARGE_FIELDS, [w]).addr << 1n));
      const ss = decodeSsPte(w);
      expect([ssPresent(lo), ssLarge(lo), ssFrame(lo, hi)]).toEqual([ss.r || ss.w || ss.x, ss.ps, Number(ss.addr >> 12n)]);
      const re = decodeRootEntry([w, w]);
      expect([rootHalfPresent(lo), rootHalfFrame(lo, hi)]).toEqual([re.upperPresent, Number((re.upperCtp & ADDR) >> 12n)]);
      const ce = decodeSmContextEntry([w]);
      expect([cePresent(lo), cePdts(lo), cePasidDirFrame(lo, hi)]).toEqual([ce.present, ce.pdts, Number((ce.pasidDirPtr & ADDR) >> 12n)]);
      const pde = decodePasidDirEntry(w);
      expect([pdePresent(lo), pdeFpd(lo), pdeTableFrame(lo, hi)]).toEqual([pde.present, pde.fpd, Number((pde.tablePtr & ADDR) >> 12n)]);
    }
  });
});
