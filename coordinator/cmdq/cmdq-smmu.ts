/**
 * The SMMU side of the command queues: queue memory (slots with the lap they were written
 * in), the hardware PROD/CONS registers, and one consumer that executes commands in order
 * at its own rate.
 *
 * Models: a single command processor. It serves the published commands of one queue in
 * index order; with several queues (ECMDQ-style per-CPU queues) it takes one command at a
 * time from each non-empty queue in turn (round robin), so every queue shares the same
 * command rate. A TLBI costs `smmuTlbiNs`, a CMD_SYNC `smmuSyncNs`; a CMD_SYNC completes
 * after every earlier command of its queue, and its completion is what waiting CPUs poll
 * (the MSI write into the sync slot, or CONS). Indexes are free-running counters; slot =
 * index mod entries and lap = index div entries stand for the register's wrap bit.
 * The queue checks the protocol's invariants and throws if one is broken: a producer never
 * writes a slot the SMMU has not consumed yet (no overflow), PROD only moves forward and
 * only over written slots (no gaps), commands are consumed in index order.
 * Does not model: command errors (CERROR), prefetch, the SMMU's internal parallelism
 * between invalidations, ATC_INV round trips.
 */
import { simError } from '../../shared/errors.js';
import { type CmdqSim, Watchable } from './cmdq-sim.js';

export type CmdKind = 'tlbi' | 'tlbi-all' | 'sync';

export interface Slot { lap: number; kind: CmdKind; cpu: number; insertion: number }

export interface QueueTrace {
  /** Reservations in the order they were made: [start, start + n) by cpu. */
  reservations: { queue: number; cpu: number; start: number; n: number; insertion: number }[];
  /** Every PROD register write: the queue and its new value. */
  publishes: { queue: number; prod: number; t: number }[];
  /** Consumption in order. */
  consumed: { queue: number; idx: number; cpu: number; kind: CmdKind; insertion: number; t: number }[];
}

function broken(reason: string, detail: string): never {
  throw simError('EIO', 'cmdq-model', reason, detail);
}

export class CmdQueue {
  readonly slots: (Slot | undefined)[];
  /** Hardware PROD (published) and CONS (consumed). */
  hwProd = 0;
  cons = 0;
  /** Entries reserved by producers (software view of PROD, for occupancy). */
  reserved = 0;

  constructor(readonly id: number, readonly entries: number) {
    this.slots = new Array(entries);
  }

  /** A producer stores the command for index `idx` (must be free: consumed a lap ago). */
  write(idx: number, kind: CmdKind, cpu: number, insertion: number): void {
    if (idx - this.cons >= this.entries) broken('queue-overflow', `queue ${this.id}: write of ${idx} with cons ${this.cons}, ${this.entries} entries`);
    this.slots[idx % this.entries] = { lap: Math.floor(idx / this.entries), kind, cpu, insertion };
  }

  isWritten(idx: number): boolean {
    const s = this.slots[idx % this.entries];
    return s !== undefined && s.lap === Math.floor(idx / this.entries);
  }
}

export interface SmmuCosts { smmuTlbiNs: number; smmuSyncNs: number }

export class SmmuConsumer extends Watchable {
  busyNs = 0;
  consumedCmds = 0;
  consumedSyncs = 0;
  private busy = false;
  private rr = 0;

  constructor(
    sim: CmdqSim,
    readonly queues: CmdQueue[],
    private readonly costs: SmmuCosts,
    private readonly trace: QueueTrace | undefined,
    private readonly onChange: () => void,
  ) {
    super(sim);
  }

  /** A CPU's write to the PROD register of queue q. */
  publish(q: CmdQueue, prod: number): void {
    if (prod < q.hwProd) broken('prod-backwards', `queue ${q.id}: PROD ${q.hwProd} -> ${prod}`);
    if (prod - q.cons > q.entries) broken('queue-overflow', `queue ${q.id}: PROD ${prod} with CONS ${q.cons}`);
    for (let i = q.hwProd; i < prod; i++) if (!q.isWritten(i)) broken('publish-gap', `queue ${q.id}: slot ${i} published unwritten`);
    q.hwProd = prod;
    this.trace?.publishes.push({ queue: q.id, prod, t: this.sim.now });
    this.kick();
  }

  private kick(): void {
    if (this.busy) return;
    const n = this.queues.length;
    for (let k = 0; k < n; k++) {
      const q = this.queues[(this.rr + k) % n];
      if (q.cons < q.hwProd) {
        this.rr = (q.id + 1) % n;
        this.consume(q);
        return;
      }
    }
  }

  private consume(q: CmdQueue): void {
    const idx = q.cons;
    const s = q.slots[idx % q.entries];
    if (!s || s.lap !== Math.floor(idx / q.entries)) broken('consume-unwritten', `queue ${q.id}: slot ${idx}`);
    const cost = s.kind === 'sync' ? this.costs.smmuSyncNs : this.costs.smmuTlbiNs;
    this.busy = true;
    this.busyNs += cost;
    this.sim.at(this.sim.now + cost, () => {
      q.cons = idx + 1;
      this.consumedCmds++;
      if (s.kind === 'sync') this.consumedSyncs++;
      this.trace?.consumed.push({ queue: q.id, idx, cpu: s.cpu, kind: s.kind, insertion: s.insertion, t: this.sim.now });
      this.busy = false;
      this.onChange();
      this.notify();
      this.kick();
    });
  }
}
