/**
 * The coordinator's handle on one IOMMU worker: it owns the worker thread, produces on
 * the worker's command and DMA rings, consumes its completion and event rings, and turns
 * completions into settled promises.
 *
 * Models: the driver side of a VT-d invalidation queue as qi_submit_sync uses it — a batch
 * of descriptors followed by a wait descriptor whose status write (a sequence number into
 * a status word in table memory) completes every earlier submission; back-pressure when
 * the queue is full (never a dropped descriptor); device DMA submitted to the IOMMU and
 * completed with a translation or a fault; fault records drained from the event queue with
 * overflow counts. Crash handling: a worker error, an unexpected exit or an answer that
 * never comes (host-time watchdog, timed from the last progress or from when work arrived
 * at an idle handle) rejects everything pending — submissions waiting for ring space
 * included — with EIO / ETIMEDOUT and reports to the simulator, which shuts the rest down.
 * Does not model: multi-producer queue insertion (one coordinator thread produces), the
 * VT-d register interface (queue addresses are handed over at start-up).
 */
import { Worker } from 'node:worker_threads';
import { SimError, simError } from '../shared/errors.js';
import type { ResolvedIommuConfig } from '../shared/config.js';
import { CTL_BYTES, CTL_SEQ, type FromWorker, type RingHandle, type ToWorker, type WorkerStats } from '../shared/protocol.js';
import { SpscRing } from '../shared/ring/spsc-ring.js';
import { Doorbell } from '../shared/ring/doorbell.js';
import { INV_DESC_BYTES, type InvDesc, writeInvDesc } from '../shared/layout/inv-desc.js';
import {
  DMA_REQ_BYTES, DMA_RESP_BYTES, respCached, respPaddr, respRecorded, respRecoverable, respStatus, respTag, writeDmaRequest,
} from '../shared/layout/dma-request.js';
import { FAULT_RECORD_BYTES, type FaultRecord, readFaultRecord } from '../shared/layout/fault-record.js';
import { PAGE_REQUEST_BYTES, type PageRequestDesc, readPageRequest } from '../shared/layout/page-request.js';
import { frameToAddr } from '../shared/memory/arena.js';
import type { FrameAllocator } from './frame-allocator.js';

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

interface PendingWait {
  seq: number;
  t0: number;
  resolve: (c: WaitCompletion) => void;
  reject: (e: Error) => void;
}

interface PendingDma {
  resolve: (c: DmaCompletion) => void;
  reject: (e: Error) => void;
}

export interface HandleEvents {
  onFault(iommu: number, rec: FaultRecord, modelledNs: number): void;
  /** A queue overflowed and `lost` entries were dropped. */
  onOverflow(iommu: number, queue: 'event' | 'page-request', lost: number): void;
  /**
   * The page request queue overflowed (PRS.PRO): called after the requests that made it
   * into the queue were taken in and before software clears PRO, as Linux's
   * prq_event_thread orders it (iopf_queue_discard_partial goes here).
   */
  onPrqOverflow(iommu: number): void;
  onPageRequest(iommu: number, req: PageRequestDesc, modelledNs: number): void;
  onFatal(iommu: number, err: SimError): void;
}

/** Bounded spin after a submission, catching completions of an awake worker (µs). */
const SUBMIT_SPIN_US = 50;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class IommuHandle {
  readonly worker: Worker;
  readonly cmd: SpscRing;
  readonly dmaRing: SpscRing;
  readonly resp: SpscRing;
  readonly evt: SpscRing;
  readonly prq: SpscRing;
  /** While non-zero, software does not look at the page request queue (a test hook's burst). */
  prqHeld = 0;
  readonly workerBell: Doorbell;
  private readonly ctl: Int32Array;
  private readonly waitTimes: Float64Array;
  private readonly status: [Uint32Array, number];
  readonly statusAddr: bigint;
  private seq = 0;
  private readonly waits: PendingWait[] = [];
  private readonly dmas = new Map<number, PendingDma>();
  private nextTag = 1;
  private nextReq = 1;
  private readonly requests = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private submitChain: Promise<unknown> = Promise.resolve();
  private failed: SimError | undefined;
  /** Aborts of the submissions waiting for ring space (pending work: fail() rejects them). */
  private readonly spaceWaits = new Set<(e: SimError) => void>();
  private exited = false;
  readonly ready: Promise<void>;
  private readonly exitPromise: Promise<void>;
  /** Host time (performance.now) the worker was last seen making progress. */
  lastProgress = performance.now();

  constructor(
    readonly cfg: ResolvedIommuConfig,
    alloc: FrameAllocator,
    rootTableFrame: number,
    readonly coordBell: Doorbell,
    private readonly events: HandleEvents,
    workerUrl: URL,
  ) {
    const q = cfg.queues;
    this.workerBell = Doorbell.create();
    this.cmd = SpscRing.create({ depth: q.command, entryBytes: INV_DESC_BYTES }, { consumerBell: this.workerBell, role: 'producer' });
    this.dmaRing = SpscRing.create({ depth: q.dma, entryBytes: DMA_REQ_BYTES }, { consumerBell: this.workerBell, role: 'producer' });
    // Completion ring as deep as the DMA ring, so every accepted request has room to complete.
    this.resp = SpscRing.create({ depth: q.dma, entryBytes: DMA_RESP_BYTES }, { consumerBell: coordBell, producerBell: this.workerBell, role: 'consumer' });
    this.evt = SpscRing.create({ depth: q.event, entryBytes: FAULT_RECORD_BYTES }, { consumerBell: coordBell, producerBell: this.workerBell, role: 'consumer' });
    this.prq = SpscRing.create({ depth: q.pageRequest, entryBytes: PAGE_REQUEST_BYTES }, { consumerBell: coordBell, producerBell: this.workerBell, role: 'consumer' });
    const control = new SharedArrayBuffer(CTL_BYTES + 8 * q.command);
    this.ctl = new Int32Array(control, 0, CTL_BYTES / 4);
    this.waitTimes = new Float64Array(control, CTL_BYTES, q.command);
    // The wait descriptors' status word lives in table memory, as qi->desc_status does.
    const statusFrame = alloc.alloc(0, 'inv-status');
    this.statusAddr = frameToAddr(statusFrame);
    this.status = alloc.view.locate(this.statusAddr)!;
    const ringHandle = (r: SpscRing): RingHandle => ({ sab: r.sab, byteOffset: r.byteOffset, depth: r.depth, entryBytes: r.entryBytes });
    this.worker = new Worker(workerUrl, {
      workerData: {
        type: 'start', config: cfg, arenaChunks: alloc.view.buffers.slice(), rootTableFrame,
        rings: { command: ringHandle(this.cmd), dma: ringHandle(this.dmaRing), dmaResponse: ringHandle(this.resp), event: ringHandle(this.evt), pageRequest: ringHandle(this.prq) },
        workerBell: { sab: this.workerBell.sab, byteOffset: this.workerBell.byteOffset },
        coordinatorBell: { sab: coordBell.sab, byteOffset: coordBell.byteOffset },
        control,
      },
    });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => { readyResolve = res; readyReject = rej; });
    this.ready.catch(() => {});
    this.worker.on('message', (m: FromWorker) => {
      this.lastProgress = performance.now();
      switch (m.type) {
        case 'ready': readyResolve(); break;
        case 'stats': case 'test':
          // Whatever the worker put on its rings before answering is drained first.
          this.drain();
          this.requests.get(m.id)?.resolve(m.type === 'stats' ? m.stats : m.result);
          this.requests.delete(m.id);
          break;
        case 'fatal': this.fail(simError('EIO', 'iommu-worker', 'worker-crashed', `IOMMU ${cfg.index}: ${m.message}`)); break;
      }
    });
    this.worker.on('error', (e) => {
      const err = simError('EIO', 'iommu-worker', 'worker-crashed', `IOMMU ${cfg.index}: ${e.message}`);
      readyReject(err);
      this.fail(err);
    });
    this.exitPromise = new Promise<void>((res) => this.worker.once('exit', (code) => {
      this.exited = true;
      const err = simError('EIO', 'iommu-worker', 'worker-exited', `IOMMU ${cfg.index} exited with code ${code}`);
      readyReject(err);
      this.fail(err);
      res();
    }));
  }

  get index(): number {
    return this.cfg.index;
  }

  get pending(): number {
    return this.waits.length + this.dmas.size + this.requests.size + this.spaceWaits.size;
  }

  /** Starts the watchdog's clock when work arrives at an idle handle (call before adding it). */
  private noteSubmit(): void {
    if (this.pending === 0) this.lastProgress = performance.now();
  }

  /** Waits until `need` slots of `ring` are free; rejects as soon as the handle fails. */
  private async waitSpace(ring: SpscRing, need: number): Promise<void> {
    this.noteSubmit();
    let abort!: (e: SimError) => void;
    const aborted = new Promise<never>((_, reject) => { abort = reject; });
    this.spaceWaits.add(abort);
    try {
      await Promise.race([ring.waitForSpace(need), aborted]);
    } finally {
      this.spaceWaits.delete(abort);
    }
    if (this.failed) throw this.failed;
  }

  get error(): SimError | undefined {
    return this.failed;
  }

  /** Sends a control message and tells the worker's loop it is there. */
  post(m: ToWorker): void {
    if (this.exited) return;
    this.worker.postMessage(m);
    Atomics.add(this.ctl, CTL_SEQ, 1); // seq-cst: counted after the post, so the worker finds it
    this.workerBell.ring();
  }

  request<T>(m: { type: 'stats' } | DistributiveOmit<Extract<ToWorker, { type: 'test' }>, 'id'>): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextReq++;
    this.noteSubmit();
    return new Promise<T>((resolve, reject) => {
      this.requests.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ ...m, id } as ToWorker);
    });
  }

  stats(): Promise<WorkerStats> {
    return this.request<WorkerStats>({ type: 'stats' });
  }

  /**
   * Queues descriptors followed by a wait descriptor (status write + interrupt) and
   * resolves when the wait has completed, i.e. when every descriptor before it has.
   */
  submit(descs: readonly InvDesc[], stampNs: number): Promise<WaitCompletion> {
    if (this.failed) return Promise.reject(this.failed);
    const run = this.submitChain.then(() => this.submitNow(descs, stampNs));
    this.submitChain = run.catch(() => {});
    return run;
  }

  private async submitNow(descs: readonly InvDesc[], stampNs: number): Promise<WaitCompletion> {
    if (this.failed) throw this.failed;
    const t0 = performance.now();
    const seq = (this.seq = (this.seq + 1) >>> 0 || 1);
    const all: InvDesc[] = [...descs, {
      type: 'wait', interrupt: true, statusWrite: true, fence: false, pageDrain: false, statusData: seq, statusAddr: this.statusAddr,
    }];
    const ring = this.cmd;
    for (let i = 0; i < all.length;) {
      let free = ring.freeSlots();
      if (free === 0) {
        await this.waitSpace(ring, Math.min(all.length - i, ring.depth));
        free = ring.freeSlots();
      }
      const n = Math.min(free, all.length - i);
      for (let k = 0; k < n; k++) {
        const slot = ring.prodSlot(k);
        writeInvDesc(ring.u32, slot * ring.entryWords, all[i + k]);
        ring.stamps[slot] = stampNs;
      }
      ring.publish(n); // release: the worker sees the descriptors
      i += n;
    }
    this.noteSubmit();
    const done = new Promise<WaitCompletion>((resolve, reject) => this.waits.push({ seq, t0, resolve, reject }));
    this.spinFor(() => this.waitDone(seq));
    this.pollWaits();
    return done;
  }

  /** Submits one DMA request; `pasid` -1 for none; the address as u32 halves. */
  dma(rid: number, pasid: number, access: number, priv: boolean, addr: bigint, stampNs: number): Promise<DmaCompletion> {
    return this.dmaMany([{ rid, pasid, access, priv, addr }], stampNs).then((r) => r[0]);
  }

  /** Submits many DMA requests in order; resolves with their completions in order. */
  async dmaMany(reqs: readonly { rid: number; pasid: number; access: number; priv: boolean; addr: bigint }[], stampNs: number): Promise<DmaCompletion[]> {
    if (this.failed) throw this.failed;
    const ring = this.dmaRing;
    const out: Promise<DmaCompletion>[] = [];
    this.noteSubmit();
    for (let i = 0; i < reqs.length;) {
      let free = ring.freeSlots();
      if (free === 0) {
        try {
          await this.waitSpace(ring, 1);
        } catch (e) {
          void Promise.all(out).catch(() => {}); // fail() rejected those already queued: handled here
          throw e;
        }
        free = ring.freeSlots();
      }
      const n = Math.min(free, reqs.length - i);
      for (let k = 0; k < n; k++) {
        const r = reqs[i + k];
        const tag = this.nextTag;
        this.nextTag = (this.nextTag + 1) >>> 0 || 1;
        const slot = ring.prodSlot(k);
        writeDmaRequest(ring.u32, slot * ring.entryWords, tag, r.rid, r.access, r.priv, r.pasid,
          Number(r.addr & 0xffffffffn), Number((r.addr >> 32n) & 0xffffffffn));
        ring.stamps[slot] = stampNs;
        out.push(new Promise<DmaCompletion>((resolve, reject) => this.dmas.set(tag, { resolve, reject })));
      }
      ring.publish(n);
      i += n;
    }
    this.spinFor(() => { this.drainResponses(); return this.dmas.size === 0; });
    return Promise.all(out);
  }

  /** Drains completions, fault records and wait statuses; returns how many items moved. */
  drain(): number {
    return this.drainResponses() + this.drainEvents() + this.drainPageRequests() + this.pollWaits();
  }

  private drainPageRequests(): number {
    const ring = this.prq;
    if (this.prqHeld > 0) return 0;
    const n = ring.available();
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      this.events.onPageRequest(this.index, readPageRequest(ring.u32, slot * ring.entryWords), ring.stamps[slot]);
    }
    if (n > 0) {
      ring.release(n);
      this.lastProgress = performance.now();
    }
    if (ring.overflowed()) {
      // PRS.PRO: the queue was taken in above; partials are discarded, then PRO is cleared.
      this.events.onPrqOverflow(this.index);
      const lost = ring.takeLost();
      if (lost > 0) this.events.onOverflow(this.index, 'page-request', lost);
      this.workerBell.ring(); // its auto-answered DMAs retry now
    }
    return n;
  }

  /** True when nothing is ready to drain (for the coordinator's sleep check). */
  quiet(): boolean {
    return this.resp.available() === 0 && this.evt.available() === 0 && (this.prqHeld > 0 || this.prq.available() === 0) &&
      (this.waits.length === 0 || !this.waitDone(this.waits[0].seq));
  }

  private drainResponses(): number {
    const ring = this.resp;
    const n = ring.available();
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      const at = slot * ring.entryWords;
      const tag = respTag(ring.u32, at);
      const p = this.dmas.get(tag);
      if (p) {
        this.dmas.delete(tag);
        p.resolve({
          status: respStatus(ring.u32, at), recorded: respRecorded(ring.u32, at), cached: respCached(ring.u32, at),
          recoverable: respRecoverable(ring.u32, at), paddr: respPaddr(ring.u32, at), modelledNs: ring.stamps[slot],
        });
      }
    }
    if (n > 0) {
      ring.release(n);
      // A worker whose completion ring was full sleeps on its doorbell: wake it (one load when awake).
      this.workerBell.ring();
      this.lastProgress = performance.now();
    }
    return n;
  }

  private drainEvents(): number {
    const ring = this.evt;
    const n = ring.available();
    for (let k = 0; k < n; k++) {
      const slot = ring.consSlot(k);
      this.events.onFault(this.index, readFaultRecord(ring.u32, slot * ring.entryWords), ring.stamps[slot]);
    }
    if (n > 0) ring.release(n);
    if (ring.overflowed()) {
      const lost = ring.takeLost();
      if (lost > 0) this.events.onOverflow(this.index, 'event', lost);
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
      w.resolve({ modelledNs: this.waitTimes[w.seq & (this.waitTimes.length - 1)], hostNs: (performance.now() - w.t0) * 1e6 });
      n++;
    }
    if (n > 0) this.lastProgress = performance.now();
    return n;
  }

  private spinFor(done: () => boolean): void {
    if (this.cfg.spinUs <= 0) return;
    const until = performance.now() + SUBMIT_SPIN_US / 1000;
    while (!done() && performance.now() < until) { /* bounded spin: the worker is likely awake */ }
  }

  /** Rejects everything pending with `err`; reports it to the simulator unless closing. */
  fail(err: SimError, report = true): void {
    if (this.failed) return;
    this.failed = err;
    for (const abort of this.spaceWaits) abort(err);
    this.spaceWaits.clear();
    for (const w of this.waits.splice(0)) w.reject(err);
    for (const d of this.dmas.values()) d.reject(err);
    this.dmas.clear();
    for (const r of this.requests.values()) r.reject(err);
    this.requests.clear();
    if (report) this.events.onFatal(this.index, err);
  }

  /** Asks the worker to stop; terminates it if it does not exit within `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    if (!this.exited) {
      this.post({ type: 'shutdown' });
      this.fail(simError('EIO', 'iommu-worker', 'closed', `IOMMU ${this.index} is closed`), false);
      const timer = setTimeout(() => void this.worker.terminate(), graceMs);
      await this.exitPromise;
      clearTimeout(timer);
    }
  }
}
