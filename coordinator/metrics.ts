/**
 * Metrics of the modelled machine (issue 7 item 5): the public entry point. The parts,
 * one concept per file, are under metrics/: decades.ts (the kernel's decade buckets,
 * drivers/iommu/intel/perf.h), latency.ts (one HDR latency distribution), queues.ts
 * (queue occupancy) and metrics.ts (the Metrics class).
 * Does not model: anything itself; it only re-exports.
 */
export {
  Metrics, LATENCY_KINDS, CACHE_NAMES, COUNTER_NAMES, GAUGE_NAMES,
  type LatencyKind, type CacheName, type CounterName, type GaugeName,
  type HitRate, type GaugeSummary, type MetricsSnapshot,
} from './metrics/metrics.js';
export {
  LatencyDistribution, MAX_LATENCY_NS, LOG_BIN_EDGES_NS,
  type LatencySummary, type CdfPoint, type HistogramBin,
} from './metrics/latency.js';
export { QUEUE_NAMES, type QueueName, type QueueSummary } from './metrics/queues.js';
export { DECADE_BUCKETS, DECADE_LABELS, decadeIndex, type DecadeBucket, type DecadeLabel, type DecadeCounts } from './metrics/decades.js';
