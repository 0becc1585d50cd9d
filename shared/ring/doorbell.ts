/**
 * Doorbell: the wake-up word of one thread, in shared memory.
 *
 * Models: the interrupt/doorbell that tells a sleeping agent "some queue of yours has
 * work": a `sleeping` flag and a wake counter on one 64-byte line. One thread owns a
 * doorbell and is its only sleeper; any number of producers (on any threads) ring it.
 * One doorbell serves every ring the owner consumes (a worker has ONE doorbell for all
 * its input rings, the coordinator ONE for all of its inputs), so a wake-up says "look at
 * your rings", never which one.
 * Does not model: interrupt coalescing or moderation, MSI addresses, lost interrupts.
 *
 * Contract
 * - `ring()` is what a producer calls after publishing (after its `Atomics.store` of
 *   PROD). It is cheap when nobody sleeps: one `Atomics.load` of the flag. Only when the
 *   flag is set does it clear it, bump the counter and `Atomics.notify` the sleeper.
 * - `sleep()` blocks with `Atomics.wait`: workers only. The main thread must never block
 *   (DESIGN.md §4): it throws there. The coordinator uses `sleepAsync()`
 *   (`Atomics.waitAsync`), which never blocks the event loop.
 * - Spurious wake-ups happen (another ring of the same doorbell, a late ring of an earlier
 *   sleep): callers re-check all their rings after every return.
 *
 * Why no wake-up is lost (the Dekker pattern; every Atomics operation in JavaScript is
 * sequentially consistent, so all of them fall into one total order):
 *   producer P:  Atomics.store(PROD)      ; Atomics.load(flag)  → if 1: store 0, add, notify
 *   sleeper  S:  c = Atomics.load(counter); Atomics.store(flag, 1); isEmpty() loads PROD;
 *                Atomics.wait(counter, c)
 * If S's load of PROD comes after P's store of PROD in the total order, S sees the entry
 * and returns 'not-empty' without sleeping. Otherwise S's store of the flag precedes P's
 * load of it, so P reads 1 — or reads 0 written by another ringer R that cleared the flag
 * after S set it; R then bumps the counter too. Either way some ringer's `Atomics.add`
 * comes after S read `c`, so S's `Atomics.wait(counter, c)` either finds the value
 * changed ('not-equal') or is in the wait list when `Atomics.notify` runs (wait and notify
 * are atomic with respect to each other). A sleeper woken by R before P's entry landed
 * re-checks, goes back to sleep with a fresh flag, and the same argument applies to P.
 */
import { isMainThread } from 'node:worker_threads';

export type SleepResult = 'woken' | 'timed-out' | 'not-empty';

/** Word offsets (Int32) inside the doorbell's line. */
const W_FLAG = 0; // 1 while the owner is (about to be) asleep; cleared by ringers
const W_COUNT = 1; // wake counter: Atomics.wait/notify target
const W_SLEEPERS = 2; // sleeps in progress on the owner's thread (async ones may overlap)
const WORDS = 16;

export class Doorbell {
  /** Bytes of shared memory one doorbell takes: one 64-byte line. */
  static readonly BYTES = 64;
  /** Required alignment of a doorbell's byte offset. */
  static readonly ALIGN = 64;

  readonly sab: SharedArrayBuffer;
  readonly byteOffset: number;
  private readonly w: Int32Array;

  /** A doorbell in its own SharedArrayBuffer. */
  static create(): Doorbell {
    return new Doorbell(new SharedArrayBuffer(Doorbell.BYTES), 0);
  }

  /**
   * Attaches to the doorbell at `byteOffset` of `sab` (a multiple of 64). Zeroed memory
   * is an idle doorbell; every thread that rings or sleeps builds its own object.
   */
  constructor(sab: SharedArrayBuffer, byteOffset: number) {
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % Doorbell.ALIGN !== 0 ||
        byteOffset + Doorbell.BYTES > sab.byteLength) {
      throw new RangeError(`doorbell: offset ${byteOffset} not 64-aligned inside a ${sab.byteLength}-byte buffer`);
    }
    this.sab = sab;
    this.byteOffset = byteOffset;
    this.w = new Int32Array(sab, byteOffset, WORDS);
  }

  /**
   * Wakes the owner if it sleeps or is about to. Call after publishing (after the
   * `Atomics.store` of PROD or CONS). One atomic load when nobody sleeps.
   */
  ring(): void {
    if (Atomics.load(this.w, W_FLAG) === 0) return; // seq-cst: after the caller's store of PROD/CONS (Dekker)
    Atomics.store(this.w, W_FLAG, 0); // seq-cst: before the bump; the sleeper sets it again before its next sleep
    Atomics.add(this.w, W_COUNT, 1); // seq-cst: a sleeper that read the old count returns 'not-equal'
    Atomics.notify(this.w, W_COUNT); // wakes every waiter on the count (after the bump)
  }

  /** Wakes the owner unconditionally (shutdown, tests): bumps the counter and notifies. */
  kick(): void {
    Atomics.store(this.w, W_FLAG, 0); // seq-cst: see ring()
    Atomics.add(this.w, W_COUNT, 1); // seq-cst: any sleep in progress returns
    Atomics.notify(this.w, W_COUNT); // wakes every waiter on the count (after the bump)
  }

  /** True while the owner has announced that it sleeps (racy: for tests and stats). */
  isSleeping(): boolean {
    return Atomics.load(this.w, W_FLAG) !== 0; // seq-cst: observer only
  }

  /** How many times the doorbell woke a sleeper (ring() that found the flag, or kick()). */
  wakeCount(): number {
    return Atomics.load(this.w, W_COUNT) >>> 0; // seq-cst: observer only
  }

  /**
   * Blocks the calling worker until rung, for at most `timeoutMs` (Infinity = no limit).
   * `isEmpty` must reload the shared producer indices of every ring this doorbell serves
   * (`ring.available() === 0` does). Returns 'not-empty' without sleeping if there is
   * work, 'woken' when rung (or on a spurious wake), 'timed-out' otherwise.
   * Throws on the main thread, which must never block.
   */
  sleep(isEmpty: () => boolean, timeoutMs: number): SleepResult {
    if (isMainThread) throw new Error('Doorbell.sleep() would block the main thread: use sleepAsync()');
    const c = this.enter();
    try {
      if (!isEmpty()) return 'not-empty';
      const r = Atomics.wait(this.w, W_COUNT, c, timeoutMs); // seq-cst: 'not-equal' if rung since enter()
      return r === 'timed-out' ? 'timed-out' : 'woken';
    } finally {
      this.leave();
    }
  }

  /**
   * The non-blocking sleep for the main thread: resolves when rung, after `timeoutMs`
   * (default: never), or at once with 'not-empty'. Several may be pending on one thread;
   * one ring() wakes them all.
   * A pending `Atomics.waitAsync` does not keep Node's event loop alive; with a finite
   * timeout this method holds a timer so the process waits for the result, without one
   * the caller must keep the loop alive (a live Worker does).
   */
  async sleepAsync(isEmpty: () => boolean, timeoutMs = Infinity): Promise<SleepResult> {
    const c = this.enter();
    let keepAlive: ReturnType<typeof setTimeout> | undefined;
    try {
      if (!isEmpty()) return 'not-empty';
      const r = Atomics.waitAsync(this.w, W_COUNT, c, timeoutMs); // seq-cst: 'not-equal' if rung since enter()
      if (!r.async) return r.value === 'timed-out' ? 'timed-out' : 'woken';
      if (Number.isFinite(timeoutMs)) keepAlive = setTimeout(() => {}, timeoutMs + 10);
      return (await r.value) === 'timed-out' ? 'timed-out' : 'woken';
    } finally {
      if (keepAlive !== undefined) clearTimeout(keepAlive);
      this.leave();
    }
  }

  /**
   * The worker's idle step: spins up to `spinNs` nanoseconds re-checking `isEmpty`
   * (a spinning ring round trip is ~0.3 µs, waking a sleeper ~25 µs), then sleeps for
   * at most `timeoutMs`. Keep spinNs small (≤ 50 µs) on machines with few cores: the
   * spin holds a core the other side may need.
   */
  spinThenSleep(isEmpty: () => boolean, spinNs: number, timeoutMs: number): SleepResult {
    if (!isEmpty()) return 'not-empty';
    if (spinNs > 0) {
      const until = performance.now() + spinNs / 1e6;
      do {
        if (!isEmpty()) return 'not-empty';
      } while (performance.now() < until);
    }
    return this.sleep(isEmpty, timeoutMs);
  }

  /** Announces a sleep: returns the counter value to wait on. */
  private enter(): number {
    const c = Atomics.load(this.w, W_COUNT); // seq-cst: read before the flag rises, so any later ring() changes it
    Atomics.add(this.w, W_SLEEPERS, 1); // seq-cst: owner thread only; atomic for observers
    Atomics.store(this.w, W_FLAG, 1); // seq-cst: before isEmpty()'s load of PROD (Dekker pair of ring())
    return c;
  }

  /** Ends a sleep; the last sleeper out takes the flag down so producers stop ringing. */
  private leave(): void {
    // Only the owner's thread sleeps, so nothing of it runs between these two operations.
    if (Atomics.sub(this.w, W_SLEEPERS, 1) === 1) Atomics.store(this.w, W_FLAG, 0); // seq-cst: last one out
  }
}
