/**
 * One hardware IOMMU instance: the model root that wires its queues, caches, walker and
 * clock together and serves its inputs.
 *
 * Models: an IOMMU that serves its invalidation queue and its devices' DMA requests in
 * one order — the order in which the coordinator accepted them (the input sequence
 * number carried beside each ring entry) — so the modelled results are the same whatever
 * the host threads do. Each input starts at max(clock, its stamp) and advances the clock
 * by its modelled cost. Internal events (the end of a queue overflow, when the driver
 * clears it and devices retry) wait on a timer that runs once the coordinator's horizon
 * has reached it (no input stamped earlier will come, and the coordinator has done what
 * it does before it), before any input that starts at or after it. After each run of inputs the instance publishes its
 * progress (last input served, clock, next timer) for the coordinator's conservative
 * synchronisation. A DMA that page-faults on a PRI device waits on its page request; the
 * response command retries or fails it.
 * Does not model: several requests of one device in flight at once (each DMA is served
 * whole before the next input), DMA read/write data.
 */
import type { ResolvedIommuConfig, CostModel } from '../shared/config.js';
import { PROG_CLOCK, PROG_HORIZON, PROG_SEQ, PROG_TIMER, PROG_VER, SEQ_DRAIN_POINT, SEQ_MASK, type WorkerStats } from '../shared/protocol.js';
import type { ArenaView } from '../shared/memory/arena.js';
import type { SpscRing } from '../shared/ring/spsc-ring.js';
import {
  ACCESS_WRITE, reqAccess, reqPri, reqAddrHi, reqAddrLo, reqBurstSlot, reqIsBurst, reqPasid, reqPriv, reqRid, reqTag, writeDmaResponse,
} from '../shared/layout/dma-request.js';
import { Translator } from './translate.js';
import { profileCodec } from '../shared/layout/profile-codec.js';
import { CMD_ATS, CMD_WAIT, type CommandSet, commandSet } from './command-set.js';
import { EventQueue } from './event-queue.js';
import { type ParkedDma, PageRequestQueue, PrqOutcome, RESP_SUCCESS } from './page-requests.js';
import { SoftwareDrain } from './sw-drain.js';
import { AtsInvalidations } from './ats-inv.js';
import { QueueOccupancyModel } from './queue-occupancy.js';
import { serveBurst } from './traffic.js';
import { TRAFFIC_SLOT_F64, T_COUNT, T_TRANSLATED } from '../shared/layout/traffic.js';

/** Inputs served per call, so control traffic and the other instances of the thread get a turn. */
const BATCH = 64;

export interface InstanceRings {
  command: SpscRing;
  dma: SpscRing;
  dmaResponse: SpscRing;
  event: SpscRing;
  pageRequest: SpscRing;
}

interface Timer {
  t: number;
  fire: (t: number) => void;
}

export class Iommu {
  readonly translator: Translator;
  readonly commands: CommandSet;
  readonly events: EventQueue;
  readonly pageRequests: PageRequestQueue;
  readonly ats: AtsInvalidations;
  private readonly cmdOcc: QueueOccupancyModel;
  private readonly dmaOcc: QueueOccupancyModel;
  clockNs = 0;
  dmaCount = 0;
  translated = 0;
  sleeps = 0;
  /** Sequence number of the next input to serve (the coordinator numbers from 1). */
  private nextSeq = 1;
  private readonly timers: Timer[] = [];
  private readonly progI32: Int32Array;
  private readonly progF64: Float64Array;
  /** Completion time of each wait descriptor, indexed by its status data. */
  private readonly waitTimes: Float64Array;
  private readonly cmdRing: SpscRing;
  private readonly dmaRing: SpscRing;
  private readonly respRing: SpscRing;
  /** Traffic-burst slots (parameters in, results out). */
  private readonly traffic: Float64Array;

  constructor(
    readonly cfg: ResolvedIommuConfig,
    readonly view: ArenaView,
    rootTableFrame: number,
    rings: InstanceRings,
    progress: SharedArrayBuffer,
    progressBytes: number,
    traffic: SharedArrayBuffer,
  ) {
    this.traffic = new Float64Array(traffic);
    this.cmdRing = rings.command;
    this.dmaRing = rings.dma;
    this.respRing = rings.dmaResponse;
    this.progI32 = new Int32Array(progress, 0, 4);
    this.progF64 = new Float64Array(progress, 0, 4);
    this.waitTimes = new Float64Array(progress, progressBytes, cfg.queues.command);
    const c = cfg.costs;
    this.translator = new Translator(view, rootTableFrame, cfg);
    this.commands = commandSet(cfg.profile, this.translator, view, c);
    this.ats = new AtsInvalidations(c, cfg.seed);
    this.cmdOcc = new QueueOccupancyModel(cfg.queues.command);
    this.dmaOcc = new QueueOccupancyModel(cfg.queues.dma);
    const at = (t: number, fire: (t: number) => void) => this.schedule(t, fire);
    const codec = profileCodec(cfg.profile);
    this.events = new EventQueue(rings.event, codec, new SoftwareDrain(cfg.queues.event, c.irqNs, c.eventDrainNs), at);
    this.pageRequests = new PageRequestQueue(rings.pageRequest, codec, new SoftwareDrain(cfg.queues.pageRequest, c.irqNs, c.prqDrainNs), at);
    this.pageRequests.onRetry = (list, t) => this.retryAfterOverflow(list, t);
    this.commands.onPageResponse = (rid, prg, code) => this.pageResponse(rid, prg, code);
  }

  get costs(): CostModel {
    return this.cfg.costs;
  }

  /**
   * Serves inputs in sequence order (and timers due before them) up to BATCH; returns how
   * many. Publishes progress when anything moved.
   */
  serve(): number {
    let n = 0;
    const cmd = this.cmdRing;
    const dma = this.dmaRing;
    while (n < BATCH) {
      const c = cmd.available();
      const d = dma.available();
      // Inputs seen now were published after every arena chunk their tables use was
      // announced: take those announcements first, so no translation finds a table missing
      // (a miss-then-refresh retry would leave cache state that depends on thread timing).
      if (c + d > 0) this.syncMemory();
      let stamp = Infinity;
      let which = 0;
      if (c > 0 && (cmd.seqs[cmd.consSlot(0)] & SEQ_MASK) === this.nextSeq) {
        which = 1;
        stamp = cmd.stamps[cmd.consSlot(0)];
      } else if (d > 0 && dma.seqs[dma.consSlot(0)] === this.nextSeq) {
        which = 2;
        stamp = dma.stamps[dma.consSlot(0)];
      }
      // A timer due no later than the next input's start (max(clock, its stamp)) goes first —
      // once the coordinator's horizon has reached it: below the horizon the coordinator has
      // done everything it will do (the deliveries of this instance's earlier outputs and the
      // table writes they cause), so what the timer does (retried DMAs walk the tables) sees
      // memory as of its own time, whatever the threads did meanwhile.
      const start = which === 0 ? Infinity : Math.max(this.clockNs, stamp);
      if (this.timers.length > 0 && this.timers[0].t <= start) {
        if (this.timers[0].t > this.horizon) break; // the coordinator moves the horizon and rings
        this.fireTimer();
        n++;
        continue;
      }
      if (which === 0) break;
      n += which === 1 ? this.serveCommands(c, BATCH - n) : this.serveDma(d, BATCH - n);
    }
    if (n > 0) this.publish();
    return n;
  }

  /** True when nothing can be served now (used by the idle loop): see serve(). */
  idle(): boolean {
    const cmd = this.cmdRing;
    const dma = this.dmaRing;
    let start = Infinity;
    if (cmd.available() > 0 && (cmd.seqs[cmd.consSlot(0)] & SEQ_MASK) === this.nextSeq) start = Math.max(this.clockNs, cmd.stamps[cmd.consSlot(0)]);
    else if (dma.available() > 0 && dma.seqs[dma.consSlot(0)] === this.nextSeq) start = Math.max(this.clockNs, dma.stamps[dma.consSlot(0)]);
    if (this.timers.length > 0 && this.timers[0].t <= start) return this.timers[0].t > this.horizon;
    return start === Infinity;
  }

  private get horizon(): number {
    return this.progF64[PROG_HORIZON];
  }

  /** Progress for the coordinator, as a seqlock: odd version while writing. */
  publish(): void {
    const v = this.progI32[PROG_VER];
    Atomics.store(this.progI32, PROG_VER, v + 1); // seq-cst: readers see an odd version and retry
    this.progF64[PROG_CLOCK] = this.clockNs;
    this.progF64[PROG_TIMER] = this.timers.length > 0 ? this.timers[0].t : Infinity;
    Atomics.store(this.progI32, PROG_SEQ, this.nextSeq - 1); // seq-cst: after every output of those inputs
    Atomics.store(this.progI32, PROG_VER, v + 2); // release: the block is consistent again
  }

  private schedule(t: number, fire: (t: number) => void): void {
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1].t > t) i--;
    this.timers.splice(i, 0, { t, fire });
  }

  private fireTimer(): void {
    const tm = this.timers.shift()!;
    if (tm.t > this.clockNs) this.clockNs = tm.t;
    tm.fire(tm.t);
  }

  /** Serves a run of commands whose sequence numbers follow on; returns how many. */
  private serveCommands(avail: number, max: number): number {
    const ring = this.cmdRing;
    const costs = this.cfg.costs;
    let k = 0;
    let released = 0;
    for (; k < avail && k < max; k++) {
      const slot = ring.consSlot(k);
      const seqWord = ring.seqs[slot];
      if ((seqWord & SEQ_MASK) !== this.nextSeq) break;
      const stamp = ring.stamps[slot];
      if (k > 0 && this.timers.length > 0 && this.timers[0].t <= Math.max(this.clockNs, stamp)) break; // a timer goes first
      this.nextSeq++;
      const d = this.commands.decode(ring.u32, slot * ring.entryWords);
      let start = Math.max(this.clockNs, stamp);
      if (d.kind === CMD_WAIT) {
        // A completion waits for every device-TLB invalidation queued before it to answer.
        if (this.ats.lastDone > start) start = this.ats.lastDone;
        // The completion time is stored before the status write that publishes it; the
        // status data is the driver's sequence number (its low bits index the times).
        this.clockNs = start + costs.waitNs;
        this.waitTimes[d.data & (this.waitTimes.length - 1)] = this.clockNs;
        if (d.pageDrain || (seqWord & SEQ_DRAIN_POINT) !== 0) this.pageRequests.drainPoint(this.clockNs);
        this.commands.execute(d);
        // Free the slots up to the wait before telling the coordinator, so it may refill them.
        ring.release(k + 1 - released);
        released = k + 1;
        if (d.interrupt) this.onWaitInterrupt();
        this.cmdOcc.sample(stamp, this.clockNs);
      } else {
        // An ATS invalidation goes out when its function has an ITag free.
        if (d.kind === CMD_ATS) start = this.ats.issue(d.sid, start);
        this.clockNs = start; // a page response retries its DMA from here
        this.clockNs = start + this.commands.execute(d);
        this.cmdOcc.sample(stamp, this.clockNs);
      }
    }
    if (k > released) ring.release(k - released);
    return k;
  }

  /** Takes pending control messages (arena growth) in; set by main.ts. */
  syncMemory: () => void = () => {};

  /** Rung after a wait descriptor with the interrupt flag (set by main.ts). */
  onWaitInterrupt: () => void = () => {};

  /** Serves a run of DMA requests whose sequence numbers follow on (fewer if completions lack room). */
  private serveDma(avail: number, max: number): number {
    const req = this.dmaRing;
    const resp = this.respRing;
    const n = Math.min(avail, resp.freeSlots(), max);
    const t = this.translator;
    let written = 0;
    let k = 0;
    for (; k < n; k++) {
      const slot = req.consSlot(k);
      if (req.seqs[slot] !== this.nextSeq) break;
      const stamp = req.stamps[slot];
      if (k > 0 && this.timers.length > 0 && this.timers[0].t <= Math.max(this.clockNs, stamp)) break; // a timer goes first
      this.nextSeq++;
      const at = slot * req.entryWords;
      const u = req.u32;
      const rid = reqRid(u, at);
      const pasid = reqPasid(u, at);
      const access = reqAccess(u, at);
      const lo = reqAddrLo(u, at);
      const hi = reqAddrHi(u, at);
      if (reqIsBurst(u, at)) {
        // A traffic burst: served whole, one completion with its results in the slot.
        const base = reqBurstSlot(u, at) * TRAFFIC_SLOT_F64;
        const begin = Math.max(this.clockNs, stamp);
        this.clockNs = serveBurst(t, this.events, this.traffic, base, rid, pasid, access, reqPriv(u, at), begin);
        this.dmaCount += this.traffic[base + T_COUNT] - 1;
        this.translated += this.traffic[base + T_TRANSLATED];
        this.dmaOcc.sample(stamp, this.clockNs);
        const rslot = resp.prodSlot(written++);
        writeDmaResponse(resp.u32, rslot * resp.entryWords, reqTag(u, at), 0, false, false, 0, 0);
        resp.stamps[rslot] = this.clockNs;
        continue;
      }
      const st = t.translate(rid, pasid, access, reqPriv(u, at), lo, hi);
      this.clockNs = Math.max(this.clockNs, stamp) + t.costNs;
      this.dmaOcc.sample(stamp, this.clockNs);
      let recorded = false;
      if (st !== 0) {
        // A device with PRI sends a page request instead of taking a page-table fault. That
        // may end an overflow and complete retried DMAs on the completion ring: publish what
        // this run wrote first, and end the run after it (the free-slot count is stale).
        if (t.pageFault && t.pri && reqPri(u, at)) {
          if (written > 0) resp.publish(written);
          written = 0;
          const out = this.pageRequests.request({ tag: reqTag(u, at), rid, pasid, access, priv: reqPriv(u, at), addrLo: lo, addrHi: hi, fr: st } satisfies ParkedDma, this.clockNs);
          if (out !== PrqOutcome.Refused) {
            k++;
            break; // completed when the page group response arrives, or retried after an overflow
          }
          // Refused: the device takes the fault; the run ends after this completion.
          if (t.suppressed) this.events.suppressed++;
          else recorded = this.events.record(rid, pasid, lo, hi, st, access === ACCESS_WRITE, this.clockNs);
          this.completeParked({ tag: reqTag(u, at), rid, pasid, access, priv: false, addrLo: lo, addrHi: hi, fr: st }, st, false, recorded);
          k++;
          break;
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
    this.dmaCount += k;
    req.release(k);
    if (written > 0) resp.publish(written);
    return k;
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
   * The DMAs whose page requests the IOMMU answered itself on a page request queue
   * overflow retry when the driver has cleared it (time `at`): each translates, or sends
   * a new page request (which may overflow again), or faults.
   */
  private retryAfterOverflow(list: ParkedDma[], at: number): void {
    const t = this.translator;
    if (at > this.clockNs) this.clockNs = at;
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
  }

  /** Completes a DMA that waited on a page request (or ended a run): translated (st 0) or faulted. */
  private completeParked(d: ParkedDma, st: number, recoverable: boolean, recorded = false): void {
    const resp = this.respRing;
    // The completion ring is as deep as the DMA ring; wait for the coordinator to drain it.
    while (resp.freeSlots() === 0) resp.waitForSpaceSync(1, 100);
    const t = this.translator;
    const slot = resp.prodSlot(0);
    writeDmaResponse(resp.u32, slot * resp.entryWords, d.tag, st, recorded, false, st === 0 ? t.paLo : 0, st === 0 ? t.paHi : 0, st !== 0 && recoverable);
    resp.stamps[slot] = this.clockNs;
    resp.publish(1);
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
      ats: { invalidations: this.ats.issued, stalls: this.ats.stalls, timeouts: this.ats.timeouts },
      queues: {
        command: { ...this.cmdOcc.stats }, dma: { ...this.dmaOcc.stats },
        event: { ...this.events.occupancy }, 'page-request': { ...this.pageRequests.occupancy },
      },
      prq: {
        requests: this.pageRequests.requests, lost: this.pageRequests.lost,
        autoResponses: this.pageRequests.autoResponses, stopMarkers: this.pageRequests.stopMarkers,
      },
      sleeps: this.sleeps,
    };
  }
}
