/**
 * ECMDQ-style per-CPU command queues (SMMUv3.3 ECMDQ, "each core can exclusively use one
 * ECMDQ"; NVIDIA Tegra241 CMDQV's virtual queues are the same idea): each CPU owns a queue,
 * so reserving space is a compare-and-swap on a line only it touches (always succeeds,
 * stays in its cache), then it writes its commands, writes its queue's PROD register and
 * polls its own CMD_SYNC.
 *
 * Models: no shared-line contention at all on the CPU side; what the CPUs still share is
 * the SMMU, which serves all queues with one command processor at its own rate (round
 * robin, see cmdq-smmu.ts), so per-CPU queues cannot go faster than the SMMU's command
 * rate. A full queue is polled through the queue's CONS register.
 * Does not model: fewer queues than CPUs (CMDQV shares a queue between CPUs by index, and
 * then runs the lock-free algorithm on it), the read lock around the PROD write that
 * guards ECMDQ error recovery, a command that must stay on the same queue as another.
 */
import { CacheLine } from './cmdq-cacheline.js';
import { type CmdqContext, type CmdqInserter, waitSync } from './cmdq-context.js';
import { type Agent, delay, rmw } from './cmdq-sim.js';
import type { CmdKind, CmdQueue } from './cmdq-smmu.js';

export class PerCpuCmdq implements CmdqInserter {
  private readonly llq: CacheLine[];
  private readonly prod: number[];

  constructor(private readonly ctx: CmdqContext, readonly queues: CmdQueue[]) {
    this.llq = queues.map((q) => new CacheLine(ctx.sim, `ecmdq${q.id}.llq`, ctx.p));
    this.prod = queues.map(() => 0);
  }

  get lines(): CacheLine[] {
    return this.llq;
  }

  *issue(cpu: number, cmds: readonly CmdKind[], sync: boolean): Agent {
    const { ctx } = this;
    const q = this.queues[cpu];
    const n = cmds.length + (sync ? 1 : 0);
    const insertion = ctx.nextInsertion();
    ctx.counters.insertions++;

    while (this.prod[cpu] + n - q.cons > q.entries) {
      ctx.counters.fullPolls++;
      yield delay(ctx.p.mmioReadNs);
    }
    ctx.counters.casAttempts++;
    const start = (yield rmw(this.llq[cpu], cpu, () => {
      const s = this.prod[cpu];
      this.prod[cpu] += n;
      q.reserved = this.prod[cpu];
      ctx.occupancyChanged();
      ctx.trace?.reservations.push({ queue: q.id, cpu, start: s, n, insertion });
      return s;
    })) as number;
    yield delay(n * ctx.p.cmdWriteNs);
    for (let i = 0; i < cmds.length; i++) q.write(start + i, cmds[i], cpu, insertion);
    if (sync) q.write(start + n - 1, 'sync', cpu, insertion);
    yield delay(ctx.p.mmioWriteNs);
    ctx.smmu.publish(q, start + n);
    if (sync) yield* waitSync(ctx, q, start + n - 1, true);
  }
}
