/**
 * VT-d page request descriptor: the 256-bit entry the IOMMU writes into the page request
 * queue (PQA) for each PCIe PRI Page Request it receives.
 *
 * Models: the 32-byte scalable-mode descriptor as Linux `struct page_req_dsc`
 * (drivers/iommu/intel/prq.c, formerly svm.c) and QEMU `VTD_PRD_*` lay it out — QW0: type
 * (7:0, always 1), PASID present (8), private data present (9), RID (31:16), PASID (51:32),
 * EXE (52), PM (53); QW1: RD (0), WR (1), LPIG (2), PRG index (11:3), ADDR (63:12);
 * QW2–QW3: private data. The Linux queue depth (PRQ_ORDER 4: 64 KiB, 2048 descriptors).
 * Does not model: the 128-bit pre-3.0 form and its streaming requests, the queue registers
 * (PQH/PQT/PQA/PRS/PECTL), overflow, the page group response (type 0x9 in the invalidation
 * queue; see inv-desc.ts), the rules for when a response is owed. Decoding ignores the type
 * byte (pageRequestType() reads it) and drops reserved bits (15:10, 63:54 of QW0).
 *
 * Bit 9 (private data present) is the VT-d 3.0 PDP bit: Linux carried it as
 * `priv_data_present` until the field was folded into `rsvd:7`; QEMU never sets it.
 *
 * Writers store word 0's low half (type and PASID-present) last, as writeWords does.
 */
import {
  type FieldTable, type FieldValue, checkFieldTable, decodeFields, encodeFields, readFieldsU32, writeFieldsU32,
} from '../bits.js';

export const PAGE_REQUEST_BYTES = 32;
export const PAGE_REQUEST_WORDS = 4;
/** u32 slots per descriptor in a Uint32Array view of the queue. */
export const PAGE_REQUEST_U32 = 8;
/** Descriptor type code in bits 7:0 of QW0. */
export const PAGE_REQUEST_TYPE = 1;
/** Width of the PRG index (PCIe PRI Page Request Group Index). */
export const PRG_INDEX_BITS = 9;
export const PRG_INDEX_MAX = (1 << PRG_INDEX_BITS) - 1;
/** Linux PRQ_ORDER: the queue is 4 KiB << PRQ_ORDER. */
export const PRQ_ORDER_LINUX = 4;
/** Linux PRQ_DEPTH: (0x1000 << PRQ_ORDER) / 32 descriptors. */
export const PRQ_DEPTH_LINUX = (0x1000 << PRQ_ORDER_LINUX) / PAGE_REQUEST_BYTES;

export const PAGE_REQUEST_FIELDS: FieldTable = [
  { name: 'type', word: 0, hi: 7, lo: 0 },
  { name: 'pasidPresent', word: 0, hi: 8, lo: 8 },
  /** PDP: QW2–QW3 hold private data (a response is owed even without LPIG). */
  { name: 'privDataPresent', word: 0, hi: 9, lo: 9 },
  { name: 'rid', word: 0, hi: 31, lo: 16 },
  { name: 'pasid', word: 0, hi: 51, lo: 32 },
  /** EXE: execute permission requested. */
  { name: 'exe', word: 0, hi: 52, lo: 52 },
  /** PM: privileged-mode (supervisor) request. */
  { name: 'pm', word: 0, hi: 53, lo: 53 },
  { name: 'read', word: 1, hi: 0, lo: 0 },
  { name: 'write', word: 1, hi: 1, lo: 1 },
  /** LPIG: last page in group. */
  { name: 'lpig', word: 1, hi: 2, lo: 2 },
  { name: 'prgIndex', word: 1, hi: 11, lo: 3 },
  /** ADDR: page address >> 12. */
  { name: 'addr', word: 1, hi: 63, lo: 12 },
  { name: 'privData0', word: 2, hi: 63, lo: 0 },
  { name: 'privData1', word: 3, hi: 63, lo: 0 },
];
checkFieldTable('PAGE_REQUEST', PAGE_REQUEST_FIELDS, PAGE_REQUEST_WORDS);

/** The fields read without BigInt (everything but the 64-bit private data). */
const NARROW_FIELDS: FieldTable = PAGE_REQUEST_FIELDS.filter((f) => f.word < 2);

export interface PageRequestDesc {
  pasidPresent: boolean;
  privDataPresent: boolean;
  /** Requester ID (bus:dev.fn). */
  rid: number;
  pasid: number;
  exe: boolean;
  pm: boolean;
  read: boolean;
  write: boolean;
  lpig: boolean;
  /** 9-bit page request group index. */
  prgIndex: number;
  /** Requested page address, 4 KiB aligned. */
  addr: bigint;
  privData0: bigint;
  privData1: bigint;
}

const U64_MAX = (1n << 64n) - 1n;

function addrField(addr: bigint): bigint {
  if (addr < 0n || addr > U64_MAX || (addr & 0xfffn) !== 0n) {
    throw new RangeError(`page request addr 0x${addr.toString(16)} is not a 4 KiB aligned 64-bit address`);
  }
  return addr >> 12n;
}

const b = (v: boolean) => (v ? 1 : 0);

function values(d: PageRequestDesc): Record<string, FieldValue> {
  return {
    type: PAGE_REQUEST_TYPE, pasidPresent: b(d.pasidPresent), privDataPresent: b(d.privDataPresent),
    rid: d.rid, pasid: d.pasid, exe: b(d.exe), pm: b(d.pm), read: b(d.read), write: b(d.write),
    lpig: b(d.lpig), prgIndex: d.prgIndex, addr: addrField(d.addr), privData0: d.privData0, privData1: d.privData1,
  };
}

/** Encodes a descriptor as 4 64-bit words (type 1). A value that does not fit throws RangeError. */
export function encodePageRequest(d: PageRequestDesc): bigint[] {
  const v = values(d);
  const big: Record<string, bigint> = {};
  for (const k of Object.keys(v)) big[k] = BigInt(v[k]);
  return encodeFields(PAGE_REQUEST_FIELDS, PAGE_REQUEST_WORDS, big);
}

/** Decodes 4 words; the type byte and reserved bits are ignored. */
export function decodePageRequest(words: readonly bigint[]): PageRequestDesc {
  const f = decodeFields(PAGE_REQUEST_FIELDS, words);
  return {
    pasidPresent: f.pasidPresent === 1n, privDataPresent: f.privDataPresent === 1n,
    rid: Number(f.rid), pasid: Number(f.pasid), exe: f.exe === 1n, pm: f.pm === 1n,
    read: f.read === 1n, write: f.write === 1n, lpig: f.lpig === 1n, prgIndex: Number(f.prgIndex),
    addr: f.addr << 12n, privData0: f.privData0, privData1: f.privData1,
  };
}

// --- Queue slots in a Uint32Array (at = u32 index, PAGE_REQUEST_U32 per descriptor). ---

/** Writes a descriptor into a queue slot: the bits of encodePageRequest, word 0's low half last. */
export function writePageRequest(u32: Uint32Array, at: number, d: PageRequestDesc): void {
  writeFieldsU32(PAGE_REQUEST_FIELDS, PAGE_REQUEST_WORDS, u32, at, values(d));
}

/** Reads a descriptor from a queue slot; the same result as decodePageRequest. */
export function readPageRequest(u32: Uint32Array, at: number): PageRequestDesc {
  const f = readFieldsU32(NARROW_FIELDS, u32, at);
  return {
    pasidPresent: f.pasidPresent === 1, privDataPresent: f.privDataPresent === 1,
    rid: f.rid, pasid: f.pasid, exe: f.exe === 1, pm: f.pm === 1,
    read: f.read === 1, write: f.write === 1, lpig: f.lpig === 1, prgIndex: f.prgIndex,
    // ADDR is 52 bits: exact as a number (< 2^53).
    addr: BigInt(f.addr) << 12n,
    privData0: (BigInt(u32[at + 5]) << 32n) | BigInt(u32[at + 4]),
    privData1: (BigInt(u32[at + 7]) << 32n) | BigInt(u32[at + 6]),
  };
}

/** The type byte (QW0 bits 7:0) from the descriptor's first u32 only. */
export function pageRequestType(u32: Uint32Array, at: number): number {
  return u32[at] & 0xff;
}
