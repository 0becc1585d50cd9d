/**
 * Occupancy of an IOMMU input queue in modelled time: how many entries are in the queue
 * when each one arrives.
 *
 * Models: a queue whose entries arrive at their stamps and leave when the IOMMU has
 * finished them; an arrival finds `used` entries (itself included); an arrival that finds
 * the queue at its depth is a stall (the producer would have had to wait). Samples are
 * summed for the metrics (mean, max, full samples), so they are the same on every run.
 * Does not model: the physical rings between the threads (host-time transport).
 */
export interface OccupancyStats {
  samples: number;
  sumUsed: number;
  maxUsed: number;
  full: number;
  depth: number;
}

export class QueueOccupancyModel {
  /** Finish times of the entries that may still be in the queue, oldest first. */
  private finish: number[] = [];
  private head = 0;
  readonly stats: OccupancyStats;

  constructor(depth: number) {
    this.stats = { samples: 0, sumUsed: 0, maxUsed: 0, full: 0, depth };
  }

  /** An entry arrives at `stamp` and will be finished at `done`. */
  sample(stamp: number, done: number): void {
    const f = this.finish;
    while (this.head < f.length && f[this.head] <= stamp) this.head++;
    if (this.head > 1024 && this.head * 2 > f.length) {
      this.finish = f.slice(this.head);
      this.head = 0;
    }
    const used = Math.min(this.finish.length - this.head + 1, this.stats.depth);
    const s = this.stats;
    s.samples++;
    s.sumUsed += used;
    if (used > s.maxUsed) s.maxUsed = used;
    if (used >= s.depth) s.full++;
    this.finish.push(done);
  }
}
