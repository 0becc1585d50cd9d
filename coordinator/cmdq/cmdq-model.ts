/**
 * Command-queue contention model: N CPUs running a DMA map+unmap loop whose unmaps send
 * invalidation commands to SMMUv3 command queues, simulated in modelled time (ns) by a
 * deterministic discrete-event loop. It answers "how many map+unmap operations per CPU
 * per second does the machine sustain as CPUs are added, and why" for three insertion
 * algorithms, and is validated against the published SMMUv3 curve (HARDWARE.md §3.2 I5).
 *
 * The model
 * - Each CPU is an agent (a generator, cmdq-sim.ts) looping: map (CPU work `mapCpuNs`),
 *   unmap (CPU work `unmapCpuNs`), then the invalidation. Strict mode: one TLBI per page
 *   and a CMD_SYNC, waited for before the unmap returns. Deferred mode (the flush queue of
 *   dma-iommu): the IOVA goes into a per-CPU queue of `fqEntries`; when it is full, or
 *   `fqTimeoutNs` after its oldest entry, the CPU sends one TLBI-all + CMD_SYNC and waits.
 *   Batching on: the commands go in as one submission (chunks of `batchSize`, the sync in
 *   the last); off: one submission per command, then the sync alone.
 * - Submissions go through one of three inserters: `lockfree` (cmdq-lockfree.ts, Linux
 *   5.5+ reserve-by-CAS / write / valid map / owner publishes), `locked` (cmdq-locked.ts,
 *   the older spinlock), `percpu` (cmdq-percpu.ts, ECMDQ-style queue per CPU).
 * - Every shared word lives on a cache line (cmdq-cacheline.ts): requests are served in
 *   arrival order by the line's home, each miss occupying it `lineOccupancyNs` and
 *   completing `lineTransferNs` after it started (plus `lineContentionNs` per request queued
 *   behind), every write makes each CPU spinning on the line re-read it, and a
 *   compare-and-swap fails if the word changed since the CPU last saw it. The throughput
 *   collapse with more CPUs is not scripted: it comes out of failed CAS retries, queueing
 *   on the hot lines and re-read storms. The SMMU also regulates: while it is the
 *   bottleneck, CPUs wait on their CMD_SYNCs instead of crowding the CAS loop.
 * - The SMMU (cmdq-smmu.ts) is one server consuming published commands in order at
 *   `smmuTlbiNs` / `smmuSyncNs` each, round robin across queues, and completing each
 *   CMD_SYNC after everything before it. Queue invariants (no overflow, no gaps, in-order
 *   publication) are checked as it runs.
 * - Randomness: only the seeded (mulberry32) jitter of CPU work and start offsets, so the
 *   same parameters and seed give the same results object, field for field.
 *
 * Results: operations per CPU per modelled second (counted after `warmupNs`), queue
 * occupancy (time-weighted mean and max of reserved-but-unconsumed entries, all queues),
 * CAS attempts and failures, time spent waiting for syncs and locks per operation, SMMU
 * utilisation, line transfers.
 *
 * Does not model: map-side invalidation (SMMUv3 needs none), ATS/ATC_INV, IOVA allocator
 * contention, interrupts, NUMA distance, the hardware's internal parallelism, wall-clock
 * anything. Parameters and their sources: cmdq-params.ts.
 */
import { mulberry32 } from '../../shared/prng.js';
import type { CacheLine } from './cmdq-cacheline.js';
import { type CmdqContext, type CmdqInserter, newCounters } from './cmdq-context.js';
import { LockedCmdq } from './cmdq-locked.js';
import { LockFreeCmdq } from './cmdq-lockfree.js';
import { type CmdqParams, type ResolvedCmdqParams, resolveCmdqParams } from './cmdq-params.js';
import { PerCpuCmdq } from './cmdq-percpu.js';
import { type Agent, CmdqSim, delay } from './cmdq-sim.js';
import { type CmdKind, CmdQueue, type QueueTrace, SmmuConsumer } from './cmdq-smmu.js';

export interface CmdqResults {
  params: Omit<ResolvedCmdqParams, 'trace'>;
  /** Map+unmap operations per CPU per modelled second (after warm-up). */
  opsPerCpuPerSec: number;
  totalOpsPerSec: number;
  /** Operations counted (after warm-up), all CPUs; and the slowest and fastest CPU. */
  ops: number;
  minCpuOps: number;
  maxCpuOps: number;
  insertions: number;
  casAttempts: number;
  casFailures: number;
  /** Successful CAS / attempts (1 when nothing was contended). */
  casSuccessRate: number;
  fullPolls: number;
  ownerPublishes: number;
  /** Mean entries published by one owner's PROD write. */
  meanGather: number;
  syncs: number;
  /** Modelled ns spent waiting for CMD_SYNC completion, per map+unmap (whole run / all ops). */
  syncWaitNsPerOp: number;
  /** Modelled ns spent waiting for the spinlock, per map+unmap. */
  lockWaitNsPerOp: number;
  /** Time-weighted mean and max of reserved-but-unconsumed entries, all queues together. */
  queueOccupancyMean: number;
  queueOccupancyMax: number;
  smmuCommands: number;
  smmuSyncs: number;
  /** Fraction of the run the SMMU spent consuming commands. */
  smmuBusy: number;
  fqFlushes: number;
  lineTransfers: number;
  events: number;
}

export interface CmdqRun { results: CmdqResults; trace?: QueueTrace }

/** Runs one scenario; throws SimError EINVAL on bad parameters. */
export function runCmdqModel(params: CmdqParams): CmdqRun {
  const p = resolveCmdqParams(params);
  const sim = new CmdqSim();
  const rand = mulberry32(p.seed);
  const counters = newCounters();
  const trace: QueueTrace | undefined = p.trace ? { reservations: [], publishes: [], consumed: [] } : undefined;

  const queues = p.algorithm === 'percpu'
    ? Array.from({ length: p.cpus }, (_, i) => new CmdQueue(i, p.queueEntries))
    : [new CmdQueue(0, p.queueEntries)];

  // Occupancy: time-weighted integral of Σ(reserved − cons).
  let occ = 0;
  let occMax = 0;
  let occSince = 0;
  let occArea = 0;
  const occupancyChanged = () => {
    occArea += occ * (sim.now - occSince);
    occSince = sim.now;
    let v = 0;
    for (const q of queues) v += q.reserved - q.cons;
    occ = v;
    if (v > occMax) occMax = v;
  };
  const smmu = new SmmuConsumer(sim, queues, p, trace, occupancyChanged);
  let insertionSeq = 0;
  const ctx: CmdqContext = { sim, p, smmu, counters, trace, occupancyChanged, nextInsertion: () => insertionSeq++ };

  let inserter: CmdqInserter & { lines: CacheLine[] };
  if (p.algorithm === 'lockfree') inserter = new LockFreeCmdq(ctx, queues[0]);
  else if (p.algorithm === 'locked') inserter = new LockedCmdq(ctx, queues[0]);
  else inserter = new PerCpuCmdq(ctx, queues);

  const cpuOps = new Array<number>(p.cpus).fill(0);
  let opsAll = 0;
  let fqFlushes = 0;
  const jit = (ns: number) => Math.round(ns * (1 + p.jitter * (2 * rand() - 1)));
  const strictCmds: CmdKind[] = new Array(p.pagesPerUnmap).fill('tlbi');
  const flushCmds: CmdKind[] = ['tlbi-all'];

  function* invalidate(cpu: number, cmds: readonly CmdKind[]): Agent {
    if (p.batching) {
      for (let i = 0; i < cmds.length; i += p.batchSize) {
        const chunk = cmds.slice(i, i + p.batchSize);
        yield* inserter.issue(cpu, chunk, i + p.batchSize >= cmds.length);
      }
    } else {
      for (const c of cmds) yield* inserter.issue(cpu, [c], false);
      yield* inserter.issue(cpu, [], true);
    }
  }

  function* cpuLoop(cpu: number): Agent {
    let fq = 0;
    let fqDeadline = Infinity;
    for (;;) {
      yield delay(jit(p.mapCpuNs));
      yield delay(jit(p.unmapCpuNs));
      if (p.mode === 'strict') {
        yield* invalidate(cpu, strictCmds);
      } else {
        if (fq === 0) fqDeadline = sim.now + p.fqTimeoutNs;
        fq++;
        if (fq >= p.fqEntries || sim.now >= fqDeadline) {
          yield* invalidate(cpu, flushCmds);
          fqFlushes++;
          fq = 0;
          fqDeadline = Infinity;
        }
      }
      opsAll++;
      if (sim.now >= p.warmupNs && sim.now <= p.durationNs) cpuOps[cpu]++;
    }
  }

  // Start offsets: CPUs enter the loop spread over one map+unmap time.
  const spread = p.mapCpuNs + p.unmapCpuNs;
  for (let cpu = 0; cpu < p.cpus; cpu++) sim.start(cpuLoop(cpu), Math.floor(rand() * spread));
  sim.run(p.durationNs);
  occupancyChanged();

  const ops = cpuOps.reduce((a, b) => a + b, 0);
  const windowSec = (p.durationNs - p.warmupNs) / 1e9;
  const lineTransfers = inserter.lines.reduce((a, l) => a + l.transfers, 0);
  const { trace: _t, ...shown } = p;
  const perOp = (v: number) => (opsAll > 0 ? v / opsAll : 0);
  const results: CmdqResults = {
    params: shown,
    opsPerCpuPerSec: ops / p.cpus / windowSec,
    totalOpsPerSec: ops / windowSec,
    ops,
    minCpuOps: Math.min(...cpuOps),
    maxCpuOps: Math.max(...cpuOps),
    insertions: counters.insertions,
    casAttempts: counters.casAttempts,
    casFailures: counters.casFailures,
    casSuccessRate: counters.casAttempts > 0 ? (counters.casAttempts - counters.casFailures) / counters.casAttempts : 1,
    fullPolls: counters.fullPolls,
    ownerPublishes: counters.ownerPublishes,
    meanGather: counters.ownerPublishes > 0 ? counters.gatheredEntries / counters.ownerPublishes : 0,
    syncs: counters.syncs,
    syncWaitNsPerOp: perOp(counters.syncWaitNs),
    lockWaitNsPerOp: perOp(counters.lockWaitNs),
    queueOccupancyMean: occArea / p.durationNs,
    queueOccupancyMax: occMax,
    smmuCommands: smmu.consumedCmds,
    smmuSyncs: smmu.consumedSyncs,
    smmuBusy: Math.min(1, smmu.busyNs / p.durationNs),
    fqFlushes,
    lineTransfers,
    events: sim.events,
  };
  return trace ? { results, trace } : { results };
}
