/**
 * Shared helpers of the end-to-end suites: a seeded PRNG, a promise deadline (so no test
 * can hang on a promise that never settles), error-code assertions and a live-worker
 * count. Not a test file (vitest collects *.test.ts only).
 */
import { expect } from 'vitest';
import { type Observable, firstValueFrom, filter, timeout } from 'rxjs';
import { SimError, mulberry32, type Simulator } from 'iommu-sim';

export { mulberry32 };


export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** BigInt in [0, n) for n ≤ 2^53. */
  big(n: bigint): bigint {
    return BigInt(Math.floor(this.next() * Number(n)));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Resolves/rejects like `p`, or rejects after `ms` with a message naming `what`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The first item of `obs` matching `pred`, within `ms` (subscribe before causing it). */
export function nextMatching<T>(obs: Observable<T>, pred: (v: T) => boolean, ms = 5000): Promise<T> {
  return firstValueFrom(obs.pipe(filter(pred), timeout(ms)));
}

/** Asserts that `fn` throws (synchronously) a SimError with `code`. */
export function expectThrowsCode(fn: () => unknown, code: string): SimError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a SimError ${code}, the call returned`).toBeInstanceOf(SimError);
  expect((caught as SimError).code).toBe(code);
  return caught as SimError;
}

/** Asserts that `p` rejects with a SimError with `code` (within 10 s). */
export async function expectRejectsCode(p: Promise<unknown>, code: string): Promise<SimError> {
  let caught: unknown;
  try {
    await within(p, 10_000, `expected rejection ${code}`);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a SimError ${code}, the promise resolved`).toBeInstanceOf(SimError);
  expect((caught as SimError).code).toBe(code);
  return caught as SimError;
}

/** Worker threads alive in this process (each shows up as a MessagePort resource). */
export function liveMessagePorts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
}

/** The live-worker count once it has stopped changing (a worker that just exited may linger a tick). */
export async function settledMessagePorts(): Promise<number> {
  let last = liveMessagePorts();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const now = liveMessagePorts();
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** Waits (up to 2 s) for the live-worker count to come back to `n`; returns the count seen. */
export async function messagePortsBackTo(n: number): Promise<number> {
  for (let i = 0; i < 200 && liveMessagePorts() !== n; i++) await new Promise((r) => setTimeout(r, 10));
  return liveMessagePorts();
}

/** Closes a simulator (if any) with a deadline, so a broken close() fails instead of hanging. */
export async function closeSim(sim: Simulator | undefined): Promise<void> {
  if (sim) await within(sim.close(), 15_000, 'sim.close()');
}

export const KiB = 1024n;
export const MiB = 1024n * KiB;
export const GiB = 1024n * MiB;
