/**
 * What the three insertion algorithms share: the run's clock, parameters, SMMU, counters,
 * and the two ways a CPU waits for a CMD_SYNC (poll its MSI slot, or poll CONS over MMIO).
 *
 * Models: the counters a run reports (CAS attempts and failures, time waiting for syncs and
 * locks, insertions, owner publishes). Does not model: interrupts (CS=IRQ) or SEV/WFE
 * wake-ups; every wait is a poll.
 */
import { type Agent, type CmdqSim, delay, until } from './cmdq-sim.js';
import type { CmdKind, CmdQueue, QueueTrace, SmmuConsumer } from './cmdq-smmu.js';
import type { ResolvedCmdqParams } from './cmdq-params.js';

export interface CmdqCounters {
  insertions: number;
  casAttempts: number;
  casFailures: number;
  /** Times a producer found (its view of) the queue full and polled CONS. */
  fullPolls: number;
  /** Owner hand-offs: PROD register writes covering gathered work (lock-free). */
  ownerPublishes: number;
  gatheredEntries: number;
  syncs: number;
  syncWaitNs: number;
  lockWaitNs: number;
}

export function newCounters(): CmdqCounters {
  return {
    insertions: 0, casAttempts: 0, casFailures: 0, fullPolls: 0, ownerPublishes: 0,
    gatheredEntries: 0, syncs: 0, syncWaitNs: 0, lockWaitNs: 0,
  };
}

export interface CmdqContext {
  sim: CmdqSim;
  p: ResolvedCmdqParams;
  smmu: SmmuConsumer;
  counters: CmdqCounters;
  trace: QueueTrace | undefined;
  /** Call when a queue's reserved count changes (occupancy accounting). */
  occupancyChanged(): void;
  nextInsertion(): number;
}

/** One insertion algorithm: `issue` is the agent code of one cmdlist submission. */
export interface CmdqInserter {
  issue(cpu: number, cmds: readonly CmdKind[], sync: boolean): Agent;
}

/** Waits until the CMD_SYNC at `syncIdx` of q has completed; counts the time as sync wait. */
export function* waitSync(ctx: CmdqContext, q: CmdQueue, syncIdx: number, msi: boolean): Agent {
  const t0 = ctx.sim.now;
  if (msi) {
    // The SMMU writes MSIDATA into the sync's own slot; the CPU polls that line.
    yield until(ctx.smmu, () => q.cons > syncIdx);
    yield delay(ctx.p.msiObserveNs);
  } else {
    // Poll the CONS register until it has passed the sync.
    do yield delay(ctx.p.mmioReadNs);
    while (q.cons <= syncIdx);
  }
  ctx.counters.syncs++;
  ctx.counters.syncWaitNs += ctx.sim.now - t0;
}
