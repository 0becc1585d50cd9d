/**
 * Question: what does one PASID allocation and one free cost under each allocation
 * policy, when the WHOLE 20-bit space is filled and emptied?
 *
 * Method: for each policy ('global', 'per-device' through createPasidAllocator, and the
 * v5 ioasid default allocator), allocate PASIDs 1..2^20−1 for one 20-bit device (lowest
 * free first, checked in order), then free them all in ascending order; host wall-clock
 * time per operation, the best of 5 runs (1 with --quick) after one warm-up run (skipped
 * with --quick). A fresh allocator per run.
 */
import { createPasidAllocator, type PasidPolicy } from '../coordinator/pasid-allocator.js';
import { Ioasid } from '../coordinator/ioasid.js';
import { PASID_SPACE } from '../coordinator/pasid-ida.js';
import type { Metric } from './metric.js';

const BENCH = 'pasid-alloc';
const N = PASID_SPACE - 1; // PASIDs 1..2^20−1
const DEV = { id: 1, maxPasids: PASID_SPACE };

type Run = { allocNs: number; freeNs: number };

function policyOnce(policy: PasidPolicy): Run {
  const a = createPasidAllocator(policy);
  const t0 = performance.now();
  for (let i = 1; i <= N; i++) if (a.alloc({ dev: DEV }) !== i) throw new Error(`${policy}: alloc ${i}`);
  const t1 = performance.now();
  for (let i = 1; i <= N; i++) a.free(i, DEV);
  const t2 = performance.now();
  if (a.stats().inUse !== 0) throw new Error(`${policy}: ${a.stats().inUse} left`);
  return { allocNs: ((t1 - t0) * 1e6) / N, freeNs: ((t2 - t1) * 1e6) / N };
}

function ioasidOnce(): Run {
  const io = new Ioasid();
  const set = io.declareSet('bench');
  const t0 = performance.now();
  for (let i = 1; i <= N; i++) if (io.alloc(set, 1, N) !== i) throw new Error(`ioasid: alloc ${i}`);
  const t1 = performance.now();
  for (let i = 1; i <= N; i++) io.free(i);
  const t2 = performance.now();
  if (io.stats().outstanding !== 0) throw new Error('ioasid: ids left');
  return { allocNs: ((t1 - t0) * 1e6) / N, freeNs: ((t2 - t1) * 1e6) / N };
}

function best(once: () => Run, quick: boolean): Run {
  if (!quick) once(); // warm-up: JIT, not the figure
  const runs = Array.from({ length: quick ? 1 : 5 }, once);
  return { allocNs: Math.min(...runs.map((r) => r.allocNs)), freeNs: Math.min(...runs.map((r) => r.freeNs)) };
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const out: Metric[] = [];
  const cases: [string, () => Run][] = [
    ['global', () => policyOnce('global')],
    ['per_device', () => policyOnce('per-device')],
    ['ioasid_v5', ioasidOnce],
  ];
  for (const [name, once] of cases) {
    const r = best(once, opts.quick);
    out.push(
      { bench: BENCH, metric: `pasid_${name}_alloc_ns`, value: r.allocNs, unit: 'ns/op' },
      { bench: BENCH, metric: `pasid_${name}_free_ns`, value: r.freeNs, unit: 'ns/op' },
      { bench: BENCH, metric: `pasid_${name}_alloc_plus_free_ns`, value: r.allocNs + r.freeNs, unit: 'ns/pair' },
    );
  }
  return out;
}
