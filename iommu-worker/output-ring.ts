/**
 * Writing to an output ring (worker → coordinator): one entry at a time, with the
 * modelled time at which software takes it in and its kind in the ring's per-slot tag.
 *
 * Models: the transport between the threads, not hardware: the hardware queue's fullness
 * is decided in modelled time (sw-drain.ts), so when the physical ring is full because
 * the coordinator thread is behind, the worker waits for it instead of dropping. The tag
 * tells entries (OUT_ENTRY) from overflow notices (OUT_OVERFLOW, lost count in word 0) and
 * page-request drain points (OUT_DRAIN).
 * Does not model: anything a device or driver could observe.
 */
import type { SpscRing } from '../shared/ring/spsc-ring.js';

import { OUT_ENTRY, OUT_OVERFLOW } from '../shared/protocol.js';

export { OUT_DRAIN, OUT_ENTRY, OUT_OVERFLOW } from '../shared/protocol.js';

/** The notice that ends an overflow episode: `lost` in word 0 of a zeroed entry, at time `when`. */
export function pushOverflowNotice(ring: SpscRing, scratch: Uint32Array, lost: number, when: number): void {
  scratch.fill(0);
  scratch[0] = lost;
  pushOutput(ring, scratch, when, OUT_OVERFLOW);
}

/** Pushes one entry (its first `ring.entryWords` words of `words`), waiting while the ring is full. */
export function pushOutput(ring: SpscRing, words: Uint32Array, stamp: number, kind = OUT_ENTRY): void {
  while (ring.freeSlots() === 0) ring.waitForSpaceSync(1, 100);
  const slot = ring.prodSlot(0);
  ring.u32.set(words.subarray(0, ring.entryWords), slot * ring.entryWords);
  ring.stamps[slot] = stamp;
  ring.seqs[slot] = kind;
  ring.publish(1);
}
