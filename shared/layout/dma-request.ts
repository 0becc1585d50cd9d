/**
 * Device transactions: the DMA request a device sends to its IOMMU and the completion the
 * IOMMU returns, as ring entries.
 *
 * Models: the parts of a PCIe memory-request TLP the IOMMU looks at — requester id, the
 * PASID TLP prefix (PASID, Execute-Requested, Privileged-Mode-Requested), address and
 * read/write — plus a tag the simulator uses to match the completion. The completion
 * carries the translated address or the VT-d fault reason (FR) that stopped it.
 * Does not model: payload data, lengths crossing pages (one request translates one
 * address), TLP ordering attributes, ATS translated requests (AT field).
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const DMA_REQ_BYTES = 24;
export const DMA_REQ_U32 = DMA_REQ_BYTES / 4;
export const DMA_RESP_BYTES = 16;
export const DMA_RESP_U32 = DMA_RESP_BYTES / 4;

export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_EXEC = 2;
export type Access = 'read' | 'write' | 'exec';
export const ACCESS_CODE: Record<Access, number> = { read: ACCESS_READ, write: ACCESS_WRITE, exec: ACCESS_EXEC };
export const ACCESS_NAME: readonly Access[] = ['read', 'write', 'exec'];

export const DMA_REQ_FIELDS: FieldTable = [
  { name: 'tag', word: 0, hi: 31, lo: 0 },
  { name: 'rid', word: 0, hi: 47, lo: 32 },
  { name: 'access', word: 0, hi: 49, lo: 48 },
  { name: 'priv', word: 0, hi: 50, lo: 50 },
  { name: 'pasidValid', word: 0, hi: 51, lo: 51 },
  /** The function's PRI is enabled: it sends a page request when the IOMMU cannot translate (bit 52 marks bursts). */
  { name: 'pri', word: 0, hi: 53, lo: 53 },
  { name: 'pasid', word: 1, hi: 19, lo: 0 },
  { name: 'addr', word: 2, hi: 63, lo: 0 },
];
checkFieldTable('DMA_REQ', DMA_REQ_FIELDS, 3);

/** Completion status: 0 = translated; otherwise the fault reason code (FR). */
export const DMA_RESP_FIELDS: FieldTable = [
  { name: 'tag', word: 0, hi: 31, lo: 0 },
  { name: 'status', word: 0, hi: 39, lo: 32 },
  /** The fault was recorded (not suppressed by FPD). */
  { name: 'recorded', word: 0, hi: 40, lo: 40 },
  /** Served from a cache (IOTLB or device TLB) without a walk. */
  { name: 'cached', word: 0, hi: 41, lo: 41 },
  /** The fault went through a page request (PRI) whose response refused it. */
  { name: 'recoverable', word: 0, hi: 42, lo: 42 },
  { name: 'paddr', word: 1, hi: 63, lo: 0 },
];
checkFieldTable('DMA_RESP', DMA_RESP_FIELDS, 2);

export interface DmaRequest {
  tag: number;
  rid: number;
  access: Access;
  priv: boolean;
  pasid?: number;
  addr: bigint;
}

export interface DmaResponse {
  tag: number;
  status: number;
  recorded: boolean;
  cached: boolean;
  recoverable?: boolean;
  paddr: bigint;
}

export function encodeDmaRequest(r: DmaRequest): bigint[] {
  return encodeFields(DMA_REQ_FIELDS, 3, {
    tag: BigInt(r.tag), rid: BigInt(r.rid), access: BigInt(ACCESS_CODE[r.access]), priv: r.priv ? 1n : 0n,
    pasidValid: r.pasid === undefined ? 0n : 1n, pasid: BigInt(r.pasid ?? 0), addr: r.addr,
  });
}

export function decodeDmaRequest(w: readonly bigint[]): DmaRequest {
  const f = decodeFields(DMA_REQ_FIELDS, w);
  const r: DmaRequest = { tag: Number(f.tag), rid: Number(f.rid), access: ACCESS_NAME[Number(f.access)] ?? 'read', priv: f.priv === 1n, addr: f.addr };
  if (f.pasidValid === 1n) r.pasid = Number(f.pasid);
  return r;
}

export function encodeDmaResponse(r: DmaResponse): bigint[] {
  return encodeFields(DMA_RESP_FIELDS, 2, {
    tag: BigInt(r.tag), status: BigInt(r.status), recorded: r.recorded ? 1n : 0n, cached: r.cached ? 1n : 0n,
    recoverable: r.recoverable ? 1n : 0n, paddr: r.paddr,
  });
}

export function decodeDmaResponse(w: readonly bigint[]): DmaResponse {
  const f = decodeFields(DMA_RESP_FIELDS, w);
  return { tag: Number(f.tag), status: Number(f.status), recorded: f.recorded === 1n, cached: f.cached === 1n, recoverable: f.recoverable === 1n, paddr: f.paddr };
}

// --- Hot path: u32 views of the same bits (word k = u32 2k low, 2k+1 high). ---

const REQ_PRIV = 1 << 18;
const REQ_PV = 1 << 19;
/** The request is a traffic burst (shared/layout/traffic.ts): word 3 holds its slot. */
const REQ_BURST = 1 << 20;
const REQ_PRI = 1 << 21;

/** Writes a request at u32 index `at`; addr given as u32 halves. */
export function writeDmaRequest(u32: Uint32Array, at: number, tag: number, rid: number, access: number, priv: boolean,
  pasid: number, addrLo: number, addrHi: number, pri = false): void {
  u32[at] = tag;
  u32[at + 1] = (rid & 0xffff) | ((access & 3) << 16) | (priv ? REQ_PRIV : 0) | (pasid >= 0 ? REQ_PV : 0) | (pri ? REQ_PRI : 0);
  u32[at + 2] = pasid >= 0 ? pasid & 0xfffff : 0;
  u32[at + 3] = 0;
  u32[at + 4] = addrLo;
  u32[at + 5] = addrHi;
}

/** Writes a traffic-burst request (parameters in traffic slot `slot`). */
export function writeBurstRequest(u32: Uint32Array, at: number, tag: number, rid: number, access: number, priv: boolean,
  pasid: number, slot: number, pri = false): void {
  writeDmaRequest(u32, at, tag, rid, access, priv, pasid, 0, 0, pri);
  u32[at + 1] |= REQ_BURST;
  u32[at + 3] = slot;
}
export function reqIsBurst(u32: Uint32Array, at: number): boolean { return (u32[at + 1] & REQ_BURST) !== 0; }
export function reqBurstSlot(u32: Uint32Array, at: number): number { return u32[at + 3]; }

export function reqTag(u32: Uint32Array, at: number): number { return u32[at]; }
export function reqRid(u32: Uint32Array, at: number): number { return u32[at + 1] & 0xffff; }
export function reqAccess(u32: Uint32Array, at: number): number { return (u32[at + 1] >>> 16) & 3; }
export function reqPriv(u32: Uint32Array, at: number): boolean { return (u32[at + 1] & REQ_PRIV) !== 0; }
export function reqPri(u32: Uint32Array, at: number): boolean { return (u32[at + 1] & REQ_PRI) !== 0; }
/** PASID of the request, or -1 without a PASID prefix. */
export function reqPasid(u32: Uint32Array, at: number): number { return (u32[at + 1] & REQ_PV) !== 0 ? u32[at + 2] & 0xfffff : -1; }
export function reqAddrLo(u32: Uint32Array, at: number): number { return u32[at + 4]; }
export function reqAddrHi(u32: Uint32Array, at: number): number { return u32[at + 5]; }

const RESP_RECORDED = 1 << 8;
const RESP_CACHED = 1 << 9;
const RESP_RECOVERABLE = 1 << 10;

export function writeDmaResponse(u32: Uint32Array, at: number, tag: number, status: number, recorded: boolean,
  cached: boolean, paLo: number, paHi: number, recoverable = false): void {
  u32[at] = tag;
  u32[at + 1] = (status & 0xff) | (recorded ? RESP_RECORDED : 0) | (cached ? RESP_CACHED : 0) | (recoverable ? RESP_RECOVERABLE : 0);
  u32[at + 2] = paLo;
  u32[at + 3] = paHi;
}

export function respTag(u32: Uint32Array, at: number): number { return u32[at]; }
export function respStatus(u32: Uint32Array, at: number): number { return u32[at + 1] & 0xff; }
export function respRecorded(u32: Uint32Array, at: number): boolean { return (u32[at + 1] & RESP_RECORDED) !== 0; }
export function respCached(u32: Uint32Array, at: number): boolean { return (u32[at + 1] & RESP_CACHED) !== 0; }
export function respRecoverable(u32: Uint32Array, at: number): boolean { return (u32[at + 1] & RESP_RECOVERABLE) !== 0; }
export function respPaddr(u32: Uint32Array, at: number): bigint { return (BigInt(u32[at + 3]) << 32n) | BigInt(u32[at + 2]); }
