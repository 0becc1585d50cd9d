/**
 * AMD IOMMU ring registers: the base/length registers of the command buffer, event log and
 * PPR log, and their head/tail pointers — a different form from SMMUv3's PROD/CONS.
 *
 * Models: the base registers (MMIO 0x0008 command buffer, 0x0010 event log, 0x0038 PPR
 * log): base address 51:12 and the length 59:56 as log2 of the number of 16-byte entries
 * (Linux MMIO_CMD_SIZE_512 = 0x9 << 56; the architecture allows 8..15, 256..32768
 * entries). Head and tail (MMIO 0x2000/0x2008, 0x2010/0x2018, 0x2030/0x2038) hold byte
 * offsets into the ring, entry-aligned, bits 18:4. There is no wrap bit: head == tail is
 * empty, and the producer must never make tail catch up with head, so a ring of N entries
 * holds at most N − 1. Linux goes further for the command buffer: it waits while
 * (head − (tail + 16)) mod size ≤ 0x20 (__iommu_queue_command_sync), i.e. it keeps three
 * slots free.
 * Positions: Linux amd_iommu_types.h (MMIO_*_OFFSET, MMIO_CMD_SIZE_SHIFT, EVT_LEN_MASK,
 * PPR_LOG_SIZE_SHIFT) and iommu.c; HARDWARE.md §1.3.
 * Does not model: the STATUS register bits (overflow/run/interrupt), the GA log, the
 * translation of these byte pointers to the simulator's wrap-bit rings (queue-pointer.ts),
 * which profiles do when they build their rings.
 */
import { type TypedField, checkFieldTable, decodeTyped, encodeTyped } from '../../bits.js';

export const AMD_MMIO = {
  DEV_TABLE: 0x0000, CMD_BUF: 0x0008, EVT_BUF: 0x0010, CONTROL: 0x0018, EXT_FEATURES: 0x0030, PPR_LOG: 0x0038,
  CMD_HEAD: 0x2000, CMD_TAIL: 0x2008, EVT_HEAD: 0x2010, EVT_TAIL: 0x2018, STATUS: 0x2020, PPR_HEAD: 0x2030, PPR_TAIL: 0x2038,
} as const;

/** Every AMD ring entry (command, event, PPR) is 16 bytes. */
export const AMD_RING_ENTRY_BYTES = 16;
/** Smallest and largest length encodings (2^8 … 2^15 entries). */
export const AMD_RING_LEN_MIN = 8;
export const AMD_RING_LEN_MAX = 15;
/** Linux's length for all three rings: 2^9 = 512 entries (8 KiB). */
export const AMD_RING_LEN_LINUX = 9;
/** Linux keeps (head − next_tail) mod size above this many bytes before queueing a command. */
export const AMD_CMD_SLACK_BYTES_LINUX = 0x20;

export const AMD_RING_BASE_FIELDS: readonly TypedField[] = [
  { name: 'base', word: 0, hi: 51, lo: 12, t: 'a', shift: 12 },
  { name: 'len', word: 0, hi: 59, lo: 56 },
];
checkFieldTable('AMD_RING_BASE', AMD_RING_BASE_FIELDS, 1);

export interface AmdRingBase {
  /** 4 KiB aligned ring address. */
  base: bigint;
  /** log2 of the number of entries (AMD_RING_LEN_MIN..MAX). */
  len: number;
}

export function encodeAmdRingBase(r: AmdRingBase): bigint {
  if (r.len < AMD_RING_LEN_MIN || r.len > AMD_RING_LEN_MAX) throw new RangeError(`ring length 2^${r.len} outside 2^8..2^15`);
  return encodeTyped(AMD_RING_BASE_FIELDS, 1, r as unknown as Record<string, unknown>)[0];
}

export function decodeAmdRingBase(v: bigint): AmdRingBase {
  return decodeTyped(AMD_RING_BASE_FIELDS, [v]) as unknown as AmdRingBase;
}

/** Head/tail pointer field: byte offset, bits 18:4 (bits 3:0 and 31:19 read as zero). */
export const AMD_RING_PTR_MASK = 0x7fff0;

/** The pointer register value of slot `index`. */
export function amdPtr(index: number): number {
  return (index * AMD_RING_ENTRY_BYTES) & AMD_RING_PTR_MASK;
}

/** The slot a pointer register value designates. */
export function amdPtrIndex(ptr: number): number {
  return (ptr & AMD_RING_PTR_MASK) / AMD_RING_ENTRY_BYTES;
}

/** Next pointer after one entry in a ring of 2^len entries. */
export function amdPtrNext(ptr: number, len: number): number {
  return (ptr + AMD_RING_ENTRY_BYTES) % (AMD_RING_ENTRY_BYTES << len);
}

/** Entries the producer has written that the consumer has not taken. */
export function amdUsed(head: number, tail: number, len: number): number {
  const n = 1 << len;
  return (amdPtrIndex(tail) - amdPtrIndex(head) + n) % n;
}

export function amdEmpty(head: number, tail: number): boolean {
  return (head & AMD_RING_PTR_MASK) === (tail & AMD_RING_PTR_MASK);
}

/** Full as the architecture defines it: one more entry would make tail equal head. */
export function amdFull(head: number, tail: number, len: number): boolean {
  return amdUsed(head, tail, len) === (1 << len) - 1;
}

/**
 * Whether Linux would queue one more command now: with next_tail = tail + 16 (mod size),
 * left = (head − next_tail) mod size must exceed 0x20 bytes (__iommu_queue_command_sync).
 */
export function amdLinuxCanQueueCmd(head: number, tail: number, len: number): boolean {
  const size = AMD_RING_ENTRY_BYTES << len;
  const nextTail = amdPtrNext(tail, len);
  const left = (((head & AMD_RING_PTR_MASK) - nextTail) % size + size) % size;
  return left > AMD_CMD_SLACK_BYTES_LINUX;
}
