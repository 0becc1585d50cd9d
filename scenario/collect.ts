/**
 * Metric collection of a scenario run — the ONE place that reads metrics from the
 * simulator (events$, faults$, pageRequests$, stats(), the PASID allocator's count), so a
 * later `sim.metrics()` in the core can replace it wholesale.
 *
 * Does: modelled-time latency histograms (hdr-histogram-js) of invalidations by kind
 * ('invalidation-complete' events, per IOMMU queue) and of round trips the runner times
 * (strict unmap, munmap, SVA bind…), each with the kernel's decade buckets
 * (drivers/iommu/intel/perf.h: <0.1 µs, 0.1–1 µs, 1–10 µs, 10–100 µs, 0.1–1 ms, 1–10 ms,
 * ≥10 ms) and a CDF; DMA counts, faults by reason, cache hit rates and descriptors from
 * stats(); page requests and the responses the runner gave; PASIDs in use over modelled
 * time; table memory. Host figures (wall time of an invalidation round trip) go to `host`.
 * Does not: decide what to run (runner.ts) or how to print it (cli/, report/).
 */
import type { Subscription } from 'rxjs';
import { DECADE_LABELS as CORE_DECADE_LABELS, LatencyDistribution, type SimStats, type Simulator } from 'iommu-sim';
import type { MetricName } from './schema.js';

/** The kernel's decade buckets (intel/perf.h labels), as the core metrics name them. */
export const DECADE_LABELS = CORE_DECADE_LABELS;
/** CDF points reported per latency kind. */
const CDF_FRACTIONS = [0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 1];

export interface LatencyStats {
  count: number;
  minNs: number;
  meanNs: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  p999Ns: number;
  maxNs: number;
  /** Counts in the kernel's decade buckets, DECADE_LABELS order. */
  decades: number[];
  /** Log-spaced histogram (1-2-5 bins): [lowNs, count] for non-empty bins. */
  bins: [number, number][];
  /** CDF points: [ns, fraction]. */
  cdf: [number, number][];
}

/** One latency kind of a run, on the core's HDR distribution (coordinator/metrics). */
class Latency {
  private readonly d = new LatencyDistribution();

  record(ns: number): void {
    this.d.record(Math.max(0, Math.round(ns)));
  }

  stats(): LatencyStats {
    const s = this.d.summary();
    const n = s.count;
    return {
      count: n, minNs: n ? s.min : 0, meanNs: n ? Math.round(s.mean) : 0,
      p50Ns: s.p50, p90Ns: s.p90, p99Ns: s.p99, p999Ns: s.p999, maxNs: s.max,
      decades: DECADE_LABELS.map((l) => s.decades[l]),
      bins: this.d.histogram().filter((b) => b.count > 0).map((b) => [Math.max(1, b.fromNs), b.count] as [number, number]),
      cdf: n ? this.d.cdf(CDF_FRACTIONS).map((p) => [p.ns, p.fraction] as [number, number]) : [],
    };
  }
}

export interface PhaseRecord {
  name: string;
  type: string;
  startNs: number;
  endNs: number;
  ops: number;
  errors: Record<string, number>;
  /** The same failures by errno and reason ("EBUSY ppasid-conflict"). */
  reasons: Record<string, number>;
  stoppedBy?: 'modelled-time' | 'interrupt';
}

export interface ModelledMetrics {
  modelledNs: number;
  iommus: number;
  devices: number;
  groups: number;
  phases: PhaseRecord[];
  invalidation?: Record<string, LatencyStats>;
  roundTrips?: Record<string, LatencyStats>;
  dma?: { requests: number; translated: number; faulted: number; faultRecords: number; faultsByReason: Record<string, number>; eventsLost: number; walks: number; descriptors: Record<string, number>; waits: number };
  hitRates?: Record<'iotlb' | 'devTlb' | 'pasidCache' | 'contextCache', { hits: number; misses: number; rate: number }>;
  pageRequests?: { groups: number; requests: number; responses: Record<'success' | 'invalid' | 'failure', number> };
  pasids?: { peak: number; final: number; timeline: [number, number][] };
  tables?: { bytesInUse: number; peakBytes: number };
  cmdq?: CmdqPoint[];
}

/** One point of a command-queue contention phase (map+unmap per CPU per modelled second). */
export interface CmdqPoint {
  phase: string;
  cpus: number;
  algorithm: 'lockfree' | 'locked' | 'percpu';
  batching: boolean;
  mode: 'strict' | 'deferred';
  opsPerCpuPerSec: number;
  casSuccessRate: number;
  smmuBusy: number;
  syncWaitNsPerOp: number;
}

export interface HostMetrics {
  /** Host-time round trip of each invalidation queue (submit → status seen), µs. */
  invalidationRttUs: { count: number; p50: number; p99: number };
}

/** Subscribes to a simulator's streams and builds the metrics of one run. */
export class Collector {
  private readonly inval = new Map<string, Latency>();
  private readonly trips = new Map<string, Latency>();
  private readonly rtt: number[] = [];
  private readonly faultsByReason: Record<string, number> = {};
  private readonly subs: Subscription[] = [];
  private groups = 0;
  private requests = 0;
  private readonly responses = { success: 0, invalid: 0, failure: 0 };
  private dmaOk = 0;
  private dmaFail = 0;
  private timeline: [number, number][] = [];
  private stride = 1;
  private tick = 0;
  private peak = 0;
  readonly phases: PhaseRecord[] = [];
  private readonly cmdqPoints: CmdqPoint[] = [];

  constructor(private readonly sim: Simulator, private readonly opts: { samples: number; metrics: readonly MetricName[] }) {
    this.subs.push(sim.events$.subscribe((e) => {
      if (e.type !== 'invalidation-complete') return;
      let l = this.inval.get(e.kind);
      if (!l) this.inval.set(e.kind, (l = new Latency()));
      l.record(e.modelledNs);
      this.rtt.push(e.hostNs / 1000);
    }));
    this.subs.push(sim.faults$.subscribe((f) => { this.faultsByReason[f.reason] = (this.faultsByReason[f.reason] ?? 0) + 1; }));
    this.subs.push(sim.pageRequests$.subscribe((g) => { this.groups++; this.requests += g.faults.length; }));
    this.samplePasids();
  }

  /** One point of a command-queue contention phase. */
  cmdq(point: CmdqPoint): void {
    this.cmdqPoints.push(point);
  }

  /** A round trip the runner timed in modelled ns (unmap, munmap, sva-bind, …). */
  roundTrip(kind: string, ns: number): void {
    let l = this.trips.get(kind);
    if (!l) this.trips.set(kind, (l = new Latency()));
    l.record(ns);
  }

  pageResponse(code: 'success' | 'invalid' | 'failure'): void {
    this.responses[code]++;
  }

  dmaResults(ok: number, failed: number): void {
    this.dmaOk += ok;
    this.dmaFail += failed;
  }

  /** PASIDs in use now; keeps at most `samples` points by halving the resolution. */
  samplePasids(): void {
    const inUse = this.sim.iommu.pasids.stats().inUse;
    this.peak = Math.max(this.peak, inUse);
    if (this.tick++ % this.stride !== 0) return;
    this.timeline.push([this.sim.clock.now, inUse]);
    if (this.timeline.length >= this.opts.samples) {
      this.timeline = this.timeline.filter((_, i) => i % 2 === 0);
      this.stride *= 2;
    }
  }

  private rec<K extends Exclude<keyof ModelledMetrics, 'modelledNs' | 'iommus' | 'devices' | 'groups' | 'phases'>>(
    name: MetricName, key: K, value: () => ModelledMetrics[K], out: ModelledMetrics,
  ): void {
    if (this.opts.metrics.includes(name)) out[key] = value();
  }

  /** Final figures; reads stats() when the simulator is still open. */
  async finish(): Promise<{ modelled: ModelledMetrics; host: HostMetrics }> {
    let st: SimStats | undefined;
    try {
      // Fault records reach the coordinator after the DMA that raised them completed:
      // wait (bounded) until every record the workers wrote was received or counted lost.
      for (let i = 0; i < 400; i++) {
        st = await this.sim.stats();
        const written = st.iommus.reduce((a, w) => a + w.faults, 0);
        if (st.faults + st.eventsLost >= written) break;
        await new Promise((r) => setTimeout(r, 5));
      }
    } catch {
      st = undefined; // closed by an interrupt or a failure: stream-derived figures only
    }
    for (const s of this.subs) s.unsubscribe();
    const inUse = this.sim.iommu.pasids.stats().inUse;
    this.timeline.push([this.sim.clock.now, inUse]);
    const sum = (f: (s: SimStats['iommus'][number]) => number) => (st ? st.iommus.reduce((a, s) => a + f(s), 0) : 0);
    const rate = (f: (s: SimStats['iommus'][number]) => { hits: number; misses: number }) => {
      const hits = sum((s) => f(s).hits);
      const misses = sum((s) => f(s).misses);
      return { hits, misses, rate: hits + misses ? Math.round((1e6 * hits) / (hits + misses)) / 1e6 : 0 };
    };
    const sortObj = <T>(m: Map<string, T>) => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
    const modelled: ModelledMetrics = {
      modelledNs: Math.max(this.sim.clock.now, ...(st?.iommus.map((s) => s.modelledNs) ?? [0])),
      iommus: this.sim.topology.devices.length ? Math.max(...this.sim.topology.devices.map((d) => d.iommu)) + 1 : 0,
      devices: this.sim.topology.devices.length,
      groups: this.sim.topology.groups.length,
      phases: this.phases,
    };
    if (st) modelled.iommus = st.iommus.length;
    if (this.cmdqPoints.length > 0) modelled.cmdq = this.cmdqPoints;
    this.rec('invalidation', 'invalidation', () => sortObj(new Map([...this.inval].map(([k, l]) => [k, l.stats()]))), modelled);
    this.rec('round-trips', 'roundTrips', () => sortObj(new Map([...this.trips].map(([k, l]) => [k, l.stats()]))), modelled);
    this.rec('dma', 'dma', () => {
      const descriptors: Record<string, number> = {};
      for (const s of st?.iommus ?? []) for (const [k, v] of Object.entries(s.descriptors)) descriptors[k] = (descriptors[k] ?? 0) + v;
      return {
        requests: this.dmaOk + this.dmaFail, translated: this.dmaOk, faulted: this.dmaFail, faultRecords: st?.faults ?? 0,
        faultsByReason: Object.fromEntries(Object.entries(this.faultsByReason).sort(([a], [b]) => a.localeCompare(b))),
        eventsLost: st?.eventsLost ?? 0, walks: sum((s) => s.walks),
        descriptors: Object.fromEntries(Object.entries(descriptors).sort(([a], [b]) => a.localeCompare(b))), waits: sum((s) => s.waits),
      };
    }, modelled);
    this.rec('hit-rates', 'hitRates', () => ({
      iotlb: rate((s) => s.iotlb), devTlb: rate((s) => s.devTlb), pasidCache: rate((s) => s.pasidCache), contextCache: rate((s) => s.contextCache),
    }), modelled);
    this.rec('page-requests', 'pageRequests', () => ({ groups: this.groups, requests: this.requests, responses: { ...this.responses } }), modelled);
    this.rec('pasids', 'pasids', () => ({ peak: Math.max(this.peak, inUse), final: inUse, timeline: this.timeline }), modelled);
    this.rec('tables', 'tables', () => ({ bytesInUse: st?.tables.bytesInUse ?? 0, peakBytes: st?.tables.peakBytes ?? 0 }), modelled);
    const r = [...this.rtt].sort((a, b) => a - b);
    const pct = (p: number) => (r.length ? Math.round(r[Math.min(r.length - 1, Math.ceil((p / 100) * r.length) - 1)] * 10) / 10 : 0);
    return { modelled, host: { invalidationRttUs: { count: r.length, p50: pct(50), p99: pct(99) } } };
  }
}
