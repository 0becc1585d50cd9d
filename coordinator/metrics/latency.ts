/**
 * One latency distribution in modelled nanoseconds: an HDR histogram (hdr-histogram-js,
 * 3 significant digits, 1 ns … 1 h) plus the exact figures HDR rounds (count, min, max,
 * sum) and the kernel's decade buckets (decades.ts), counted exactly at record time.
 *
 * Models: what a latency report needs — percentiles, mean, stddev, a CDF for plotting and
 * a log-scale (1-2-5) bar histogram — and merging two distributions exactly.
 * Does not model: validation of its inputs (Metrics does that and names the operation),
 * time windows or decay (a distribution only grows until reset()).
 *
 * Counts: the record path uses 32-bit counts (bitBucketSize 32, 6–12x faster per
 * record than 'packed' here; see bench/metrics.ts). A Uint32 count wraps silently past
 * 2^32 − 1, so before a distribution could pass that, its counts are spilled into a
 * 64-bit (Float64, exact to 2^53) histogram of the same layout; queries add the two.
 * Values are whole nanoseconds: a fraction is dropped, as the kernel's u64 ns would.
 */
import * as hdr from 'hdr-histogram-js';
import { DECADE_BUCKETS, type DecadeCounts, decadeCounts, decadeIndex } from './decades.js';

/** Largest value tracked: one hour of modelled time, in ns. */
export const MAX_LATENCY_NS = 3_600_000_000_000;
/** Records into the 32-bit histogram before its counts are spilled to the 64-bit one. */
export const U32_COUNT_LIMIT = 0xffff_ffff;

function build(bitBucketSize: 32 | 64): hdr.JsHistogram {
  const h = hdr.build({
    bitBucketSize, autoResize: false, useWebAssembly: false,
    lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_NS, numberOfSignificantValueDigits: 3,
  });
  if (!(h instanceof hdr.JsHistogram)) throw new Error('hdr-histogram-js: expected the JavaScript histogram');
  return h;
}

/** The plain-object summary of one distribution (all numbers; zeros when empty). */
export interface LatencySummary {
  count: number;
  min: number;
  max: number;
  /** Mean of the recorded whole-ns values; exact while their sum stays below 2^53 ns. */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Standard deviation over HDR bucket midpoints (so within HDR's precision). */
  stddev: number;
  decades: DecadeCounts;
}

export interface CdfPoint { ns: number; fraction: number }
export interface HistogramBin { fromNs: number; toNs: number; count: number }

/** Bar-chart edges on a 1-2-5 log scale: 0, 1, 2, 5, 10, 20, 50, … 5e12 ns. */
export const LOG_BIN_EDGES_NS: readonly number[] = [0, ...Array.from({ length: 13 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat()];

export class LatencyDistribution {
  private h = build(32);
  /** Counts spilled out of `h` before they could wrap; null until needed. */
  private big: hdr.JsHistogram | null = null;
  /** Records in `h` since the last spill. */
  private inH = 0;
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;
  readonly decades = new Float64Array(DECADE_BUCKETS.length);

  /** Records one whole-ns value in [0, MAX_LATENCY_NS] (already validated). */
  record(ns: number): void {
    if (this.inH === U32_COUNT_LIMIT) this.spill();
    this.h.recordValue(ns);
    this.inH++;
    this.note(ns, 1);
  }

  /** Records `n` (a safe integer ≥ 1) occurrences of one whole-ns value. */
  recordMany(ns: number, n: number): void {
    if (this.inH + n > U32_COUNT_LIMIT) {
      this.spill();
      this.big!.recordValueWithCount(ns, n);
    } else {
      this.h.recordValueWithCount(ns, n);
      this.inH += n;
    }
    this.note(ns, n);
  }

  private note(ns: number, n: number): void {
    this.count += n;
    this.sum += ns * n;
    if (ns < this.min) this.min = ns;
    if (ns > this.max) this.max = ns;
    this.decades[decadeIndex(ns)] += n;
  }

  private spill(): void {
    this.big ??= build(64);
    this.big.add(this.h);
    this.h.reset();
    this.inH = 0;
  }

  /**
   * Calls `fn` for every occupied HDR bucket, lowest first: its lowest and highest value
   * and its count. A plain scan of the counts (HDR's recordedValuesIterator, which its own
   * mean and stdDeviation use, walked them several times slower here).
   */
  private static scan(h: hdr.JsHistogram, fn: (lo: number, hi: number, count: number) => void): void {
    const n = h.countsArrayLength;
    for (let i = 0; i < n; i++) {
      const c = h.getCountAtIndex(i);
      if (c === 0) continue;
      const lo = h.valueFromIndex(i);
      fn(lo, h.highestEquivalentValue(lo), c);
    }
  }

  /** Standard deviation over HDR bucket midpoints about the exact mean (as HDR's own, within its precision). */
  private stddev(h: hdr.JsHistogram): number {
    const mean = this.sum / this.count;
    let total = 0;
    LatencyDistribution.scan(h, (lo, _hi, c) => {
      const d = h.medianEquivalentValue(lo) - mean;
      total += d * d * c;
    });
    return Math.sqrt(total / this.count);
  }

  /** Adds `o`'s records, exactly as if they had been recorded here (o !== this). */
  merge(o: LatencyDistribution): void {
    if (o.big !== null || this.inH + o.inH > U32_COUNT_LIMIT) {
      this.spill();
      this.big!.add(o.h);
      if (o.big !== null) this.big!.add(o.big);
    } else {
      this.h.add(o.h);
      this.inH += o.inH;
    }
    this.count += o.count;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
    for (let i = 0; i < this.decades.length; i++) this.decades[i] += o.decades[i];
  }

  reset(): void {
    this.h.reset();
    this.big = null;
    this.inH = 0;
    this.count = 0;
    this.min = Infinity;
    this.max = 0;
    this.sum = 0;
    this.decades.fill(0);
  }

  /** All counts in one histogram (the 32-bit one unless counts were spilled). */
  private view(): hdr.JsHistogram {
    if (this.big === null) return this.h;
    const v = build(64);
    v.add(this.big);
    v.add(this.h);
    return v;
  }

  /** HDR's value at `percentile` (0–100), kept within the exact [min, max]. */
  private at(h: hdr.JsHistogram, percentile: number): number {
    return Math.min(this.max, Math.max(this.min, h.getValueAtPercentile(percentile)));
  }

  summary(): LatencySummary {
    if (this.count === 0) {
      return { count: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, stddev: 0, decades: decadeCounts(this.decades) };
    }
    const h = this.view();
    return {
      count: this.count,
      min: this.min,
      max: this.max,
      mean: this.sum / this.count,
      p50: this.at(h, 50),
      p90: this.at(h, 90),
      p99: this.at(h, 99),
      p999: this.at(h, 99.9),
      stddev: this.stddev(h),
      decades: decadeCounts(this.decades),
    };
  }

  /**
   * CDF for plotting. With `fractions` (each in [0, 1]): the value at each fraction.
   * Without: the full step CDF, one point per occupied HDR bucket (its highest value,
   * capped at the exact max) with the fraction of records at or below it.
   */
  cdf(fractions?: readonly number[]): CdfPoint[] {
    if (this.count === 0) return [];
    const h = this.view();
    if (fractions !== undefined) return fractions.map((f) => ({ ns: this.at(h, f * 100), fraction: f }));
    const out: CdfPoint[] = [];
    let below = 0;
    LatencyDistribution.scan(h, (_lo, hi, c) => {
      below += c;
      out.push({ ns: Math.min(this.max, hi), fraction: below / this.count });
    });
    return out;
  }

  /**
   * Counts in LOG_BIN_EDGES_NS bins [fromNs, toNs), from the first occupied bin to the last
   * (empty bins between them included, for bar charts). Each HDR bucket counts in the bin
   * of its lowest value, so an edge is resolved to HDR's precision (exact below 2048 ns).
   */
  histogram(): HistogramBin[] {
    if (this.count === 0) return [];
    const h = this.view();
    const counts = new Float64Array(LOG_BIN_EDGES_NS.length - 1);
    let bin = 0;
    LatencyDistribution.scan(h, (lo, _hi, c) => {
      while (bin < counts.length - 1 && lo >= LOG_BIN_EDGES_NS[bin + 1]) bin++;
      counts[bin] += c;
    });
    let first = 0;
    while (counts[first] === 0) first++;
    let last = counts.length - 1;
    while (counts[last] === 0) last--;
    const out: HistogramBin[] = [];
    for (let i = first; i <= last; i++) out.push({ fromNs: LOG_BIN_EDGES_NS[i], toNs: LOG_BIN_EDGES_NS[i + 1], count: counts[i] });
    return out;
  }
}
