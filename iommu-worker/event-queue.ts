/**
 * The fault event queue of one IOMMU: non-recoverable translation faults as records on
 * the event ring to the coordinator.
 *
 * Models: one VT-d fault record (FRCD layout: address, source id, PASID, reason, read or
 * write) per recorded fault, stamped with its modelled time; a full queue drops the record
 * and raises the ring's overflow flag with a lost count (as the hardware's PFO/overflow
 * does), it never blocks translation; faults with fault processing disabled (FPD) are
 * counted and not recorded.
 * Does not model: the FRCD register file itself (NFR registers, FRI pointer, fault-event
 * interrupt masking): records go straight to a queue, like SMMUv3's event queue.
 */
import { FAULT_RECORD_U32, writeFaultRecord } from '../shared/layout/fault-record.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';

export class EventQueue {
  recorded = 0;
  suppressed = 0;
  lost = 0;
  private readonly scratch = new Uint32Array(FAULT_RECORD_U32);

  constructor(private readonly ring: SpscRing) {}

  /** Records a fault; returns false when it was lost to overflow. */
  record(rid: number, pasid: number, addrLo: number, addrHi: number, reason: number, write: boolean, stampNs: number): boolean {
    writeFaultRecord(this.scratch, 0, {
      addr: (BigInt(addrHi >>> 0) << 32n) | BigInt((addrLo & 0xfffff000) >>> 0),
      sid: rid, pasidPresent: pasid >= 0, reason, pasid: pasid >= 0 ? pasid : 0, addressType: 0, read: !write, fault: true,
    });
    if (this.ring.pushOrOverflow(this.scratch, stampNs)) {
      this.recorded++;
      return true;
    }
    this.lost++;
    return false;
  }
}
