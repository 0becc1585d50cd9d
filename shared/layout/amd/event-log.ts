/**
 * AMD IOMMU event-log entry (16 B).
 *
 * Models: the event codes Linux decodes (ILLEGAL_DEV_TABLE_ENTRY 0x1, IO_PAGE_FAULT 0x2,
 * DEV_TAB_HARDWARE_ERROR 0x3, PAGE_TAB_HARDWARE_ERROR 0x4, ILLEGAL_COMMAND_ERROR 0x5,
 * COMMAND_HARDWARE_ERROR 0x6, IOTLB_INV_TIMEOUT 0x7, INVALID_DEVICE_REQUEST 0x8,
 * INVALID_PPR_REQUEST 0x9; RMP codes 0xd/0xe named only) in the two layouts Linux
 * iommu_print_event() reads:
 *  - common (types 0x1–0x8): DeviceID 15:0, PASID[19:16] 19:16, PASID[15:0] or DomainID
 *    47:32, flags 59:48, event code 63:60; QW1 = address (faulting address, or the
 *    command's address for ILLEGAL_COMMAND_ERROR / IOTLB_INV_TIMEOUT).
 *  - PPR form (type 0x9): DeviceID 15:0, PASID[15:0] 31:16, tag 41:32, PASID[19:16] 45:42,
 *    flags 59:48, event code 63:60; QW1 = address.
 * For IO_PAGE_FAULT the 16-bit field is a PASID when flag GN is set, else the DomainID
 * (Linux passes it to amd_iommu_report_page_fault as domain_id).
 * Positions: Linux amd_iommu_types.h (EVENT_*), iommu.c (iommu_print_event); HARDWARE.md
 * §1.3. The IO_PAGE_FAULT flag bits (GN 0, NX 1, US 2, I 3, PR 4, RW 5, PE 6, RZ 7, TR 8)
 * follow the AMD specification; Linux names only RW (0x020) and I (0x008).
 * Does not model: the RMP event layouts, per-type flag meanings beyond IO_PAGE_FAULT, the
 * erratum-732 zeroing (the consumer's business).
 *
 * Writers store the u32 holding the event code (QW0 high half) after the rest: type 0 in
 * a slot means "not written yet" to Linux.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped, readTypedU32, writeTypedU32 } from '../../bits.js';

export const AMD_EVENT_BYTES = 16;
export const AMD_EVENT_WORDS = 2;
export const AMD_EVENT_U32 = 4;
/** Linux EVT_BUFFER_SIZE 8192 B = 512 entries. */
export const AMD_EVENT_LOG_ENTRIES_LINUX = 512;

export const AMD_EVENT = {
  ILLEGAL_DEV_TABLE_ENTRY: 0x1, IO_PAGE_FAULT: 0x2, DEV_TAB_HARDWARE_ERROR: 0x3, PAGE_TAB_HARDWARE_ERROR: 0x4,
  ILLEGAL_COMMAND_ERROR: 0x5, COMMAND_HARDWARE_ERROR: 0x6, IOTLB_INV_TIMEOUT: 0x7, INVALID_DEVICE_REQUEST: 0x8,
  INVALID_PPR_REQUEST: 0x9, RMP_PAGE_FAULT: 0xd, RMP_HW_ERROR: 0xe,
} as const;
export type AmdEventName = keyof typeof AMD_EVENT;

/** IO_PAGE_FAULT flags (12-bit field, bit 0 = event bit 48). */
export const IOPF_FLAG = {
  /** GN: the 16-bit field (and 19:16) is a PASID; otherwise it is the DomainID. */
  GN: 0x001, NX: 0x002, US: 0x004,
  /** I: interrupt request (not a memory transaction). */
  I: 0x008,
  /** PR: the page was present (a permission fault); 0 = not present. */
  PR: 0x010,
  /** RW: write (1) or read. */
  RW: 0x020, PE: 0x040, RZ: 0x080,
  /** TR: translation request (ATS). */
  TR: 0x100,
} as const;

const CODE: TypedField = { name: 'type', word: 0, hi: 63, lo: 60 };
const FLAGS: TypedField = { name: 'flags', word: 0, hi: 59, lo: 48 };
const DEVID: TypedField = { name: 'deviceId', word: 0, hi: 15, lo: 0 };
const ADDRESS: TypedField = { name: 'address', word: 1, hi: 63, lo: 0, t: 'g' };

export const AMD_EVENT_COMMON_FIELDS: readonly TypedField[] = [
  DEVID, { name: 'pasidHi', word: 0, hi: 19, lo: 16 }, { name: 'pasidLo', word: 0, hi: 47, lo: 32 }, FLAGS, CODE, ADDRESS,
];
export const AMD_EVENT_PPR_FIELDS: readonly TypedField[] = [
  DEVID, { name: 'pasidLo', word: 0, hi: 31, lo: 16 }, { name: 'tag', word: 0, hi: 41, lo: 32 },
  { name: 'pasidHi', word: 0, hi: 45, lo: 42 }, FLAGS, CODE, ADDRESS,
];
checkFieldTable('AMD_EVENT', AMD_EVENT_COMMON_FIELDS, AMD_EVENT_WORDS);
checkFieldTable('AMD_EVENT_PPR', AMD_EVENT_PPR_FIELDS, AMD_EVENT_WORDS);

export interface AmdEvent {
  /** Event code (AMD_EVENT value; any 4-bit code). */
  type: number;
  deviceId: number;
  /**
   * PASID[19:0] as the two pieces assemble; for events whose 16-bit field is a DomainID
   * (IO_PAGE_FAULT without GN) this is the DomainID (see amdEventDomainId).
   */
  pasid: number;
  /** 12-bit flags (IOPF_FLAG for IO_PAGE_FAULT). */
  flags: number;
  /** Request tag, INVALID_PPR_REQUEST only (0 for other codes). */
  tag: number;
  address: bigint;
}

function tableOf(type: number): readonly TypedField[] {
  return type === AMD_EVENT.INVALID_PPR_REQUEST ? AMD_EVENT_PPR_FIELDS : AMD_EVENT_COMMON_FIELDS;
}

function toObj(e: AmdEvent): Record<string, unknown> {
  if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xf) throw new RangeError(`field type: ${e.type} does not fit 4 bits`);
  if (!Number.isInteger(e.pasid) || e.pasid < 0 || e.pasid > 0xfffff) throw new RangeError(`field pasid: ${e.pasid} does not fit 20 bits`);
  if (e.type !== AMD_EVENT.INVALID_PPR_REQUEST && e.tag !== 0) throw new RangeError(`event type ${e.type} has no tag field`);
  return { ...e, pasidLo: e.pasid & 0xffff, pasidHi: e.pasid >>> 16 };
}

function fromObj(f: Record<string, unknown>): AmdEvent {
  return {
    type: f.type as number, deviceId: f.deviceId as number,
    pasid: ((f.pasidHi as number) << 16) | (f.pasidLo as number),
    flags: f.flags as number, tag: (f.tag as number | undefined) ?? 0, address: f.address as bigint,
  };
}

export function encodeAmdEvent(e: AmdEvent): bigint[] {
  return encodeTyped(tableOf(e.type), AMD_EVENT_WORDS, toObj(e));
}

export function decodeAmdEvent(words: readonly bigint[]): AmdEvent {
  const type = Number(((words[0] ?? 0n) >> 60n) & 0xfn);
  return fromObj(decodeTyped(tableOf(type), words));
}

export function writeAmdEvent(u32: Uint32Array, at: number, e: AmdEvent): void {
  const obj = toObj(e);
  // writeTypedU32 stores word 0's low half last; the code is in the high half, so store
  // the whole entry with the code cleared first, then the high half with the code.
  const table = tableOf(e.type);
  writeTypedU32(table, AMD_EVENT_WORDS, u32, at, { ...obj, type: 0 });
  u32[at + 1] = (u32[at + 1] | (e.type << 28)) >>> 0;
}

export function readAmdEvent(u32: Uint32Array, at: number): AmdEvent {
  return fromObj(readTypedU32(tableOf(u32[at + 1] >>> 28), u32, at));
}

/** The DomainID of an IO_PAGE_FAULT logged without GN (the low 16 bits of the field). */
export function amdEventDomainId(e: AmdEvent): number | undefined {
  return e.type === AMD_EVENT.IO_PAGE_FAULT && (e.flags & IOPF_FLAG.GN) === 0 ? e.pasid & 0xffff : undefined;
}

const NAME_OF_CODE = new Map<number, AmdEventName>((Object.entries(AMD_EVENT) as [AmdEventName, number][]).map(([k, v]) => [v, k]));

/** Linux's name of an event code, or undefined. */
export function amdEventName(type: number): AmdEventName | undefined {
  return NAME_OF_CODE.get(type);
}
