/**
 * The worker side of bench/ring-throughput.ts (runs compiled, from dist/bench/).
 *
 * Models: an awake consumer that spins on its ring (our SpscRing or ringbuf.js), checks
 * the sequence number in word 0 of every 16-byte entry and folds the other words into a
 * checksum; an echo server for ring and postMessage round trips.
 * Does not model: sleeping (the throughput question is about an awake consumer).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { SpscRing, type SpscRingHandle } from '../shared/ring/spsc-ring.js';

/**
 * `limit`: one Int32 in shared memory holding how many entries the producer will send.
 * It starts at the planned total; a producer that runs out of time budget lowers it to
 * what it actually sent (the consumer re-reads it only when its ring is empty).
 */
export type BenchRequest =
  | { cmd: 'ring'; ring: SpscRingHandle; limit: SharedArrayBuffer }
  | { cmd: 'ringbufjs'; sab: SharedArrayBuffer; limit: SharedArrayBuffer; popWords: number }
  | { cmd: 'echo-ring'; req: SpscRingHandle; resp: SpscRingHandle }
  | { cmd: 'pm-echo'; i: number }
  | { cmd: 'exit' };

export type BenchReply =
  | { kind: 'ready' }
  | { kind: 'done'; received: number; errors: number; checksum: number }
  | { kind: 'pm-echo'; i: number };

/** Gives up when the producer makes no progress for this long (no hung bench). */
const STALL_MS = 10_000;
/** Word 0 of the entry that stops an echo server. */
export const ECHO_STOP = 0xffffffff;

/** workerData marker: only a worker spawned by the bench serves requests (importing this
 * module elsewhere, even from another worker, only brings in its types and constants). */
export const BENCH_WORKER_MARK = 'ring-throughput-worker';

const port = parentPort;
if (port && (workerData as { mark?: string } | null)?.mark === BENCH_WORKER_MARK) {
  port.on('message', (m: BenchRequest) => {
    switch (m.cmd) {
      case 'ring': return port.postMessage(consumeRing(m.ring, new Int32Array(m.limit)));
      case 'ringbufjs': return port.postMessage(consumeRingbufjs(m.sab, new Int32Array(m.limit), m.popWords));
      case 'echo-ring': return port.postMessage(echoRing(m.req, m.resp));
      case 'pm-echo': return port.postMessage({ kind: 'pm-echo', i: m.i } satisfies BenchReply);
      case 'exit': return port.close();
    }
  });
}

function consumeRing(h: SpscRingHandle, limitCell: Int32Array): BenchReply {
  const ring = SpscRing.attach(h, { role: 'consumer' });
  const u32 = ring.u32;
  const ew = ring.entryWords;
  port!.postMessage({ kind: 'ready' } satisfies BenchReply);
  let expected = 0;
  let errors = 0;
  let checksum = 0;
  let idle = 0;
  let lastProgress = performance.now();
  let total = Atomics.load(limitCell, 0); // seq-cst: the planned count
  while (expected < total) {
    const n = ring.available();
    if (n === 0) {
      total = Atomics.load(limitCell, 0); // seq-cst: lowered by a producer out of budget
      if (++idle === 1 << 16) {
        idle = 0;
        if (performance.now() - lastProgress > STALL_MS) break;
      }
      continue;
    }
    // In place, in at most two contiguous runs (before and after the wrap).
    const s0 = ring.slot(0);
    const run1 = Math.min(n, ring.depth - s0);
    for (let b = s0 * ew, end = (s0 + run1) * ew; b < end; b += ew) {
      if (u32[b] !== expected) errors++;
      checksum = (checksum ^ u32[b + 1] ^ u32[b + 2] ^ u32[b + 3]) >>> 0;
      expected++;
    }
    for (let b = 0, end = (n - run1) * ew; b < end; b += ew) {
      if (u32[b] !== expected) errors++;
      checksum = (checksum ^ u32[b + 1] ^ u32[b + 2] ^ u32[b + 3]) >>> 0;
      expected++;
    }
    ring.release(n);
    lastProgress = performance.now();
  }
  return { kind: 'done', received: expected, errors, checksum };
}

function consumeRingbufjs(sab: SharedArrayBuffer, limitCell: Int32Array, popWords: number): BenchReply {
  const rb = new RingBuffer(sab, Uint32Array as never);
  const buf = new Uint32Array(popWords);
  port!.postMessage({ kind: 'ready' } satisfies BenchReply);
  let expected = 0;
  let errors = 0;
  let checksum = 0;
  let idle = 0;
  let lastProgress = performance.now();
  let total = Atomics.load(limitCell, 0); // seq-cst: the planned count
  while (expected < total) {
    const w = rb.pop(buf as never, popWords);
    if (w === 0) {
      total = Atomics.load(limitCell, 0); // seq-cst: lowered by a producer out of budget
      if (++idle === 1 << 16) {
        idle = 0;
        if (performance.now() - lastProgress > STALL_MS) break;
      }
      continue;
    }
    for (let b = 0; b < w; b += 4) {
      if (buf[b] !== expected) errors++;
      checksum = (checksum ^ buf[b + 1] ^ buf[b + 2] ^ buf[b + 3]) >>> 0;
      expected++;
    }
    lastProgress = performance.now();
  }
  return { kind: 'done', received: expected, errors, checksum };
}

/** Copies every request entry of `req` into `resp` until an ECHO_STOP entry. */
function echoRing(reqH: SpscRingHandle, respH: SpscRingHandle): BenchReply {
  const req = SpscRing.attach(reqH, { role: 'consumer' });
  const resp = SpscRing.attach(respH, { role: 'producer' });
  const entry = new Uint32Array(req.entryWords);
  const ew = req.entryWords;
  port!.postMessage({ kind: 'ready' } satisfies BenchReply);
  let echoed = 0;
  let idle = 0;
  let lastProgress = performance.now();
  for (;;) {
    if (req.available() === 0) {
      if (++idle === 1 << 16) {
        idle = 0;
        if (performance.now() - lastProgress > STALL_MS) break;
      }
      continue;
    }
    const s = req.slot(0);
    for (let j = 0; j < ew; j++) entry[j] = req.u32[s * ew + j];
    const stamp = req.stamps[s];
    req.release(1);
    if (entry[0] === ECHO_STOP) break;
    while (!resp.tryPush(entry, stamp)) { /* spin: the main thread drains at once */ }
    echoed++;
    lastProgress = performance.now();
  }
  return { kind: 'done', received: echoed, errors: 0, checksum: 0 };
}
