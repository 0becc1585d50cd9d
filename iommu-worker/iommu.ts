/**
 * One hardware IOMMU instance: the model root that wires its queues, caches, walker and
 * clock together and runs its synchronous service loop.
 *
 * Models: an IOMMU that serves its invalidation queue and its devices' DMA requests in
 * arrival order (commands first in each round), completes each DMA request with a
 * translation or a fault, records faults on its event queue, and keeps a modelled clock:
 * each item starts at max(clock, its stamp) and advances the clock by its modelled cost.
 * When idle it spins for a bounded time, then sleeps on its doorbell.
 * Does not model: the conservative time synchronisation between IOMMUs (a later issue);
 * here each IOMMU's clock is its own.
 */
import type { ResolvedIommuConfig, CostModel } from '../shared/config.js';
import type { WorkerStats } from '../shared/protocol.js';
import type { ArenaView } from '../shared/memory/arena.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';
import { readInvDesc } from '../shared/layout/inv-desc.js';
import {
  ACCESS_WRITE, reqAccess, reqAddrHi, reqAddrLo, reqPasid, reqPriv, reqRid, reqTag, writeDmaResponse,
} from '../shared/layout/dma-request.js';
import { Translator } from './translate.js';
import { CommandExecutor } from './command-queue.js';
import { EventQueue } from './event-queue.js';
import { type ParkedDma, PageRequestQueue, PrqOutcome, RESP_SUCCESS } from './page-requests.js';

/** Items served per queue per round, so neither queue starves the other. */
const BATCH = 64;

export class Iommu {
  readonly translator: Translator;
  readonly commands: CommandExecutor;
  readonly events: EventQueue;
  readonly pageRequests: PageRequestQueue;
  clockNs = 0;
  dmaCount = 0;
  translated = 0;
  sleeps = 0;

  constructor(
    readonly cfg: ResolvedIommuConfig,
    readonly view: ArenaView,
    rootTableFrame: number,
    private readonly cmdRing: SpscRing,
    private readonly dmaRing: SpscRing,
    private readonly respRing: SpscRing,
    eventRing: SpscRing,
    /** Times at which each wait descriptor completed, indexed by its status data. */
    private readonly waitTimes: Float64Array,
    prqRing: SpscRing,
  ) {
    this.translator = new Translator(view, rootTableFrame, cfg);
    this.commands = new CommandExecutor(this.translator, view, cfg.costs);
    this.events = new EventQueue(eventRing);
    this.pageRequests = new PageRequestQueue(prqRing);
    this.commands.onPageResponse = (rid, prg, code) => this.pageResponse(rid, prg, code);
  }

  /** A page group response from the invalidation queue: the device retries or gives up. */
  private pageResponse(rid: number, prg: number, code: number): void {
    const d = this.pageRequests.respond(rid, prg, code);
    if (!d) return;
    if (code !== RESP_SUCCESS) {
      this.completeParked(d, d.fr, true);
      return;
    }
    const t = this.translator;
    const st = t.translate(d.rid, d.pasid, d.access, d.priv, d.addrLo, d.addrHi);
    this.clockNs += t.costNs;
    if (st === 0) this.translated++;
    this.completeParked(d, st, st !== 0);
  }

  /**
   * Retries the DMAs whose page requests the IOMMU auto-answered on a PRQ overflow, once
   * software has acknowledged it: each translates, or sends a new page request (which may
   * overflow again), or faults. Returns how many were retried.
   */
  retryAfterOverflow(): number {
    const list = this.pageRequests.takeRetries();
    const t = this.translator;
    for (const d of list) {
      const st = t.translate(d.rid, d.pasid, d.access, d.priv, d.addrLo, d.addrHi);
      this.clockNs += t.costNs;
      if (st === 0) {
        this.translated++;
        this.completeParked(d, 0, false);
      } else if (!(t.pageFault && t.pri && this.pageRequests.request({ ...d, fr: st }, this.clockNs) !== PrqOutcome.Refused)) {
        this.completeParked(d, st, true);
      }
    }
    return list.length;
  }

  /** Completes a DMA that waited on a page request: translated (st 0) or faulted. */
  private completeParked(d: ParkedDma, st: number, recoverable: boolean): void {
    const resp = this.respRing;
    // The completion ring is as deep as the DMA ring; wait for the coordinator to drain it.
    while (resp.freeSlots() === 0) resp.waitForSpaceSync(1, 100);
    const t = this.translator;
    const slot = resp.prodSlot(0);
    writeDmaResponse(resp.u32, slot * resp.entryWords, d.tag, st, false, false, st === 0 ? t.paLo : 0, st === 0 ? t.paHi : 0, st !== 0 && recoverable);
    resp.stamps[slot] = this.clockNs;
    resp.publish(1);
  }

  get costs(): CostModel {
    return this.cfg.costs;
  }

  /** Serves up to BATCH commands in order; returns how many. */
  serveCommands(): number {
    const ring = this.cmdRing;
    const n = Math.min(ring.available(), BATCH);
    let released = 0;
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      const d = readInvDesc(ring.u32, slot * ring.entryWords);
      const start = Math.max(this.clockNs, ring.stamps[slot]);
      if (d.type === 'wait') {
        // The completion time is stored before the status write that publishes it.
        this.clockNs = start + this.cfg.costs.waitNs;
        this.waitTimes[d.statusData & (this.waitTimes.length - 1)] = this.clockNs;
        this.commands.execute(d);
        // Free the slots up to the wait before telling the coordinator, so it may refill them.
        ring.release(k + 1 - released);
        released = k + 1;
        if (d.interrupt) this.onWaitInterrupt();
      } else {
        this.clockNs = start + this.commands.execute(d);
      }
    }
    if (n > released) ring.release(n - released);
    return n;
  }

  /** Rung after a wait descriptor with the interrupt flag (set by main.ts). */
  onWaitInterrupt: () => void = () => {};

  /** Serves up to BATCH DMA requests (fewer if the completion ring is short of space). */
  serveDma(): number {
    const req = this.dmaRing;
    const resp = this.respRing;
    const n = Math.min(req.available(), resp.freeSlots(), BATCH);
    if (n === 0) return 0;
    const t = this.translator;
    let written = 0;
    for (let k = 0; k < n; k++) {
      const slot = req.consSlot(k);
      const at = slot * req.entryWords;
      const u = req.u32;
      const rid = reqRid(u, at);
      const pasid = reqPasid(u, at);
      const access = reqAccess(u, at);
      const lo = reqAddrLo(u, at);
      const hi = reqAddrHi(u, at);
      const st = t.translate(rid, pasid, access, reqPriv(u, at), lo, hi);
      const start = Math.max(this.clockNs, req.stamps[slot]);
      this.clockNs = start + t.costNs;
      let recorded = false;
      if (st !== 0) {
        // A device with PRI sends a page request instead of taking a page-table fault.
        const tag = reqTag(u, at);
        if (t.pageFault && t.pri && this.pageRequests.request({ tag, rid, pasid, access, priv: reqPriv(u, at), addrLo: lo, addrHi: hi, fr: st } satisfies ParkedDma, this.clockNs) !== PrqOutcome.Refused) {
          continue; // completed when the page group response arrives, or retried after an overflow
        }
        if (t.suppressed) this.events.suppressed++;
        else recorded = this.events.record(rid, pasid, lo, hi, st, access === ACCESS_WRITE, this.clockNs);
      } else {
        this.translated++;
      }
      const rslot = resp.prodSlot(written++);
      writeDmaResponse(resp.u32, rslot * resp.entryWords, reqTag(u, at), st, recorded, t.cached, t.paLo, t.paHi);
      resp.stamps[rslot] = this.clockNs;
    }
    this.dmaCount += n;
    req.release(n);
    if (written > 0) resp.publish(written);
    return n;
  }

  /** True when there is nothing to serve (used by the idle loop). */
  idle(): boolean {
    return this.cmdRing.available() === 0 && (this.dmaRing.available() === 0 || this.respRing.freeSlots() === 0) &&
      !this.pageRequests.retryReady;
  }

  stats(): WorkerStats {
    const t = this.translator;
    const it = t.iotlb.stats();
    const pc = t.pasidCache.stats();
    const cc = t.contextCache.stats();
    return {
      iommu: this.cfg.index,
      modelledNs: this.clockNs,
      dma: this.dmaCount,
      translated: this.translated,
      faults: this.events.recorded + this.events.lost,
      faultsSuppressed: this.events.suppressed,
      walks: t.walks,
      walkReads: t.walkReads,
      iotlb: { hits: it.hits, misses: it.misses, inserts: it.inserts, evictions: it.evictions, invalidated: it.invalidations },
      devTlb: { hits: t.devTlbHits, misses: t.devTlbMisses },
      pasidCache: { hits: pc.hits, misses: pc.misses },
      contextCache: { hits: cc.hits, misses: cc.misses },
      descriptors: { ...this.commands.counts },
      waits: this.commands.waits,
      eventsLost: this.events.lost,
      prq: {
        requests: this.pageRequests.requests, lost: this.pageRequests.lost,
        autoResponses: this.pageRequests.autoResponses, stopMarkers: this.pageRequests.stopMarkers,
      },
      sleeps: this.sleeps,
    };
  }
}
