/**
 * AMD IOMMU PPR (peripheral page request) log entry (16 B).
 *
 * Models: QW0 — DeviceID (15:0), PASID[15:0] (31:16), the PRG index (40:32, "tag" in
 * Linux), Last (41: last request of the group; Linux iommu_v2 reads it as tag bit 9),
 * PASID[19:16] (45:42), the flags (59:48: EXEC, READ, WRITE, US, RVSD, GN as Linux
 * PPR_FLAG_*; the other flag bits kept as `otherFlags`), the request type (63:60,
 * PPR_REQ_FAULT = 1); QW1 — the address.
 * Positions: Linux amd_iommu_types.h (PPR_*), iommu.c / ppr.c (iommu_handle_ppr_entry,
 * ppr_is_valid), iommu_v2.c (tag & 0x1ff, tag >> 9); HARDWARE.md §1.3.
 * Does not model: the PPR log B / dual-log mode, overflow (STATUS.PPR_OVERFLOW), the
 * response (COMPLETE_PPR_REQUEST in commands.ts).
 *
 * Writers store the u32 with the type (QW0 high half) last: Linux polls the slot until
 * PPR_REQ_TYPE is nonzero (a hardware bug lets the interrupt beat the entry).
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped, readTypedU32, writeTypedU32 } from '../../bits.js';

export const PPR_ENTRY_BYTES = 16;
export const PPR_ENTRY_WORDS = 2;
export const PPR_ENTRY_U32 = 4;
/** Linux PPR_LOG_ENTRIES. */
export const PPR_LOG_ENTRIES_LINUX = 512;
/** Linux PPR_REQ_FAULT. */
export const PPR_REQ_FAULT = 0x1;

/** The named PPR flags as masks of the 12-bit flag field (Linux PPR_FLAG_*). */
export const PPR_FLAG = { EXEC: 0x002, READ: 0x004, WRITE: 0x020, US: 0x040, RVSD: 0x080, GN: 0x100 } as const;
const NAMED_FLAGS = 0x002 | 0x004 | 0x020 | 0x040 | 0x080 | 0x100;

export const PPR_ENTRY_FIELDS: readonly TypedField[] = [
  { name: 'deviceId', word: 0, hi: 15, lo: 0 },
  { name: 'pasidLo', word: 0, hi: 31, lo: 16 },
  { name: 'prgIndex', word: 0, hi: 40, lo: 32 },
  { name: 'last', word: 0, hi: 41, lo: 41, t: 'b' },
  { name: 'pasidHi', word: 0, hi: 45, lo: 42 },
  { name: 'flags', word: 0, hi: 59, lo: 48 },
  { name: 'type', word: 0, hi: 63, lo: 60 },
  { name: 'address', word: 1, hi: 63, lo: 0, t: 'g' },
];
checkFieldTable('AMD_PPR_ENTRY', PPR_ENTRY_FIELDS, PPR_ENTRY_WORDS);

export interface PprEntry {
  /** PPR_REQ_FAULT for page requests. */
  type: number;
  deviceId: number;
  pasid: number;
  prgIndex: number;
  last: boolean;
  exec: boolean;
  read: boolean;
  write: boolean;
  /** US: user (1) or supervisor request. */
  us: boolean;
  /** RVSD: the request had reserved bits set (Linux rejects it). */
  rvsd: boolean;
  /** GN: the PASID is valid (Linux ignores requests without it). */
  gn: boolean;
  /** Flag bits other than the named ones (masks 0x001, 0x008, 0x010, 0x200, 0x400, 0x800). */
  otherFlags: number;
  address: bigint;
}

function toObj(e: PprEntry): Record<string, unknown> {
  if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xf) throw new RangeError(`field type: ${e.type} does not fit 4 bits`);
  if (!Number.isInteger(e.pasid) || e.pasid < 0 || e.pasid > 0xfffff) throw new RangeError(`field pasid: ${e.pasid} does not fit 20 bits`);
  if ((e.otherFlags & NAMED_FLAGS) !== 0 || e.otherFlags < 0 || e.otherFlags > 0xfff) throw new RangeError(`otherFlags 0x${e.otherFlags.toString(16)}`);
  const flags = (e.exec ? PPR_FLAG.EXEC : 0) | (e.read ? PPR_FLAG.READ : 0) | (e.write ? PPR_FLAG.WRITE : 0)
    | (e.us ? PPR_FLAG.US : 0) | (e.rvsd ? PPR_FLAG.RVSD : 0) | (e.gn ? PPR_FLAG.GN : 0) | e.otherFlags;
  return { ...e, flags, pasidLo: e.pasid & 0xffff, pasidHi: e.pasid >>> 16 };
}

function fromObj(f: Record<string, unknown>): PprEntry {
  const flags = f.flags as number;
  return {
    type: f.type as number, deviceId: f.deviceId as number,
    pasid: ((f.pasidHi as number) << 16) | (f.pasidLo as number), prgIndex: f.prgIndex as number, last: f.last as boolean,
    exec: (flags & PPR_FLAG.EXEC) !== 0, read: (flags & PPR_FLAG.READ) !== 0, write: (flags & PPR_FLAG.WRITE) !== 0,
    us: (flags & PPR_FLAG.US) !== 0, rvsd: (flags & PPR_FLAG.RVSD) !== 0, gn: (flags & PPR_FLAG.GN) !== 0,
    otherFlags: flags & ~NAMED_FLAGS & 0xfff, address: f.address as bigint,
  };
}

export function encodePprEntry(e: PprEntry): bigint[] {
  return encodeTyped(PPR_ENTRY_FIELDS, PPR_ENTRY_WORDS, toObj(e));
}

export function decodePprEntry(words: readonly bigint[]): PprEntry {
  return fromObj(decodeTyped(PPR_ENTRY_FIELDS, words));
}

/** Writes an entry into a log slot, the u32 holding the type last. */
export function writePprEntry(u32: Uint32Array, at: number, e: PprEntry): void {
  writeTypedU32(PPR_ENTRY_FIELDS, PPR_ENTRY_WORDS, u32, at, { ...toObj(e), type: 0 });
  u32[at + 1] = (u32[at + 1] | (e.type << 28)) >>> 0;
}

export function readPprEntry(u32: Uint32Array, at: number): PprEntry {
  return fromObj(readTypedU32(PPR_ENTRY_FIELDS, u32, at));
}

/** The PPR request type from a slot's second u32 only (0 = not written yet). */
export function pprEntryType(u32: Uint32Array, at: number): number {
  return u32[at + 1] >>> 28;
}
