/**
 * Question: what does recording one modelled latency cost the simulator (host time), and
 * which hdr-histogram-js count layout makes record() fastest?
 *
 * Method: 2^16 pre-generated latencies, log-uniform over 1 ns … 10 ms (mulberry32 seed 7),
 * cycled over the eight latency kinds; host wall-clock time per Metrics.record(), the
 * best of 5 passes of 4 Mi records (1 pass of 1 Mi with --quick) after one warm-up pass.
 * Then the same values straight into one bare HDR histogram per layout ('32' = Uint32
 * counts, which Metrics uses, and 'packed'), measured after Metrics so that its record
 * path is timed before the bare ones make HDR's shared code polymorphic; and the host
 * cost of one snapshot() of the filled Metrics.
 */
import * as hdr from 'hdr-histogram-js';
import { LATENCY_KINDS, MAX_LATENCY_NS, Metrics } from '../coordinator/metrics.js';
import { mulberry32 } from '../shared/prng.js';
import type { Metric } from './metric.js';

const BENCH = 'metrics';
const VALUES = 1 << 16;

function values(): Float64Array {
  const r = mulberry32(7);
  const v = new Float64Array(VALUES);
  for (let i = 0; i < VALUES; i++) v[i] = Math.floor(10 ** (r() * 7));
  return v;
}

/** Best ns per call of `pass(n)` over `runs` passes of `n` calls, after a warm-up pass. */
function best(pass: (n: number) => void, n: number, runs: number): number {
  pass(n);
  let ns = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    pass(n);
    ns = Math.min(ns, ((performance.now() - t0) * 1e6) / n);
  }
  return ns;
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const n = opts.quick ? 1 << 20 : 1 << 22;
  const runs = opts.quick ? 1 : 5;
  const v = values();
  const mask = VALUES - 1;
  const kinds = LATENCY_KINDS.length;

  const m = new Metrics();
  const recordNs = best((count) => {
    for (let i = 0; i < count; i++) m.record(LATENCY_KINDS[i % kinds], v[i & mask]);
  }, n, runs);

  const bare = (bitBucketSize: 32 | 'packed'): number => {
    const h = hdr.build({ bitBucketSize, lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_NS, numberOfSignificantValueDigits: 3 });
    return best((count) => { for (let i = 0; i < count; i++) h.recordValue(v[i & mask]); }, n, runs);
  };
  const int32Ns = bare(32);
  const packedNs = bare('packed');

  const t0 = performance.now();
  const snap = m.snapshot();
  const snapshotUs = (performance.now() - t0) * 1e3;
  if (snap.latency['iotlb-inv'].count === 0) throw new Error('metrics: nothing recorded');

  return [
    { bench: BENCH, metric: 'metrics_record_ns', value: recordNs, unit: 'ns/record' },
    { bench: BENCH, metric: 'metrics_record_mrec_s', value: 1e3 / recordNs, unit: 'M records/s' },
    { bench: BENCH, metric: 'hdr_int32_record_ns', value: int32Ns, unit: 'ns/record' },
    { bench: BENCH, metric: 'hdr_packed_record_ns', value: packedNs, unit: 'ns/record' },
    { bench: BENCH, metric: 'metrics_snapshot_us', value: snapshotUs, unit: 'µs' },
  ];
}
