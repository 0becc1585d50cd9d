/**
 * The spinlock-based command-queue insertion of Linux before 5.5: one CPU at a time holds
 * the queue lock, writes its commands, writes the PROD register, and (without MSI-based
 * sync completion, `lockedSyncUnderLock`) keeps the lock while it polls CONS until its
 * CMD_SYNC has been consumed.
 *
 * Models: a ticket spinlock on one cache line (take a ticket with an atomic, spin until
 * the owner field reaches it, release by an atomic increment), so waiters are served in
 * arrival order and every waiter spinning on the line slows each hand-off. Inside the lock:
 * a full queue is polled through the CONS register; each insertion writes its commands and
 * then PROD once (with batching off every command is its own insertion, as
 * arm_smmu_cmdq_issue_cmd was). With `lockedSyncUnderLock` false the CMD_SYNC is inserted
 * under the lock and waited for outside it through its MSI (the 4.16+ MSI path).
 * Does not model: qspinlock/MCS queueing (arm64 switched from ticket locks later; the
 * version is unverified here), the old sync-coalescing (elision of back-to-back CMD_SYNCs).
 */
import { CacheLine } from './cmdq-cacheline.js';
import { type CmdqContext, type CmdqInserter, waitSync } from './cmdq-context.js';
import { type Agent, delay, rmw, spin } from './cmdq-sim.js';
import { type CmdKind, CmdQueue } from './cmdq-smmu.js';

export class LockedCmdq implements CmdqInserter {
  readonly queue: CmdQueue;
  private readonly lockLine: CacheLine;
  private nextTicket = 0;
  private serving = 0;
  private prod = 0;

  constructor(private readonly ctx: CmdqContext, queue: CmdQueue) {
    this.queue = queue;
    this.lockLine = new CacheLine(ctx.sim, 'cmdq.lock', ctx.p);
  }

  get lines(): CacheLine[] {
    return [this.lockLine];
  }

  private *lock(cpu: number): Agent {
    const t0 = this.ctx.sim.now;
    const ticket = (yield rmw(this.lockLine, cpu, () => this.nextTicket++)) as number;
    if (this.serving !== ticket) yield spin(this.lockLine, cpu, () => this.serving === ticket);
    this.ctx.counters.lockWaitNs += this.ctx.sim.now - t0;
  }

  private *unlock(cpu: number): Agent {
    yield rmw(this.lockLine, cpu, () => { this.serving++; });
  }

  *issue(cpu: number, cmds: readonly CmdKind[], sync: boolean): Agent {
    const { ctx, queue: q } = this;
    const n = cmds.length + (sync ? 1 : 0);
    const insertion = ctx.nextInsertion();
    ctx.counters.insertions++;

    yield* this.lock(cpu);
    while (this.prod + n - q.cons > q.entries) {
      ctx.counters.fullPolls++;
      yield delay(ctx.p.mmioReadNs);
    }
    const start = this.prod;
    this.prod += n;
    q.reserved = this.prod;
    ctx.occupancyChanged();
    ctx.trace?.reservations.push({ queue: q.id, cpu, start, n, insertion });
    yield delay(n * ctx.p.cmdWriteNs);
    for (let i = 0; i < cmds.length; i++) q.write(start + i, cmds[i], cpu, insertion);
    if (sync) q.write(start + n - 1, 'sync', cpu, insertion);
    yield delay(ctx.p.mmioWriteNs);
    ctx.smmu.publish(q, this.prod);

    if (sync && ctx.p.lockedSyncUnderLock) {
      yield* waitSync(ctx, q, start + n - 1, false);
      yield* this.unlock(cpu);
    } else {
      yield* this.unlock(cpu);
      if (sync) yield* waitSync(ctx, q, start + n - 1, true);
    }
  }
}
