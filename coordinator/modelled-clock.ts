/**
 * The coordinator's modelled clock (nanoseconds of the simulated machine).
 *
 * Models: the time at which the coordinator (the CPU side) issues work: every command and
 * DMA request is stamped with `now`; awaiting a completion moves `now` to the completion's
 * modelled time if that is later. A script that awaits its calls in order therefore sees
 * the same times on every run.
 * Does not model: CPU-side costs of the driver itself, or conservative synchronisation
 * across IOMMUs (the timing issue adds both).
 */
export class ModelledClock {
  now = 0;

  /** Moves the clock to `t` if that is later; returns the new time. */
  observe(t: number): number {
    if (t > this.now) this.now = t;
    return this.now;
  }
}
