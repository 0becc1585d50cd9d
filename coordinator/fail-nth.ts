/**
 * Fault injection for the kernel's "fail-nth" idea: make the N-th hardware-programming
 * step (a table frame, a domain id, a PASID-entry write) fail with ENOMEM, so that every
 * rollback path can be swept by a test.
 *
 * Models: a counter of programming steps since the injection was armed; step N throws.
 * Does not model: failures inside the hardware model (workers), or probabilistic faults.
 */
import { simError } from '../shared/errors.js';

export class FailNth {
  private countdown = 0;
  /** Steps taken since arm() (for sweeps: how many steps a scenario has). */
  steps = 0;
  /** > 0 while a rollback or a must-succeed path runs: its steps are neither counted nor failed. */
  paused = 0;

  /** Arms the injector: the n-th step from now fails (n ≥ 1); 0 disarms. */
  arm(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw simError('EINVAL', 'test.failNth', 'bad-n', String(n));
    this.countdown = n;
    this.steps = 0;
  }

  /** Called before every hardware-programming step. */
  step(op: string): void {
    if (this.paused > 0) return;
    this.steps++;
    if (this.countdown > 0 && --this.countdown === 0) throw simError('ENOMEM', op, 'injected-failure', `step ${this.steps}`);
  }

  /** Adapter for FrameAllocator.shouldFail. */
  readonly shouldFail = (): boolean => {
    if (this.paused > 0) return false;
    this.steps++;
    return this.countdown > 0 && --this.countdown === 0;
  };
}
