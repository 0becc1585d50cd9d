/**
 * The arm-smmu-v3 lock-free multi-producer insertion (Linux 5.5+, "Reduce contention
 * during command-queue insertion"), modelled step by step on contended cache lines.
 *
 * Models, per submission of n commands (+1 CMD_SYNC when `sync`):
 *  1. Reserve: load the shared prod/cons word, then compare-and-swap it to prod + n with the
 *     OWNED flag set. A CAS fails when another CPU changed the word since this CPU last saw
 *     it; the failed CAS returns the current value and the CPU retries. If its view of the
 *     queue has no room, the CPU reads the hardware CONS register, stores it into the shared
 *     word and tries again (the kernel's poll-until-not-full).
 *  2. Write the entries into queue memory.
 *  3. With a sync, take the queue's shared lock (an atomic increment on the owner/lock line)
 *     so the queue cannot wrap twice unseen; then set the slots' bits in the valid map (one
 *     atomic per valid-map line the range touches; a line holds 512 bits).
 *  4. The owner (the CPU whose CAS found OWNED clear) waits until the previous owner has
 *     published up to its start, clears OWNED with an atomic and-not (this closes the
 *     gathering and returns the end of everything reserved so far), waits until the whole
 *     gathered range is valid, writes the PROD register once, and hands over by storing the
 *     new prod into owner_prod.
 *  5. With a sync, every CPU waits for its own CMD_SYNC (MSI into its slot), then drops the
 *     shared lock; the last holder first stores the consumed index into the shared cons.
 * Lines: the prod/cons word has its own cache line; owner_prod and the lock share one; the
 * valid map is entries/512 lines.
 * `lockfreeReserve: 'fetch-add'` swaps step 1 for John Garry's 2020 proposal (an atomic add
 * that cannot fail, then wait for space), the "after" curve of I5; everything else stays.
 * Its hazard shows in a small queue: a producer may reserve past the end of the free space
 * and wait for CONS, while the owner that gathered its slots waits for its valid bits, so
 * nothing is published (the CAS loop never reserves beyond the space it saw).
 * Does not model: the exclusive lock taken while polling CONS (poll-until-not-full is a
 * plain refresh), IRQ masking, the queue-error path.
 */
import { CacheLine } from './cmdq-cacheline.js';
import { type CmdqContext, type CmdqInserter, waitSync } from './cmdq-context.js';
import { type Agent, type Step, delay, read, rmw, spin, until } from './cmdq-sim.js';
import { type CmdKind, CmdQueue } from './cmdq-smmu.js';

/** Bits per valid-map cache line (64 bytes). */
export const VALID_BITS_PER_LINE = 512;

interface LlqView { prod: number; cons: number; version: number }

export class LockFreeCmdq implements CmdqInserter {
  readonly queue: CmdQueue;
  /** The shared prod/cons word (llq.val) and its cache line. */
  private readonly llq: CacheLine;
  /** owner_prod and the shared lock counter. */
  private readonly ctl: CacheLine;
  private readonly validLines: CacheLine[];
  private readonly valid: Int32Array; // lap+1 of the last valid marking, per slot

  private prod = 0;
  private cons = 0;
  private owned = false;
  private version = 0;
  private ownerProd = 0;
  private lockCount = 0;

  constructor(private readonly ctx: CmdqContext, queue: CmdQueue) {
    this.queue = queue;
    const costs = ctx.p;
    this.llq = new CacheLine(ctx.sim, 'llq', costs);
    this.ctl = new CacheLine(ctx.sim, 'owner/lock', costs);
    const nLines = Math.ceil(queue.entries / VALID_BITS_PER_LINE);
    this.validLines = Array.from({ length: nLines }, (_, i) => new CacheLine(ctx.sim, `valid${i}`, costs));
    this.valid = new Int32Array(queue.entries);
  }

  get lines(): CacheLine[] {
    return [this.llq, this.ctl, ...this.validLines];
  }

  private view(): LlqView {
    return { prod: this.prod, cons: this.cons, version: this.version };
  }

  private isValid(idx: number): boolean {
    return this.valid[idx % this.queue.entries] === Math.floor(idx / this.queue.entries) + 1;
  }

  /** The valid-map lines covering [start, end), each with its part of the range. */
  private validSpans(start: number, end: number): { line: CacheLine; from: number; to: number }[] {
    const out: { line: CacheLine; from: number; to: number }[] = [];
    let i = start;
    while (i < end) {
      const slot = i % this.queue.entries;
      const lineIdx = Math.floor(slot / VALID_BITS_PER_LINE);
      const lineEndSlot = Math.min((lineIdx + 1) * VALID_BITS_PER_LINE, this.queue.entries);
      const to = Math.min(end, i + (lineEndSlot - slot));
      out.push({ line: this.validLines[lineIdx], from: i, to });
      i = to;
    }
    return out;
  }

  /** Records a successful reservation [start, start + n) (inside the atomic). */
  private reserved(cpu: number, start: number, n: number, insertion: number): void {
    this.queue.reserved = this.prod;
    this.ctx.occupancyChanged();
    this.ctx.trace?.reservations.push({ queue: this.queue.id, cpu, start, n, insertion });
  }

  /** Mainline: compare-and-swap loop; refresh cons from the CONS register when full. */
  private *reserveCas(cpu: number, n: number, insertion: number): Generator<Step, { start: number; owner: boolean }, unknown> {
    const { ctx, queue: q } = this;
    const c = ctx.counters;
    let seen = (yield read(this.llq, cpu, () => this.view())) as LlqView;
    for (;;) {
      while (seen.prod + n - seen.cons > q.entries) {
        c.fullPolls++;
        const hwCons = q.cons;
        yield delay(ctx.p.mmioReadNs);
        const observed = Math.max(hwCons, q.cons);
        seen = (yield rmw(this.llq, cpu, () => {
          if (observed > this.cons) {
            this.cons = observed;
            this.version++;
          }
          return this.view();
        })) as LlqView;
        if (seen.prod + n - seen.cons > q.entries) yield until(ctx.smmu, () => q.cons > observed);
      }
      c.casAttempts++;
      const expected = seen.version;
      const r = (yield rmw(this.llq, cpu, () => {
        if (this.version !== expected) return this.view();
        const got = { start: this.prod, owner: !this.owned };
        this.prod += n;
        this.owned = true;
        this.version++;
        this.reserved(cpu, got.start, n, insertion);
        return got;
      })) as LlqView | { start: number; owner: boolean };
      if ('start' in r) return r;
      c.casFailures++;
      seen = r;
    }
  }

  /** John Garry's 2020 proposal (I5 "after"): one atomic add reserves (never fails); the
   *  producer then waits, polling CONS, until its slots are free. */
  private *reserveAdd(cpu: number, n: number, insertion: number): Generator<Step, { start: number; owner: boolean }, unknown> {
    const { ctx, queue: q } = this;
    ctx.counters.casAttempts++;
    const r = (yield rmw(this.llq, cpu, () => {
      const got = { start: this.prod, owner: !this.owned, cons: this.cons };
      this.prod += n;
      this.owned = true;
      this.version++;
      this.reserved(cpu, got.start, n, insertion);
      return got;
    })) as { start: number; owner: boolean; cons: number };
    const end = r.start + n;
    if (end - r.cons > q.entries) {
      while (end - q.cons > q.entries) {
        ctx.counters.fullPolls++;
        const need = end - q.entries;
        yield until(ctx.smmu, () => q.cons >= need);
        yield delay(ctx.p.mmioReadNs);
      }
    }
    return { start: r.start, owner: r.owner };
  }

  *issue(cpu: number, cmds: readonly CmdKind[], sync: boolean): Agent {
    const { ctx, queue: q } = this;
    const c = ctx.counters;
    const n = cmds.length + (sync ? 1 : 0);
    const insertion = ctx.nextInsertion();
    c.insertions++;

    // 1. Reserve space on the shared prod/cons word.
    const { start, owner } = (ctx.p.lockfreeReserve === 'cas'
      ? yield* this.reserveCas(cpu, n, insertion)
      : yield* this.reserveAdd(cpu, n, insertion)) as { start: number; owner: boolean };
    const end = start + n;

    // 2. Write the commands (and the CMD_SYNC) into queue memory.
    yield delay(n * ctx.p.cmdWriteNs);
    for (let i = 0; i < cmds.length; i++) q.write(start + i, cmds[i], cpu, insertion);
    if (sync) q.write(end - 1, 'sync', cpu, insertion);

    // 3. Shared lock (with a sync), then mark the slots valid.
    if (sync) yield rmw(this.ctl, cpu, () => { this.lockCount++; });
    for (const s of this.validSpans(start, end)) {
      yield rmw(s.line, cpu, () => {
        for (let i = s.from; i < s.to; i++) this.valid[i % q.entries] = Math.floor(i / q.entries) + 1;
      });
    }

    // 4. The owner publishes everything gathered since its reservation.
    if (owner) {
      yield spin(this.ctl, cpu, () => this.ownerProd === start);
      const gathered = (yield rmw(this.llq, cpu, () => {
        this.owned = false;
        this.version++;
        return this.prod;
      })) as number;
      for (const s of this.validSpans(start, gathered)) {
        const ready = () => { for (let i = s.from; i < s.to; i++) if (!this.isValid(i)) return false; return true; };
        yield spin(s.line, cpu, ready);
      }
      yield delay(ctx.p.mmioWriteNs);
      ctx.smmu.publish(q, gathered);
      yield rmw(this.ctl, cpu, () => { this.ownerProd = gathered; });
      c.ownerPublishes++;
      c.gatheredEntries += gathered - start;
    }

    // 5. Wait for our CMD_SYNC, then drop the shared lock; the last one out updates cons.
    if (sync) {
      yield* waitSync(ctx, q, end - 1, true);
      const last = (yield read(this.ctl, cpu, () => this.lockCount === 1)) as boolean;
      if (last) {
        yield rmw(this.llq, cpu, () => {
          if (end > this.cons) {
            this.cons = end;
            this.version++;
          }
        });
      }
      yield rmw(this.ctl, cpu, () => { this.lockCount--; });
    }
  }
}
