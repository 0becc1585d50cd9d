/**
 * The coordinator's handle on one IOMMU instance: it produces on the instance's command and
 * DMA rings, consumes its completion, event and page-request rings, and hands what comes
 * back to the event scheduler, which delivers it in modelled-time order.
 *
 * Models: the driver side of the command queue in the profile's format (profile-codec.ts)
 * as qi_submit_sync / arm_smmu_cmdq_issue_cmdlist / iommu_completion_wait use it — a batch
 * of commands followed by the completion command (VT-d wait descriptor, CMD_SYNC with its
 * MSI write, COMPLETION_WAIT with its store) whose write of a sequence number into a
 * status word in table memory completes every earlier submission; device DMA submitted
 * to the IOMMU and completed with a translation or a fault; fault records and page
 * requests with their overflow notices. Every input is numbered when it is accepted (the
 * order the worker serves them in, whatever the host does) and waits in a backlog while
 * its ring is full, so back-pressure never reorders anything. The instance's progress
 * block (last input served, clock, next internal event) tells the time synchronisation
 * what can still come back. Crash handling: a failed thread, or an answer that never comes
 * (host-time watchdog), rejects everything pending with EIO / ETIMEDOUT.
 * Does not model: multi-producer queue insertion (one coordinator thread produces), the
 * VT-d register interface (queue addresses are handed over at start-up).
 */
import type { SimError } from '../shared/errors.js';
import type { ResolvedIommuConfig } from '../shared/config.js';
import { OUT_DRAIN, SEQ_DRAIN_POINT, PROG_BYTES, PROG_CLOCK, PROG_HORIZON, PROG_SEQ, PROG_TIMER, PROG_VER, type InstanceStart, type RingHandle, type WorkerStats } from '../shared/protocol.js';
import { SpscRing } from '../shared/ring/spsc-ring.js';
import type { Doorbell } from '../shared/ring/doorbell.js';
import { type FaultView, type HwCmd, type ProfileCodec, profileCodec } from '../shared/layout/profile-codec.js';
import {
  DMA_REQ_BYTES, DMA_RESP_BYTES, respCached, respPaddr, respRecorded, respRecoverable, respStatus, respTag, writeBurstRequest, writeDmaRequest,
} from '../shared/layout/dma-request.js';
import type { PageRequestDesc } from '../shared/layout/page-request.js';
import { frameToAddr } from '../shared/memory/arena.js';
import { type TrafficResult, TrafficSlots, type TrafficSpec } from './traffic-slots.js';
import { DeliveryKind, type EventScheduler } from './event-scheduler.js';
import type { FrameAllocator } from './frame-allocator.js';
import type { HostRequest, WorkerHost } from './worker-host.js';

export interface DmaCompletion {
  status: number;
  recorded: boolean;
  cached: boolean;
  /** The fault went through a page request whose response refused it. */
  recoverable: boolean;
  paddr: bigint;
  modelledNs: number;
}

export interface WaitCompletion {
  /** Modelled time at which the wait descriptor completed. */
  modelledNs: number;
  /** Host round trip from submission to the coordinator seeing the status, ns. */
  hostNs: number;
}

export interface DmaInput {
  rid: number;
  pasid: number;
  access: number;
  priv: boolean;
  addr: bigint;
  /** A traffic burst's slot instead of one address. */
  burst?: number;
  /** The function's PRI is enabled (it sends page requests for what the IOMMU cannot translate). */
  pri?: boolean;
}

interface PendingWait {
  seq: number;
  t0: number;
  resolve: (c: WaitCompletion) => void;
  reject: (e: Error) => void;
}

interface Batch {
  results: DmaCompletion[];
  left: number;
  maxT: number;
  resolve: (c: DmaCompletion[]) => void;
  reject: (e: Error) => void;
}

export interface HandleEvents {
  onFault(iommu: number, rec: FaultView, modelledNs: number): void;
  /** The driver cleared an overflow of a queue that lost `lost` entries. */
  onOverflow(iommu: number, queue: 'event' | 'page-request', lost: number): void;
  /**
   * The page request queue overflowed (PRS.PRO) and the driver has taken in every request
   * that made it: called before the notice, as Linux's prq_event_thread discards partial
   * groups (iopf_queue_discard_partial) before clearing PRO.
   */
  onPrqOverflow(iommu: number): void;
  onPageRequest(iommu: number, req: PageRequestDesc, modelledNs: number): void;
  /** A DMA completed `ns` modelled nanoseconds after it was issued (translation latency). */
  onDmaDone(ns: number): void;
}

/** Progress of an instance as its seqlock block says. */
export interface Progress {
  /** Last input served. */
  seq: number;
  clock: number;
  /** Earliest internal event, Infinity if none. */
  timer: number;
}

export class IommuHandle {
  readonly cmd: SpscRing;
  readonly dmaRing: SpscRing;
  readonly resp: SpscRing;
  readonly evt: SpscRing;
  readonly prq: SpscRing;
  private readonly progress: SharedArrayBuffer;
  private readonly progI32: Int32Array;
  private readonly progF64: Float64Array;
  private readonly waitTimes: Float64Array;
  private readonly status: [Uint32Array, number];
  readonly statusAddr: bigint;
  private waitSeq = 0;
  private readonly waits: PendingWait[] = [];
  private readonly dmas = new Map<number, { batch: Batch; i: number; stamp: number; burst: boolean }>();
  private nextTag = 1;
  /** Inputs accepted so far (the last sequence number handed out). */
  accepted = 0;
  /**
   * Stamps of the inputs not known to be served, as runs (first sequence number, stamp):
   * stamps never decrease, so the first run's stamp is the earliest an unserved input has.
   */
  private readonly stampRuns: { first: number; stamp: number }[] = [];
  private readonly traffic = new TrafficSlots();
  private readonly cmdBacklog: { d: HwCmd; stamp: number; seq: number }[] = [];
  /** The profile's queue formats. */
  readonly codec: ProfileCodec;
  private readonly dmaBacklog: { r: DmaInput; tag: number; stamp: number; seq: number }[] = [];
  private failed: SimError | undefined;
  /** Host time (performance.now) the instance was last seen making progress. */
  lastProgress = performance.now();
  host!: WorkerHost;

  constructor(
    readonly cfg: ResolvedIommuConfig,
    alloc: FrameAllocator,
    private readonly rootTableFrame: number,
    coordBell: Doorbell,
    /** The thread's doorbell (rung when inputs are published). */
    readonly workerBell: Doorbell,
    private readonly events: HandleEvents,
    private readonly scheduler: EventScheduler,
  ) {
    const q = cfg.queues;
    const codec = (this.codec = profileCodec(cfg.profile));
    this.cmd = SpscRing.create({ depth: q.command, entryBytes: codec.cmdBytes }, { consumerBell: workerBell, role: 'producer' });
    this.dmaRing = SpscRing.create({ depth: q.dma, entryBytes: DMA_REQ_BYTES }, { consumerBell: workerBell, role: 'producer' });
    // Completion ring as deep as the DMA ring, so every accepted request has room to complete.
    this.resp = SpscRing.create({ depth: q.dma, entryBytes: DMA_RESP_BYTES }, { consumerBell: coordBell, producerBell: workerBell, role: 'consumer' });
    this.evt = SpscRing.create({ depth: q.event, entryBytes: codec.faultBytes }, { consumerBell: coordBell, producerBell: workerBell, role: 'consumer' });
    this.prq = SpscRing.create({ depth: q.pageRequest, entryBytes: codec.prqBytes }, { consumerBell: coordBell, producerBell: workerBell, role: 'consumer' });
    this.progress = new SharedArrayBuffer(PROG_BYTES + 8 * q.command);
    this.progI32 = new Int32Array(this.progress, 0, 4);
    this.progF64 = new Float64Array(this.progress, 0, 4);
    this.progF64[PROG_TIMER] = Infinity;
    this.waitTimes = new Float64Array(this.progress, PROG_BYTES, q.command);
    // The wait descriptors' status word lives in table memory, as qi->desc_status does.
    const statusFrame = alloc.alloc(0, 'inv-status');
    this.statusAddr = frameToAddr(statusFrame);
    this.status = alloc.view.locate(this.statusAddr)!;
  }

  /** What the worker thread needs to run this instance. */
  startInfo(): InstanceStart {
    const h = (r: SpscRing): RingHandle => ({ sab: r.sab, byteOffset: r.byteOffset, depth: r.depth, entryBytes: r.entryBytes });
    return {
      config: this.cfg, rootTableFrame: this.rootTableFrame, progress: this.progress, traffic: this.traffic.table.buffer as SharedArrayBuffer,
      rings: { command: h(this.cmd), dma: h(this.dmaRing), dmaResponse: h(this.resp), event: h(this.evt), pageRequest: h(this.prq) },
    };
  }

  get index(): number {
    return this.cfg.index;
  }

  /** Work the worker owes an answer for (the watchdog's measure). */
  get pending(): number {
    return this.waits.length + this.dmas.size + this.host.pending;
  }

  get error(): SimError | undefined {
    return this.failed;
  }

  request<T>(m: HostRequest): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    return this.host.request<T>(m);
  }

  stats(): Promise<WorkerStats> {
    return this.request<WorkerStats>({ type: 'stats', iommu: this.index });
  }

  /** Starts the watchdog's clock when work arrives at an idle handle (call before adding it). */
  private noteSubmit(): void {
    if (this.pending === 0) this.lastProgress = performance.now();
  }

  /**
   * Queues descriptors followed by a wait descriptor (status write + interrupt) and
   * resolves, in modelled-time order, when the wait has completed, i.e. when every
   * descriptor before it has.
   */
  submit(descs: readonly HwCmd[], stampNs: number, opts: { pageDrain?: boolean } = {}): Promise<WaitCompletion> {
    if (this.failed) return Promise.reject(this.failed);
    this.noteSubmit();
    const seq = (this.waitSeq = (this.waitSeq + 1) >>> 0 || 1);
    this.noteStamp(stampNs);
    for (const d of descs) this.cmdBacklog.push({ d, stamp: stampNs, seq: ++this.accepted });
    const drain = !!opts.pageDrain;
    const wait = this.codec.waitCmd(this.statusAddr, seq, drain);
    const drainMark = drain && !this.codec.drainInWait ? SEQ_DRAIN_POINT : 0;
    this.cmdBacklog.push({ d: wait, stamp: stampNs, seq: ++this.accepted | drainMark });
    const done = new Promise<WaitCompletion>((resolve, reject) => this.waits.push({ seq, t0: performance.now(), resolve, reject }));
    this.feed();
    return done;
  }

  /** Submits DMA requests in order; resolves with their completions in order, at the last one's modelled time. */
  dmaMany(reqs: readonly DmaInput[], stampNs: number): Promise<DmaCompletion[]> {
    if (this.failed) return Promise.reject(this.failed);
    this.noteSubmit();
    let batch!: Batch;
    const p = new Promise<DmaCompletion[]>((resolve, reject) => {
      batch = { results: new Array<DmaCompletion>(reqs.length), left: reqs.length, maxT: stampNs, resolve, reject };
    });
    if (reqs.length === 0) {
      this.scheduler.schedule(stampNs, this.index, DeliveryKind.Completion, () => batch.resolve([]));
      return p;
    }
    this.noteStamp(stampNs);
    for (let i = 0; i < reqs.length; i++) {
      const tag = this.nextTag;
      this.nextTag = (this.nextTag + 1) >>> 0 || 1;
      this.dmas.set(tag, { batch, i, stamp: stampNs, burst: reqs[i].burst !== undefined });
      this.dmaBacklog.push({ r: reqs[i], tag, stamp: stampNs, seq: ++this.accepted });
    }
    this.feed();
    return p;
  }

  /**
   * A device's traffic burst (count requests over a footprint, served whole by the IOMMU);
   * resolves with its results at the modelled time its last request completed. EBUSY when
   * TRAFFIC_SLOTS bursts are already in flight on this IOMMU.
   */
  dmaTraffic(r: Omit<DmaInput, 'addr' | 'burst'>, spec: TrafficSpec, stampNs: number): Promise<TrafficResult> {
    if (this.failed) return Promise.reject(this.failed);
    let slot: number;
    try {
      slot = this.traffic.take(spec, this.index);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.dmaMany([{ ...r, addr: 0n, burst: slot }], stampNs).then(() => this.traffic.results(slot), (e: unknown) => {
      this.traffic.release(slot);
      throw e;
    });
  }

  /**
   * Moves backlogged inputs into their rings while there is room; returns how many. The
   * coordinator's loop calls it again whenever the worker has made progress (the worker
   * rings the coordinator's doorbell after serving), so a full ring only delays.
   */
  feed(): number {
    if (this.failed || (this.cmdBacklog.length === 0 && this.dmaBacklog.length === 0)) return 0;
    const moved = this.feedCommands() + this.feedDma();
    if (moved > 0) this.lastProgress = performance.now();
    return moved;
  }

  /** True when backlogged inputs could move into their rings now. */
  canFeed(): boolean {
    return (this.cmdBacklog.length > 0 && this.cmd.freeSlots() > 0) || (this.dmaBacklog.length > 0 && this.dmaRing.freeSlots() > 0);
  }

  private feedCommands(): number {
    const ring = this.cmd;
    const q = this.cmdBacklog;
    const n = Math.min(ring.freeSlots(), q.length);
    for (let k = 0; k < n; k++) {
      const e = q[k];
      const slot = ring.prodSlot(k);
      this.codec.writeCmd(ring.u32, slot * ring.entryWords, e.d);
      ring.stamps[slot] = e.stamp;
      ring.seqs[slot] = e.seq >>> 0;
    }
    if (n > 0) {
      ring.publish(n); // release: the worker sees the descriptors
      q.splice(0, n);
    }
    return n;
  }

  private feedDma(): number {
    const ring = this.dmaRing;
    const q = this.dmaBacklog;
    const n = Math.min(ring.freeSlots(), q.length);
    for (let k = 0; k < n; k++) {
      const e = q[k];
      const r = e.r;
      const slot = ring.prodSlot(k);
      if (r.burst !== undefined) writeBurstRequest(ring.u32, slot * ring.entryWords, e.tag, r.rid, r.access, r.priv, r.pasid, r.burst, !!r.pri);
      else writeDmaRequest(ring.u32, slot * ring.entryWords, e.tag, r.rid, r.access, r.priv, r.pasid,
        Number(r.addr & 0xffffffffn), Number((r.addr >> 32n) & 0xffffffffn), !!r.pri);
      ring.stamps[slot] = e.stamp;
      ring.seqs[slot] = e.seq;
    }
    if (n > 0) {
      ring.publish(n);
      q.splice(0, n);
    }
    return n;
  }

  /** The instance's progress (seqlock read). */
  readProgress(): Progress {
    for (;;) {
      const v1 = Atomics.load(this.progI32, PROG_VER); // acquire
      const seq = Atomics.load(this.progI32, PROG_SEQ);
      const clock = this.progF64[PROG_CLOCK];
      const timer = this.progF64[PROG_TIMER];
      if ((v1 & 1) === 0 && Atomics.load(this.progI32, PROG_VER) === v1) return { seq, clock, timer };
    }
  }

  private noteStamp(stamp: number): void {
    const last = this.stampRuns[this.stampRuns.length - 1];
    if (last === undefined || last.stamp !== stamp) this.stampRuns.push({ first: this.accepted + 1, stamp });
  }

  /** The earliest stamp among inputs after `served` (Infinity when all are served). */
  earliestUnserved(served: number): number {
    const runs = this.stampRuns;
    // Drop runs whose inputs are all served (the next run starts at or before served + 1).
    while (runs.length > 1 && runs[1].first <= served + 1) runs.shift();
    if (runs.length === 0 || served >= this.accepted) return Infinity;
    return runs[0].stamp;
  }

  /**
   * Publishes the horizon: no input stamped earlier than `t` will come, and none of those
   * already accepted but not yet served is either (the caller takes the minimum).
   */
  setHorizon(t: number): void {
    // A plain store: the worker re-reads it every turn, and the bell rung after it (an
    // Atomics operation) orders it before the wake-up.
    if (t > this.progF64[PROG_HORIZON]) this.progF64[PROG_HORIZON] = t;
  }

  /** Drains completions, fault records, page requests and wait statuses into the scheduler. */
  drain(): number {
    const n = this.drainResponses() + this.drainEvents() + this.drainPageRequests() + this.pollWaits();
    if (n > 0) this.lastProgress = performance.now();
    return n;
  }

  /** True when nothing is ready to drain (for the coordinator's sleep check). */
  quiet(): boolean {
    return this.resp.available() === 0 && this.evt.available() === 0 && this.prq.available() === 0 &&
      (this.waits.length === 0 || !this.waitDone(this.waits[0].seq));
  }

  private drainResponses(): number {
    const ring = this.resp;
    const n = ring.available();
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      const at = slot * ring.entryWords;
      const p = this.dmas.get(respTag(ring.u32, at));
      if (!p) continue;
      this.dmas.delete(respTag(ring.u32, at));
      const t = ring.stamps[slot];
      const b = p.batch;
      b.results[p.i] = {
        status: respStatus(ring.u32, at), recorded: respRecorded(ring.u32, at), cached: respCached(ring.u32, at),
        recoverable: respRecoverable(ring.u32, at), paddr: respPaddr(ring.u32, at), modelledNs: t,
      };
      if (t > b.maxT) b.maxT = t;
      if (!p.burst) this.events.onDmaDone(t - p.stamp); // a burst reports its own latencies
      if (--b.left === 0) this.scheduler.schedule(b.maxT, this.index, DeliveryKind.Completion, () => b.resolve(b.results));
    }
    if (n > 0) {
      ring.release(n);
      // A worker whose completion ring was full sleeps on its doorbell: wake it (one load when awake).
      this.workerBell.ring();
    }
    return n;
  }

  private drainEvents(): number {
    const ring = this.evt;
    const n = ring.available();
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      const t = ring.stamps[slot];
      if (ring.seqs[slot] !== 0) {
        const lost = ring.u32[slot * ring.entryWords];
        this.scheduler.schedule(t, this.index, DeliveryKind.Fault, () => this.events.onOverflow(this.index, 'event', lost));
      } else {
        const rec = this.codec.readFault(ring.u32, slot * ring.entryWords);
        this.scheduler.schedule(t, this.index, DeliveryKind.Fault, () => this.events.onFault(this.index, rec, t));
      }
    }
    if (n > 0) {
      ring.release(n);
      this.workerBell.ring();
    }
    return n;
  }

  private drainPageRequests(): number {
    const ring = this.prq;
    const n = ring.available();
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      const t = ring.stamps[slot];
      if (ring.seqs[slot] === OUT_DRAIN) {
        // A drain point: every request read before it is taken in at its time, in order.
        const before = this.scheduler.take((d) => d.src === this.index && d.kind === DeliveryKind.PageRequest);
        this.scheduler.schedule(t, this.index, DeliveryKind.PageRequest, () => { for (const d of before) d.fire(); });
      } else if (ring.seqs[slot] !== 0) {
        const lost = ring.u32[slot * ring.entryWords];
        this.scheduler.schedule(t, this.index, DeliveryKind.PageRequest, () => {
          this.events.onPrqOverflow(this.index);
          this.events.onOverflow(this.index, 'page-request', lost);
        });
      } else {
        const req = this.codec.readPageRequest(ring.u32, slot * ring.entryWords);
        this.scheduler.schedule(t, this.index, DeliveryKind.PageRequest, () => this.events.onPageRequest(this.index, req, t));
      }
    }
    if (n > 0) {
      ring.release(n);
      this.workerBell.ring();
    }
    return n;
  }

  private waitDone(seq: number): boolean {
    // acquire: pairs with the worker's status store; later descriptors' effects are visible
    const done = Atomics.load(this.status[0], this.status[1]);
    return ((done - seq) | 0) >= 0 && done !== 0;
  }

  private pollWaits(): number {
    let n = 0;
    while (this.waits.length > 0 && this.waitDone(this.waits[0].seq)) {
      const w = this.waits.shift()!;
      const c: WaitCompletion = { modelledNs: this.waitTimes[w.seq & (this.waitTimes.length - 1)], hostNs: (performance.now() - w.t0) * 1e6 };
      this.scheduler.schedule(c.modelledNs, this.index, DeliveryKind.Wait, () => w.resolve(c));
      n++;
    }
    return n;
  }

  /** Rejects everything pending with `err`. */
  fail(err: SimError): void {
    if (this.failed) return;
    this.failed = err;
    for (const w of this.waits.splice(0)) w.reject(err);
    const batches = new Set<Batch>();
    for (const d of this.dmas.values()) batches.add(d.batch);
    this.dmas.clear();
    for (const b of batches) b.reject(err);
    this.cmdBacklog.length = 0;
    this.dmaBacklog.length = 0;
  }
}
