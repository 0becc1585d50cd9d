/**
 * Arm SMMUv3 command-queue entries (16 B): one decoded type per opcode.
 *
 * Models: CMD_PREFETCH_CONFIG / PREFETCH_ADDR, CFGI_STE, CFGI_STE_RANGE (CFGI_ALL is
 * CFGI_STE_RANGE with Range = 31, Linux CMDQ_OP_CFGI_ALL 0x4), CFGI_CD, CFGI_CD_ALL,
 * TLBI_NH_ALL / NH_ASID / NH_VA / NH_VAA, TLBI_EL2_ALL / EL2_ASID / EL2_VA, TLBI_S12_VMALL,
 * TLBI_S2_IPA, TLBI_NSNH_ALL, ATC_INV, PRI_RESP, RESUME, STALL_TERM and CMD_SYNC, with the
 * range-invalidation fields (NUM, SCALE in DW0; LEAF, TTL, TG in DW1) where the TLBI has
 * them, and Linux's split of a range into (NUM, SCALE) chunks.
 * Positions: Linux arm-smmu-v3.h (CMDQ_*), QEMU smmuv3-internal.h (CMD_*); HARDWARE.md §1.2.3.
 * Does not model: SSec (bit 10, secure streams), PREFETCH_ADDR's Stride and NS fields,
 * TLBI_EL3_*, TLBI_NH_VAA's EL2 twin (0x23), the ECMDQ/CMDQV forms. An opcode not listed
 * decodes as `{ type: 'unknown', op }` (the consumer raises CERROR_ILL). Decoding drops
 * reserved bits; QEMU's enum also numbers a SMMU_CMD_CFGI_ALL 0x07, which neither the
 * architecture nor Linux issues — here 0x07 is unknown.
 *
 * Words: DW0 = bits 63:0 (opcode in 7:0, read first by the consumer), DW1 = bits 127:64.
 */
import {
  type FieldTable, type TypedField, checkFieldTable, decodeTyped, encodeTyped, readTypedU32, writeTypedU32,
} from '../../bits.js';

export const SMMU_CMD_BYTES = 16;
export const SMMU_CMD_WORDS = 2;
/** u32 slots per command in a Uint32Array view of the queue. */
export const SMMU_CMD_U32 = 4;
/** Linux CMDQ_ENT_SZ_SHIFT. */
export const CMDQ_ENT_SZ_SHIFT = 4;
/** Linux CMDQ_BATCH_ENTRIES (BITS_PER_LONG): the queue must hold at least this many entries. */
export const CMDQ_BATCH_ENTRIES = 64;

export const SMMU_CMD_OP = {
  'prefetch-config': 0x01, 'prefetch-addr': 0x02, 'cfgi-ste': 0x03, 'cfgi-ste-range': 0x04, 'cfgi-cd': 0x05,
  'cfgi-cd-all': 0x06, 'tlbi-nh-all': 0x10, 'tlbi-nh-asid': 0x11, 'tlbi-nh-va': 0x12, 'tlbi-nh-vaa': 0x13,
  'tlbi-el2-all': 0x20, 'tlbi-el2-asid': 0x21, 'tlbi-el2-va': 0x22, 'tlbi-s12-vmall': 0x28, 'tlbi-s2-ipa': 0x2a,
  'tlbi-nsnh-all': 0x30, 'atc-inv': 0x40, 'pri-resp': 0x41, resume: 0x44, 'stall-term': 0x45, 'cmd-sync': 0x46,
} as const;
export type SmmuCmdKind = keyof typeof SMMU_CMD_OP;

/** CFGI_STE_RANGE with this Range is CFGI_ALL (every STE). */
export const CFGI_RANGE_ALL = 31;
/** CMD_SYNC.CS: completion signal. */
export const CS_NONE = 0;
export const CS_IRQ = 1;
export const CS_SEV = 2;
/** CMD_SYNC.MSH / MSIATTR values Linux uses for MSI polling (ARM_SMMU_SH_ISH, MEMATTR_OIWB). */
export const SH_ISH = 3;
export const MEMATTR_OIWB = 0xf;
/** PRI_RESP.Resp (Linux enum pri_resp). */
export const PRI_RESP_DENY = 0;
export const PRI_RESP_FAIL = 1;
export const PRI_RESP_SUCC = 2;
/** RESUME.Resp: Ac (bit 12) / Ab (bit 13). */
export const RESUME_TERM = 0;
export const RESUME_RETRY = 1;
export const RESUME_ABORT = 2;
/** ATC_INV.Size meaning "the whole address space" (Linux ATC_INV_SIZE_ALL). */
export const ATC_INV_SIZE_ALL = 52;
/** Largest NUM of a range TLBI (Linux CMDQ_TLBI_RANGE_NUM_MAX). */
export const TLBI_RANGE_NUM_MAX = 31;

const OP: TypedField = { name: 'op', word: 0, hi: 7, lo: 0 };
const SSV: TypedField = { name: 'ssv', word: 0, hi: 11, lo: 11, t: 'b' };
const SSID: TypedField = { name: 'ssid', word: 0, hi: 31, lo: 12 };
const SID: TypedField = { name: 'sid', word: 0, hi: 63, lo: 32 };
const VMID: TypedField = { name: 'vmid', word: 0, hi: 47, lo: 32 };
const ASID: TypedField = { name: 'asid', word: 0, hi: 63, lo: 48 };
const LEAF: TypedField = { name: 'leaf', word: 1, hi: 0, lo: 0, t: 'b' };
/** NUM/SCALE (DW0) and LEAF/TTL/TG (DW1) of the range TLBIs. */
const RANGE: readonly TypedField[] = [
  { name: 'num', word: 0, hi: 16, lo: 12 }, { name: 'scale', word: 0, hi: 24, lo: 20 },
  LEAF, { name: 'ttl', word: 1, hi: 9, lo: 8 }, { name: 'tg', word: 1, hi: 11, lo: 10 },
];
const VA: TypedField = { name: 'addr', word: 1, hi: 63, lo: 12, t: 'a', shift: 12 };

export const SMMU_CMD_FIELDS: Readonly<Record<SmmuCmdKind, readonly TypedField[]>> = {
  'prefetch-config': [OP, SSV, SSID, SID],
  'prefetch-addr': [OP, SSV, SSID, SID, { name: 'size', word: 1, hi: 4, lo: 0 }, VA],
  'cfgi-ste': [OP, SID, LEAF],
  'cfgi-ste-range': [OP, SID, { name: 'range', word: 1, hi: 4, lo: 0 }],
  'cfgi-cd': [OP, SSID, SID, LEAF],
  'cfgi-cd-all': [OP, SID],
  'tlbi-nh-all': [OP, VMID],
  'tlbi-nh-asid': [OP, VMID, ASID],
  'tlbi-nh-va': [OP, VMID, ASID, ...RANGE, VA],
  'tlbi-nh-vaa': [OP, VMID, ...RANGE, VA],
  'tlbi-el2-all': [OP],
  'tlbi-el2-asid': [OP, ASID],
  'tlbi-el2-va': [OP, ASID, ...RANGE, VA],
  'tlbi-s12-vmall': [OP, VMID],
  'tlbi-s2-ipa': [OP, VMID, ...RANGE, { name: 'addr', word: 1, hi: 51, lo: 12, t: 'a', shift: 12 }],
  'tlbi-nsnh-all': [OP],
  'atc-inv': [OP, { name: 'global', word: 0, hi: 9, lo: 9, t: 'b' }, SSV, SSID, SID,
    { name: 'size', word: 1, hi: 5, lo: 0 }, VA],
  'pri-resp': [OP, SSV, SSID, SID, { name: 'grpid', word: 1, hi: 8, lo: 0 }, { name: 'resp', word: 1, hi: 13, lo: 12 }],
  resume: [OP, { name: 'resp', word: 0, hi: 13, lo: 12 }, SID, { name: 'stag', word: 1, hi: 15, lo: 0 }],
  'stall-term': [OP, SID],
  'cmd-sync': [OP, { name: 'cs', word: 0, hi: 13, lo: 12 }, { name: 'msh', word: 0, hi: 23, lo: 22 },
    { name: 'msiattr', word: 0, hi: 27, lo: 24 }, { name: 'msiData', word: 0, hi: 63, lo: 32 },
    { name: 'msiAddr', word: 1, hi: 51, lo: 2, t: 'a', shift: 2 }],
};
for (const [k, t] of Object.entries(SMMU_CMD_FIELDS)) checkFieldTable(`SMMU_CMD.${k}`, t, SMMU_CMD_WORDS);

/** Range-TLBI operands: NUM/SCALE/TG 0 = one address; see tlbiRangeChunks. */
interface TlbiRange { num: number; scale: number; leaf: boolean; ttl: number; tg: number; addr: bigint }

export type SmmuCmd =
  | { type: 'prefetch-config'; ssv: boolean; ssid: number; sid: number }
  | { type: 'prefetch-addr'; ssv: boolean; ssid: number; sid: number; size: number; addr: bigint }
  | { type: 'cfgi-ste'; sid: number; leaf: boolean }
  /** range: log2 of the number of STEs from sid (aligned down); 31 = CFGI_ALL. */
  | { type: 'cfgi-ste-range'; sid: number; range: number }
  | { type: 'cfgi-cd'; ssid: number; sid: number; leaf: boolean }
  | { type: 'cfgi-cd-all'; sid: number }
  | { type: 'tlbi-nh-all'; vmid: number }
  | { type: 'tlbi-nh-asid'; vmid: number; asid: number }
  | ({ type: 'tlbi-nh-va'; vmid: number; asid: number } & TlbiRange)
  | ({ type: 'tlbi-nh-vaa'; vmid: number } & TlbiRange)
  | { type: 'tlbi-el2-all' }
  | { type: 'tlbi-el2-asid'; asid: number }
  | ({ type: 'tlbi-el2-va'; asid: number } & TlbiRange)
  | { type: 'tlbi-s12-vmall'; vmid: number }
  /** addr: the IPA (bits 51:12). */
  | ({ type: 'tlbi-s2-ipa'; vmid: number } & TlbiRange)
  | { type: 'tlbi-nsnh-all' }
  /** size: log2 of the span in 4 KiB pages, addr aligned to it; ATC_INV_SIZE_ALL = everything. */
  | { type: 'atc-inv'; global: boolean; ssv: boolean; ssid: number; sid: number; size: number; addr: bigint }
  | { type: 'pri-resp'; ssv: boolean; ssid: number; sid: number; grpid: number; resp: number }
  | { type: 'resume'; resp: number; sid: number; stag: number }
  | { type: 'stall-term'; sid: number }
  /** msiAddr: 4-byte aligned address that receives msiData when cs = CS_IRQ and MSIs are used. */
  | { type: 'cmd-sync'; cs: number; msh: number; msiattr: number; msiData: number; msiAddr: bigint }
  | { type: 'unknown'; op: number };

const KIND_OF_OP = new Map<number, SmmuCmdKind>(
  (Object.entries(SMMU_CMD_OP) as [SmmuCmdKind, number][]).map(([k, c]) => [c, k]));

function fieldsOf(c: SmmuCmd): { table: FieldTable; obj: Record<string, unknown> } {
  if (c.type === 'unknown') {
    if (!Number.isInteger(c.op) || c.op < 0 || c.op > 0xff) throw new RangeError(`SMMU command opcode ${c.op}`);
    return { table: [OP], obj: { op: c.op } };
  }
  return { table: SMMU_CMD_FIELDS[c.type], obj: { ...c, op: SMMU_CMD_OP[c.type] } };
}

function fromFields(type: SmmuCmdKind, f: Record<string, unknown>): SmmuCmd {
  const { op: _op, ...rest } = f;
  return { type, ...rest } as SmmuCmd;
}

/** Encodes a command as 2 64-bit words. A field value that does not fit throws RangeError. */
export function encodeSmmuCmd(c: SmmuCmd): bigint[] {
  const { table, obj } = fieldsOf(c);
  return encodeTyped(table, SMMU_CMD_WORDS, obj);
}

/** Decodes 2 words; an opcode not in SMMU_CMD_OP gives `{ type: 'unknown', op }`. */
export function decodeSmmuCmd(words: readonly bigint[]): SmmuCmd {
  const op = Number((words[0] ?? 0n) & 0xffn);
  const type = KIND_OF_OP.get(op);
  if (type === undefined) return { type: 'unknown', op };
  return fromFields(type, decodeTyped(SMMU_CMD_FIELDS[type], words));
}

/** Writes a command into a queue slot (u32 index `at`); the same bits as encodeSmmuCmd. */
export function writeSmmuCmd(u32: Uint32Array, at: number, c: SmmuCmd): void {
  const { table, obj } = fieldsOf(c);
  writeTypedU32(table, SMMU_CMD_WORDS, u32, at, obj);
}

/** Reads a command from a queue slot; the same result as decodeSmmuCmd. */
export function readSmmuCmd(u32: Uint32Array, at: number): SmmuCmd {
  const op = u32[at] & 0xff;
  const type = KIND_OF_OP.get(op);
  if (type === undefined) return { type: 'unknown', op };
  return fromFields(type, readTypedU32(SMMU_CMD_FIELDS[type], u32, at));
}

/** CFGI_ALL: invalidate every cached STE (CFGI_STE_RANGE, Range 31). */
export function cfgiAll(): SmmuCmd {
  return { type: 'cfgi-ste-range', sid: 0, range: CFGI_RANGE_ALL };
}

// --- Range TLBI (IDR3.RIL): TG, NUM and SCALE. ---

/** TG for a granule of 2^shift bytes: 4 KiB → 1, 16 KiB → 2, 64 KiB → 3 (Linux (ilog2(granule) - 10) / 2). */
export function tlbiTg(granuleShift: number): number {
  if (granuleShift !== 12 && granuleShift !== 14 && granuleShift !== 16) throw new RangeError(`granule 2^${granuleShift}`);
  return (granuleShift - 10) / 2;
}

/** Granule shift of a TG (1, 2, 3); 0 = not a range invalidation. */
export function tlbiGranuleShift(tg: number): number {
  if (tg < 1 || tg > 3 || !Number.isInteger(tg)) throw new RangeError(`TG ${tg} is not a range granule`);
  return 10 + 2 * tg;
}

/** Bytes a range TLBI covers: (NUM + 1) × 2^SCALE granules. */
export function tlbiRangeBytes(num: number, scale: number, tg: number): bigint {
  return BigInt(num + 1) << BigInt(scale + tlbiGranuleShift(tg));
}

/**
 * Splits `pages` granules into range TLBIs as Linux __arm_smmu_tlb_inv_range does: each
 * chunk takes the lowest set bit as SCALE and the 5 bits above it as NUM + 1.
 * Returns the (num, scale) operands and the granules each covers, lowest address first.
 */
export function tlbiRangeChunks(pages: bigint): { num: number; scale: number; pages: bigint }[] {
  if (pages <= 0n) throw new RangeError(`range of ${pages} pages`);
  const out: { num: number; scale: number; pages: bigint }[] = [];
  let left = pages;
  while (left > 0n) {
    let scale = 0;
    while (((left >> BigInt(scale)) & 1n) === 0n) scale++;
    const n = Number((left >> BigInt(scale)) & BigInt(TLBI_RANGE_NUM_MAX));
    out.push({ num: n - 1, scale, pages: BigInt(n) << BigInt(scale) });
    left -= BigInt(n) << BigInt(scale);
  }
  return out;
}
