/**
 * VT-d invalidation-queue descriptors in their 256-bit (scalable-mode) form.
 *
 * Models: every descriptor type software may queue in scalable mode (IQA.DW=1): context-
 * cache (0x1), IOTLB (0x2), device-TLB (0x3), interrupt-entry-cache (0x4), invalidation
 * wait (0x5), PASID-based IOTLB (0x6), PASID-cache (0x7), PASID-based device-TLB (0x8) and
 * page group response (0x9), as one discriminated union; the PCIe ATS range encoding
 * (S bit) of the device-TLB descriptors and the address-mask (AM) encoding of the IOTLB ones.
 * Bit positions follow Linux QI_* (drivers/iommu/intel/iommu.h) and QEMU VTD_INV_DESC_*.
 * Does not model: the 128-bit legacy form, the page-stream response (0xa), semantic checks
 * (granularity values, AM ≤ CAP.MAMV, reserved bits set) — the queue consumer does those.
 *
 * The type is bits 3:0 plus type-high bits 11:9 (zero for every type here); `code` in
 * `{ type: 'unknown' }` and invDescTypeCode() give both as one 7-bit number.
 */
import {
  type FieldTable, type FieldValue, type FieldValues, checkFieldTable, decodeFields, encodeFields, readFieldsU32, readWords,
  writeFieldsU32, writeWords,
} from '../bits.js';

export const INV_DESC_BYTES = 32;
export const INV_DESC_WORDS = 4;
/** u32 slots per descriptor in a Uint32Array view of the queue. */
export const INV_DESC_U32 = 8;

export const INV_DESC_TYPE = {
  'context-cache': 0x1, iotlb: 0x2, 'device-tlb': 0x3, iec: 0x4, wait: 0x5,
  'pasid-iotlb': 0x6, 'pasid-cache': 0x7, 'pasid-device-tlb': 0x8, 'page-group-response': 0x9,
} as const;
export type InvDescKind = keyof typeof INV_DESC_TYPE;

/** Context-cache granularity (G, bits 5:4). */
export const CC_GRAN_GLOBAL = 1;
export const CC_GRAN_DOMAIN = 2;
export const CC_GRAN_DEVICE = 3;
/** IOTLB granularity (G, bits 5:4). */
export const IOTLB_GRAN_GLOBAL = 1;
export const IOTLB_GRAN_DOMAIN = 2;
export const IOTLB_GRAN_PAGE = 3;
/** PASID-based IOTLB granularity (Linux QI_GRAN_NONG_PASID / QI_GRAN_PSI_PASID). */
export const PIOTLB_GRAN_PASID = 2;
export const PIOTLB_GRAN_PAGE = 3;
/** PASID-cache granularity (Linux QI_PC_ALL_PASIDS / QI_PC_PASID_SEL / QI_PC_GLOBAL). */
export const PC_GRAN_DOMAIN = 0;
export const PC_GRAN_PASID = 1;
export const PC_GRAN_GLOBAL = 3;
/** Page group response codes (Linux QI_RESP_*). */
export const RESP_SUCCESS = 0x0;
export const RESP_INVALID = 0x1;
export const RESP_FAILURE = 0xf;

const TYPE_ROWS: FieldTable = [
  { name: 'type', word: 0, hi: 3, lo: 0 },
  { name: 'typeHigh', word: 0, hi: 11, lo: 9 },
];
const ADDR_ROW = { name: 'addr', word: 1, hi: 63, lo: 12 } as const;
const IH_AM_ROWS: FieldTable = [
  { name: 'am', word: 1, hi: 5, lo: 0 },
  { name: 'ih', word: 1, hi: 6, lo: 6 },
  ADDR_ROW,
];
/** PFSID (PF source id of a VF; bits 15:4 and 3:0 stored apart). */
const PFSID_ROWS: FieldTable = [
  { name: 'pfsidLo', word: 0, hi: 15, lo: 12 },
  { name: 'pfsidHi', word: 0, hi: 63, lo: 52 },
];

export const INV_DESC_FIELDS: Readonly<Record<InvDescKind, FieldTable>> = {
  'context-cache': [...TYPE_ROWS,
    { name: 'granularity', word: 0, hi: 5, lo: 4 }, { name: 'did', word: 0, hi: 31, lo: 16 },
    { name: 'sid', word: 0, hi: 47, lo: 32 }, { name: 'fm', word: 0, hi: 49, lo: 48 }],
  iotlb: [...TYPE_ROWS,
    { name: 'granularity', word: 0, hi: 5, lo: 4 }, { name: 'dw', word: 0, hi: 6, lo: 6 },
    { name: 'dr', word: 0, hi: 7, lo: 7 }, { name: 'did', word: 0, hi: 31, lo: 16 }, ...IH_AM_ROWS],
  'device-tlb': [...TYPE_ROWS, ...PFSID_ROWS,
    { name: 'qdep', word: 0, hi: 20, lo: 16 }, { name: 'sid', word: 0, hi: 47, lo: 32 },
    { name: 's', word: 1, hi: 0, lo: 0 }, ADDR_ROW],
  iec: [...TYPE_ROWS,
    { name: 'global', word: 0, hi: 4, lo: 4 }, { name: 'im', word: 0, hi: 31, lo: 27 },
    { name: 'iidx', word: 0, hi: 47, lo: 32 }],
  wait: [...TYPE_ROWS,
    { name: 'interrupt', word: 0, hi: 4, lo: 4 }, { name: 'statusWrite', word: 0, hi: 5, lo: 5 },
    { name: 'fence', word: 0, hi: 6, lo: 6 }, { name: 'pageDrain', word: 0, hi: 7, lo: 7 },
    { name: 'statusData', word: 0, hi: 63, lo: 32 }, { name: 'statusAddr', word: 1, hi: 63, lo: 2 }],
  'pasid-iotlb': [...TYPE_ROWS,
    { name: 'granularity', word: 0, hi: 5, lo: 4 }, { name: 'did', word: 0, hi: 31, lo: 16 },
    { name: 'pasid', word: 0, hi: 51, lo: 32 }, ...IH_AM_ROWS],
  'pasid-cache': [...TYPE_ROWS,
    { name: 'granularity', word: 0, hi: 5, lo: 4 }, { name: 'did', word: 0, hi: 31, lo: 16 },
    { name: 'pasid', word: 0, hi: 51, lo: 32 }],
  'pasid-device-tlb': [...TYPE_ROWS, ...PFSID_ROWS,
    { name: 'qdep', word: 0, hi: 8, lo: 4 }, { name: 'sid', word: 0, hi: 31, lo: 16 },
    { name: 'pasid', word: 0, hi: 51, lo: 32 }, { name: 'global', word: 1, hi: 0, lo: 0 },
    { name: 's', word: 1, hi: 11, lo: 11 }, ADDR_ROW],
  'page-group-response': [...TYPE_ROWS,
    { name: 'pasidPresent', word: 0, hi: 4, lo: 4 }, { name: 'pdp', word: 0, hi: 5, lo: 5 },
    { name: 'responseCode', word: 0, hi: 15, lo: 12 }, { name: 'rid', word: 0, hi: 31, lo: 16 },
    { name: 'pasid', word: 0, hi: 51, lo: 32 }, { name: 'lpig', word: 1, hi: 2, lo: 2 },
    { name: 'prgIndex', word: 1, hi: 11, lo: 3 },
    { name: 'privData0', word: 2, hi: 63, lo: 0 }, { name: 'privData1', word: 3, hi: 63, lo: 0 }],
};
for (const [k, t] of Object.entries(INV_DESC_FIELDS)) checkFieldTable(`INV_DESC.${k}`, t, INV_DESC_WORDS);

export type InvDesc =
  | { type: 'context-cache'; granularity: number; did: number; sid: number; fm: number }
  | { type: 'iotlb'; granularity: number; dw: boolean; dr: boolean; did: number; addr: bigint; ih: boolean; am: number }
  /** addr/s: the ATS range encoding (see encodeAtsRange). */
  | { type: 'device-tlb'; sid: number; pfsid: number; qdep: number; addr: bigint; s: boolean }
  | { type: 'iec'; global: boolean; im: number; iidx: number }
  /** statusAddr: byte address (4-byte aligned) that receives statusData when statusWrite. */
  | {
    type: 'wait'; interrupt: boolean; statusWrite: boolean; fence: boolean; pageDrain: boolean;
    statusData: number; statusAddr: bigint;
  }
  | { type: 'pasid-iotlb'; granularity: number; did: number; pasid: number; addr: bigint; ih: boolean; am: number }
  | { type: 'pasid-cache'; granularity: number; did: number; pasid: number }
  | {
    type: 'pasid-device-tlb'; sid: number; pfsid: number; qdep: number; pasid: number; addr: bigint;
    s: boolean; global: boolean;
  }
  | {
    type: 'page-group-response'; pasidPresent: boolean; pdp: boolean; responseCode: number; rid: number;
    pasid: number; lpig: boolean; prgIndex: number; privData0: bigint; privData1: bigint;
  }
  | { type: 'unknown'; code: number };

const b = (v: boolean) => (v ? 1 : 0);
const n = (v: number) => v;
const pfsid = (v: number) => ({ pfsidLo: v & 0xf, pfsidHi: v >>> 4 });

/** Field values of a descriptor: numbers for narrow fields, bigints for addresses and data. */
function values(d: Exclude<InvDesc, { type: 'unknown' }>): Record<string, FieldValue> {
  switch (d.type) {
    case 'context-cache':
      return { granularity: n(d.granularity), did: n(d.did), sid: n(d.sid), fm: n(d.fm) };
    case 'iotlb':
      return {
        granularity: n(d.granularity), dw: b(d.dw), dr: b(d.dr), did: n(d.did),
        addr: d.addr >> 12n, ih: b(d.ih), am: n(d.am),
      };
    case 'device-tlb':
      return { ...pfsid(d.pfsid), sid: n(d.sid), qdep: n(d.qdep), addr: d.addr >> 12n, s: b(d.s) };
    case 'iec':
      return { global: b(d.global), im: n(d.im), iidx: n(d.iidx) };
    case 'wait':
      return {
        interrupt: b(d.interrupt), statusWrite: b(d.statusWrite), fence: b(d.fence), pageDrain: b(d.pageDrain),
        statusData: n(d.statusData), statusAddr: d.statusAddr >> 2n,
      };
    case 'pasid-iotlb':
      return {
        granularity: n(d.granularity), did: n(d.did), pasid: n(d.pasid),
        addr: d.addr >> 12n, ih: b(d.ih), am: n(d.am),
      };
    case 'pasid-cache':
      return { granularity: n(d.granularity), did: n(d.did), pasid: n(d.pasid) };
    case 'pasid-device-tlb':
      return {
        ...pfsid(d.pfsid), sid: n(d.sid), qdep: n(d.qdep), pasid: n(d.pasid),
        addr: d.addr >> 12n, s: b(d.s), global: b(d.global),
      };
    case 'page-group-response':
      return {
        pasidPresent: b(d.pasidPresent), pdp: b(d.pdp), responseCode: n(d.responseCode), rid: n(d.rid),
        pasid: n(d.pasid), lpig: b(d.lpig), prgIndex: n(d.prgIndex), privData0: d.privData0, privData1: d.privData1,
      };
  }
}

/** Encodes a descriptor as 4 64-bit words. A field value that does not fit throws RangeError. */
export function encodeInvDesc(d: InvDesc): bigint[] {
  if (d.type === 'unknown') {
    if (!Number.isInteger(d.code) || d.code < 0 || d.code > 0x7f) throw new RangeError(`descriptor type code ${d.code}`);
    return encodeFields(TYPE_ROWS, INV_DESC_WORDS, { type: BigInt(d.code & 0xf), typeHigh: BigInt(d.code >>> 4) });
  }
  return encodeFields(INV_DESC_FIELDS[d.type], INV_DESC_WORDS, toBig({ ...values(d), type: INV_DESC_TYPE[d.type] }));
}

function toBig(v: Record<string, FieldValue>): FieldValues {
  const out: FieldValues = {};
  for (const k of Object.keys(v)) out[k] = BigInt(v[k]);
  return out;
}

const KIND_OF_CODE = new Map<number, InvDescKind>(
  (Object.entries(INV_DESC_TYPE) as [InvDescKind, number][]).map(([k, c]) => [c, k]));

/** Decodes 4 words; a type code not listed in INV_DESC_TYPE gives `{ type: 'unknown', code }`. */
export function decodeInvDesc(words: readonly bigint[]): InvDesc {
  const w0 = words[0] ?? 0n;
  const code = Number(w0 & 0xfn) | (Number((w0 >> 9n) & 7n) << 4);
  const type = KIND_OF_CODE.get(code);
  if (type === undefined) return { type: 'unknown', code };
  return fromValues(type, decodeFields(INV_DESC_FIELDS[type], words));
}

/** Builds the descriptor of `type` from its decoded field values (numbers or bigints). */
function fromValues(type: InvDescKind, f: Readonly<Record<string, FieldValue>>): InvDesc {
  const N = (k: string) => Number(f[k] ?? 0);
  const B = (k: string) => Number(f[k] ?? 0) === 1;
  const addr = BigInt(f.addr ?? 0) << 12n;
  const pfsid = N('pfsidLo') | (N('pfsidHi') << 4);
  switch (type) {
    case 'context-cache':
      return { type, granularity: N('granularity'), did: N('did'), sid: N('sid'), fm: N('fm') };
    case 'iotlb':
      return { type, granularity: N('granularity'), dw: B('dw'), dr: B('dr'), did: N('did'), addr, ih: B('ih'), am: N('am') };
    case 'device-tlb':
      return { type, sid: N('sid'), pfsid, qdep: N('qdep'), addr, s: B('s') };
    case 'iec':
      return { type, global: B('global'), im: N('im'), iidx: N('iidx') };
    case 'wait':
      return {
        type, interrupt: B('interrupt'), statusWrite: B('statusWrite'), fence: B('fence'), pageDrain: B('pageDrain'),
        statusData: N('statusData'), statusAddr: BigInt(f.statusAddr) << 2n,
      };
    case 'pasid-iotlb':
      return { type, granularity: N('granularity'), did: N('did'), pasid: N('pasid'), addr, ih: B('ih'), am: N('am') };
    case 'pasid-cache':
      return { type, granularity: N('granularity'), did: N('did'), pasid: N('pasid') };
    case 'pasid-device-tlb':
      return { type, sid: N('sid'), pfsid, qdep: N('qdep'), pasid: N('pasid'), addr, s: B('s'), global: B('global') };
    case 'page-group-response':
      return {
        type, pasidPresent: B('pasidPresent'), pdp: B('pdp'), responseCode: N('responseCode'), rid: N('rid'),
        pasid: N('pasid'), lpig: B('lpig'), prgIndex: N('prgIndex'), privData0: BigInt(f.privData0), privData1: BigInt(f.privData1),
      };
  }
}

// --- Queue slots in a Uint32Array (at = u32 index, INV_DESC_U32 per descriptor). ---

/** Writes a descriptor into a queue slot; the same bits as encodeInvDesc, without BigInt math for narrow fields. */
export function writeInvDesc(u32: Uint32Array, at: number, d: InvDesc): void {
  if (d.type === 'unknown') {
    writeWords(u32, at, encodeInvDesc(d));
    return;
  }
  writeFieldsU32(INV_DESC_FIELDS[d.type], INV_DESC_WORDS, u32, at, { ...values(d), type: INV_DESC_TYPE[d.type] });
}

/** Reads a descriptor from a queue slot; the same result as decodeInvDesc. */
export function readInvDesc(u32: Uint32Array, at: number): InvDesc {
  const type = KIND_OF_CODE.get(invDescTypeCode(u32, at));
  // Page-group responses carry 64-bit private data: decode those exactly with BigInt.
  if (type === undefined || type === 'page-group-response') return decodeInvDesc(readWords(u32, at, INV_DESC_WORDS));
  return fromValues(type, readFieldsU32(INV_DESC_FIELDS[type], u32, at));
}
/** The 7-bit type code (bits 3:0 | bits 11:9 << 4) from the descriptor's first u32 only. */
export function invDescTypeCode(u32: Uint32Array, at: number): number {
  const lo = u32[at];
  return (lo & 0xf) | (((lo >>> 9) & 0x7) << 4);
}

// --- Range encodings. ---

const PAGE = 4096n;
const U64_MAX = (1n << 64n) - 1n;
const isPow2 = (x: bigint) => x > 0n && (x & (x - 1n)) === 0n;

function checkRange(what: string, base: bigint, bytes: bigint): void {
  const sizeOk = isPow2(bytes) && bytes >= PAGE && bytes <= 1n << 64n;
  if (!sizeOk || base < 0n || base > U64_MAX || (base & (bytes - 1n)) !== 0n) {
    throw new RangeError(`${what}: [0x${base.toString(16)}, +0x${bytes.toString(16)}) `
      + 'is not a naturally aligned power-of-two range of at least 4 KiB');
  }
}

/**
 * PCIe ATS invalidation range: S=0 is the one 4 KiB page at ADDR; S=1 means the range size
 * is 2^(p+1) bytes where p (≥ 12) is the lowest 0 bit of ADDR. So 8 KiB sets no extra bits,
 * 16 KiB sets bit 12, …, and the whole 64-bit space is ADDR 0x7fff_ffff_ffff_f000.
 */
export function encodeAtsRange(base: bigint, bytes: bigint): { addr: bigint; s: boolean } {
  checkRange('ATS range', base, bytes);
  if (bytes === PAGE) return { addr: base, s: false };
  return { addr: base | (((bytes >> 1n) - 1n) & ~0xfffn), s: true };
}

/** Inverse of encodeAtsRange. ADDR bits 11:0 are ignored; ADDR all ones with S=1 is the whole space. */
export function decodeAtsRange(addr: bigint, s: boolean): { base: bigint; bytes: bigint } {
  const a = addr & U64_MAX & ~0xfffn;
  if (!s) return { base: a, bytes: PAGE };
  let p = 12n;
  while (p < 63n && ((a >> p) & 1n) === 1n) p++;
  const bytes = 1n << (p + 1n);
  return { base: a & ~(bytes - 1n) & U64_MAX, bytes };
}

/** IOTLB address mask: the range is 2^AM 4 KiB pages at a base aligned to its size. */
export function amForRange(base: bigint, bytes: bigint): number {
  checkRange('IOTLB AM range', base, bytes);
  let am = 0;
  while (PAGE << BigInt(am) < bytes) am++;
  return am;
}

/** Range an (ADDR, AM) pair invalidates; ADDR bits below the range size are ignored. */
export function rangeForAm(addr: bigint, am: number): { base: bigint; bytes: bigint } {
  if (!Number.isInteger(am) || am < 0 || am > 52) throw new RangeError(`AM ${am} outside 0..52`);
  const bytes = PAGE << BigInt(am);
  return { base: addr & U64_MAX & ~(bytes - 1n), bytes };
}
