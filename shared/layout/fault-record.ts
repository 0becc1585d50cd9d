/**
 * VT-d primary fault recording register (FRCD): the 128-bit record of one unrecoverable
 * DMA-remapping fault, and the fault-reason codes the simulator raises.
 *
 * Models: the FRCD exactly as Linux dmar_fault() and the dma_frcd_* macros read it — FI
 * (faulting page address, 63:12), SID (79:64), PP (PASID present, 95), FR (reason, 103:96),
 * PV (PASID, 123:104), AT (address type, 125:124), T (126: 0 write, 1 read/AtomicOp) and F
 * (127: record valid, write 1 to clear); the scalable-mode fault reasons (VT-d spec
 * appendix A as listed by Linux dma_remap_sm_fault_reasons[] and QEMU VTDFaultReason) and
 * their mapping onto the Linux v5 iommu_fault_reason names used by the public API.
 * Does not model: bits 94:92 (EXE/PRIV/T2 in newer spec revisions; kept reserved here),
 * interrupt-remapping faults (FR 0x20–0x26), legacy-mode reasons (FR 0x1–0xE), the
 * advanced fault log.
 *
 * Word 1 holds bits 127:64, so F is the top bit of the record's last u32. Writers store
 * that u32 last: a reader that sees F sees the whole record.
 */
import { type FieldTable, checkFieldTable, decodeFields, encodeFields } from '../bits.js';

export const FAULT_RECORD_BYTES = 16;
export const FAULT_RECORD_WORDS = 2;
export const FAULT_RECORD_U32 = 4;

export const FAULT_RECORD_FIELDS: FieldTable = [
  /** FI: faulting page address (bits 63:12). */
  { name: 'addr', word: 0, hi: 63, lo: 12 },
  { name: 'sid', word: 1, hi: 15, lo: 0 },
  /** PP: the PASID field is valid. */
  { name: 'pasidPresent', word: 1, hi: 31, lo: 31 },
  /** FR: fault reason. */
  { name: 'reason', word: 1, hi: 39, lo: 32 },
  /** PV: PASID value. */
  { name: 'pasid', word: 1, hi: 59, lo: 40 },
  /** AT: PCIe address type of the faulting request (0 untranslated, 1 translation request, 2 translated). */
  { name: 'addressType', word: 1, hi: 61, lo: 60 },
  /** T: 0 write, 1 read (or AtomicOp). */
  { name: 'read', word: 1, hi: 62, lo: 62 },
  /** F: the record holds a fault (write 1 to clear). */
  { name: 'fault', word: 1, hi: 63, lo: 63 },
];
checkFieldTable('FAULT_RECORD', FAULT_RECORD_FIELDS, FAULT_RECORD_WORDS);

export interface FaultRecord {
  /** Faulting page address, 4 KiB aligned. */
  addr: bigint;
  sid: number;
  pasidPresent: boolean;
  /** FR: one of the FR codes (or any other 8-bit code). */
  reason: number;
  pasid: number;
  addressType: number;
  /** T: true for a read (or AtomicOp), false for a write. */
  read: boolean;
  fault: boolean;
}

const b = (v: boolean) => (v ? 1n : 0n);

export function encodeFaultRecord(r: FaultRecord): bigint[] {
  return encodeFields(FAULT_RECORD_FIELDS, FAULT_RECORD_WORDS, {
    addr: r.addr >> 12n, sid: BigInt(r.sid), pasidPresent: b(r.pasidPresent),
    reason: BigInt(r.reason), pasid: BigInt(r.pasid), addressType: BigInt(r.addressType),
    read: b(r.read), fault: b(r.fault),
  });
}

export function decodeFaultRecord(words: readonly bigint[]): FaultRecord {
  const f = decodeFields(FAULT_RECORD_FIELDS, words);
  return {
    addr: f.addr << 12n, sid: Number(f.sid), pasidPresent: f.pasidPresent === 1n,
    reason: Number(f.reason), pasid: Number(f.pasid), addressType: Number(f.addressType),
    read: f.read === 1n, fault: f.fault === 1n,
  };
}

// --- Hot path: the record as 4 u32 (u32[at] = bits 31:0 … u32[at+3] = bits 127:96). ---

/** F in the record's last u32. */
export const FRCD_F = 0x80000000;
const U32 = 0xffffffffn;

function checkU(what: string, v: number, bits: number): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new RangeError(`fault record ${what}: ${v} does not fit ${bits} bits`);
  return v;
}

/** Writes a record at u32 index `at`, the u32 holding F last. */
export function writeFaultRecord(u32: Uint32Array, at: number, r: FaultRecord): void {
  const sid = checkU('sid', r.sid, 16);
  const reason = checkU('reason', r.reason, 8);
  const pasid = checkU('pasid', r.pasid, 20);
  const atype = checkU('addressType', r.addressType, 2);
  if (r.addr < 0n || r.addr > 0xffffffffffffffffn) throw new RangeError(`fault record addr 0x${r.addr.toString(16)}`);
  u32[at] = Number(r.addr & 0xfffff000n);
  u32[at + 1] = Number((r.addr >> 32n) & U32);
  u32[at + 2] = (sid | (r.pasidPresent ? 0x80000000 : 0)) >>> 0;
  u32[at + 3] = (reason | (pasid << 8) | (atype << 28) | (r.read ? 0x40000000 : 0) | (r.fault ? FRCD_F : 0)) >>> 0;
}

export function readFaultRecord(u32: Uint32Array, at: number): FaultRecord {
  const w2 = u32[at + 2];
  const w3 = u32[at + 3];
  return {
    addr: (BigInt(u32[at + 1]) << 32n) | BigInt((u32[at] & 0xfffff000) >>> 0),
    sid: w2 & 0xffff,
    pasidPresent: (w2 & 0x80000000) !== 0,
    reason: w3 & 0xff,
    pasid: (w3 >>> 8) & 0xfffff,
    addressType: (w3 >>> 28) & 0x3,
    read: (w3 & 0x40000000) !== 0,
    fault: (w3 & FRCD_F) !== 0,
  };
}

/** True when the record at `at` holds a fault (F set); reads only the last u32. */
export function faultRecordPending(u32: Uint32Array, at: number): boolean {
  return (u32[at + 3] & FRCD_F) !== 0;
}

// --- Fault reasons (scalable mode; codes from VT-d appendix A via Linux/QEMU). ---

export const FR = {
  /** RTADDR_REG invalid (TTM). */
  ROOT_TABLE_INVALID: 0x30,
  ROOT_TABLE_ACCESS: 0x38,
  ROOT_ENTRY_NOT_PRESENT: 0x39,
  ROOT_ENTRY_RESERVED: 0x3a,
  CONTEXT_TABLE_ACCESS: 0x40,
  CONTEXT_ENTRY_NOT_PRESENT: 0x41,
  CONTEXT_ENTRY_RESERVED: 0x42,
  CONTEXT_ENTRY_INVALID: 0x43,
  /** Translation request or device-TLB use with DTE clear. */
  DEVICE_TLB_DISABLED: 0x44,
  /** Request with PASID while the context entry's PASIDE is clear. */
  PASID_DISABLED: 0x45,
  /** PASID beyond the directory size given by PDTS. */
  PASID_DIR_INDEX_OVER_PDTS: 0x46,
  /** Page request while the context entry's PRE is clear. */
  PAGE_REQUEST_DISABLED: 0x47,
  RID_PASID_ERROR: 0x48,
  PASID_DIR_ACCESS: 0x50,
  PASID_DIR_ENTRY_NOT_PRESENT: 0x51,
  PASID_DIR_ENTRY_RESERVED: 0x52,
  PASID_TABLE_ACCESS: 0x58,
  PASID_ENTRY_NOT_PRESENT: 0x59,
  PASID_ENTRY_RESERVED: 0x5a,
  /** Invalid scalable-mode PASID entry (PGTT or AW not supported, …). */
  PASID_ENTRY_INVALID: 0x5b,
  /** Execute request while the PASID entry's ERE is clear. */
  EXEC_NOT_ENABLED: 0x5c,
  /** Supervisor request while the PASID entry's SRE is clear. */
  SUPERVISOR_NOT_ENABLED: 0x5d,
  /** Error reading a first-stage paging entry (the second-stage code is SS_PTE_ACCESS). */
  PTE_ACCESS: 0x70,
  FS_PTE_NOT_PRESENT: 0x71,
  FS_PTE_RESERVED: 0x72,
  FS_ROOT_ACCESS: 0x73,
  FS_NESTED_ADDR_BEYOND_AW: 0x74,
  FS_NESTED_ROOT_READ: 0x75,
  FS_NESTED_READ: 0x76,
  FS_NESTED_WRITE: 0x77,
  SS_PTE_ACCESS: 0x78,
  /** Second-stage entry on the walk with R and W clear (the stage's "not present"). */
  SS_PTE_NOT_PRESENT: 0x79,
  SS_PTE_RESERVED: 0x7a,
  SS_ROOT_INVALID: 0x7b,
  SS_AD_NO_SNOOP: 0x7c,
  NON_CANONICAL: 0x80,
  /** User request to a first-stage page with U/S clear. */
  PRIVILEGE: 0x81,
  EXEC_DENIED: 0x82,
  /** Input address beyond the address width. */
  ADDRESS_BEYOND_AW: 0x83,
  SS_OUTPUT_BEYOND_AW: 0x84,
  WRITE_DENIED: 0x85,
  READ_DENIED: 0x86,
  /** Output address in the interrupt range (0xfee0_0000–0xfeef_ffff). */
  INTERRUPT_ADDR: 0x87,
  FS_AD_NO_SNOOP: 0x90,
  FS_BIT_UPDATE_FAILED: 0x91,
} as const;

/** The Linux v5 iommu_fault_reason names (include/uapi/linux/iommu.h), kebab-cased. */
export type FaultReasonName = 'pasid-fetch' | 'bad-pasid-entry' | 'pasid-invalid' | 'walk-abort'
  | 'pte-fetch' | 'permission' | 'access' | 'out-of-range' | 'unknown';

const REASON_NAME = new Map<number, FaultReasonName>([
  [FR.PASID_DIR_ACCESS, 'pasid-fetch'], [FR.PASID_TABLE_ACCESS, 'pasid-fetch'],
  // PASID disabled or beyond the directory (SMMUv3 C_BAD_SUBSTREAMID analogue).
  [FR.PASID_DISABLED, 'pasid-invalid'], [FR.PASID_DIR_INDEX_OVER_PDTS, 'pasid-invalid'],
  [FR.PASID_DIR_ENTRY_NOT_PRESENT, 'pasid-invalid'],
  // The PASID entry itself is absent or malformed (C_BAD_CD analogue).
  [FR.PASID_DIR_ENTRY_RESERVED, 'bad-pasid-entry'], [FR.PASID_ENTRY_NOT_PRESENT, 'bad-pasid-entry'],
  [FR.PASID_ENTRY_RESERVED, 'bad-pasid-entry'], [FR.PASID_ENTRY_INVALID, 'bad-pasid-entry'],
  [FR.PTE_ACCESS, 'walk-abort'], [FR.FS_ROOT_ACCESS, 'walk-abort'], [FR.SS_PTE_ACCESS, 'walk-abort'],
  [FR.FS_PTE_NOT_PRESENT, 'pte-fetch'], [FR.FS_PTE_RESERVED, 'pte-fetch'],
  [FR.SS_PTE_NOT_PRESENT, 'pte-fetch'], [FR.SS_PTE_RESERVED, 'pte-fetch'], [FR.SS_ROOT_INVALID, 'pte-fetch'],
  [FR.EXEC_NOT_ENABLED, 'permission'], [FR.SUPERVISOR_NOT_ENABLED, 'permission'],
  [FR.FS_NESTED_ROOT_READ, 'permission'], [FR.FS_NESTED_READ, 'permission'],
  [FR.FS_NESTED_WRITE, 'permission'], [FR.PRIVILEGE, 'permission'], [FR.EXEC_DENIED, 'permission'],
  [FR.WRITE_DENIED, 'permission'], [FR.READ_DENIED, 'permission'],
  [FR.SS_AD_NO_SNOOP, 'access'], [FR.FS_AD_NO_SNOOP, 'access'], [FR.FS_BIT_UPDATE_FAILED, 'access'],
  [FR.FS_NESTED_ADDR_BEYOND_AW, 'out-of-range'], [FR.NON_CANONICAL, 'out-of-range'],
  [FR.ADDRESS_BEYOND_AW, 'out-of-range'], [FR.SS_OUTPUT_BEYOND_AW, 'out-of-range'],
  [FR.INTERRUPT_ADDR, 'out-of-range'],
]);

/**
 * The public-API name of a fault reason. Root- and context-entry faults (a device with no
 * usable configuration; SMMUv3's STE-level faults) and codes not listed are 'unknown'.
 */
export function faultReasonName(fr: number): FaultReasonName {
  return REASON_NAME.get(fr) ?? 'unknown';
}
