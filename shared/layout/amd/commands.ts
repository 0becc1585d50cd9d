/**
 * AMD IOMMU command-buffer entries (16 B): one decoded type per opcode.
 *
 * Models: COMPLETION_WAIT (S store, I interrupt, F flush-queue, store address, 64-bit
 * store data), INVALIDATE_DEVTAB_ENTRY, INVALIDATE_IOMMU_PAGES (PASID, DomainID, S, PDE,
 * GN, address), INVALIDATE_IOTLB_PAGES (DeviceID, PASID, Maxpend, QueueID, S, GN, address),
 * INVALIDATE_INTERRUPT_TABLE, COMPLETE_PPR_REQUEST (DeviceID, PASID, GN, completion tag,
 * status) and INVALIDATE_IOMMU_ALL; the S-bit range encoding Linux build_inv_address() uses.
 * The opcode is QW0 bits 63:60 (Linux CMD_SET_TYPE: data[1] bits 31:28).
 * Positions: Linux drivers/iommu/amd/iommu.c (build_completion_wait, build_inv_dte,
 * build_inv_iommu_pages, build_inv_iotlb_pages, build_complete_ppr, build_inv_all,
 * build_inv_irt) and amd_iommu_types.h (CMD_*, PPR_STATUS_SHIFT); HARDWARE.md §1.3.
 * INVALIDATE_IOTLB_PAGES splits the PASID: bits 15:8 in QW0 23:16 and bits 7:0 in QW0 55:48
 * (current Linux; kernels before ~v5.x wrote PASID[7:0] at 23:16 and PASID[19:8] at 59:48).
 * PASID bits 19:16 at QW0 59:56 follow the specification's table and could not be checked
 * against a driver (Linux issues only 16-bit PASIDs) — (unverified).
 * Does not model: PREFETCH_IOMMU_PAGES (0x6), the SNP/vIOMMU commands, the legality checks
 * behind ILLEGAL_COMMAND_ERROR. An unknown opcode decodes as `{ type: 'unknown', op }`.
 */
import {
  type FieldTable, type TypedField, checkFieldTable, decodeTyped, encodeTyped, readTypedU32, writeTypedU32,
} from '../../bits.js';

export const AMD_CMD_BYTES = 16;
export const AMD_CMD_WORDS = 2;
export const AMD_CMD_U32 = 4;

export const AMD_CMD_OP = {
  'completion-wait': 0x1, 'inv-devtab-entry': 0x2, 'inv-iommu-pages': 0x3, 'inv-iotlb-pages': 0x4,
  'inv-interrupt-table': 0x5, 'complete-ppr': 0x7, 'inv-iommu-all': 0x8,
} as const;
export type AmdCmdKind = keyof typeof AMD_CMD_OP;

/** Linux CMD_INV_IOMMU_ALL_PAGES_ADDRESS: with S = 1, every page of the domain/PASID. */
export const INV_ALL_PAGES_ADDRESS = 0x7fff_ffff_ffff_f000n;
/** COMPLETE_PPR status codes (Linux PPR_SUCCESS / PPR_INVALID / PPR_FAILURE). */
export const PPR_SUCCESS = 0x0;
export const PPR_INVALID = 0x1;
export const PPR_FAILURE = 0xf;

const OP: TypedField = { name: 'op', word: 0, hi: 63, lo: 60 };
const DEVID: TypedField = { name: 'deviceId', word: 0, hi: 15, lo: 0 };
const S: TypedField = { name: 's', word: 1, hi: 0, lo: 0, t: 'b' };
const GN: TypedField = { name: 'gn', word: 1, hi: 2, lo: 2, t: 'b' };
const ADDR: TypedField = { name: 'addr', word: 1, hi: 63, lo: 12, t: 'a', shift: 12 };

export const AMD_CMD_FIELDS: Readonly<Record<AmdCmdKind, readonly TypedField[]>> = {
  'completion-wait': [OP,
    { name: 's', word: 0, hi: 0, lo: 0, t: 'b' }, { name: 'i', word: 0, hi: 1, lo: 1, t: 'b' },
    { name: 'f', word: 0, hi: 2, lo: 2, t: 'b' },
    { name: 'storeAddr', word: 0, hi: 51, lo: 3, t: 'a', shift: 3 },
    { name: 'storeData', word: 1, hi: 63, lo: 0, t: 'g' }],
  'inv-devtab-entry': [OP, DEVID],
  'inv-iommu-pages': [OP, { name: 'pasid', word: 0, hi: 19, lo: 0 }, { name: 'domainId', word: 0, hi: 47, lo: 32 },
    S, { name: 'pde', word: 1, hi: 1, lo: 1, t: 'b' }, GN, ADDR],
  'inv-iotlb-pages': [OP, DEVID, { name: 'pasid15to8', word: 0, hi: 23, lo: 16 },
    { name: 'maxPend', word: 0, hi: 31, lo: 24 }, { name: 'queueId', word: 0, hi: 47, lo: 32 },
    { name: 'pasid7to0', word: 0, hi: 55, lo: 48 }, { name: 'pasid19to16', word: 0, hi: 59, lo: 56 },
    S, GN, ADDR],
  'inv-interrupt-table': [OP, DEVID],
  'complete-ppr': [OP, DEVID, { name: 'pasid', word: 0, hi: 51, lo: 32 }, GN,
    { name: 'tag', word: 1, hi: 40, lo: 32 }, { name: 'status', word: 1, hi: 47, lo: 44 }],
  'inv-iommu-all': [OP],
};
for (const [k, t] of Object.entries(AMD_CMD_FIELDS)) checkFieldTable(`AMD_CMD.${k}`, t, AMD_CMD_WORDS);

export type AmdCmd =
  /** storeAddr: 8-byte aligned address that receives storeData when s. */
  | { type: 'completion-wait'; s: boolean; i: boolean; f: boolean; storeAddr: bigint; storeData: bigint }
  | { type: 'inv-devtab-entry'; deviceId: number }
  /** addr/s: see encodeInvRange; pde: also page-directory entries; gn: pasid is valid (guest tables). */
  | { type: 'inv-iommu-pages'; pasid: number; domainId: number; s: boolean; pde: boolean; gn: boolean; addr: bigint }
  /** queueId: Linux writes the DeviceID here; maxPend: the device's ATS invalidate queue depth. */
  | { type: 'inv-iotlb-pages'; deviceId: number; pasid: number; maxPend: number; queueId: number; s: boolean; gn: boolean; addr: bigint }
  | { type: 'inv-interrupt-table'; deviceId: number }
  /** tag: the PRG index of the request; status: PPR_SUCCESS / PPR_INVALID / PPR_FAILURE. */
  | { type: 'complete-ppr'; deviceId: number; pasid: number; gn: boolean; tag: number; status: number }
  | { type: 'inv-iommu-all' }
  | { type: 'unknown'; op: number };

const KIND_OF_OP = new Map<number, AmdCmdKind>((Object.entries(AMD_CMD_OP) as [AmdCmdKind, number][]).map(([k, c]) => [c, k]));

function fieldsOf(c: AmdCmd): { table: FieldTable; obj: Record<string, unknown> } {
  if (c.type === 'unknown') {
    if (!Number.isInteger(c.op) || c.op < 0 || c.op > 0xf) throw new RangeError(`AMD command opcode ${c.op}`);
    return { table: [OP], obj: { op: c.op } };
  }
  const obj: Record<string, unknown> = { ...c, op: AMD_CMD_OP[c.type] };
  if (c.type === 'inv-iotlb-pages') {
    if (!Number.isInteger(c.pasid) || c.pasid < 0 || c.pasid > 0xfffff) throw new RangeError(`field pasid: ${c.pasid} does not fit 20 bits`);
    obj.pasid15to8 = (c.pasid >>> 8) & 0xff;
    obj.pasid7to0 = c.pasid & 0xff;
    obj.pasid19to16 = c.pasid >>> 16;
  }
  return { table: AMD_CMD_FIELDS[c.type], obj };
}

function fromFields(type: AmdCmdKind, f: Record<string, unknown>): AmdCmd {
  const { op: _op, pasid15to8, pasid7to0, pasid19to16, ...rest } = f;
  if (type === 'inv-iotlb-pages') {
    rest.pasid = ((pasid19to16 as number) << 16) | ((pasid15to8 as number) << 8) | (pasid7to0 as number);
  }
  return { type, ...rest } as AmdCmd;
}

function opOf(words: readonly bigint[]): number {
  return Number(((words[0] ?? 0n) >> 60n) & 0xfn);
}

/** Encodes a command as 2 64-bit words. A field value that does not fit throws RangeError. */
export function encodeAmdCmd(c: AmdCmd): bigint[] {
  const { table, obj } = fieldsOf(c);
  return encodeTyped(table, AMD_CMD_WORDS, obj);
}

/** Decodes 2 words; an opcode not in AMD_CMD_OP gives `{ type: 'unknown', op }`. */
export function decodeAmdCmd(words: readonly bigint[]): AmdCmd {
  const op = opOf(words);
  const type = KIND_OF_OP.get(op);
  if (type === undefined) return { type: 'unknown', op };
  return fromFields(type, decodeTyped(AMD_CMD_FIELDS[type], words));
}

/**
 * Writes a command into a buffer slot (u32 index `at`); the same bits as encodeAmdCmd.
 * The opcode sits in the first entry's second u32: the consumer reads the slot only after
 * the tail register moves, so no field order is needed for correctness.
 */
export function writeAmdCmd(u32: Uint32Array, at: number, c: AmdCmd): void {
  const { table, obj } = fieldsOf(c);
  writeTypedU32(table, AMD_CMD_WORDS, u32, at, obj);
}

export function readAmdCmd(u32: Uint32Array, at: number): AmdCmd {
  const op = u32[at + 1] >>> 28;
  const type = KIND_OF_OP.get(op);
  if (type === undefined) return { type: 'unknown', op };
  return fromFields(type, readTypedU32(AMD_CMD_FIELDS[type], u32, at));
}

// --- The S-bit range encoding of INVALIDATE_IOMMU_PAGES / INVALIDATE_IOTLB_PAGES. ---

const PAGE = 0x1000n;

/**
 * Address and S bit for invalidating [base, base + bytes), as Linux build_inv_address():
 * one page → S = 0 and the page address; otherwise S = 1 and the address with every bit
 * below the highest bit that differs between start and end set (a naturally aligned
 * power-of-two range covering both); if bit 51 or above differs, INV_ALL_PAGES_ADDRESS.
 */
export function encodeInvRange(base: bigint, bytes: bigint): { addr: bigint; s: boolean } {
  if (bytes <= 0n || base < 0n) throw new RangeError(`invalidation range 0x${base.toString(16)} +0x${bytes.toString(16)}`);
  const first = base & ~(PAGE - 1n);
  const end = base + bytes - 1n;
  if ((end & ~(PAGE - 1n)) === first) return { addr: first, s: false };
  const diff = end ^ base;
  let msb = -1n;
  for (let d = diff; d > 0n; d >>= 1n) msb++;
  if (msb > 51n) return { addr: INV_ALL_PAGES_ADDRESS, s: true };
  return { addr: (base | ((1n << msb) - 1n)) & ~(PAGE - 1n), s: true };
}

/**
 * The range an (address, S) pair invalidates: S = 0 is the one page; S = 1 is 2^(p+1)
 * bytes where p (≥ 12) is the lowest 0 bit of the address (the PCIe ATS convention the
 * AMD IOMMU shares); INV_ALL_PAGES_ADDRESS is the whole 64-bit space.
 */
export function decodeInvRange(addr: bigint, s: boolean): { base: bigint; bytes: bigint } {
  const a = addr & ~(PAGE - 1n);
  if (!s) return { base: a, bytes: PAGE };
  let p = 12n;
  while (p < 63n && ((a >> p) & 1n) === 1n) p++;
  const bytes = 1n << (p + 1n);
  return { base: a & ~(bytes - 1n), bytes };
}
