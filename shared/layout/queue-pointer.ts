/**
 * Queue pointer: the SMMUv3 PROD/CONS register encoding that every ring in the simulator
 * uses (HARDWARE.md §1.2.1 and §5.1), whatever the hardware profile.
 *
 * Models: a queue of 2^log2 entries whose producer and consumer pointers each hold an
 * index in bits [log2-1:0] and a wrap bit at bit log2, which flips on every lap. Equal
 * index and equal wrap bit = empty; equal index and different wrap bit = full, so all
 * 2^log2 slots are usable (no empty slot is wasted, unlike VT-d head/tail or ringbuf.js).
 * Bit 31 is the overflow flag of event and PRI queues (`Q_OVERFLOW_FLAG`): in PROD it is
 * toggled by the producer when an entry is lost, in CONS it is the consumer's
 * acknowledgement (OVACKFLG); an overflow is pending while the two differ. Arithmetic on
 * a pointer keeps bit 31 as it is.
 * Does not model: CMDQ_CONS.ERR (bits 30:24), the VT-d and AMD register forms (byte
 * offsets without a wrap bit; profiles translate them to this one), queues of more than
 * 2^30 entries (bit 31 must stay free).
 *
 * Formulas as in QEMU's smmuv3-internal.h and Linux's Q_IDX/Q_WRP:
 *   full  = ((prod ^ cons) & WRAP_INDEX_MASK) == WRAP_MASK
 *   empty = ((prod ^ cons) & WRAP_INDEX_MASK) == 0
 * All results are unsigned 32-bit numbers (`>>> 0`).
 */

/** Overflow flag, bit 31 of PROD (event/PRI queues) and acknowledgement bit 31 of CONS. */
export const Q_OVF = 0x80000000;

/** Largest log2 of a queue depth: the wrap bit must stay below the overflow flag. */
export const Q_LOG2_MAX = 30;

/** Mask of the index bits [log2-1:0]. */
export function qIdxMask(log2: number): number {
  return ((1 << log2) - 1) >>> 0;
}

/** Mask of the wrap bit (bit log2). */
export function qWrapMask(log2: number): number {
  return (1 << log2) >>> 0;
}

/** Mask of index and wrap bit together (bits [log2:0]). */
export function qWrapIdxMask(log2: number): number {
  return ((2 << log2) - 1) >>> 0;
}

/** The slot index a pointer designates. */
export function qIdx(p: number, log2: number): number {
  return (p & ((1 << log2) - 1)) >>> 0;
}

/** The wrap bit of a pointer, as 0 or 1. */
export function qWrap(p: number, log2: number): number {
  return (p >>> log2) & 1;
}

/** The overflow flag (bit 31) of a pointer, as 0 or 1. */
export function qOvf(p: number): number {
  return p >>> 31;
}

/**
 * Advances a pointer by n entries (0 ≤ n ≤ 2^log2), flipping the wrap bit on every lap;
 * the overflow flag (bit 31) is kept as it is.
 */
export function qInc(p: number, log2: number, n = 1): number {
  const wi = (2 << log2) - 1;
  return ((p & Q_OVF) | (((p & wi) + n) & wi)) >>> 0;
}

/** True when the producer has filled all 2^log2 slots the consumer has not released. */
export function qFull(prod: number, cons: number, log2: number): boolean {
  return ((prod ^ cons) & ((2 << log2) - 1)) >>> 0 === (1 << log2) >>> 0;
}

/** True when the consumer has taken every published entry. */
export function qEmpty(prod: number, cons: number, log2: number): boolean {
  return ((prod ^ cons) & ((2 << log2) - 1)) === 0;
}

/** Entries published and not yet released (0 … 2^log2); the overflow flags are ignored. */
export function qUsed(prod: number, cons: number, log2: number): number {
  const wi = (2 << log2) - 1;
  return ((prod & wi) - (cons & wi)) & wi;
}

/** Free slots the producer may fill (2^log2 − used). */
export function qFree(prod: number, cons: number, log2: number): number {
  return (1 << log2) - qUsed(prod, cons, log2);
}

/** Builds a pointer from its fields (index < 2^log2, wrap and ovf 0 or 1). */
export function qMake(idx: number, wrap: number, log2: number, ovf = 0): number {
  return ((ovf ? Q_OVF : 0) | ((wrap & 1) << log2) | (idx & ((1 << log2) - 1))) >>> 0;
}
