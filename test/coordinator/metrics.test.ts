/**
 * Tests of coordinator/metrics: HDR percentiles against a sorted-array reference on seeded
 * data, the kernel's decade buckets at every edge (drivers/iommu/intel/perf.c,
 * dmar_latency_update), hit rates, queue occupancy, gauges, CDF and log histogram, exact
 * merge, deterministic JSON snapshots, 32-bit count spilling, and EINVAL for bad input.
 * Does not test: the wiring into the simulator (not part of this module).
 */
import { describe, expect, it } from 'vitest';
import {
  DECADE_BUCKETS, DECADE_LABELS, LATENCY_KINDS, LOG_BIN_EDGES_NS, MAX_LATENCY_NS, Metrics, QUEUE_NAMES,
  decadeIndex, type LatencyKind,
} from '../../coordinator/metrics.js';
import { U32_COUNT_LIMIT } from '../../coordinator/metrics/latency.js';
import { isSimError } from '../../shared/errors.js';
import { mulberry32 } from '../../shared/prng.js';
import { code } from '../helpers/errno.js';

/** Log-uniform whole ns in [1, 10^decades). */
function logUniform(seed: number, n: number, decades = 8): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(10 ** (r() * decades)));
}

/** Nearest-rank percentile (the rank HDR's getValueAtPercentile uses), in integer arithmetic
 *  so that 99.9 % of 100 000 is rank 99 900, not 99 901 as (99.9 / 100) * 1e5 rounds. */
function nearestRank(sorted: readonly number[], p: number): number {
  const rank = Math.ceil((Math.round(p * 1000) * sorted.length) / 100_000);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

function reason(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isSimError(e)) return `${e.code}/${e.reason}`;
    throw e;
  }
  return 'no error';
}

/** A Metrics with a seeded mix of everything. */
function fill(m: Metrics, seed: number, n = 2_000): Metrics {
  const r = mulberry32(seed);
  for (let i = 0; i < n; i++) {
    const kind = LATENCY_KINDS[Math.floor(r() * LATENCY_KINDS.length)];
    m.record(kind, 10 ** (r() * 8)); // fractional: dropped to whole ns
    if (i % 97 === 0) m.recordMany(kind, Math.floor(r() * 5_000), 1 + Math.floor(r() * 10));
    m.count(r() < 0.9 ? 'iotlb-hit' : 'iotlb-miss');
    if (i % 3 === 0) m.count(r() < 0.7 ? 'pasid-cache-hit' : 'pasid-cache-miss', 2);
    const q = QUEUE_NAMES[i % QUEUE_NAMES.length];
    const depth = 1 << (4 + (i % 4));
    m.occupancy(q, Math.floor(r() * (depth + 1)), depth);
    if (i % 50 === 0) m.count(`${q}-stall`);
    if (i % 10 === 0) m.gauge('table-memory-bytes', 4096 * Math.floor(r() * 1000));
  }
  return m;
}

describe('latency kinds', () => {
  it('are the eight kinds of issue 7, in a fixed order', () => {
    expect(LATENCY_KINDS).toEqual([
      'iotlb-inv', 'devtlb-inv', 'pasid-cache-inv', 'context-cache-inv',
      'unmap-strict', 'sva-munmap', 'dma-translation', 'page-request-service',
    ]);
    expect(Object.keys(new Metrics().snapshot().latency)).toEqual([...LATENCY_KINDS]);
  });
});

describe('percentiles against a sorted-array reference', () => {
  for (const seed of [1, 42, 0xdeadbeef]) {
    it(`agree within 3 significant digits on 100k log-uniform values (seed ${seed})`, () => {
      const values = logUniform(seed, 100_000);
      const m = new Metrics();
      for (const v of values) m.record('unmap-strict', v);
      const sorted = [...values].sort((a, b) => a - b);
      const s = m.snapshot().latency['unmap-strict'];
      const pairs: [number, number][] = [[50, s.p50], [90, s.p90], [99, s.p99], [99.9, s.p999]];
      for (const [p, got] of pairs) {
        const ref = nearestRank(sorted, p);
        expect(got).toBeGreaterThanOrEqual(ref);
        expect(got - ref).toBeLessThanOrEqual(ref / 1000);
      }
      expect(s.count).toBe(values.length);
      expect(s.min).toBe(sorted[0]);
      expect(s.max).toBe(sorted[sorted.length - 1]);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      expect(s.mean).toBe(mean);
      const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
      expect(Math.abs(s.stddev - sd) / sd).toBeLessThan(1e-3);
      for (const f of [0, 0.25, 0.5, 0.75, 0.99, 1]) {
        const [pt] = m.cdf('unmap-strict', [f]);
        const ref = f === 0 ? sorted[0] : nearestRank(sorted, f * 100);
        expect(pt.fraction).toBe(f);
        expect(pt.ns).toBeGreaterThanOrEqual(ref);
        expect(pt.ns - ref).toBeLessThanOrEqual(ref / 1000);
      }
    });
  }

  it('are exact below 2048 ns and never exceed the exact max', () => {
    const m = new Metrics();
    for (let v = 1; v <= 1000; v++) m.record('iotlb-inv', v);
    const s = m.snapshot().latency['iotlb-inv'];
    expect([s.p50, s.p90, s.p99, s.p999, s.max]).toEqual([500, 900, 990, 999, 1000]);
    m.record('devtlb-inv', 123_456_789);
    const d = m.snapshot().latency['devtlb-inv'];
    expect([d.min, d.p50, d.p999, d.max]).toEqual([123_456_789, 123_456_789, 123_456_789, 123_456_789]);
  });

  it('drop fractions of a nanosecond, as the kernel counts whole ns', () => {
    const m = new Metrics();
    m.record('dma-translation', 99.9);
    m.record('dma-translation', 0.4);
    const s = m.snapshot().latency['dma-translation'];
    expect([s.min, s.max, s.mean]).toEqual([0, 99, 49.5]);
    expect(s.decades['<0.1us']).toBe(2);
  });

  it('are all zero for a kind with no records', () => {
    const s = new Metrics().snapshot().latency['sva-munmap'];
    expect(s).toEqual({
      count: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, stddev: 0,
      decades: { '<0.1us': 0, '0.1us-1us': 0, '1us-10us': 0, '10us-100us': 0, '100us-1ms': 0, '1ms-10ms': 0, '>=10ms': 0 },
    });
  });
});

describe("the kernel's decade buckets (intel/perf.h, perf.c)", () => {
  it("have perf.c's labels and perf.h's edges, in order", () => {
    expect(DECADE_LABELS).toEqual(['<0.1us', '0.1us-1us', '1us-10us', '10us-100us', '100us-1ms', '1ms-10ms', '>=10ms']);
    expect(DECADE_BUCKETS.map((b) => b.kernelName)).toEqual([
      'COUNTS_10e2', 'COUNTS_10e3', 'COUNTS_10e4', 'COUNTS_10e5', 'COUNTS_10e6', 'COUNTS_10e7', 'COUNTS_10e8_plus',
    ]);
    expect(DECADE_BUCKETS.map((b) => b.toNs)).toEqual([100, 1e3, 1e4, 1e5, 1e6, 1e7, Infinity]);
    for (let i = 1; i < DECADE_BUCKETS.length; i++) expect(DECADE_BUCKETS[i].fromNs).toBe(DECADE_BUCKETS[i - 1].toNs);
  });

  it('put a latency exactly on an edge in the bucket above (latency < edge is the test)', () => {
    const edges = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    edges.forEach((e, i) => {
      expect(decadeIndex(e - 1)).toBe(i);
      expect(decadeIndex(e)).toBe(i + 1);
      expect(decadeIndex(e + 1)).toBe(i + 1);
    });
    expect(decadeIndex(0)).toBe(0);
    expect(decadeIndex(MAX_LATENCY_NS)).toBe(6);
  });

  it('count recorded latencies at and around every edge', () => {
    const m = new Metrics();
    for (const e of [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]) {
      m.record('iotlb-inv', e - 1);
      m.record('iotlb-inv', e - 0.5); // whole ns: e - 1
      m.record('iotlb-inv', e);
      m.record('iotlb-inv', e + 1);
    }
    m.record('iotlb-inv', 0);
    m.record('iotlb-inv', MAX_LATENCY_NS);
    expect(m.snapshot().latency['iotlb-inv'].decades).toEqual({
      '<0.1us': 3, '0.1us-1us': 4, '1us-10us': 4, '10us-100us': 4, '100us-1ms': 4, '1ms-10ms': 4, '>=10ms': 3,
    });
  });

  it('agree with the bucket table on random values', () => {
    const m = new Metrics();
    const values = logUniform(7, 20_000, 9);
    for (const v of values) m.record('sva-munmap', v);
    const want = DECADE_BUCKETS.map((b) => values.filter((v) => v >= b.fromNs && v < b.toNs).length);
    expect(Object.values(m.snapshot().latency['sva-munmap'].decades)).toEqual(want);
  });
});

describe('hit rates, queues and gauges', () => {
  it('give hits / (hits + misses) per cache, 0 with no lookups', () => {
    const m = new Metrics();
    m.count('iotlb-hit', 3);
    m.count('iotlb-miss');
    m.count('context-cache-miss', 5);
    const h = m.snapshot().hitRates;
    expect(h.iotlb).toEqual({ hits: 3, misses: 1, rate: 0.75 });
    expect(h['context-cache']).toEqual({ hits: 0, misses: 5, rate: 0 });
    expect(h['pasid-cache']).toEqual({ hits: 0, misses: 0, rate: 0 });
    expect(h.devtlb).toEqual({ hits: 0, misses: 0, rate: 0 });
  });

  it('give queue occupancy mean/max, full samples and stalls per queue', () => {
    const m = new Metrics();
    m.occupancy('command', 0, 256);
    m.occupancy('command', 64, 256);
    m.occupancy('command', 256, 256);
    m.occupancy('command', 8, 16); // a second IOMMU with a smaller queue
    m.count('command-stall', 2);
    m.count('event-stall');
    const q = m.snapshot().queues;
    expect(q.command).toEqual({
      samples: 4, meanUsed: 82, maxUsed: 256, meanFill: 328 / 784, maxFill: 1, fullSamples: 1, stalls: 2,
    });
    expect(q.event).toEqual({ samples: 0, meanUsed: 0, maxUsed: 0, meanFill: 0, maxFill: 0, fullSamples: 0, stalls: 1 });
    expect(Object.keys(q)).toEqual(['command', 'event', 'page-request', 'dma']);
  });

  it('keep the current table memory and its peak', () => {
    const m = new Metrics();
    expect(m.snapshot().gauges['table-memory-bytes']).toEqual({ current: 0, peak: 0, samples: 0 });
    m.gauge('table-memory-bytes', 8192);
    m.gauge('table-memory-bytes', 65536);
    m.gauge('table-memory-bytes', 4096);
    expect(m.snapshot().gauges['table-memory-bytes']).toEqual({ current: 4096, peak: 65536, samples: 3 });
  });
});

describe('CDF and log histogram', () => {
  it('step CDF rises to 1 at the exact max', () => {
    const m = fill(new Metrics(), 3);
    for (const kind of LATENCY_KINDS) {
      const c = m.cdf(kind);
      const s = m.snapshot().latency[kind];
      expect(c.length).toBeGreaterThan(0);
      for (let i = 1; i < c.length; i++) {
        expect(c[i].ns).toBeGreaterThan(c[i - 1].ns);
        expect(c[i].fraction).toBeGreaterThan(c[i - 1].fraction);
      }
      expect(c[c.length - 1]).toEqual({ ns: s.max, fraction: 1 });
    }
    expect(new Metrics().cdf('iotlb-inv')).toEqual([]);
  });

  it('histogram bins are 1-2-5 log bins, contiguous, and hold every record', () => {
    const m = new Metrics();
    for (const v of [0, 1, 1, 3, 150, 199, 200, 1999]) m.record('page-request-service', v);
    expect(m.histogram('page-request-service')).toEqual([
      { fromNs: 0, toNs: 1, count: 1 }, { fromNs: 1, toNs: 2, count: 2 }, { fromNs: 2, toNs: 5, count: 1 },
      { fromNs: 5, toNs: 10, count: 0 }, { fromNs: 10, toNs: 20, count: 0 }, { fromNs: 20, toNs: 50, count: 0 },
      { fromNs: 50, toNs: 100, count: 0 }, { fromNs: 100, toNs: 200, count: 2 }, { fromNs: 200, toNs: 500, count: 1 },
      { fromNs: 500, toNs: 1000, count: 0 }, { fromNs: 1000, toNs: 2000, count: 1 },
    ]);
    const f = fill(new Metrics(), 4);
    for (const kind of LATENCY_KINDS) {
      const bins = f.histogram(kind);
      expect(bins.reduce((a, b) => a + b.count, 0)).toBe(f.snapshot().latency[kind].count);
      for (const b of bins) expect(LOG_BIN_EDGES_NS).toContain(b.fromNs);
      for (let i = 1; i < bins.length; i++) expect(bins[i].fromNs).toBe(bins[i - 1].toNs);
    }
    expect(new Metrics().histogram('iotlb-inv')).toEqual([]);
    expect(LOG_BIN_EDGES_NS[LOG_BIN_EDGES_NS.length - 1]).toBeGreaterThan(MAX_LATENCY_NS);
  });
});

describe('merge, reset and determinism', () => {
  it('merging equals recording both', () => {
    const both = fill(fill(new Metrics(), 11), 12);
    const a = fill(new Metrics(), 11);
    a.merge(fill(new Metrics(), 12));
    expect(a.snapshot()).toEqual(both.snapshot());
    for (const kind of LATENCY_KINDS) {
      expect(a.cdf(kind)).toEqual(both.cdf(kind));
      expect(a.histogram(kind)).toEqual(both.histogram(kind));
    }
  });

  it('merging shards in any grouping gives the same snapshot', () => {
    const shards = [21, 22, 23, 24].map((s) => fill(new Metrics(), s, 500));
    const left = new Metrics();
    for (const s of shards) left.merge(s);
    const p = new Metrics();
    p.merge(fill(new Metrics(), 21, 500));
    p.merge(fill(new Metrics(), 22, 500));
    const q = fill(new Metrics(), 23, 500);
    q.merge(fill(new Metrics(), 24, 500));
    p.merge(q);
    expect(JSON.stringify(p.snapshot())).toBe(JSON.stringify(left.snapshot()));
  });

  it('snapshot is plain JSON, and the same records give a deep-equal snapshot', () => {
    const s1 = fill(new Metrics(), 5).snapshot();
    const s2 = fill(new Metrics(), 5).snapshot();
    expect(s1).toEqual(s2);
    const json = JSON.stringify(s1);
    expect(json).toBe(JSON.stringify(s2));
    expect(JSON.parse(json)).toEqual(s1);
    const numbers: unknown[] = [];
    JSON.parse(json, (_k, v) => { if (typeof v !== 'object') numbers.push(v); return v; });
    for (const v of numbers) expect(typeof v === 'number' && Number.isFinite(v)).toBe(true);
  });

  it('latency figures do not depend on the order of the records', () => {
    const values = logUniform(9, 5_000);
    const fwd = new Metrics();
    const rev = new Metrics();
    for (const v of values) fwd.record('context-cache-inv', v);
    for (const v of [...values].reverse()) rev.record('context-cache-inv', v);
    expect(rev.snapshot()).toEqual(fwd.snapshot());
  });

  it('recordMany(kind, ns, n) equals n records', () => {
    const a = new Metrics();
    const b = new Metrics();
    a.recordMany('pasid-cache-inv', 777, 1000);
    a.recordMany('pasid-cache-inv', 5, 0);
    for (let i = 0; i < 1000; i++) b.record('pasid-cache-inv', 777);
    expect(a.snapshot()).toEqual(b.snapshot());
  });

  it('reset forgets everything', () => {
    const m = fill(new Metrics(), 6);
    m.reset();
    expect(m.snapshot()).toEqual(new Metrics().snapshot());
    m.record('iotlb-inv', 800);
    expect(m.snapshot().latency['iotlb-inv'].p50).toBe(800);
  });
});

describe('counts beyond 32 bits', () => {
  it('spill from 32-bit HDR counts without wrapping, on record() and recordMany()', () => {
    const m = new Metrics();
    m.recordMany('dma-translation', 300, U32_COUNT_LIMIT - 1);
    m.record('dma-translation', 300);
    m.record('dma-translation', 300); // would wrap a Uint32 count
    m.record('dma-translation', 5_000_000);
    const s = m.snapshot().latency['dma-translation'];
    expect(s.count).toBe(U32_COUNT_LIMIT + 2);
    expect(s.decades['0.1us-1us']).toBe(U32_COUNT_LIMIT + 1);
    expect(s.p50).toBe(300);
    expect(s.p999).toBe(300);
    expect(s.max).toBe(5_000_000);
    expect(m.histogram('dma-translation').find((b) => b.fromNs === 200)?.count).toBe(U32_COUNT_LIMIT + 1);

    const big = new Metrics();
    big.recordMany('iotlb-inv', 40, 2 ** 40);
    const other = new Metrics();
    other.recordMany('iotlb-inv', 40_000, 2 ** 40);
    big.merge(other);
    const t = big.snapshot().latency['iotlb-inv'];
    expect(t.count).toBe(2 ** 41);
    expect(t.p50).toBe(40);
    expect(t.p90).toBeGreaterThanOrEqual(40_000);
    expect(t.p90 - 40_000).toBeLessThanOrEqual(40);
  });
});

describe('bad input', () => {
  it('unknown kinds are EINVAL on every call that takes a kind', () => {
    const m = new Metrics();
    const bad = 'iotlb' as LatencyKind;
    expect(reason(() => m.record(bad, 1))).toBe('EINVAL/unknown-latency-kind');
    expect(code(() => m.recordMany(bad, 1, 1))).toBe('EINVAL');
    expect(code(() => m.cdf(bad))).toBe('EINVAL');
    expect(code(() => m.histogram(bad))).toBe('EINVAL');
    expect(code(() => m.record('__proto__' as LatencyKind, 1))).toBe('EINVAL');
  });

  it('negative, non-finite and too-large latencies are EINVAL and record nothing', () => {
    const m = new Metrics();
    for (const v of [-1, -0.5, NaN, Infinity, -Infinity, MAX_LATENCY_NS + 1]) {
      expect(reason(() => m.record('iotlb-inv', v))).toBe('EINVAL/bad-latency');
      expect(code(() => m.recordMany('iotlb-inv', v, 1))).toBe('EINVAL');
    }
    for (const n of [-1, 1.5, NaN, Infinity]) expect(reason(() => m.recordMany('iotlb-inv', 1, n))).toBe('EINVAL/bad-count');
    expect(m.snapshot()).toEqual(new Metrics().snapshot());
  });

  it('bad counters, gauges, occupancy samples, CDF points and merges are EINVAL', () => {
    const m = new Metrics();
    expect(code(() => m.count('tlb-hit' as 'iotlb-hit'))).toBe('EINVAL');
    expect(code(() => m.count('iotlb-hit', -1))).toBe('EINVAL');
    expect(code(() => m.count('iotlb-hit', 0.5))).toBe('EINVAL');
    expect(code(() => m.gauge('memory' as 'table-memory-bytes', 1))).toBe('EINVAL');
    for (const v of [-1, NaN, Infinity]) expect(code(() => m.gauge('table-memory-bytes', v))).toBe('EINVAL');
    expect(code(() => m.occupancy('fault' as 'event', 1, 2))).toBe('EINVAL');
    for (const [u, d] of [[3, 2], [0, 0], [-1, 4], [1.5, 4], [1, NaN]]) {
      expect(reason(() => m.occupancy('command', u, d))).toBe('EINVAL/bad-occupancy');
    }
    m.record('iotlb-inv', 1);
    for (const f of [-0.1, 1.1, NaN]) expect(code(() => m.cdf('iotlb-inv', [f]))).toBe('EINVAL');
    expect(code(() => m.merge(m))).toBe('EINVAL');
    expect(code(() => m.merge({} as Metrics))).toBe('EINVAL');
    const clean = new Metrics();
    clean.record('iotlb-inv', 1);
    expect(m.snapshot()).toEqual(clean.snapshot());
  });
});
