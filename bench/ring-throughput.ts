/**
 * Question: how fast does our SPSC ring move 16-byte descriptors between threads, next to
 * ringbuf.js, and what do a ring round trip and a postMessage round trip cost?
 *
 * Models: producer on the main thread, an awake (spinning) consumer in a worker that
 * reads every entry (sequence check + checksum); batches of 1, 16 and 256 entries per
 * publish; both rings 1024 entries deep (ringbuf.js: 4096 u32). Entries/s is measured on
 * the producer from the first push until the consumer has released the last entry.
 * Round trips: one 16-byte entry out and back, p50 over many samples.
 * Does not model: sleeping consumers (doorbell wake-ups cost ~25 µs, see DESIGN.md §4).
 *
 * Runs compiled: `node dist/bench/...`; the worker is dist/bench/ring-consumer-worker.js.
 */
import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { SpscRing } from '../shared/ring/spsc-ring.js';
import { type Metric, percentile } from './metric.js';
import { BENCH_WORKER_MARK, type BenchReply, type BenchRequest, ECHO_STOP } from './ring-consumer-worker.js';

export type { Metric } from './metric.js';

const BENCH = 'ring-throughput';
const DEPTH = 1024;
const ENTRY_BYTES = 16;
const ENTRY_WORDS = ENTRY_BYTES / 4;
const BATCHES = [1, 16, 256] as const;
const STALL_MS = 10_000;
const WORKER_URL = new URL('./ring-consumer-worker.js', import.meta.url);

/** A worker plus an ordered inbox of its replies. */
class BenchWorker {
  readonly worker = new Worker(WORKER_URL, { workerData: { mark: BENCH_WORKER_MARK } });
  private readonly inbox: BenchReply[] = [];
  private waiter: ((m: BenchReply) => void) | undefined;
  private failure: Error | undefined;

  constructor() {
    this.worker.on('message', (m: BenchReply) => {
      const w = this.waiter;
      if (w) { this.waiter = undefined; w(m); } else this.inbox.push(m);
    });
    this.worker.on('error', (e) => { this.failure = e; });
  }

  post(m: BenchRequest): void {
    this.worker.postMessage(m);
  }

  next(timeoutMs = 30_000): Promise<BenchReply> {
    if (this.failure) return Promise.reject(this.failure);
    const m = this.inbox.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiter = undefined; reject(new Error(`${BENCH}: worker silent for ${timeoutMs} ms`)); }, timeoutMs);
      this.waiter = (r) => { clearTimeout(t); resolve(r); };
    });
  }

  async expect<K extends BenchReply['kind']>(kind: K): Promise<Extract<BenchReply, { kind: K }>> {
    const m = await this.next();
    if (m.kind !== kind) throw new Error(`${BENCH}: expected '${kind}' from worker, got '${m.kind}'`);
    return m as Extract<BenchReply, { kind: K }>;
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

function checkDone(what: string, d: Extract<BenchReply, { kind: 'done' }>, sent: number): void {
  if (d.received !== sent || d.errors !== 0) {
    throw new Error(`${BENCH}: ${what}: consumer got ${d.received}/${sent} entries, ${d.errors} out of order`);
  }
}

function makeBatch(batch: number): Uint32Array {
  const src = new Uint32Array(batch * ENTRY_WORDS);
  for (let i = 0; i < batch; i++) {
    src[i * ENTRY_WORDS + 1] = 0xdeadbeef;
    src[i * ENTRY_WORDS + 2] = i;
    src[i * ENTRY_WORDS + 3] = 0x5a5a5a5a;
  }
  return src;
}

/** The shared count the consumer stops at (see BenchRequest). */
function limitCell(total: number): Int32Array {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  cell[0] = total;
  return cell;
}

/**
 * One throughput measurement: `push(src, b, seq)` until `total` entries or `budgetMs`
 * (checked every 64 batches), then waits until the consumer has taken everything.
 * Returns millions of entries per second.
 */
async function measure(
  w: BenchWorker, what: string, batch: number, total: number, budgetMs: number, limit: Int32Array,
  push: (src: Uint32Array, b: number, seq: number) => void, drained: () => boolean,
): Promise<number> {
  await w.expect('ready');
  const src = makeBatch(batch);
  const t0 = performance.now();
  let seq = 0;
  let batches = 0;
  while (seq < total) {
    const b = Math.min(batch, total - seq);
    for (let i = 0; i < b; i++) src[i * ENTRY_WORDS] = seq + i;
    push(src, b, seq);
    seq += b;
    if ((++batches & 63) === 0 && performance.now() - t0 > budgetMs) break;
  }
  Atomics.store(limit, 0, seq); // seq-cst: the consumer re-reads it when its ring runs dry
  while (!drained()) {
    if (performance.now() - t0 > budgetMs + STALL_MS) throw new Error(`${BENCH}: ${what}: consumer stalled`);
  }
  const ms = performance.now() - t0;
  checkDone(what, await w.expect('done'), seq);
  return seq / ms / 1e3;
}

/** Our ring: entries per second (millions), `batch` entries per pushMany (one publish). */
async function ringMops(w: BenchWorker, batch: number, total: number, budgetMs: number): Promise<number> {
  const ring = SpscRing.create({ depth: DEPTH, entryBytes: ENTRY_BYTES }, { role: 'producer' });
  const limit = limitCell(total);
  w.post({ cmd: 'ring', ring: ring.handle(), limit: limit.buffer as SharedArrayBuffer });
  const t0 = performance.now();
  let spins = 0;
  return measure(w, `ring b${batch}`, batch, total, budgetMs, limit, (src, b, seq) => {
    let done = 0;
    while (done < b) {
      const n = ring.pushMany(src, b - done, seq, done);
      if (n === 0 && ++spins % 4096 === 0 && performance.now() - t0 > budgetMs + STALL_MS) {
        throw new Error(`${BENCH}: ring producer stalled`); // spins while full, not forever
      }
      done += n;
    }
  }, () => ring.loadCons() === ring.loadProd());
}

/** ringbuf.js: the same entries (4 u32 each), the same batches and depth, push/pop. */
async function ringbufjsMops(w: BenchWorker, batch: number, total: number, budgetMs: number): Promise<number> {
  const sab = RingBuffer.getStorageForCapacity(DEPTH * ENTRY_WORDS, Uint32Array as never);
  const rb = new RingBuffer(sab, Uint32Array as never);
  const limit = limitCell(total);
  w.post({ cmd: 'ringbufjs', sab, limit: limit.buffer as SharedArrayBuffer, popWords: DEPTH * ENTRY_WORDS });
  const t0 = performance.now();
  let spins = 0;
  return measure(w, `ringbuf.js b${batch}`, batch, total, budgetMs, limit, (src, b) => {
    let done = 0;
    while (done < b * ENTRY_WORDS) {
      const n = rb.push(src as never, b * ENTRY_WORDS - done, done);
      if (n === 0 && ++spins % 4096 === 0 && performance.now() - t0 > budgetMs + STALL_MS) {
        throw new Error(`${BENCH}: ringbuf.js producer stalled`); // spins while full, not forever
      }
      done += n;
    }
  }, () => rb.empty());
}

/** Ring round trip with an awake (spinning) echo worker: p50 and p99 in µs. */
async function measureRingRtt(w: BenchWorker, samples: number, budgetMs: number): Promise<{ p50Us: number; p99Us: number }> {
  const g = { depth: 64, entryBytes: ENTRY_BYTES };
  const req = SpscRing.create(g, { role: 'producer' });
  const resp = SpscRing.create(g, { role: 'consumer' });
  w.post({ cmd: 'echo-ring', req: req.handle(), resp: resp.handle() });
  await w.expect('ready');
  const entry = new Uint32Array(ENTRY_WORDS);
  const warm = Math.min(2000, samples);
  const us = new Float64Array(samples);
  const start = performance.now();
  let n = 0;
  for (let i = -warm; i < samples; i++) {
    entry[0] = i + warm; // never ECHO_STOP
    const t0 = performance.now();
    req.tryPush(entry, 0);
    while (resp.available() === 0) {
      if (performance.now() - t0 > STALL_MS) throw new Error(`${BENCH}: echo worker stalled`);
    }
    resp.release(1);
    const t1 = performance.now();
    if (i >= 0) {
      us[n++] = (t1 - t0) * 1e3;
      if (t1 - start > budgetMs) break;
    }
  }
  entry[0] = ECHO_STOP;
  req.tryPush(entry, 0);
  await w.expect('done');
  return { p50Us: percentile(us.subarray(0, n), 50), p99Us: percentile(us.subarray(0, n), 99) };
}

/**
 * postMessage round trip to a worker that answers at once: p50 and p99 in µs over
 * `samples` sequential messages after a warm-up (fewer if `budgetMs` runs out first).
 * Spawns and ends its own worker.
 */
export async function measurePostMessageRtt(samples: number, budgetMs = Infinity): Promise<{ p50Us: number; p99Us: number }> {
  const w = new BenchWorker();
  try {
    const warm = Math.min(500, samples);
    const us = new Float64Array(samples);
    const start = performance.now();
    let n = 0;
    for (let i = -warm; i < samples; i++) {
      const t0 = performance.now();
      w.post({ cmd: 'pm-echo', i });
      const r = await w.expect('pm-echo');
      const t1 = performance.now();
      if (r.i !== i) throw new Error(`${BENCH}: postMessage echo out of order`);
      if (i >= 0) {
        us[n++] = (t1 - t0) * 1e3;
        if (t1 - start > budgetMs) break;
      }
    }
    return { p50Us: percentile(us.subarray(0, n), 50), p99Us: percentile(us.subarray(0, n), 99) };
  } finally {
    await w.terminate();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(opts: { quick: boolean; verbose?: boolean }): Promise<Metric[]> {
  const reps = opts.quick ? 5 : 9;
  // Each measurement stops at `total` entries or its time budget, whichever comes first
  // (~50–150 ms per measurement on an idle 2-core machine; the budget bounds a busy one).
  const totalFor = (batch: number) => (opts.quick ? 1 : 4) * (batch === 1 ? 2_000_000 : batch === 16 ? 8_000_000 : 16_000_000);
  const budgetMs = opts.quick ? 150 : 600;
  const rttSamples = opts.quick ? 20_000 : 100_000;
  const pmSamples = opts.quick ? 2_000 : 10_000;
  const loadBefore = loadavg()[0];

  const ours = new Map<number, number[]>(BATCHES.map((b) => [b, []]));
  const theirs = new Map<number, number[]>(BATCHES.map((b) => [b, []]));
  const w = new BenchWorker();
  let ringRtt: { p50Us: number; p99Us: number };
  try {
    // Warm-up round (JIT on both threads), not recorded.
    for (const b of BATCHES) {
      await ringMops(w, b, 200_000, budgetMs);
      await ringbufjsMops(w, b, 200_000, budgetMs);
    }
    // Interleaved repetitions so drift (turbo, other load) hits both rings alike.
    for (let r = 0; r < reps; r++) {
      for (const b of BATCHES) {
        ours.get(b)!.push(await ringMops(w, b, totalFor(b), budgetMs));
        theirs.get(b)!.push(await ringbufjsMops(w, b, totalFor(b), budgetMs));
      }
    }
    if (opts.verbose) {
      for (const b of BATCHES) {
        const f = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
        console.log(`${BENCH} b${b}: ring [${f(ours.get(b)!)}] ringbuf.js [${f(theirs.get(b)!)}] Mops/s`);
      }
    }
    ringRtt = await measureRingRtt(w, rttSamples, opts.quick ? 500 : 2_000);
  } finally {
    await w.terminate();
  }
  const pm = await measurePostMessageRtt(pmSamples, opts.quick ? 1_000 : 4_000);

  const out: Metric[] = [];
  const m = (metric: string, value: number, unit: string) => out.push({ bench: BENCH, metric, value, unit });
  for (const b of BATCHES) m(`ring_b${b}_mops`, median(ours.get(b)!), 'Mops/s');
  for (const b of BATCHES) m(`ringbufjs_b${b}_mops`, median(theirs.get(b)!), 'Mops/s');
  // Ratios: median over repetitions of (ours / theirs) measured back to back, which
  // cancels slow drift of the machine better than a ratio of medians.
  const ratio = (b: number) => median(ours.get(b)!.map((v, i) => v / theirs.get(b)![i]));
  m('ring_vs_ringbufjs_ratio', ratio(256), 'x');
  m('ring_vs_ringbufjs_ratio_b16', ratio(16), 'x');
  m('ring_vs_ringbufjs_ratio_b1', ratio(1), 'x');
  m('ring_rtt_p50_us', ringRtt.p50Us, 'µs');
  m('ring_rtt_p99_us', ringRtt.p99Us, 'µs');
  m('postmessage_rtt_p50_us', pm.p50Us, 'µs');
  m('postmessage_rtt_p99_us', pm.p99Us, 'µs');
  // Spinning benchmarks need both cores: a 1-minute load above ~0.5 before or after the
  // run means other processes shared the cores and the figures above are unreliable.
  m('host_loadavg_1m_before', loadBefore, 'load');
  m('host_loadavg_1m_after', loadavg()[0], 'load');
  return out;
}
