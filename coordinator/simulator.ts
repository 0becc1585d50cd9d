/**
 * The Simulator: starts the worker threads that host the IOMMUs (one per IOMMU, or
 * `threads`), owns the topology, table memory and the kernel-side objects, and exposes the
 * public API (API.md): `sim.iommu`, `sim.iommufd`, `sim.dma` / `dmaBatch` / `dmaTraffic`,
 * the RxJS streams, `settle()`, `stats()`, `metrics()` and `close()`.
 *
 * Models: a machine whose IOMMUs run in parallel with the CPU side, in modelled time: what
 * the workers send back is handed over in modelled-time order by the coordinator's loop
 * (time-sync.ts), so results do not depend on the host; the coordinator never blocks its
 * thread (it sleeps on its doorbell with Atomics.waitAsync and spins only for bounded
 * times); a crashed or silent worker rejects everything pending with a clear error and the
 * simulator shuts itself down; close() is idempotent and leaves no worker.
 * Does not model: the SMMUv3 and AMD profiles end to end (their formats are in
 * shared/layout/; starting one is EOPNOTSUPP), CPU-side driver costs.
 */
import { Subject, filter, type Observable } from 'rxjs';
import { SimError, simError } from '../shared/errors.js';
import type { ProfileName, ResolvedIommuConfig } from '../shared/config.js';
import { ACCESS_CODE, type Access } from '../shared/layout/dma-request.js';
import type { FaultReasonName } from '../shared/layout/fault-record.js';
import type { FaultView, HwCmd } from '../shared/layout/profile-codec.js';
import type { PageRequestDesc } from '../shared/layout/page-request.js';
import { Doorbell } from '../shared/ring/doorbell.js';
import type { WorkerStats } from '../shared/protocol.js';
import { asU64 } from '../shared/units.js';
import { ContextTables } from './context-tables.js';
import { ID_SPACE_SPECS, IdSpace, type IdSpaceKind } from './id-space.js';
import { SmmuTables } from './smmu-tables.js';
import { AmdDeviceTablePool } from './amd-tables.js';
import type { DeviceTables } from './simulator-core.js';
import { FrameAllocator } from './frame-allocator.js';
import { IommuHandle } from './iommu-handle.js';
import type { TrafficResult } from './traffic-slots.js';
import { type SimulatorOptions, resolveOptions } from './simulator-options.js';

export type { SimulatorOptions } from './simulator-options.js';
import type { TrafficPattern } from '../shared/layout/traffic.js';
import { WorkerHost } from './worker-host.js';
import { EventScheduler } from './event-scheduler.js';
import { TimeSync } from './time-sync.js';
import { type LatencyKind, Metrics, type MetricsSnapshot } from './metrics.js';
import { IommuApi } from './iommu-api.js';
import { FailNth } from './fail-nth.js';
import { MmRegistry } from './mm-registry.js';
import { VmManager } from './vm.js';
import { Iopf, type PageRequestGroup, type ResponseCode } from './iopf.js';
import { Iommufd } from './iommufd/iommufd.js';
import { TestHooks } from './test-hooks.js';
import { ModelledClock } from './modelled-clock.js';
import type { SimulatorCore } from './simulator-core.js';
import { Device, Topology } from './topology.js';

export type Perm = { read?: boolean; write?: boolean; exec?: boolean; priv?: boolean };

/** A traffic burst (sim.dmaTraffic). */
export interface TrafficRequestSpec {
  /** First address of the footprint (4 KiB aligned). */
  base: bigint;
  /** Requests in the burst. */
  count: number;
  /** Pages of the footprint (default 1). */
  footprint?: number;
  pattern?: TrafficPattern;
  /** Zipf exponent (default 1). */
  zipfS?: number;
  seed?: number;
  access?: Access;
  pasid?: number;
  priv?: boolean;
  /** false: functional mode (no modelled time, no latencies). Default true. */
  timing?: boolean;
}

/** One latency as sim.metrics$ reports it: what was measured, how long (modelled ns), and when. */
export interface MetricSample { kind: LatencyKind; ns: number; modelledNs: number }

export interface FaultRecord {
  dev: Device | undefined;
  iommu: number;
  reason: FaultReasonName;
  /** The hardware fault reason code (VT-d FR). */
  code: number;
  pasid?: number;
  addr: bigint;
  perm: Perm;
  modelledNs: number;
}

export type SimEvent =
  | { type: 'fault'; record: FaultRecord }
  | { type: 'page-request'; group: PageRequestGroup }
  | { type: 'page-response'; dev: Device; pasid?: number; grpid: number; code: ResponseCode }
  | { type: 'overflow'; iommu: number; queue: 'event' | 'page-request'; lost: number }
  | { type: 'invalidation-complete'; iommu: number; kind: string; modelledNs: number; hostNs: number };

export interface DmaRequestSpec {
  addr: bigint;
  access: Access;
  pasid?: number;
  priv?: boolean;
}

export type DmaResult =
  | { ok: true; paddr: bigint; cached: boolean; modelledNs: number }
  | { ok: false; fault: { reason: FaultReasonName | 'reserved-region'; code: number; pasid?: number; addr: bigint; recoverable: boolean; recorded: boolean }; modelledNs: number };

export interface SimStats {
  iommus: WorkerStats[];
  /** Page-request groups failed by the response timeout, and answers that came after it. */
  /**
   * I/O page faults: page requests taken in (stop markers included), groups formed, page
   * group responses sent (each group is answered exactly once); groups failed by the response timeout and answers refused after it;
   * page-request queue overflows, requests lost to them, partial groups discarded, and
   * stop markers discarded.
   */
  iopf: { requests: number; groups: number; responses: number; timedOut: number; lateResponses: number; prqOverflows: number; prqLost: number; partialsDiscarded: number; stopMarkers: number };
  tables: { bytesInUse: number; peakBytes: number; reservedBytes: number };
  faults: number;
  eventsLost: number;
}

const WORKER_URL = new URL('../iommu-worker/main.js', import.meta.url);
const START_TIMEOUT_MS = 20_000;
/** How long the coordinator spins for an answer before it sleeps (ms). */
const PUMP_SPIN_MS = 0.05;

export class Simulator implements SimulatorCore {
  readonly topology: Topology;
  readonly iommu: IommuApi;
  readonly frames: FrameAllocator;
  readonly clock = new ModelledClock();
  readonly failNth = new FailNth();
  /** Process address spaces: `sim.mm.create()`. */
  readonly mm: MmRegistry;
  /** Virtual machines and their vPASID → pPASID tables: `sim.vms.create()`. */
  readonly vms: VmManager;
  /** The iommufd uAPI: `sim.iommufd.open()`. */
  readonly iommufd: Iommufd;
  private readonly iopf: Iopf;
  /** Page-request groups as the CPU side receives them (I/O page faults of PRI devices). */
  readonly pageRequests$: Observable<PageRequestGroup>;
  readonly test: TestHooks;
  private readonly faultSubject = new Subject<FaultRecord>();
  private readonly eventSubject = new Subject<SimEvent>();
  readonly faults$: Observable<FaultRecord> = this.faultSubject.asObservable();
  readonly events$: Observable<SimEvent> = this.eventSubject.asObservable();
  private readonly handles: IommuHandle[] = [];
  private readonly hosts: WorkerHost[] = [];
  /** What the workers sent back, held until time synchronisation hands it over. */
  private readonly scheduler = new EventScheduler();
  private sync!: TimeSync;
  private readonly metricsStore = new Metrics();
  private readonly metricSubject = new Subject<MetricSample>();
  /** Every latency the simulator measures, as it is recorded (modelled ns; completes on close). */
  readonly metrics$: Observable<MetricSample> = this.metricSubject.asObservable();
  /** Callers of settle() waiting for the simulation to come to rest. */
  private settleWaiters: (() => void)[] = [];
  private readonly deviceTables: DeviceTables[] = [];
  private readonly didAllocs: IdSpace[] = [];
  private readonly idSpaces = new Map<string, IdSpace>();
  readonly profile: ProfileName;
  private readonly bell = Doorbell.create();
  private closing: Promise<void> | undefined;
  private closed = false;
  private failure: SimError | undefined;
  private faultCount = 0;
  private lostCount = 0;
  private pumpDone: Promise<void> = Promise.resolve();

  private constructor(readonly options: SimulatorOptions, readonly configs: ResolvedIommuConfig[]) {
    this.profile = configs[0].profile;
    this.frames = new FrameAllocator({
      maxBytes: options.arenaBytes,
      onChunk: (index, sab) => { for (const h of this.hosts) h.post({ type: 'arena-chunk', index, sab }); },
    });
    this.frames.shouldFail = this.failNth.shouldFail;
    this.topology = new Topology(options.topology, configs.length, (i) => configs[i].pasidBits);
    this.iommu = new IommuApi(this, options.defaultDomain ?? 'dma', options.semantics ?? 'latest', options.pasidPolicy ?? 'global');
    this.vms = new VmManager(this.iommu.pasids);
    this.iopf = new Iopf(this.topology, {
      domainAt: (dev, pasid) => (pasid === undefined ? this.iommu.getDomainForDev(dev) : this.iommu.getDomainForDevPasid(dev, pasid)),
      submit: async (iommu, descs, delayNs = 0) => { await this.handles[iommu].submit(descs, this.clock.now + delayNs); },
      codec: (iommu) => this.handles[iommu].codec,
      drain: async (iommu) => {
        // A wait with Page Drain through the invalidation queue: every page request the
        // IOMMU wrote before it is taken in when it completes (intel_iommu_drain_pasid_prq).
        await this.handles[iommu].submit([], this.clock.now, { pageDrain: true });
      },
      serviceNs: (iommu) => this.configs[iommu].costs.prqServiceNs,
      now: () => this.clock.now,
      recordService: (ns) => this.recordLatency('page-request-service', ns),
    });
    this.iopf.responseTimeoutMs = options.iopfResponseTimeoutMs;
    this.iommu.attachIopf(this.iopf);
    this.pageRequests$ = this.iopf.pageRequests$;
    this.pageRequests$.subscribe((group) => this.eventSubject.next({ type: 'page-request', group }));
    this.iopf.responses$.subscribe((r) => this.eventSubject.next({ type: 'page-response', ...r }));
    this.mm = new MmRegistry(this.frames, { format: this.iommu.driver.cpuFormat, onCreate: (mm) => { mm.beforeFree = (m) => this.iommu.svaFreeMm(m); } });
    this.test = new TestHooks(this, !!options.testHooks);
    this.iommufd = new Iommufd({
      iommu: this.iommu,
      checkOpen: (op) => this.checkOpen(op),
      checkDevice: (dev, op) => this.checkDevice(dev, op),
      iommuPasidBits: (i) => this.configs[i].pasidBits,
      profile: this.profile,
      faults$: this.faults$,
      view: this.frames.view,
    }, this.frames);
  }

  static async start(options: SimulatorOptions): Promise<Simulator> {
    const configs = resolveOptions(options);
    const sim = new Simulator(options, configs);
    try {
      const threads = options.threads ?? configs.length;
      const bells = Array.from({ length: threads }, () => Doorbell.create());
      const amdPool = new AmdDeviceTablePool(sim.frames, sim.topology.devices);
      for (const cfg of configs) {
        const pasids = 2 ** cfg.pasidBits;
        const tables = cfg.profile === 'smmuv3' ? new SmmuTables(sim.frames, pasids)
          : cfg.profile === 'amd' ? amdPool.tablesFor(cfg.index, pasids) : new ContextTables(sim.frames, pasids);
        sim.deviceTables.push(tables);
        sim.didAllocs.push(new IdSpace('vtd-did'));
        sim.handles.push(new IommuHandle(cfg, sim.frames, tables.rootFrame, sim.bell, bells[cfg.index % threads], sim.handleEvents, sim.scheduler));
      }
      sim.sync = new TimeSync(sim.handles, sim.scheduler, sim.clock);
      for (let t = 0; t < threads; t++) {
        const mine = sim.handles.filter((h) => h.index % threads === t);
        const host = new WorkerHost(`IOMMU worker ${t} (IOMMUs ${mine.map((h) => h.index).join(', ')})`, mine.map((h) => h.startInfo()),
          sim.frames.view.buffers.slice(), sim.bell, { spinUs: configs[0].spinUs, testHooks: !!options.testHooks }, WORKER_URL, bells[t]);
        host.onFail = (err) => sim.fatal(err);
        host.onAnswer = () => { for (const h of mine) h.drain(); };
        for (const h of mine) h.host = host;
        sim.hosts.push(host);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(simError('ETIMEDOUT', 'Simulator.start', 'worker-start-timeout', `workers not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      });
      await Promise.race([Promise.all(sim.hosts.map((h) => h.ready)), timeout]).finally(() => clearTimeout(timer));
    } catch (e) {
      await sim.close();
      throw e;
    }
    sim.pumpDone = sim.pump();
    return sim;
  }

  // --- SimulatorCore ---

  tables(iommu: number): DeviceTables {
    return this.deviceTables[iommu];
  }

  idSpace(kind: Exclude<IdSpaceKind, 'vtd-did'>, iommu = 0): IdSpace {
    const key = ID_SPACE_SPECS[kind].scope === 'global' ? kind : `${kind}:${iommu}`;
    let s = this.idSpaces.get(key);
    if (!s) {
      s = new IdSpace(kind);
      this.idSpaces.set(key, s);
    }
    return s;
  }

  dids(iommu: number): IdSpace {
    return this.didAllocs[iommu];
  }

  async flush(iommu: number, descs: HwCmd[], kind: string): Promise<void> {
    const t0 = this.clock.now;
    const c = await this.handles[iommu].submit(descs, t0);
    this.clock.observe(c.modelledNs);
    // One qi_submit_sync, counted under its costliest descriptor as intel/perf.c counts a submission.
    const cls = new Set(descs.map((d) => this.handles[iommu].codec.cacheClass(d)));
    const inv: LatencyKind = cls.has('devtlb') ? 'devtlb-inv' : cls.has('iotlb') ? 'iotlb-inv' : cls.has('pasid-cache') ? 'pasid-cache-inv' : 'context-cache-inv';
    this.recordLatency(inv, c.modelledNs - t0);
    this.eventSubject.next({ type: 'invalidation-complete', iommu, kind, modelledNs: c.modelledNs - t0, hostNs: c.hostNs });
  }

  recordLatency(kind: LatencyKind, ns: number): void {
    this.metricsStore.record(kind, ns);
    if (this.metricSubject.observed) this.metricSubject.next({ kind, ns, modelledNs: this.clock.now });
  }

  /**
   * The metrics of the modelled machine once the simulation is at rest: latency
   * distributions by kind (HDR percentiles and the kernel's decade buckets), cache hit
   * rates of every IOMMU together, queue occupancy and stalls, table memory.
   */
  async metrics(): Promise<MetricsSnapshot> {
    this.checkOpen('metrics');
    const st = await this.stats();
    const snap = this.metricsStore.snapshot();
    const sum = (f: (w: WorkerStats) => { hits: number; misses: number }) => {
      let hits = 0;
      let misses = 0;
      for (const w of st.iommus) { hits += f(w).hits; misses += f(w).misses; }
      return { hits, misses, rate: hits + misses ? hits / (hits + misses) : 0 };
    };
    snap.hitRates = { iotlb: sum((w) => w.iotlb), devtlb: sum((w) => w.devTlb), 'pasid-cache': sum((w) => w.pasidCache), 'context-cache': sum((w) => w.contextCache) };
    snap.gauges['table-memory-bytes'] = { current: st.tables.bytesInUse, peak: st.tables.peakBytes, samples: 1 };
    for (const q of ['command', 'dma', 'event', 'page-request'] as const) {
      let samples = 0; let sumUsed = 0; let maxUsed = 0; let full = 0; let sumDepth = 0; let maxFill = 0;
      for (const w of st.iommus) {
        const o = w.queues[q];
        samples += o.samples; sumUsed += o.sumUsed; full += o.full; sumDepth += o.samples * o.depth;
        if (o.maxUsed > maxUsed) maxUsed = o.maxUsed;
        if (o.depth > 0 && o.maxUsed / o.depth > maxFill) maxFill = o.maxUsed / o.depth;
      }
      snap.queues[q] = { samples, meanUsed: samples ? sumUsed / samples : 0, maxUsed, meanFill: sumDepth ? sumUsed / sumDepth : 0, maxFill, fullSamples: full, stalls: full };
    }
    return snap;
  }

  checkOpen(op: string): void {
    if (this.failure) throw this.failure;
    if (this.closed || this.closing) throw simError('EIO', op, 'simulator-closed', 'the simulator is closed');
  }

  checkDevice(dev: Device, op: string): void {
    if (!(dev instanceof Device) || this.topology.devices[dev.index] !== dev) throw simError('ENODEV', op, 'not-a-device', String(dev));
  }

  // --- DMA ---

  /** One DMA request from `dev`, translated by its IOMMU. */
  async dma(dev: Device, req: DmaRequestSpec): Promise<DmaResult> {
    return (await this.dmaBatch(dev, [req]))[0];
  }

  /** Many DMA requests from `dev`, submitted in order; results in the same order. */
  async dmaBatch(dev: Device, reqs: readonly DmaRequestSpec[]): Promise<DmaResult[]> {
    const op = 'dma';
    this.checkOpen(op);
    this.checkDevice(dev, op);
    if (!Array.isArray(reqs)) throw simError('EINVAL', op, 'not-an-array');
    const who = this.iommu.requester(dev);
    const raw = reqs.map((r, i) => {
      if (typeof r !== 'object' || r === null) throw simError('EINVAL', op, 'bad-request', `requests[${i}]`);
      asU64(r.addr, op, `requests[${i}].addr`);
      const access = ACCESS_CODE[(r as DmaRequestSpec).access];
      if (access === undefined) throw simError('EINVAL', op, 'bad-access', `requests[${i}].access: '${String(r.access)}'`);
      if (r.pasid !== undefined && (!Number.isInteger(r.pasid) || r.pasid < 0 || r.pasid >= 1 << 20)) {
        throw simError('EINVAL', op, 'pasid-out-of-range', `requests[${i}].pasid: ${r.pasid}`);
      }
      return { rid: who.rid, pasid: r.pasid ?? who.pasid ?? -1, access, priv: !!r.priv, addr: r.addr, pri: dev.pri };
    });
    await this.iommu.prepare(dev);
    await this.iommu.pollFlushQueues();
    // A request into one of the device's reserved windows (host-bridge MMIO, MSI) is routed
    // before the IOMMU (seed 003: with or without a PASID): it never reaches it, and is flagged.
    const windows = dev.reservedRegions.filter((r) => r.type !== 'direct');
    const blocked = raw.map((r) => windows.some((w) => r.addr >= w.start && r.addr <= w.last));
    const done = await this.handles[dev.iommu].dmaMany(raw.filter((_, i) => !blocked[i]), this.clock.now);
    let k = 0;
    return raw.map((_, i): DmaResult => {
      if (blocked[i]) {
        const f = { reason: 'reserved-region' as const, code: 0, addr: reqs[i].addr, recoverable: false, recorded: false };
        return { ok: false, fault: reqs[i].pasid === undefined ? f : { ...f, pasid: reqs[i].pasid }, modelledNs: this.clock.now };
      }
      const c = done[k++];
      this.clock.observe(c.modelledNs);
      if (c.status === 0) return { ok: true, paddr: c.paddr, cached: c.cached, modelledNs: c.modelledNs };
      const f = { ...this.handles[dev.iommu].codec.faultOf(c.status), addr: reqs[i].addr, recoverable: c.recoverable, recorded: c.recorded };
      return { ok: false, fault: reqs[i].pasid === undefined ? f : { ...f, pasid: reqs[i].pasid }, modelledNs: c.modelledNs };
    });
  }

  /**
   * A burst of `count` DMA requests the device issues back to back over `footprint` pages
   * from `base` (sequential, uniform random, or Zipf with exponent `zipfS`), served whole
   * by its IOMMU: the fast path for workloads (no promise per request). Resolves at the
   * modelled time the last request completed with the counts and the latencies, which
   * also go into the metrics ('dma-translation'). `timing: false` is the functional mode:
   * translations only, no modelled time. Faults of a PRI device are recorded as faults
   * (bursts do not raise page requests).
   */
  async dmaTraffic(dev: Device, spec: TrafficRequestSpec): Promise<TrafficResult> {
    const op = 'dmaTraffic';
    this.checkOpen(op);
    this.checkDevice(dev, op);
    if (typeof spec !== 'object' || spec === null) throw simError('EINVAL', op, 'bad-spec', 'a traffic spec object');
    const access = ACCESS_CODE[spec.access ?? 'read'];
    if (access === undefined) throw simError('EINVAL', op, 'bad-access', `access: '${String(spec.access)}'`);
    const pattern = spec.pattern ?? 'sequential';
    if (!['sequential', 'random', 'zipf'].includes(pattern)) throw simError('EINVAL', op, 'bad-pattern', `pattern: expected sequential|random|zipf, got '${String(pattern)}'`);
    const intIn = (v: unknown, lo: number, hi: number, name: string) => {
      if (!(typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi)) throw simError('EINVAL', op, `bad-${name}`, `${name}: expected an integer ${lo}..${hi}, got ${String(v)}`);
      return v;
    };
    const count = intIn(spec.count, 1, 2 ** 32, 'count');
    const footprint = intIn(spec.footprint ?? 1, 1, 2 ** 36, 'footprint');
    const seed = intIn(spec.seed ?? 1, 0, 0xffffffff, 'seed');
    const base = asU64(spec.base, op, 'base');
    if ((base & 0xfffn) !== 0n) throw simError('EINVAL', op, 'unaligned-base', `base 0x${base.toString(16)} is not 4 KiB aligned`);
    if (base + BigInt(footprint) * 4096n > 2n ** 53n) throw simError('EINVAL', op, 'footprint-too-high', 'base + footprint must stay below 2^53');
    const zipfS = spec.zipfS ?? 1;
    if (!(typeof zipfS === 'number' && zipfS > 0 && Number.isFinite(zipfS))) throw simError('EINVAL', op, 'bad-zipf-s', `zipfS: ${String(zipfS)}`);
    if (spec.pasid !== undefined && (!Number.isInteger(spec.pasid) || spec.pasid < 0 || spec.pasid >= 1 << 20)) throw simError('EINVAL', op, 'pasid-out-of-range', `pasid: ${spec.pasid}`);
    const who = this.iommu.requester(dev);
    await this.iommu.prepare(dev);
    await this.iommu.pollFlushQueues();
    const r = await this.handles[dev.iommu].dmaTraffic(
      { rid: who.rid, pasid: spec.pasid ?? who.pasid ?? -1, access, priv: !!spec.priv, pri: dev.pri },
      { base: Number(base), count, footprint, pattern: pattern as TrafficPattern, seed, zipfS, timing: spec.timing !== false }, this.clock.now);
    this.clock.observe(r.endNs);
    for (const [ns, n] of r.latencies) this.metricsStore.recordMany('dma-translation', ns, n);
    return r;
  }

  faultsOf$(dev: Device): Observable<FaultRecord> {
    return this.faults$.pipe(filter((r) => r.dev === dev));
  }

  /** The page-request groups of one device (completes on close). */
  pageRequestsOf$(dev: Device): Observable<PageRequestGroup> {
    return this.pageRequests$.pipe(filter((g) => g.dev === dev));
  }

  /**
   * Resolves when the simulation is at rest: everything the IOMMUs were given has been
   * served and everything they produced handed over (fault records and page requests the
   * driver takes in after the DMA that raised them completed, included). Page requests a
   * handler has not answered yet do not hold it up.
   */
  settle(): Promise<void> {
    this.checkOpen('settle');
    return new Promise<void>((resolve) => {
      this.settleWaiters.push(resolve);
      this.bell.kick();
    });
  }

  /** Counters of every IOMMU and of the CPU side, once the simulation is at rest (settle()). */
  async stats(): Promise<SimStats> {
    this.checkOpen('stats');
    await this.settle();
    return {
      iommus: await Promise.all(this.handles.map((h) => h.stats())),
      tables: { bytesInUse: this.frames.bytesInUse, peakBytes: this.frames.peakBytes, reservedBytes: this.frames.bytesReserved },
      iopf: {
        requests: this.iopf.requests, groups: this.iopf.groups, responses: this.iopf.responses,
        timedOut: this.iopf.timedOut, lateResponses: this.iopf.lateResponses, prqOverflows: this.iopf.prqOverflows,
        prqLost: this.iopf.prqLost, partialsDiscarded: this.iopf.partialsDiscarded, stopMarkers: this.iopf.stopMarkers,
      },
      faults: this.faultCount,
      eventsLost: this.lostCount,
    };
  }

  /** Stops every worker and completes every stream. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.bell.kick();
      const closedErr = simError('EIO', 'iommu-worker', 'closed', 'the simulator is closed');
      for (const h of this.handles) h.fail(closedErr);
      this.scheduler.clear();
      for (const w of this.settleWaiters.splice(0)) w();
      await Promise.all(this.hosts.map((h) => h.close()));
      await this.pumpDone;
      this.iopf.complete();
      this.faultSubject.complete();
      this.eventSubject.complete();
      this.metricSubject.complete();
    })();
    return this.closing;
  }

  /** The CPU side of I/O page faults (test hooks). */
  iopfHooks(): Iopf {
    return this.iopf;
  }

  /** The handle of one IOMMU (benchmarks and tests). */
  handle(iommu: number): IommuHandle {
    return this.handles[iommu];
  }

  // --- internals ---

  private readonly handleEvents = {
    onFault: (iommu: number, r: FaultView, modelledNs: number) => {
      this.faultCount++;
      const rec: FaultRecord = {
        dev: this.topology.byRequester(iommu, r.sid), iommu, reason: r.reason, code: r.code,
        addr: r.addr, perm: r.read ? { read: true } : { write: true }, modelledNs,
      };
      if (r.pasidPresent) rec.pasid = r.pasid;
      this.iopf.reportFault(rec.dev, rec);
      this.faultSubject.next(rec);
      this.eventSubject.next({ type: 'fault', record: rec });
    },
    onPageRequest: (iommu: number, r: PageRequestDesc) => {
      this.iopf.onPageRequest(iommu, r);
    },
    onOverflow: (iommu: number, queue: 'event' | 'page-request', lost: number) => {
      if (queue === 'event') this.lostCount += lost;
      else this.iopf.prqLost += lost;
      this.eventSubject.next({ type: 'overflow', iommu, queue, lost });
    },
    onPrqOverflow: (iommu: number) => {
      this.iopf.onQueueOverflow(iommu);
    },
    onDmaDone: (ns: number) => {
      this.metricsStore.record('dma-translation', ns);
    },
  };

  /** A worker thread failed (crash, exit, watchdog): everything pending fails with it and the simulator shuts down. */
  private fatal(err: SimError): void {
    if (this.closed) return;
    this.failure ??= err;
    for (const h of this.handles) h.fail(err);
    void this.close();
  }

  /**
   * The coordinator's loop: drains every worker's output and hands it over in modelled-time
   * order (time-sync.ts), yielding after each handover so the code it resumes runs; sleeps
   * on the coordinator doorbell when nothing moves.
   */
  private async pump(): Promise<void> {
    const limit = this.options.hostTimeoutMs ?? 30_000;
    const quiet = () => this.closed || (this.sync.quiet() && !(this.settleWaiters.length > 0 && this.sync.atRest()));
    while (!this.closed) {
      const r = this.sync.step();
      const now = performance.now();
      for (const h of this.handles) {
        // DMAs parked on page requests that software holds are not the worker's to finish.
        if (h.pending > 0 && now - Math.max(h.lastProgress, h.host.lastAnswer) > limit && !this.iopf.hasPending(h.index)) {
          this.fatal(simError('ETIMEDOUT', 'iommu-worker', 'worker-not-answering', `IOMMU ${h.index} made no progress for ${limit} ms`));
        }
      }
      if (r.delivered === 0 && this.settleWaiters.length > 0 && this.sync.atRest()) {
        for (const w of this.settleWaiters.splice(0)) w();
        await new Promise<void>((res) => setImmediate(res));
        continue;
      }
      if (r.delivered > 0 || r.moved > 0) {
        await new Promise<void>((res) => setImmediate(res)); // resumed code runs, timers and messages too
        continue;
      }
      // Work in flight: spin a little (bounded) before sleeping — waking from waitAsync costs
      // tens of µs here, an awake worker answers in a few.
      if (this.handles.some((h) => h.pending > 0)) {
        const until = performance.now() + PUMP_SPIN_MS;
        while (quiet() && performance.now() < until) { /* bounded spin */ }
        if (!quiet()) continue;
      }
      await this.bell.sleepAsync(quiet, 50);
    }
  }
}
