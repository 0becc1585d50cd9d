/**
 * Real two-thread tests of the SPSC ring: the main thread plays one end (from the
 * TypeScript source), a worker_threads Worker the other (from the compiled dist/, so run
 * `npm run build` first). Every entry carries a sequence number, a canary and a stamp; the
 * consumer checks order and content of all of them. No test may hang: every wait has a
 * deadline and every worker is terminated in afterEach.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SpscRing } from '../../shared/ring/spsc-ring.js';

const RING_JS = new URL('../../dist/shared/ring/spsc-ring.js', import.meta.url);
const WORKER = new URL('./fixtures/ring-worker.mjs', import.meta.url);

/** Same entry content as the fixture. */
const CANARY = 0xc0ffee11;
const pattern = (seq: number, j: number) => (Math.imul(seq, 0x9e3779b1) ^ (j * 0x01010101)) >>> 0;

/** Everything a test waits for ends by then; the test timeout (60 s) is the backstop. */
const DEADLINE_MS = 45_000;

const workers = new Set<Worker>();
afterEach(async () => {
  await Promise.all([...workers].map((w) => w.terminate()));
  workers.clear();
});

beforeAll(() => {
  if (!existsSync(fileURLToPath(RING_JS))) throw new Error(`${RING_JS.pathname} missing: run npm run build first`);
  for (const dep of ['spsc-ring', 'doorbell']) {
    const ts = fileURLToPath(new URL(`../../shared/ring/${dep}.ts`, import.meta.url));
    const js = fileURLToPath(new URL(`../../dist/shared/ring/${dep}.js`, import.meta.url));
    if (statSync(ts).mtimeMs > statSync(js).mtimeMs) throw new Error(`${js} is older than ${ts}: run npm run build`);
  }
});

interface ConsumeStats {
  received: number; errors: number; firstError: string; woken: number; timedOut: number;
  notEmpty: number; pauses: number; wakeLatencyMs: number;
}
interface ProduceStats { sent: number; waits: number; timeouts: number; firstError: string }

/** Starts the fixture worker; resolves with its one result message. */
function startWorker<T>(data: Record<string, unknown>): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(WORKER, { workerData: { ringModule: RING_JS.href, deadlineMs: DEADLINE_MS, ...data } });
  workers.add(worker);
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`ring worker exited (${code}) before reporting`)));
  });
  return { worker, result };
}

const spinUntil = (cond: () => boolean, ns: number) => {
  const until = performance.now() + ns / 1e6;
  while (!cond() && performance.now() < until) { /* bounded spin */ }
  return cond();
};

/**
 * Main-thread producer: `count` entries in batches of 1..maxBatch (seeded); when the ring
 * is full it spins ≤ 20 µs, then awaits waitForSpace() (never blocks the thread).
 */
async function produceOnMain(ring: SpscRing, count: number, maxBatch: number): Promise<{ waits: number }> {
  const ew = ring.entryWords;
  const src = new Uint32Array(maxBatch * ew);
  const stamps = new Float64Array(maxBatch);
  const deadline = performance.now() + DEADLINE_MS;
  let rnd = 7;
  let waits = 0;
  let sent = 0;
  while (sent < count) {
    rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0;
    const b = Math.min(count - sent, 1 + ((rnd >>> 16) % maxBatch));
    for (let i = 0; i < b; i++) {
      const seq = sent + i;
      src[i * ew] = seq;
      src[i * ew + 1] = (CANARY ^ seq) >>> 0;
      for (let j = 2; j < ew; j++) src[i * ew + j] = pattern(seq, j);
      stamps[i] = seq * 2.5;
    }
    let done = 0;
    while (done < b) {
      const n = ring.pushMany(src, b - done, stamps, done);
      done += n;
      if (n === 0 && !spinUntil(() => ring.freeSlots() > 0, 20_000)) {
        if (performance.now() > deadline) throw new Error(`producer: deadline after ${sent + done} entries`);
        waits++;
        await ring.waitForSpace(1, 10_000);
      }
    }
    sent += b;
  }
  return { waits };
}

/** Main-thread consumer: drains `count` entries, awaiting the doorbell when empty. */
async function consumeOnMain(ring: SpscRing, count: number): Promise<{ received: number; errors: number; firstError: string }> {
  const ew = ring.entryWords;
  const u32 = ring.u32;
  const deadline = performance.now() + DEADLINE_MS;
  let received = 0;
  let errors = 0;
  let firstError = '';
  while (received < count) {
    const n = ring.available();
    if (n === 0) {
      if (performance.now() > deadline) throw new Error(`consumer: deadline after ${received} entries`);
      if (!spinUntil(() => ring.available() > 0, 20_000)) await ring.waitForEntries(1_000);
      continue;
    }
    for (let k = 0; k < n; k++) {
      const s = ring.slot(k);
      const b = s * ew;
      const seq = received + k;
      let ok = u32[b] === seq && u32[b + 1] === ((CANARY ^ seq) >>> 0) && ring.stamps[s] === seq * 2.5;
      for (let j = 2; j < ew; j++) ok &&= u32[b + j] === pattern(seq, j);
      if (!ok) {
        errors++;
        firstError ||= `entry ${seq}: ${Array.from(u32.subarray(b, b + ew))} stamp ${ring.stamps[s]}`;
      }
    }
    received += n;
    ring.release(n);
  }
  return { received, errors, firstError };
}

const COUNT = 1_000_000;

describe('SpscRing across two threads (depth 64)', () => {
  for (const entryBytes of [16, 32]) {
    it(`moves ${COUNT} ${entryBytes}-byte entries main → worker in order, intact`, async () => {
      const ring = SpscRing.create({ depth: 64, entryBytes }, { role: 'producer' });
      const { result } = startWorker<ConsumeStats>({
        mode: 'consume', ring: ring.handle(), count: COUNT, spinNs: 50_000, sleepMs: 200,
      });
      await produceOnMain(ring, COUNT, 16);
      const stats = await result;
      expect(stats.firstError).toBe('');
      expect(stats.errors).toBe(0);
      expect(stats.received).toBe(COUNT);
      expect(ring.size()).toBe(0);
      // 1e6 entries through 64 slots: the indices wrapped 15,625 times
      expect(ring.loadProd() & 63).toBe(COUNT % 64);
    });

    it(`moves ${COUNT} ${entryBytes}-byte entries worker → main in order, intact`, async () => {
      const ring = SpscRing.create({ depth: 64, entryBytes }, { role: 'consumer' });
      const { result } = startWorker<ProduceStats>({
        mode: 'produce', ring: ring.handle(), count: COUNT, maxBatch: 16, waitTimeoutMs: 1_000,
      });
      const got = await consumeOnMain(ring, COUNT);
      const stats = await result;
      expect(stats.firstError).toBe('');
      expect(stats.sent).toBe(COUNT);
      expect(got.firstError).toBe('');
      expect(got.errors).toBe(0);
      expect(got.received).toBe(COUNT);
      expect(ring.available()).toBe(0);
    });
  }

  it('applies back-pressure: a full ring makes the producer await space, nothing lost or duplicated', async () => {
    const count = 50_000;
    const ring = SpscRing.create({ depth: 64, entryBytes: 16 }, { role: 'producer' });
    const { result } = startWorker<ConsumeStats>({
      mode: 'consume', ring: ring.handle(), count, spinNs: 50_000, sleepMs: 200,
      pauseEveryEntries: 5_000, pauseMs: 20, // the ring stays full for 20 ms, 9 times
    });
    const prod = await produceOnMain(ring, count, 16);
    const stats = await result;
    expect(stats.firstError).toBe('');
    expect(stats.errors).toBe(0);
    expect(stats.received).toBe(count);
    expect(stats.pauses).toBe(9);
    expect(prod.waits).toBeGreaterThanOrEqual(9); // awaited waitForSpace at every pause
    expect(ring.producerWaiting()).toBe(false);
  });

  it('applies back-pressure to a worker-side producer with waitForSpaceSync', async () => {
    const count = 20_000;
    const ring = SpscRing.create({ depth: 64, entryBytes: 32 }, { role: 'consumer' });
    const { result } = startWorker<ProduceStats>({
      mode: 'produce', ring: ring.handle(), count, maxBatch: 16, waitTimeoutMs: 20_000,
    });
    // Let the worker fill the ring and block in Atomics.wait on its doorbell.
    const deadline = Date.now() + 10_000;
    while (!(ring.producerWaiting() && ring.producerBell.isSleeping()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(ring.producerBell.isSleeping()).toBe(true);
    expect(ring.size()).toBe(64);
    const got = await consumeOnMain(ring, count);
    const stats = await result;
    expect(got.errors).toBe(0);
    expect(got.received).toBe(count);
    expect(stats.sent).toBe(count);
    expect(stats.waits).toBeGreaterThan(0);
    expect(stats.timeouts).toBe(0);
  });

  it('wakes a consumer sleeping in Atomics.wait with the doorbell', async () => {
    const ring = SpscRing.create({ depth: 64, entryBytes: 16 }, { role: 'producer' });
    const { result } = startWorker<ConsumeStats>({
      mode: 'consume', ring: ring.handle(), count: 3, spinNs: 0, sleepMs: 30_000,
    });
    const e = (seq: number) => [seq, (CANARY ^ seq) >>> 0, pattern(seq, 2), pattern(seq, 3)];
    for (let seq = 0; seq < 3; seq++) {
      // wait until the worker has announced its sleep, then publish one entry
      const deadline = Date.now() + 10_000;
      while (!ring.consumerBell.isSleeping() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      expect(ring.consumerBell.isSleeping()).toBe(true);
      await new Promise((r) => setTimeout(r, 50)); // it is in Atomics.wait by now (or about to be)
      const before = ring.consumerBell.wakeCount();
      expect(ring.tryPush(e(seq), seq * 2.5)).toBe(true);
      expect(ring.consumerBell.wakeCount()).toBe(before + 1); // ring() found the flag and notified
      while (ring.size() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    }
    const stats = await result;
    expect(stats.errors).toBe(0);
    expect(stats.received).toBe(3);
    // Each entry found the worker asleep ('woken'); on a very busy machine the worker may
    // still have been between raising its flag and re-checking ('not-empty').
    expect(stats.woken + stats.notEmpty).toBe(3);
    expect(stats.woken).toBeGreaterThanOrEqual(1);
    expect(stats.timedOut).toBe(0);
    expect(stats.wakeLatencyMs).toBeLessThan(5_000); // the doorbell, not the 30 s timeout
  });
});
