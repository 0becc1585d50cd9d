/**
 * Metric: one measured figure of a benchmark, the unit every script in bench/ returns.
 *
 * Models: a flat record `{ bench, metric, value, unit }` that the harness prints and
 * compares across commits. Does not model: confidence intervals, machine info (the
 * harness prints that once per run).
 */

export interface Metric {
  /** Benchmark script, e.g. 'ring-throughput'. */
  bench: string;
  /** Figure name, snake_case with the unit suffix, e.g. 'ring_b256_mops'. */
  metric: string;
  value: number;
  /** 'Mops/s', 'µs', 'x', … */
  unit: string;
}

/** Rounds to `digits` significant digits (for printing only). */
export function roundSig(v: number, digits = 4): number {
  if (!Number.isFinite(v) || v === 0) return v;
  return Number(v.toPrecision(digits));
}

/** One aligned line: `bench  metric  value unit`. */
export function formatMetric(m: Metric): string {
  return `${m.bench.padEnd(18)} ${m.metric.padEnd(32)} ${String(roundSig(m.value)).padStart(12)} ${m.unit}`;
}

export function printMetric(m: Metric): void {
  console.log(formatMetric(m));
}

/** Percentile (0–100) of the samples by sorting (nearest rank). */
export function percentile(samples: ArrayLike<number>, p: number): number {
  const s = Float64Array.from(samples).sort();
  if (s.length === 0) return NaN;
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank];
}
