/**
 * The software side of a hardware output queue (fault event queue, page request queue) as
 * the IOMMU sees it in modelled time: how full the queue is when the hardware writes an
 * entry, and when the driver takes each entry in.
 *
 * Models: the driver's interrupt thread (Linux dmar_fault / prq_event_thread): an entry
 * that lands in a queue the thread is not draining raises an interrupt and the thread
 * starts `irqNs` later; it takes the entries in order, `perEntryNs` each, so entry i is
 * taken in at c_i = max(t_i + irqNs, c_{i-1}) + perEntryNs, and occupies its slot from
 * t_i until c_i. The queue is full when `depth` entries are in it. Because the driver's
 * progress is a function of modelled time only, overflows are the same on every run,
 * whatever the host does (the physical ring between the threads is only the transport).
 * Overflow as VT-d reports it (PFO for faults, PRS.PRO for page requests): an entry that
 * finds the queue full is dropped and sets the overflow; while it is set every new entry
 * is dropped too; the driver clears it once it has emptied the queue (at the take-in time
 * of the last entry in it), which ends the overflow episode.
 * Does not model: interrupt coalescing or masking, a driver thread that is descheduled,
 * head/tail register writes.
 */
import type { OccupancyStats } from './queue-occupancy.js';

export class SoftwareDrain {
  /** Take-in times of the entries still in the queue, oldest first (a circular buffer). */
  private readonly takeIn: Float64Array;
  private head = 0;
  private count = 0;
  /** Take-in time of the newest entry (the driver's progress so far). */
  lastTakeIn = 0;

  constructor(readonly depth: number, private readonly irqNs: number, private readonly perEntryNs: number) {
    this.takeIn = new Float64Array(depth);
  }

  /** Entries in the queue at modelled time `t` (those taken in by then are gone). */
  occupancy(t: number): number {
    while (this.count > 0 && this.takeIn[this.head] <= t) {
      this.head = (this.head + 1) % this.depth;
      this.count--;
    }
    return this.count;
  }

  /** End of the current overflow episode (the driver clears the flag then), or -1. */
  overflowUntil = -1;
  /** Entries dropped in the current episode. */
  lostInEpisode = 0;

  /**
   * The hardware writes an entry at `t`: its take-in time; DROPPED when it is lost to an
   * ongoing overflow; NEW_OVERFLOW when it is the first one lost (the caller schedules the
   * episode's end at `overflowUntil`).
   */
  push(t: number): number {
    if (this.overflowUntil >= 0) {
      if (t < this.overflowUntil) {
        this.lostInEpisode++;
        return DROPPED;
      }
      this.endEpisode();
    }
    if (this.occupancy(t) >= this.depth) {
      this.overflowUntil = this.lastTakeIn;
      this.lostInEpisode = 1;
      return NEW_OVERFLOW;
    }
    const c = Math.max(t + this.irqNs, this.lastTakeIn) + this.perEntryNs;
    this.takeIn[(this.head + this.count) % this.depth] = c;
    this.count++;
    this.lastTakeIn = c;
    return c;
  }

  /** The driver clears the overflow: returns how many entries the episode lost. */
  endEpisode(): number {
    const lost = this.lostInEpisode;
    this.overflowUntil = -1;
    this.lostInEpisode = 0;
    return lost;
  }
}

/** push(): the entry was lost to an ongoing overflow. */
export const DROPPED = -1;
/** push(): the entry was lost and started an overflow episode. */
export const NEW_OVERFLOW = -2;

/**
 * A hardware output queue as the IOMMU writes it: admission against the driver's take-in
 * model, the lost count, and the overflow episode's end on a timer (or when the IOMMU's
 * clock has run past it), which sends software the overflow notice.
 */
export class OverflowingQueue {
  lost = 0;
  private episode = 0;
  /** Occupancy the hardware found at each write (modelled), for the metrics. */
  readonly occupancy: OccupancyStats;

  constructor(
    readonly drain: SoftwareDrain,
    /** Schedules an internal event of the IOMMU. */
    private readonly at: (t: number, fire: (t: number) => void) => void,
    /** The driver has cleared the overflow at `when`, `lost` entries later: notify software. */
    private readonly onEnd: (lost: number, when: number) => void,
  ) {
    this.occupancy = { samples: 0, sumUsed: 0, maxUsed: 0, full: 0, depth: drain.depth };
  }

  /** Ends an overflow whose time has come while the clock ran past it (call before filling a scratch entry). */
  endIfDue(t: number): void {
    const until = this.drain.overflowUntil;
    if (until >= 0 && t >= until) this.end(this.episode, until);
  }

  /** An entry arrives at `t`: its take-in time, or -1 when it was lost to an overflow (counted). */
  admit(t: number): number {
    const o = this.occupancy;
    const before = this.drain.occupancy(t);
    const used = Math.min(before + 1, o.depth);
    o.samples++;
    o.sumUsed += used;
    if (used > o.maxUsed) o.maxUsed = used;
    if (this.drain.overflowUntil >= 0 || before >= o.depth) o.full++; // found no room: dropped
    const takeIn = this.drain.push(t);
    if (takeIn >= 0) return takeIn;
    this.lost++;
    if (takeIn === NEW_OVERFLOW) {
      const ep = ++this.episode;
      this.at(this.drain.overflowUntil, (when) => this.end(ep, when));
    }
    return -1;
  }

  private end(ep: number, when: number): void {
    if (ep !== this.episode || this.drain.overflowUntil < 0) return; // already ended
    this.onEnd(this.drain.endEpisode(), when);
  }
}
