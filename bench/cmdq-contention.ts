/**
 * Question: how many DMA map+unmap operations per CPU per second does an SMMUv3 machine
 * sustain with 1…64 CPUs, when unmaps invalidate through one shared command queue with the
 * lock-free insertion of Linux 5.5+, through the older spinlock insertion, or through
 * ECMDQ-style per-CPU queues; with batching on and off; strict and deferred (flush queue)?
 * And how does the modelled curve compare with the published one (HARDWARE.md §3.2 I5, I7)?
 *
 * Method: coordinator/cmdq/cmdq-model.ts, default parameters (cmdq-params.ts), seed 1,
 * 4 ms of modelled time after a 0.5 ms warm-up (2 ms with --quick); one-page strict unmaps
 * (I5's harness), 8-page strict unmaps, and deferred unmaps. Every figure is
 * modelled time, so it is the same on every machine and every run; only the host time the
 * sweep took is machine dependent. Prints one table per (mode, batching); with --json the
 * harness prints the metrics as JSON lines and this script also writes the study-style file
 * study-out/cmdq-contention.json (parameters, published figures, every run's results).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { type CmdqResults, runCmdqModel } from '../coordinator/cmdq/cmdq-model.js';
import { CMDQ_DEFAULTS, type CmdqAlgorithm, type InvalidationMode } from '../coordinator/cmdq/cmdq-params.js';
import type { Metric } from './metric.js';

const BENCH = 'cmdq-contention';
export const CPU_COUNTS = [1, 2, 4, 8, 16, 32, 64] as const;
const ALGORITHMS: readonly CmdqAlgorithm[] = ['lockfree', 'locked', 'percpu'];
/** Workloads: strict one-page unmaps (I5's harness), strict 8-page unmaps (8 TLBIs + sync,
 *  so a batched insertion carries many commands and the SMMU's rate dominates), deferred. */
const WORKLOADS: readonly { mode: InvalidationMode; pages: number }[] = [
  { mode: 'strict', pages: 1 }, { mode: 'strict', pages: 8 }, { mode: 'deferred', pages: 1 },
];

/** HARDWARE.md §3.2 I5: map+unmap per CPU per second on a shared SMMUv3 CMDQ (John Garry, 2020). */
export const PUBLISHED_I5 = {
  source: 'LKML "[PATCH v2 0/2] iommu/arm-smmu-v3: Improve cmdq lock efficiency", John Garry, 2020-08-21',
  cpus: [8, 16, 32, 64],
  lockfreeCas: [282_000, 115_000, 36_000, 11_000],
  atomicAddNoCas: [302_000, 193_000, 80_000, 30_000],
  casSuccessAt64: 1 / 12,
} as const;

/** HARDWARE.md §3.2 I7: ECMDQ vs shared CMDQ with software batching (Tanmay Jagdale, 2024). */
export const PUBLISHED_I7 = {
  source: 'LKML "[PATCH V3 0/2] iommu/arm-smmu-v3: Add support for ECMDQ register mode", 2024-04-25',
  sharedVsEcmdqPercent: { 1: -4.62, 32: -2.43, 64: -3.18, 128: -2.55, 256: -3.48 },
} as const;

export interface SweepRow {
  mode: InvalidationMode;
  pagesPerUnmap: number;
  batching: boolean;
  algorithm: CmdqAlgorithm;
  /** Lock-free reservation: mainline CAS, or the atomic add of I5's "after" (strict, 1 page only). */
  reserve: 'cas' | 'fetch-add';
  cpus: number;
  results: CmdqResults;
}

export function sweep(durationNs: number): SweepRow[] {
  const rows: SweepRow[] = [];
  for (const { mode, pages } of WORKLOADS) {
    for (const batching of [true, false]) {
      for (const algorithm of ALGORITHMS) {
        for (const cpus of CPU_COUNTS) {
          const { results } = runCmdqModel({ cpus, algorithm, batching, mode, pagesPerUnmap: pages, durationNs });
          rows.push({ mode, pagesPerUnmap: pages, batching, algorithm, reserve: 'cas', cpus, results });
        }
      }
      if (mode === 'strict' && pages === 1) {
        for (const cpus of CPU_COUNTS) {
          const { results } = runCmdqModel({ cpus, algorithm: 'lockfree', lockfreeReserve: 'fetch-add', batching, mode, durationNs });
          rows.push({ mode, pagesPerUnmap: 1, batching, algorithm: 'lockfree', reserve: 'fetch-add', cpus, results });
        }
      }
    }
  }
  return rows;
}

const k = (v: number) => `${(v / 1000).toFixed(1)}K`;

function printTables(rows: SweepRow[]): void {
  for (const { mode, pages } of WORKLOADS) {
    for (const batching of [true, false]) {
      const pick = (a: CmdqAlgorithm, n: number) =>
        rows.find((r) => r.mode === mode && r.pagesPerUnmap === pages && r.batching === batching && r.algorithm === a && r.reserve === 'cas' && r.cpus === n)!.results;
      const added = (n: number) =>
        rows.find((r) => r.reserve === 'fetch-add' && r.batching === batching && r.cpus === n)?.results;
      console.log(`\n${BENCH}: ${mode}, ${pages} page${pages > 1 ? 's' : ''} per unmap, batching ${batching ? 'on' : 'off'} — map+unmap per CPU per modelled second`);
      const withPub = mode === 'strict' && pages === 1 && batching;
      console.log(
        ['CPUs', 'lock-free', 'locked', 'per-CPU', 'per-CPU gain', 'CAS ok', 'sync wait/op', 'occupancy', 'SMMU busy']
          .concat(withPub ? ['I5 published', 'model add', 'I5 no-cmpxchg'] : [])
          .map((h, i) => (i === 0 ? h.padEnd(5) : h.padStart(i >= 9 ? 15 : 13))).join(''),
      );
      for (const n of CPU_COUNTS) {
        const lf = pick('lockfree', n);
        const lk = pick('locked', n);
        const pc = pick('percpu', n);
        const pi = PUBLISHED_I5.cpus.indexOf(n as 8);
        const cells = [
          k(lf.opsPerCpuPerSec), k(lk.opsPerCpuPerSec), k(pc.opsPerCpuPerSec),
          `${((pc.opsPerCpuPerSec / lf.opsPerCpuPerSec - 1) * 100).toFixed(1)} %`,
          lf.casSuccessRate.toFixed(2), `${lf.syncWaitNsPerOp.toFixed(0)} ns`,
          lf.queueOccupancyMean.toFixed(1), lf.smmuBusy.toFixed(2),
        ];
        if (withPub) {
          cells.push(pi >= 0 ? k(PUBLISHED_I5.lockfreeCas[pi]) : '', k(added(n)!.opsPerCpuPerSec), pi >= 0 ? k(PUBLISHED_I5.atomicAddNoCas[pi]) : '');
        }
        console.log(String(n).padEnd(5) + cells.map((c, i) => c.padStart(i >= 8 ? 15 : 13)).join(''));
      }
    }
  }
  console.log('(CAS ok, sync wait, occupancy and SMMU busy are the lock-free queue\'s; published I5 is strict with the TLBI and CMD_SYNC of an unmap in one insertion;\n "model add" is the lock-free queue reserving by atomic add, the change I5 measured as "no-cmpxchg")\n');
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const json = process.argv.includes('--json');
  const durationNs = opts.quick ? 2_000_000 : CMDQ_DEFAULTS.durationNs;
  const t0 = performance.now();
  const rows = sweep(durationNs);
  const hostMs = performance.now() - t0;
  if (!json) printTables(rows);
  else {
    mkdirSync('study-out', { recursive: true });
    writeFileSync('study-out/cmdq-contention.json', JSON.stringify({
      date: new Date().toISOString(), node: process.version, durationNs, published: { I5: PUBLISHED_I5, I7: PUBLISHED_I7 }, rows,
    }, null, 2));
  }
  const out: Metric[] = rows.map((r) => ({
    bench: BENCH,
    metric: `${r.algorithm}${r.reserve === 'fetch-add' ? '_add' : ''}_${r.mode}${r.pagesPerUnmap > 1 ? `_p${r.pagesPerUnmap}` : ''}_b${r.batching ? 1 : 0}_n${r.cpus}_kops`,
    value: r.results.opsPerCpuPerSec / 1000,
    unit: 'K ops/CPU/s',
  }));
  const at = (a: CmdqAlgorithm, n: number) =>
    rows.find((r) => r.mode === 'strict' && r.pagesPerUnmap === 1 && r.batching && r.algorithm === a && r.reserve === 'cas' && r.cpus === n)!.results;
  out.push(
    { bench: BENCH, metric: 'lockfree_strict_8_to_64_ratio', value: at('lockfree', 8).opsPerCpuPerSec / at('lockfree', 64).opsPerCpuPerSec, unit: 'x' },
    { bench: BENCH, metric: 'published_i5_8_to_64_ratio', value: PUBLISHED_I5.lockfreeCas[0] / PUBLISHED_I5.lockfreeCas[3], unit: 'x' },
    { bench: BENCH, metric: 'lockfree_strict_cas_success_n64', value: at('lockfree', 64).casSuccessRate, unit: 'ratio' },
    { bench: BENCH, metric: 'sweep_host_ms', value: hostMs, unit: 'ms' },
  );
  return out;
}
