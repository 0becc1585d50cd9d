/**
 * The kernel's decade buckets of invalidation latency, reproduced from the Intel VT-d
 * driver's latency statistics (CONFIG_DMAR_PERF):
 *
 *   torvalds/linux drivers/iommu/intel/perf.h (@7161f24bda5e), enum latency_count:
 *     COUNTS_10e2 < 0.1us, COUNTS_10e3 0.1us ~ 1us, COUNTS_10e4 1us ~ 10us,
 *     COUNTS_10e5 10us ~ 100us, COUNTS_10e6 100us ~ 1ms, COUNTS_10e7 1ms ~ 10ms,
 *     COUNTS_10e8_plus 10ms and plus;
 *   drivers/iommu/intel/perf.c (@254a14200711), dmar_latency_update(): latency in ns,
 *     `if (latency < 100) … else if (latency < 1000) … else if (latency < 10000) …
 *      else if (latency < 100000) … else if (latency < 1000000) …
 *      else if (latency < 10000000) … else COUNTS_10e8_plus`,
 *     and latency_counter_names[] for the labels ("<0.1us", "0.1us-1us", "1us-10us",
 *     "10us-100us", "100us-1ms", "1ms-10ms", ">=10ms"; the kernel pads them to 12 columns).
 *
 * So every bucket is [fromNs, toNs): a latency exactly on an edge (100 ns, 1 µs, …) counts
 * in the bucket above it, and the last bucket has no upper edge.
 * Models: the bucket edges, labels and the kernel's integer-nanosecond comparison.
 * Does not model: the kernel's min/max/average columns (the Metrics summary has exact
 * ones), its per-IOMMU enable switch, or the spinlock.
 */

export interface DecadeBucket {
  /** The enumerator in perf.h. */
  readonly kernelName: string;
  /** The label in perf.c's latency_counter_names[], without padding. */
  readonly label: string;
  /** Inclusive lower edge, ns. */
  readonly fromNs: number;
  /** Exclusive upper edge, ns (Infinity for the last bucket). */
  readonly toNs: number;
}

export const DECADE_BUCKETS = [
  { kernelName: 'COUNTS_10e2', label: '<0.1us', fromNs: 0, toNs: 100 },
  { kernelName: 'COUNTS_10e3', label: '0.1us-1us', fromNs: 100, toNs: 1_000 },
  { kernelName: 'COUNTS_10e4', label: '1us-10us', fromNs: 1_000, toNs: 10_000 },
  { kernelName: 'COUNTS_10e5', label: '10us-100us', fromNs: 10_000, toNs: 100_000 },
  { kernelName: 'COUNTS_10e6', label: '100us-1ms', fromNs: 100_000, toNs: 1_000_000 },
  { kernelName: 'COUNTS_10e7', label: '1ms-10ms', fromNs: 1_000_000, toNs: 10_000_000 },
  { kernelName: 'COUNTS_10e8_plus', label: '>=10ms', fromNs: 10_000_000, toNs: Infinity },
] as const satisfies readonly DecadeBucket[];

export type DecadeLabel = (typeof DECADE_BUCKETS)[number]['label'];

export const DECADE_LABELS: readonly DecadeLabel[] = DECADE_BUCKETS.map((b) => b.label);

/** Counts per decade bucket, keyed by the kernel's label, in bucket order. */
export type DecadeCounts = Record<DecadeLabel, number>;

/** Index into DECADE_BUCKETS of an integer latency in ns: dmar_latency_update()'s if-chain. */
export function decadeIndex(ns: number): number {
  if (ns < 100) return 0;
  if (ns < 1_000) return 1;
  if (ns < 10_000) return 2;
  if (ns < 100_000) return 3;
  if (ns < 1_000_000) return 4;
  if (ns < 10_000_000) return 5;
  return 6;
}

/** The counts array (DECADE_BUCKETS order) as a label-keyed object. */
export function decadeCounts(counts: ArrayLike<number>): DecadeCounts {
  const out = {} as DecadeCounts;
  for (let i = 0; i < DECADE_BUCKETS.length; i++) out[DECADE_BUCKETS[i].label] = counts[i];
  return out;
}
