/**
 * A contended cache line: the shared words the command-queue algorithms hammer (the
 * prod/cons word, the owner/lock word, valid-map words, a spinlock).
 *
 * Models: requests for one line are served one at a time in arrival order by the line's
 * home (directory / L3 slice). A request that hits in the CPU's own cache (an atomic on a
 * line it holds exclusive and nobody read since; a load of a line it still holds) costs
 * `localAccessNs` of home time and nothing else. A miss ties the home up for
 * `lineOccupancyNs` and completes for the requester `lineTransferNs` after it started
 * being served (the rest of the transfer overlaps the next request); both grow by
 * `lineContentionNs` per other request queued behind it. The atomic's effect (`apply`)
 * happens at the serialisation point, so a compare-and-swap sees exactly the value of that
 * moment and fails if another CPU changed it since the CPU last looked.
 * Spinning: a CPU spinning on the line holds a shared copy; every atomic that writes the
 * line invalidates all copies and each spinner re-reads it (one queued read per spinner),
 * so a hot line with many spinners slows every access to it — the ticket-lock collapse,
 * and the cost of spinning on owner_prod or the valid map next to hot atomics.
 * Does not model: NUMA distance, LL/SC exclusive-monitor livelock, near vs far atomics,
 * WFE wake-up latency, false sharing with unrelated data.
 */
import type { CmdqSim, LineLike } from './cmdq-sim.js';

export interface LineCosts {
  localAccessNs: number;
  lineTransferNs: number;
  lineOccupancyNs: number;
  lineContentionNs: number;
}

interface Req { cpu: number; op: 'rmw' | 'read'; apply: (() => unknown) | undefined; done: (v: unknown) => void }
interface Spinner { cpu: number; pred: () => boolean; wake: () => void }

export class CacheLine implements LineLike {
  /** Misses served (line transfers between CPUs), and all requests. */
  transfers = 0;
  accesses = 0;
  private queue: Req[] = [];
  private head = 0;
  private busy = false;
  /** CPU holding the line exclusive after the last rmw (−1: memory). */
  private holder = -1;
  /** CPUs holding a copy since the last rmw. */
  private sharers = new Set<number>();
  private spinners: Spinner[] = [];

  constructor(private readonly sim: CmdqSim, readonly name: string, private readonly costs: LineCosts) {}

  /** CPUs spinning on the line now. */
  get spinning(): number {
    return this.spinners.length;
  }

  request(cpu: number, op: 'rmw' | 'read', apply: (() => unknown) | undefined, done: (v: unknown) => void): void {
    this.queue.push({ cpu, op, apply, done });
    if (!this.busy) this.serveNext();
  }

  spin(cpu: number, pred: () => boolean, wake: () => void): void {
    // The first look is a load like any other; then spin on the copy until it changes.
    this.request(cpu, 'read', undefined, () => {
      if (pred()) wake();
      else this.spinners.push({ cpu, pred, wake });
    });
  }

  private serveNext(): void {
    if (this.head >= this.queue.length) {
      this.busy = false;
      this.queue = [];
      this.head = 0;
      return;
    }
    const req = this.queue[this.head++];
    this.busy = true;
    const local = req.op === 'rmw'
      ? this.holder === req.cpu && this.sharers.size === 1 && this.sharers.has(req.cpu)
      : this.sharers.has(req.cpu);
    let occ: number;
    let flight = 0;
    if (local) occ = this.costs.localAccessNs;
    else {
      const extra = this.costs.lineContentionNs * (this.queue.length - this.head);
      occ = this.costs.lineOccupancyNs + extra;
      flight = Math.max(0, this.costs.lineTransferNs - this.costs.lineOccupancyNs) + extra;
      this.transfers++;
    }
    this.accesses++;
    this.sim.at(this.sim.now + occ, () => {
      const v = req.apply?.();
      if (req.op === 'rmw') {
        this.holder = req.cpu;
        this.sharers.clear();
        this.sharers.add(req.cpu);
        // The write invalidated every spinner's copy: each re-reads the line, and goes on
        // spinning unless what it waits for is now true.
        if (this.spinners.length > 0) {
          const woken = this.spinners;
          this.spinners = [];
          for (const s of woken) {
            this.queue.push({
              cpu: s.cpu, op: 'read', apply: undefined,
              done: () => { if (s.pred()) s.wake(); else this.spinners.push(s); },
            });
          }
        }
      } else {
        this.sharers.add(req.cpu);
      }
      if (flight > 0) this.sim.at(this.sim.now + flight, () => req.done(v));
      else req.done(v);
      this.serveNext();
    });
  }
}
