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
import * as hdr from 'hdr-histogram-js';
import type { Subscription } from 'rxjs';
import type { SimStats, Simulator } from 'iommu-sim';
import type { MetricName } from './schema.js';

export const DECADE_LABELS = ['<0.1us', '0.1-1us', '1-10us', '10-100us', '0.1-1ms', '1-10ms', '>=10ms'] as const;
const DECADE_EDGES_NS = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
/** Bar-chart bins: 4 per decade from 10 ns to 100 ms (bin i covers [10^(1+i/4), 10^(1+(i+1)/4)) ns). */
const BINS = 28;
const CDF_PERCENTILES = [0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97.5, 99, 99.5, 99.9, 100];

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
  /** Log-spaced histogram: [lowNs, count] for non-empty bins. */
  bins: [number, number][];
  /** CDF points: [ns, fraction]. */
  cdf: [number, number][];
}

class Latency {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e13, numberOfSignificantValueDigits: 3 });
  private readonly decades = new Array<number>(DECADE_LABELS.length).fill(0);
  private readonly bins = new Array<number>(BINS).fill(0);
  private min = Infinity;

  record(ns: number): void {
    const v = Math.max(0, Math.round(ns));
    this.h.recordValue(v);
    this.min = Math.min(this.min, v);
    let d = 0;
    while (d < DECADE_EDGES_NS.length && v >= DECADE_EDGES_NS[d]) d++;
    this.decades[d]++;
    this.bins[v < 10 ? 0 : Math.min(BINS - 1, Math.floor((Math.log10(v) - 1) * 4))]++;
  }

  stats(): LatencyStats {
    const h = this.h;
    const n = h.totalCount;
    const out: LatencyStats = {
      count: n,
      minNs: n ? this.min : 0,
      meanNs: n ? Math.round(h.mean) : 0,
      p50Ns: h.getValueAtPercentile(50),
      p90Ns: h.getValueAtPercentile(90),
      p99Ns: h.getValueAtPercentile(99),
      p999Ns: h.getValueAtPercentile(99.9),
      maxNs: h.maxValue,
      decades: [...this.decades],
      bins: this.bins.flatMap((c, i) => (c ? [[Math.round(10 ** (1 + i / 4)), c] as [number, number]] : [])),
      cdf: n ? CDF_PERCENTILES.map((p) => [p === 0 ? this.min : h.getValueAtPercentile(p), p / 100] as [number, number]) : [],
    };
    h.destroy();
    return out;
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
