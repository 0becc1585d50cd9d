/**
 * Page requests (PCIe PRI) of the devices behind one IOMMU, and the page request queue
 * they land in.
 *
 * Models: a device with PRI enabled (context entry PRE) whose translation fails at the page
 * table sends a page request instead of taking a fault: one single-page group (LPIG set)
 * with a 9-bit page request group index (PRGI) of its own, its DMA parked until the
 * page group response comes back through the invalidation queue; SUCCESS makes the device
 * retry, INVALID / FAILURE make it give up, and FAILURE also stops the function from
 * issuing further page requests (PCIe PRI "Response Failure" disables the PRI function).
 * A device with no free PRG index, or a full queue, takes the fault as a device without
 * PRI would (the queue's overflow is counted).
 * Does not model: multi-page groups, stop markers, PRQ overflow's auto-response (PRO), the
 * outstanding-request allocation a device is given by pci_enable_pri.
 */
import { PRG_INDEX_MAX, writePageRequest } from '../shared/layout/page-request.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';

export interface ParkedDma {
  tag: number;
  rid: number;
  pasid: number;
  access: number;
  priv: boolean;
  addrLo: number;
  addrHi: number;
  /** Fault reason of the failed translation (reported if the response refuses). */
  fr: number;
}

export const RESP_SUCCESS = 0x0;
export const RESP_FAILURE = 0xf;

export class PageRequestQueue {
  private readonly parked = new Map<number, ParkedDma>();
  private readonly nextPrg = new Map<number, number>();
  /** Functions whose PRI a FAILURE response stopped. */
  private readonly stopped = new Set<number>();
  requests = 0;
  lost = 0;
  private readonly scratch = new Uint32Array(8);

  constructor(private readonly ring: SpscRing) {}

  /** Sends a page request for a parked DMA; false when the device cannot (the DMA faults). */
  request(d: ParkedDma, stampNs: number): boolean {
    if (this.stopped.has(d.rid)) return false;
    const prg = this.freePrg(d.rid);
    if (prg < 0) return false;
    writePageRequest(this.scratch, 0, {
      pasidPresent: d.pasid >= 0, privDataPresent: false, rid: d.rid, pasid: d.pasid >= 0 ? d.pasid : 0,
      exe: d.access === 2, pm: d.priv, read: d.access !== 1, write: d.access === 1, lpig: true, prgIndex: prg,
      addr: (BigInt(d.addrHi >>> 0) << 32n) | BigInt((d.addrLo & 0xfffff000) >>> 0), privData0: 0n, privData1: 0n,
    });
    if (!this.ring.pushOrOverflow(this.scratch, stampNs)) {
      this.lost++;
      return false;
    }
    this.parked.set(d.rid * 512 + prg, d);
    this.requests++;
    return true;
  }

  /** A page group response: the parked DMA it answers (undefined if none), its PRG freed. */
  respond(rid: number, prg: number, code: number): ParkedDma | undefined {
    const key = rid * 512 + (prg & PRG_INDEX_MAX);
    const d = this.parked.get(key);
    if (!d) return undefined;
    this.parked.delete(key);
    if (code === RESP_FAILURE) this.stopped.add(rid);
    return d;
  }

  /** A page request a test makes the device send (no DMA waits on it). False when the queue was full. */
  inject(r: { rid: number; pasid: number; prgIndex: number; last: boolean; addr: bigint; read: boolean; write: boolean; exec: boolean; priv: boolean }, stampNs: number): boolean {
    writePageRequest(this.scratch, 0, {
      pasidPresent: r.pasid >= 0, privDataPresent: false, rid: r.rid, pasid: r.pasid >= 0 ? r.pasid : 0, exe: r.exec, pm: r.priv,
      read: r.read, write: r.write, lpig: r.last, prgIndex: r.prgIndex & PRG_INDEX_MAX, addr: r.addr & ~0xfffn, privData0: 0n, privData1: 0n,
    });
    if (!this.ring.pushOrOverflow(this.scratch, stampNs)) {
      this.lost++;
      return false;
    }
    this.requests++;
    return true;
  }

  get pending(): number {
    return this.parked.size;
  }

  private freePrg(rid: number): number {
    const start = this.nextPrg.get(rid) ?? 0;
    for (let i = 0; i <= PRG_INDEX_MAX; i++) {
      const prg = (start + i) & PRG_INDEX_MAX;
      if (!this.parked.has(rid * 512 + prg)) {
        this.nextPrg.set(rid, (prg + 1) & PRG_INDEX_MAX);
        return prg;
      }
    }
    return -1;
  }
}
