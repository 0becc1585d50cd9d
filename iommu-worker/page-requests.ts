/**
 * Page requests (PCIe PRI) of the devices behind one IOMMU, and the page request queue
 * (PRQ) they land in.
 *
 * Models: a device with PRI enabled (context entry PRE) whose translation fails at the page
 * table sends a page request instead of taking a fault: one single-page group (LPIG set)
 * with a 9-bit page request group index (PRGI) of its own, its DMA parked until the
 * page group response comes back through the invalidation queue; SUCCESS makes the device
 * retry, INVALID / FAILURE make it give up, and FAILURE also stops the function from
 * issuing further page requests (PCIe PRI "Response Failure" disables the PRI function).
 * Each request is stamped with the modelled time the driver takes it in (sw-drain.ts).
 * PRQ overflow as VT-d reports it: a request that finds the queue full (in modelled time),
 * or arrives while the overflow (PRS.PRO) is set, is dropped and counted; when it is the
 * last of its group (LPIG) the IOMMU answers it itself with SUCCESS (the "auto response"),
 * so the device retries — here when the driver has emptied the queue and cleared PRO,
 * which also sends software an overflow notice (iopf_queue_discard_partial runs then); a
 * dropped request without LPIG gets no response. PCIe Stop Markers (a PASID-tagged
 * request with L=1, R=W=0) go through the queue like any request and need no response.
 * A device with no free PRG index takes the fault as a device without PRI would.
 * The same model serves SMMUv3's PRI queue and AMD's PPR log (entries in their formats,
 * answered by CMD_PRI_RESP / COMPLETE_PPR). SMMUv3 overflows exactly so (SMMUv3 spec §8.1:
 * while OVFLG is active requests are discarded, a discarded Last == 1 request gets an
 * automatic Success response, Stop Markers none, and software ignores the groups whose Last
 * was lost); AMD's PPR log is assumed to behave the same.
 * Does not model: the outstanding-request allocation a device is given by pci_enable_pri
 * (with it, correct software never overflows the queue), private data.
 */
import { PRG_INDEX_MAX } from '../shared/layout/page-request.js';
import type { ProfileCodec } from '../shared/layout/profile-codec.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';
import { OUT_DRAIN, pushOutput, pushOverflowNotice } from './output-ring.js';
import { OverflowingQueue, type SoftwareDrain } from './sw-drain.js';

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

/** What happened to a page request the device sent. */
export const PrqOutcome = {
  /** In the queue: the DMA stays parked until software answers. */
  Queued: 0,
  /** Dropped to overflow and answered SUCCESS by the IOMMU: the device retries later. */
  AutoResponded: 1,
  /** The device could not send it (PRI stopped, no PRG index): the DMA faults. */
  Refused: 2,
} as const;
export type PrqOutcome = (typeof PrqOutcome)[keyof typeof PrqOutcome];

export class PageRequestQueue {
  private readonly parked = new Map<number, ParkedDma>();
  private readonly nextPrg = new Map<number, number>();
  /** Functions whose PRI a FAILURE response stopped. */
  private readonly stopped = new Set<number>();
  /** DMAs whose request the IOMMU auto-answered on overflow: retried when PRO is cleared. */
  private retries: ParkedDma[] = [];
  private readonly q: OverflowingQueue;
  /** Retries the auto-answered DMAs at the time PRO is cleared (set by iommu.ts). */
  onRetry: (list: ParkedDma[], at: number) => void = () => {};
  /** Requests written to the queue (stop markers included). */
  requests = 0;
  /** Dropped last-in-group requests the IOMMU answered itself with SUCCESS. */
  autoResponses = 0;
  stopMarkers = 0;
  private readonly scratch = new Uint32Array(8);

  constructor(
    private readonly ring: SpscRing,
    /** The profile's page request format (VT-d PRQ descriptor, SMMUv3 PRI record, AMD PPR entry). */
    private readonly codec: ProfileCodec,
    drain: SoftwareDrain,
    at: (t: number, fire: (t: number) => void) => void,
  ) {
    this.q = new OverflowingQueue(drain, at, (lost, when) => {
      // The driver has taken in every request and clears PRO: the notice goes to software,
      // then the devices whose requests were auto-answered retry.
      pushOverflowNotice(this.ring, this.scratch, lost, when);
      const list = this.retries;
      this.retries = [];
      if (list.length > 0) this.onRetry(list, when);
    });
  }

  /** Modelled occupancy at each request written or dropped. */
  get occupancy() {
    return this.q.occupancy;
  }

  /** Requests dropped because of an overflow (each counted once). */
  get lost(): number {
    return this.q.lost;
  }

  /** Sends a page request for a DMA whose translation failed at the page table. */
  request(d: ParkedDma, stampNs: number): PrqOutcome {
    this.q.endIfDue(stampNs); // an overflow the clock ran past ends before the scratch is filled
    if (this.stopped.has(d.rid)) return PrqOutcome.Refused;
    const prg = this.freePrg(d.rid);
    if (prg < 0) return PrqOutcome.Refused;
    this.codec.writePageRequest(this.scratch, 0, {
      pasidPresent: d.pasid >= 0, privDataPresent: false, rid: d.rid, pasid: d.pasid >= 0 ? d.pasid : 0,
      exe: d.access === 2, pm: d.priv, read: d.access !== 1, write: d.access === 1, lpig: true, prgIndex: prg,
      addr: (BigInt(d.addrHi >>> 0) << 32n) | BigInt((d.addrLo & 0xfffff000) >>> 0), privData0: 0n, privData1: 0n,
    });
    if (!this.write(stampNs)) {
      // The device's own groups are single-page (LPIG set): the IOMMU answers SUCCESS.
      this.autoResponses++;
      this.retries.push(d);
      return PrqOutcome.AutoResponded;
    }
    this.parked.set(d.rid * 512 + prg, d);
    return PrqOutcome.Queued;
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

  /**
   * A page request (or, with `stopMarker`, a PCIe Stop Marker) a test makes the device
   * send; no DMA waits on it. False when it was dropped to an overflow.
   */
  inject(r: { rid: number; pasid: number; prgIndex: number; last: boolean; addr: bigint; read: boolean; write: boolean; exec: boolean; priv: boolean; stopMarker?: boolean }, stampNs: number): boolean {
    const stop = r.stopMarker === true;
    this.q.endIfDue(stampNs); // an overflow the clock ran past ends before the scratch is filled
    this.codec.writePageRequest(this.scratch, 0, {
      pasidPresent: r.pasid >= 0, privDataPresent: false, rid: r.rid, pasid: r.pasid >= 0 ? r.pasid : 0,
      exe: stop ? false : r.exec, pm: stop ? false : r.priv, read: stop ? false : r.read, write: stop ? false : r.write,
      lpig: stop || r.last, prgIndex: stop ? 0 : r.prgIndex & PRG_INDEX_MAX, addr: stop ? 0n : r.addr & ~0xfffn, privData0: 0n, privData1: 0n,
    });
    if (this.write(stampNs)) {
      if (stop) this.stopMarkers++;
      return true;
    }
    if (r.last && !stop) this.autoResponses++;
    return false;
  }

  /** DMAs waiting on a page response or on a retry. */
  get pending(): number {
    return this.parked.size + this.retries.length;
  }

  /** Writes the scratch descriptor at `t`, or drops it as an overflow (queue full or PRO set). */
  private write(t: number): boolean {
    const takeIn = this.q.admit(t);
    if (takeIn < 0) return false;
    pushOutput(this.ring, this.scratch, takeIn);
    this.requests++;
    return true;
  }

  /**
   * A wait descriptor with Page Drain (PD = 1) completed at `t`: the drain point goes to
   * software behind every request written so far (Intel intel_iommu_drain_pasid_prq).
   */
  drainPoint(t: number): void {
    this.scratch.fill(0);
    pushOutput(this.ring, this.scratch, t, OUT_DRAIN);
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

