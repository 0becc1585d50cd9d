/**
 * Metrics: the simulator's measurements of the modelled machine (DESIGN.md §5: modelled
 * time, never host time) in one object that can be snapshotted, merged and reset.
 *
 * Models: latency distributions by kind (invalidations, strict unmap end to end, SVA
 * munmap fan-out, DMA translation, page-request service) in modelled ns, with HDR
 * percentiles and the kernel's decade buckets (decades.ts); cache hit/miss counters and
 * hit rates; queue occupancy and stalls; gauges with a peak (table memory).
 * Does not model: where the numbers come from (the wiring into the simulator and any RxJS
 * stream of them are separate), time windows, or host-time figures.
 *
 * Determinism: the same records (in any order, or split across instances and merged)
 * give a deep-equal snapshot, except that a gauge's `current` is the last value set.
 * Bad input throws SimError EINVAL and records nothing.
 */
import { simError } from '../../shared/errors.js';
import { type CdfPoint, type HistogramBin, LatencyDistribution, type LatencySummary, MAX_LATENCY_NS } from './latency.js';
import { QUEUE_NAMES, QueueOccupancy, type QueueName, type QueueSummary } from './queues.js';

export const LATENCY_KINDS = [
  'iotlb-inv', 'devtlb-inv', 'pasid-cache-inv', 'context-cache-inv',
  'unmap-strict', 'sva-munmap', 'dma-translation', 'page-request-service',
] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

export const CACHE_NAMES = ['iotlb', 'devtlb', 'pasid-cache', 'context-cache'] as const;
export type CacheName = (typeof CACHE_NAMES)[number];

/** Counters for count(): a hit and a miss per cache, a stall per queue. */
export const COUNTER_NAMES = [
  'iotlb-hit', 'iotlb-miss', 'devtlb-hit', 'devtlb-miss',
  'pasid-cache-hit', 'pasid-cache-miss', 'context-cache-hit', 'context-cache-miss',
  'command-stall', 'event-stall', 'page-request-stall', 'dma-stall',
] as const satisfies readonly (`${CacheName}-${'hit' | 'miss'}` | `${QueueName}-stall`)[];
export type CounterName = (typeof COUNTER_NAMES)[number];

/** Gauges for gauge(): a current value and its peak. */
export const GAUGE_NAMES = ['table-memory-bytes'] as const;
export type GaugeName = (typeof GAUGE_NAMES)[number];

export interface HitRate { hits: number; misses: number; /** hits / (hits + misses); 0 with no lookups. */ rate: number }
export interface GaugeSummary { current: number; peak: number; samples: number }

export interface MetricsSnapshot {
  latency: Record<LatencyKind, LatencySummary>;
  hitRates: Record<CacheName, HitRate>;
  queues: Record<QueueName, QueueSummary>;
  gauges: Record<GaugeName, GaugeSummary>;
}

function indexOf(names: readonly string[]): Map<string, number> {
  return new Map(names.map((n, i) => [n, i]));
}
const KIND_INDEX = indexOf(LATENCY_KINDS);
const COUNTER_INDEX = indexOf(COUNTER_NAMES);
const GAUGE_INDEX = indexOf(GAUGE_NAMES);
const QUEUE_INDEX = indexOf(QUEUE_NAMES);

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export class Metrics {
  private readonly dists = new Map<string, LatencyDistribution>(LATENCY_KINDS.map((k) => [k, new LatencyDistribution()]));
  private readonly counters = new Float64Array(COUNTER_NAMES.length);
  private readonly gaugeNow = new Float64Array(GAUGE_NAMES.length);
  private readonly gaugePeak = new Float64Array(GAUGE_NAMES.length);
  private readonly gaugeSamples = new Float64Array(GAUGE_NAMES.length);
  private readonly queues = QUEUE_NAMES.map(() => new QueueOccupancy());

  private dist(kind: string, op: string): LatencyDistribution {
    const d = this.dists.get(kind);
    if (d === undefined) throw simError('EINVAL', op, 'unknown-latency-kind', `kind '${kind}'`);
    return d;
  }

  /** Records one latency of `kind`: `ns` modelled nanoseconds in [0, 1 h] (fractions dropped). */
  record(kind: LatencyKind, ns: number): void {
    const d = this.dists.get(kind);
    if (d === undefined) throw simError('EINVAL', 'metrics.record', 'unknown-latency-kind', `kind '${kind}'`);
    if (!(ns >= 0 && ns <= MAX_LATENCY_NS)) throw simError('EINVAL', 'metrics.record', 'bad-latency', `${ns} ns`);
    d.record(Math.floor(ns));
  }

  /** Records `count` latencies of the same `ns` (count a safe integer ≥ 0). */
  recordMany(kind: LatencyKind, ns: number, count: number): void {
    const d = this.dist(kind, 'metrics.recordMany');
    if (!(ns >= 0 && ns <= MAX_LATENCY_NS)) throw simError('EINVAL', 'metrics.recordMany', 'bad-latency', `${ns} ns`);
    if (!isCount(count)) throw simError('EINVAL', 'metrics.recordMany', 'bad-count', `count ${count}`);
    if (count > 0) d.recordMany(Math.floor(ns), count);
  }

  /** Adds `n` (a safe integer ≥ 0) to a counter. */
  count(name: CounterName, n = 1): void {
    const i = COUNTER_INDEX.get(name);
    if (i === undefined) throw simError('EINVAL', 'metrics.count', 'unknown-counter', `counter '${name}'`);
    if (!isCount(n)) throw simError('EINVAL', 'metrics.count', 'bad-count', `n ${n}`);
    this.counters[i] += n;
  }

  /** Sets a gauge (a finite value ≥ 0) and raises its peak. */
  gauge(name: GaugeName, value: number): void {
    const i = GAUGE_INDEX.get(name);
    if (i === undefined) throw simError('EINVAL', 'metrics.gauge', 'unknown-gauge', `gauge '${name}'`);
    if (!(value >= 0 && value < Infinity)) throw simError('EINVAL', 'metrics.gauge', 'bad-gauge-value', `${value}`);
    this.gaugeNow[i] = value;
    if (value > this.gaugePeak[i]) this.gaugePeak[i] = value;
    this.gaugeSamples[i]++;
  }

  /** One occupancy sample of a queue: `used` of `depth` entries (integers, 0 ≤ used ≤ depth, depth ≥ 1). */
  occupancy(queue: QueueName, used: number, depth: number): void {
    const i = QUEUE_INDEX.get(queue);
    if (i === undefined) throw simError('EINVAL', 'metrics.occupancy', 'unknown-queue', `queue '${queue}'`);
    if (!isCount(used) || !isCount(depth) || depth === 0 || used > depth) {
      throw simError('EINVAL', 'metrics.occupancy', 'bad-occupancy', `used ${used} of depth ${depth}`);
    }
    this.queues[i].sample(used, depth);
  }

  /** A plain, JSON-serialisable summary of everything recorded. */
  snapshot(): MetricsSnapshot {
    const latency = {} as Record<LatencyKind, LatencySummary>;
    for (const k of LATENCY_KINDS) latency[k] = this.dists.get(k)!.summary();
    const hitRates = {} as Record<CacheName, HitRate>;
    for (const c of CACHE_NAMES) {
      const hits = this.counters[COUNTER_INDEX.get(`${c}-hit`)!];
      const misses = this.counters[COUNTER_INDEX.get(`${c}-miss`)!];
      hitRates[c] = { hits, misses, rate: hits + misses ? hits / (hits + misses) : 0 };
    }
    const queues = {} as Record<QueueName, QueueSummary>;
    QUEUE_NAMES.forEach((q, i) => { queues[q] = this.queues[i].summary(this.counters[COUNTER_INDEX.get(`${q}-stall`)!]); });
    const gauges = {} as Record<GaugeName, GaugeSummary>;
    GAUGE_NAMES.forEach((g, i) => { gauges[g] = { current: this.gaugeNow[i], peak: this.gaugePeak[i], samples: this.gaugeSamples[i] }; });
    return { latency, hitRates, queues, gauges };
  }

  /** CDF of `kind` for plotting: at the given fractions (each in [0, 1]), or the full step CDF. */
  cdf(kind: LatencyKind, points?: readonly number[]): CdfPoint[] {
    const d = this.dist(kind, 'metrics.cdf');
    if (points !== undefined) {
      for (const f of points) if (!(f >= 0 && f <= 1)) throw simError('EINVAL', 'metrics.cdf', 'bad-cdf-point', `fraction ${f}`);
    }
    return d.cdf(points);
  }

  /** Counts of `kind` on a 1-2-5 log scale (LOG_BIN_EDGES_NS), first to last occupied bin. */
  histogram(kind: LatencyKind): HistogramBin[] {
    return this.dist(kind, 'metrics.histogram').histogram();
  }

  /**
   * Adds `other`'s records to this one (sweep points, worker shards): the result equals
   * recording both here, other's after this one's (so a gauge other has set takes
   * other's current value; peaks take the larger).
   */
  merge(other: Metrics): void {
    if (!(other instanceof Metrics) || other === this) {
      throw simError('EINVAL', 'metrics.merge', 'bad-merge-source', other === this ? 'merge with itself' : 'not a Metrics');
    }
    for (const k of LATENCY_KINDS) this.dists.get(k)!.merge(other.dists.get(k)!);
    for (let i = 0; i < this.counters.length; i++) this.counters[i] += other.counters[i];
    for (let i = 0; i < GAUGE_NAMES.length; i++) {
      if (other.gaugeSamples[i] === 0) continue;
      this.gaugeNow[i] = other.gaugeNow[i];
      if (other.gaugePeak[i] > this.gaugePeak[i]) this.gaugePeak[i] = other.gaugePeak[i];
      this.gaugeSamples[i] += other.gaugeSamples[i];
    }
    this.queues.forEach((q, i) => q.merge(other.queues[i]));
  }

  /** Forgets everything recorded. */
  reset(): void {
    for (const d of this.dists.values()) d.reset();
    this.counters.fill(0);
    this.gaugeNow.fill(0);
    this.gaugePeak.fill(0);
    this.gaugeSamples.fill(0);
    for (const q of this.queues) q.reset();
  }
}
