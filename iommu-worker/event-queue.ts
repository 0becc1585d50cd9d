/**
 * The fault event queue of one IOMMU: non-recoverable translation faults as records on
 * the event ring to the coordinator.
 *
 * Models: one record per recorded fault in the profile's format (VT-d FRCD layout: address,
 * source id, PASID, reason, read or write; SMMUv3 event record; AMD event-log entry), stamped with the modelled time at which the driver takes it
 * in (sw-drain.ts); a queue the driver has not emptied yet is full at its depth: the record
 * is dropped and the overflow (PFO) set, every fault is dropped until the driver has
 * emptied the queue and cleared it, and then an overflow notice with the episode's lost
 * count follows the records (as an entry of kind OUT_OVERFLOW on the ring). Translation
 * never blocks on the queue in modelled time; faults with fault processing disabled (FPD)
 * are counted and not recorded.
 * Does not model: the FRCD register file itself (NFR registers, FRI pointer, fault-event
 * interrupt masking): records go straight to a queue, like SMMUv3's event queue.
 */
import type { ProfileCodec } from '../shared/layout/profile-codec.js';
import { pushOutput, pushOverflowNotice } from './output-ring.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';
import { OverflowingQueue, type SoftwareDrain } from './sw-drain.js';

export class EventQueue {
  recorded = 0;
  suppressed = 0;
  private readonly scratch: Uint32Array;
  private readonly q: OverflowingQueue;

  constructor(
    private readonly ring: SpscRing,
    /** The profile's record format (VT-d fault record, SMMUv3 event, AMD event-log entry). */
    private readonly codec: ProfileCodec,
    drain: SoftwareDrain,
    at: (t: number, fire: (t: number) => void) => void,
  ) {
    this.scratch = new Uint32Array(codec.faultBytes / 4);
    // The driver has emptied the queue and cleared the overflow: the notice goes out.
    this.q = new OverflowingQueue(drain, at, (lost, when) => pushOverflowNotice(this.ring, this.scratch, lost, when));
  }

  /** Modelled occupancy at each fault written or dropped. */
  get occupancy() {
    return this.q.occupancy;
  }

  /** Faults lost to overflows. */
  get lost(): number {
    return this.q.lost;
  }

  /** Records a fault at modelled time `t`; returns false when it was lost to an overflow. */
  record(rid: number, pasid: number, addrLo: number, addrHi: number, reason: number, write: boolean, t: number): boolean {
    this.q.endIfDue(t); // before the scratch is filled
    const takeIn = this.q.admit(t);
    if (takeIn < 0) return false;
    this.codec.writeFault(this.scratch, 0, { rid, pasid, addr: (BigInt(addrHi >>> 0) << 32n) | BigInt((addrLo & 0xfffff000) >>> 0), fr: reason, write });
    pushOutput(this.ring, this.scratch, takeIn);
    this.recorded++;
    return true;
  }
}
