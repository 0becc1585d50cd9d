/**
 * Conservative time synchronisation between the coordinator and the IOMMU workers, so that
 * modelled results do not depend on how the host schedules threads.
 *
 * Models: a parallel discrete-event simulation in the Chandy–Misra–Bryant style, with the
 * coordinator as the one process whose future is unknown (user code runs only when it is
 * handed something). Workers serve their inputs in the order the coordinator accepted
 * them, whenever they arrive. What comes back waits in the event scheduler and is handed
 * over in modelled-time order, and only once it is safe: every instance has either served
 * every input it was given (it can produce nothing earlier than its next internal event)
 * or has a clock past that time (whatever it produces later is later). The horizon the
 * coordinator publishes is the earliest time anything can still happen; instances run
 * their internal events (timers) up to it, and the coordinator's clock moves to it, so no
 * input is ever stamped earlier. Deliveries at one time go out together; the caller then
 * yields so the code they resume runs (and queues its inputs) before time moves on. The
 * minimum latency of every input (a positive modelled cost) is the lookahead that keeps
 * this from stalling.
 * Does not model: user code driven by host timers (setTimeout): its inputs are stamped with
 * whatever the modelled clock is when it runs, which is not reproducible.
 */
import type { EventScheduler } from './event-scheduler.js';
import type { IommuHandle } from './iommu-handle.js';
import type { ModelledClock } from './modelled-clock.js';

export interface SyncStep {
  /** Items drained from the rings. */
  moved: number;
  /** Deliveries handed over. */
  delivered: number;
}

export class TimeSync {
  private readonly seen: number[];

  constructor(
    private readonly handles: readonly IommuHandle[],
    private readonly scheduler: EventScheduler,
    private readonly clock: ModelledClock,
  ) {
    this.seen = handles.map(() => -1);
  }

  /** Drains every instance, then hands over the deliveries of the earliest time if it is safe. */
  step(): SyncStep {
    const hs = this.handles;
    let moved = 0;
    for (const h of hs) moved += h.feed();
    // Progress first, then the rings: every output of an input counted as served is drained.
    const prog = hs.map((h) => h.readProgress());
    for (const h of hs) moved += h.drain();
    let safe = Infinity;
    for (let i = 0; i < hs.length; i++) {
      const p = prog[i];
      this.seen[i] = p.seq;
      // An instance's next output is no earlier than its next event: a timer, or the start of
      // its next input (no earlier than that input's stamp nor than the instance's clock).
      const busy = p.seq !== hs[i].accepted;
      const s = busy ? Math.min(Math.max(p.clock, hs[i].earliestUnserved(p.seq)), p.timer) : p.timer;
      if (s < safe) safe = s;
    }
    const next = this.scheduler.nextTime;
    const horizon = Math.min(next, safe);
    if (horizon !== Infinity) {
      if (horizon > this.clock.now) this.clock.now = horizon;
      for (let i = 0; i < hs.length; i++) {
        // An instance may run its internal events only up to the start of its earliest
        // unserved input: no earlier than that input's stamp nor than the instance's clock.
        hs[i].setHorizon(Math.min(this.clock.now, Math.max(prog[i].clock, hs[i].earliestUnserved(prog[i].seq))));
        if (prog[i].timer <= this.clock.now) hs[i].workerBell.ring();
      }
    }
    let delivered = 0;
    if (next < safe) {
      if (next > this.clock.now) this.clock.now = next;
      while (this.scheduler.size > 0 && this.scheduler.nextTime === next) {
        this.scheduler.pop()!.fire();
        delivered++;
      }
    }
    return { moved, delivered };
  }

  /**
   * True when the simulation is at rest: nothing waits to be handed over, every instance
   * has served every input it was given and has no internal event left.
   */
  atRest(): boolean {
    if (this.scheduler.size > 0) return false;
    for (const h of this.handles) {
      const p = h.readProgress();
      if (p.seq !== h.accepted || p.timer !== Infinity || !h.quiet()) return false;
    }
    return true;
  }

  /** True when no instance has output waiting or progress the last step did not see. */
  quiet(): boolean {
    for (let i = 0; i < this.handles.length; i++) {
      const h = this.handles[i];
      if (!h.quiet() || h.canFeed() || h.readProgress().seq !== this.seen[i]) return false;
    }
    return true;
  }
}
