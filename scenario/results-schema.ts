/**
 * The published schema of a results object (`iommu-sim/results@1`), in zod 4: what
 * `iommu-sim run --json` prints and results.json holds. `modelled` depends only on the
 * scenario and seed; `host` and `machine` describe the run and the machine it ran on.
 * Sweep files (`iommu-sim/sweep@1`) hold one results object per point.
 * Does not: produce results (runner.ts) or read them from disk (cli/files.ts).
 */
import { z } from 'zod';

const count = z.number().int().nonnegative();

export const LatencyStatsSchema = z.strictObject({
  count,
  minNs: z.number().nonnegative(),
  meanNs: z.number().nonnegative(),
  p50Ns: z.number().nonnegative(),
  p90Ns: z.number().nonnegative(),
  p99Ns: z.number().nonnegative(),
  p999Ns: z.number().nonnegative(),
  maxNs: z.number().nonnegative(),
  decades: z.array(count).length(7),
  bins: z.array(z.tuple([z.number().positive(), count])),
  cdf: z.array(z.tuple([z.number().nonnegative(), z.number().min(0).max(1)])),
});

const rate = z.strictObject({ hits: count, misses: count, rate: z.number().min(0).max(1) });

export const PhaseRecordSchema = z.strictObject({
  name: z.string(),
  type: z.string(),
  startNs: z.number().nonnegative(),
  endNs: z.number().nonnegative(),
  ops: count,
  errors: z.record(z.string(), count),
  reasons: z.record(z.string(), count),
  stoppedBy: z.enum(['modelled-time', 'interrupt']).optional(),
});

export const ModelledSchema = z.strictObject({
  modelledNs: z.number().nonnegative(),
  iommus: count,
  devices: count,
  groups: count,
  phases: z.array(PhaseRecordSchema),
  invalidation: z.record(z.string(), LatencyStatsSchema).optional(),
  roundTrips: z.record(z.string(), LatencyStatsSchema).optional(),
  dma: z.strictObject({
    requests: count, translated: count, faulted: count, faultRecords: count,
    faultsByReason: z.record(z.string(), count), eventsLost: count, walks: count,
    descriptors: z.record(z.string(), count), waits: count,
  }).optional(),
  hitRates: z.strictObject({ iotlb: rate, devTlb: rate, pasidCache: rate, contextCache: rate }).optional(),
  pageRequests: z.strictObject({
    groups: count, requests: count,
    responses: z.strictObject({ success: count, invalid: count, failure: count }),
  }).optional(),
  pasids: z.strictObject({ peak: count, final: count, timeline: z.array(z.tuple([z.number().nonnegative(), count])) }).optional(),
  tables: z.strictObject({ bytesInUse: count, peakBytes: count }).optional(),
  cmdq: z.array(z.strictObject({
    phase: z.string(), cpus: count, algorithm: z.enum(['lockfree', 'locked', 'percpu']), batching: z.boolean(),
    mode: z.enum(['strict', 'deferred']), opsPerCpuPerSec: count, casSuccessRate: z.number().min(0).max(1),
    smmuBusy: z.number().min(0).max(1), syncWaitNsPerOp: z.number().nonnegative(),
  })).optional(),
});

export const HostSchema = z.strictObject({
  wallMs: z.number().nonnegative(),
  startMs: z.number().nonnegative(),
  phases: z.array(z.strictObject({ name: z.string(), wallMs: z.number().nonnegative() })),
  dmaPerHostSecond: z.number().nonnegative(),
  opsPerHostSecond: z.number().nonnegative(),
  peakRssBytes: count,
  heapUsedBytes: count,
  invalidationRttUs: z.strictObject({ count, p50: z.number().nonnegative(), p99: z.number().nonnegative() }),
});

export const MachineSchema = z.strictObject({
  node: z.string(),
  platform: z.string(),
  arch: z.string(),
  cpus: count,
  cpuModel: z.string(),
  totalMemBytes: count,
  simVersion: z.string(),
});

export const ResultsSchema = z.strictObject({
  schema: z.literal('iommu-sim/results@1'),
  scenario: z.strictObject({ name: z.string(), file: z.string().optional(), hash: z.string().regex(/^[0-9a-f]{16}$/) }),
  seed: z.number().int().nonnegative(),
  partial: z.boolean().optional(),
  /** The --vary values of a sweep point. */
  point: z.record(z.string(), z.unknown()).optional(),
  config: z.strictObject({
    profile: z.string(), iommus: count, semantics: z.string(), pasidPolicy: z.string(), defaultDomain: z.string(),
    threads: z.number().int().positive().optional(),
  }),
  modelled: ModelledSchema,
  host: HostSchema,
  machine: MachineSchema,
});

export const SweepSchema = z.strictObject({
  schema: z.literal('iommu-sim/sweep@1'),
  scenario: z.strictObject({ name: z.string(), file: z.string().optional() }),
  vary: z.record(z.string(), z.array(z.unknown())),
  /** Total points of the sweep, and which shard this file holds (absent: all). */
  points: count,
  shard: z.strictObject({ index: count, of: z.number().int().positive() }).optional(),
  partial: z.boolean().optional(),
  results: z.array(z.strictObject({ index: count, results: z.lazy(() => ResultsSchema) })),
  errors: z.array(z.strictObject({ index: count, point: z.record(z.string(), z.unknown()), message: z.string() })),
});

export type Results = z.output<typeof ResultsSchema>;
export type SweepFile = z.output<typeof SweepSchema>;
