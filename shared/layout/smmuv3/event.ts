/**
 * Arm SMMUv3 event-queue record (32 B).
 *
 * Models: the event IDs of the architecture that QEMU and Linux name (F_UUT … F_VMS_FETCH,
 * E_PAGE_REQUEST) and one record layout covering the fields they carry — DW0: event ID,
 * SSV, SubstreamID, StreamID; DW1: STAG, Stall, PnU, InD, RnW, NSIPA, S2, CLASS, TTRnW;
 * DW2: InputAddr; DW3: the second address — the IPA of translation-class faults (bits
 * 51:12) or the fetch address of F_STE_FETCH / F_CD_FETCH / F_VMS_FETCH / F_WALK_EABT
 * (bits 51:3). Which fields an ID carries is the producer's business (eventHasAddr2 and
 * the notes on each constant say what Linux reads).
 * Positions: Linux arm-smmu-v3.h (EVTQ_*, EVT_ID_*), QEMU smmuv3-internal.h (EVT_SET_*,
 * SMMUEventType); HARDWARE.md §1.2.4.
 * Does not model: the Span field of E_PAGE_REQUEST / F_BAD_ATS_TREQ, IMPDEF events, the
 * secure and MPAM fields, overflow (the queue pointer's bit 31, queue-pointer.ts).
 *
 * Writers store DW0's low half (the event ID) last, so a reader that sees a nonzero ID
 * sees the whole record.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped, readTypedU32, writeTypedU32 } from '../../bits.js';

export const SMMU_EVENT_BYTES = 32;
export const SMMU_EVENT_WORDS = 4;
export const SMMU_EVENT_U32 = 8;
/** Linux EVTQ_ENT_SZ_SHIFT. */
export const EVTQ_ENT_SZ_SHIFT = 5;

/** Event IDs (QEMU SMMUEventType; Linux EVT_ID_* for the ones it decodes). */
export const EVT_ID = {
  F_UUT: 0x01,
  /** StreamID out of range (Linux EVT_ID_BAD_STREAMID_CONFIG). */
  C_BAD_STREAMID: 0x02,
  /** External abort fetching an STE; DW3 = fetch address. */
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_BAD_ATS_TREQ: 0x05,
  /** STE.V = 0 or Config = abort. */
  F_STREAM_DISABLED: 0x06,
  F_TRANSL_FORBIDDEN: 0x07,
  /** SSID ≥ 2^S1CDMax, or SSID traffic on a stream without a CD table. */
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20,
  F_CFG_CONFLICT: 0x21,
  E_PAGE_REQUEST: 0x24,
  F_VMS_FETCH: 0x25,
} as const;
export type SmmuEventName = keyof typeof EVT_ID;

/** CLASS (DW1 41:40): what the faulting walk was doing. */
export const EVT_CLASS_CD = 0;
export const EVT_CLASS_TT = 1;
export const EVT_CLASS_IN = 2;

export const SMMU_EVENT_FIELDS: readonly TypedField[] = [
  { name: 'id', word: 0, hi: 7, lo: 0 },
  { name: 'ssv', word: 0, hi: 11, lo: 11, t: 'b' },
  { name: 'ssid', word: 0, hi: 31, lo: 12 },
  { name: 'sid', word: 0, hi: 63, lo: 32 },
  /** STAG: stall tag, echoed by CMD_RESUME. */
  { name: 'stag', word: 1, hi: 15, lo: 0 },
  /** Stall: the transaction is stalled awaiting RESUME / STALL_TERM. */
  { name: 'stall', word: 1, hi: 31, lo: 31, t: 'b' },
  /** PnU: privileged (1) or unprivileged access. */
  { name: 'pnu', word: 1, hi: 33, lo: 33, t: 'b' },
  /** InD: instruction (1) or data access. */
  { name: 'ind', word: 1, hi: 34, lo: 34, t: 'b' },
  /** RnW: read (1) or write. */
  { name: 'rnw', word: 1, hi: 35, lo: 35, t: 'b' },
  { name: 'nsipa', word: 1, hi: 38, lo: 38, t: 'b' },
  /** S2: the fault was in stage 2. */
  { name: 's2', word: 1, hi: 39, lo: 39, t: 'b' },
  { name: 'class', word: 1, hi: 41, lo: 40 },
  /** TTRnW: read (1) or write of the translation-table access (Linux EVTQ_1_TT_READ). */
  { name: 'ttrnw', word: 1, hi: 44, lo: 44, t: 'b' },
  { name: 'inputAddr', word: 2, hi: 63, lo: 0, t: 'g' },
  /** IPA (51:12) or fetch address (51:3), 8-byte aligned. */
  { name: 'addr2', word: 3, hi: 51, lo: 3, t: 'a', shift: 3 },
];
checkFieldTable('SMMU_EVENT', SMMU_EVENT_FIELDS, SMMU_EVENT_WORDS);

export interface SmmuEvent {
  /** EVT_ID value (any 8-bit code; 0 = empty slot). */
  id: number;
  ssv: boolean;
  ssid: number;
  sid: number;
  stag: number;
  stall: boolean;
  pnu: boolean;
  ind: boolean;
  rnw: boolean;
  nsipa: boolean;
  s2: boolean;
  class: number;
  ttrnw: boolean;
  inputAddr: bigint;
  addr2: bigint;
}

/** A record with every field zero but the ID. */
export function smmuEvent(id: number, f: Partial<SmmuEvent> = {}): SmmuEvent {
  return {
    id, ssv: false, ssid: 0, sid: 0, stag: 0, stall: false, pnu: false, ind: false, rnw: false, nsipa: false,
    s2: false, class: 0, ttrnw: false, inputAddr: 0n, addr2: 0n, ...f,
  };
}

export function encodeSmmuEvent(e: SmmuEvent): bigint[] {
  return encodeTyped(SMMU_EVENT_FIELDS, SMMU_EVENT_WORDS, e as unknown as Record<string, unknown>);
}

export function decodeSmmuEvent(words: readonly bigint[]): SmmuEvent {
  return decodeTyped(SMMU_EVENT_FIELDS, words) as unknown as SmmuEvent;
}

/** Writes a record into a queue slot (u32 index `at`), the event ID last. */
export function writeSmmuEvent(u32: Uint32Array, at: number, e: SmmuEvent): void {
  writeTypedU32(SMMU_EVENT_FIELDS, SMMU_EVENT_WORDS, u32, at, e as unknown as Record<string, unknown>);
}

export function readSmmuEvent(u32: Uint32Array, at: number): SmmuEvent {
  return readTypedU32(SMMU_EVENT_FIELDS, u32, at) as unknown as SmmuEvent;
}

const TRANSLATION_CLASS = new Set<number>([EVT_ID.F_TRANSLATION, EVT_ID.F_ADDR_SIZE, EVT_ID.F_ACCESS, EVT_ID.F_PERMISSION]);
const FETCH_CLASS = new Set<number>([EVT_ID.F_STE_FETCH, EVT_ID.F_CD_FETCH, EVT_ID.F_VMS_FETCH, EVT_ID.F_WALK_EABT]);

/** What DW3 holds for an event ID, as Linux arm_smmu_decode_event reads it. */
export function eventAddr2Kind(id: number): 'ipa' | 'fetch' | 'none' {
  return TRANSLATION_CLASS.has(id) ? 'ipa' : FETCH_CLASS.has(id) ? 'fetch' : 'none';
}

/** The IPA of a translation-class fault (DW3 51:12), or undefined for other IDs. */
export function eventIpa(e: SmmuEvent): bigint | undefined {
  return eventAddr2Kind(e.id) === 'ipa' ? e.addr2 & ~0xfffn : undefined;
}

/** The fetch address of a fetch/walk abort (DW3 51:3), or undefined for other IDs. */
export function eventFetchAddr(e: SmmuEvent): bigint | undefined {
  return eventAddr2Kind(e.id) === 'fetch' ? e.addr2 : undefined;
}

const NAME_OF_ID = new Map<number, SmmuEventName>((Object.entries(EVT_ID) as [SmmuEventName, number][]).map(([k, v]) => [v, k]));

/** The architecture's name of an event ID, or undefined. */
export function smmuEventName(id: number): SmmuEventName | undefined {
  return NAME_OF_ID.get(id);
}
