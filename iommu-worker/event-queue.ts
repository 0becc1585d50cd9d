/**
 * The fault event queue of one IOMMU: non-recoverable translation faults as records on
 * the event ring to the coordinator.
 *
 * Models: one VT-d fault record (FRCD layout: address, source id, PASID, reason, read or
 * write) per recorded fault, stamped with the modelled time at which the driver takes it
 * in (sw-drain.ts); a queue the driver has not emptied yet is full at its depth: the record
 * is dropped and the overflow (PFO) set, every fault is dropped until the driver has
 * emptied the queue and cleared it, and then an overflow notice with the episode's lost
 * count follows the records (as an entry of kind OUT_OVERFLOW on the ring). Translation
 * never blocks on the queue in modelled time; faults with fault processing disabled (FPD)
 * are counted and not recorded.
 * Does not model: the FRCD register file itself (NFR registers, FRI pointer, fault-event
 * interrupt masking): records go straight to a queue, like SMMUv3's event queue.
 */
import { FAULT_RECORD_U32, writeFaultRecord } from '../shared/layout/fault-record.js';
import { pushOutput, pushOverflowNotice } from './output-ring.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';
import { OverflowingQueue, type SoftwareDrain } from './sw-drain.js';

export class EventQueue {
  recorded = 0;
  suppressed = 0;
  private readonly scratch = new Uint32Array(FAULT_RECORD_U32);
  private readonly q: OverflowingQueue;

  constructor(
    private readonly ring: SpscRing,
    drain: SoftwareDrain,
    at: (t: number, fire: (t: number) => void) => void,
  ) {
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
    writeFaultRecord(this.scratch, 0, {
      addr: (BigInt(addrHi >>> 0) << 32n) | BigInt((addrLo & 0xfffff000) >>> 0),
      sid: rid, pasidPresent: pasid >= 0, reason, pasid: pasid >= 0 ? pasid : 0, addressType: 0, read: !write, fault: true,
    });
    pushOutput(this.ring, this.scratch, takeIn);
    this.recorded++;
    return true;
  }
}
