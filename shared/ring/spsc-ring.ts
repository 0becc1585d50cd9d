/**
 * SPSC ring: the hardware-shaped queue between the coordinator and an IOMMU worker
 * (command ring, event ring, page-request ring), in a SharedArrayBuffer.
 *
 * Models: an SMMUv3-style circular queue (HARDWARE.md §1.2.1): 2^log2 fixed-size entries,
 * PROD and CONS registers with a wrap bit (shared/layout/queue-pointer.ts), so all `depth`
 * slots are usable; event-queue overflow as the hardware reports it (PROD.OVFLG toggled,
 * acknowledged through CONS.OVACKFLG, plus a lost-entry count); a modelled-time stamp on
 * every entry (DESIGN.md §5); producer back-pressure for command rings; doorbells.
 * Does not model: multi-producer insertion (Linux's cmpxchg + valid-map scheme), CMDQ
 * errors (CONS.ERR), MSI on overflow, the VT-d/AMD register forms.
 */
import {
  Q_LOG2_MAX, Q_OVF, qFree, qInc, qUsed,
} from '../layout/queue-pointer.js';
import { simError } from '../errors.js';
import { Doorbell } from './doorbell.js';

export interface RingGeometry {
  /** Number of entries: a power of two, ≥ 2. */
  readonly depth: number;
  /** Bytes per entry: a multiple of 4 (16 for commands and PRI records, 32 for events). */
  readonly entryBytes: number;
}

/** What one side posts to the other so it can attach (structured-clonable). */
export interface SpscRingHandle {
  readonly sab: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly geometry: RingGeometry;
}

export type RingRole = 'producer' | 'consumer';

export interface SpscRingOptions {
  /**
   * Rung by publish(); the consumer sleeps on it. Default: the ring's own doorbell (in
   * its header). Both sides must use the same one: pass the consumer thread's doorbell
   * when it serves several rings.
   */
  readonly consumerBell?: Doorbell;
  /** Rung by release() when the producer waits for space. Default: the ring's own. */
  readonly producerBell?: Doorbell;
  /** Fixes the role of this end up front (otherwise set by the first role-specific call). */
  readonly role?: RingRole;
}

// ---- Memory layout: written once, used everywhere below --------------------------------
const LINE = 64;
const LINE_WORDS = LINE / 4;
/** Uint32 word offsets in the header. Each line has one writer, except producerWaiting. */
const W_PROD = 0; //                   line 0, producer: PROD (index | wrap | OVFLG)
const W_LOST = 1; //                   line 0, producer: entries lost to overflow (u32, wraps)
const W_CONS = LINE_WORDS; //          line 1, consumer: CONS (index | wrap | OVACKFLG)
const W_LOST_ACK = LINE_WORDS + 1; //  line 1, consumer: lost count acknowledged
const W_WAITING = 2 * LINE_WORDS; //   line 2, producer sets, consumer clears: producerWaiting
const W_MAGIC = 3 * LINE_WORDS; //     line 3, read-only after init: geometry check
const W_DEPTH = W_MAGIC + 1;
const W_ENTRY_BYTES = W_MAGIC + 2;
const CONSUMER_BELL_OFFSET = 4 * LINE; // line 4: the ring's own consumer doorbell
const PRODUCER_BELL_OFFSET = 5 * LINE; // line 5: the ring's own producer doorbell
const HEADER_BYTES = 6 * LINE;
const RING_MAGIC = 0x52494e47; // 'RING'

/** Copies shorter than this many words use a plain loop (no subarray allocation). */
const SET_THRESHOLD_WORDS = 64;

const ROLE_PRODUCER = 1;
const ROLE_CONSUMER = 2;

const align64 = (n: number) => Math.ceil(n / LINE) * LINE;

function checkGeometry(g: RingGeometry): number {
  const { depth, entryBytes } = g;
  if (!Number.isInteger(depth) || depth < 2 || depth > 2 ** Q_LOG2_MAX || (depth & (depth - 1)) !== 0) {
    throw simError('EINVAL', 'ring-geometry', 'depth-not-power-of-two', `depth ${depth}`);
  }
  if (!Number.isInteger(entryBytes) || entryBytes < 4 || entryBytes % 4 !== 0) {
    throw simError('EINVAL', 'ring-geometry', 'entry-bytes-not-multiple-of-4', `entryBytes ${entryBytes}`);
  }
  return Math.log2(depth);
}

/**
 * A single-producer/single-consumer ring of fixed-size entries in shared memory.
 *
 * Contract
 * - Exactly one producer and one consumer, each a fixed thread. An end (object) is used
 *   in one role; roles never change without outside synchronisation. Each thread builds
 *   its own `SpscRing` over the same memory (`create()` on one side, `new SpscRing(sab,
 *   byteOffset, geometry)` or `SpscRing.attach(handle)` on the other).
 * - The producer fills slots `slot(0) … slot(k-1)` with plain typed-array writes (entry i
 *   starts at `u32[i * entryWords]`, its modelled time in `stamps[i]`), then `publish(k)`:
 *   ONE `Atomics.store` of PROD makes the whole batch visible. The consumer calls
 *   `available()`, reads `slot(0) … slot(n-1)` in place, then `release(n)`: one store of
 *   CONS. A slot is the producer's until published and the consumer's until released.
 * - PROD and CONS use the SMMUv3 encoding (index, wrap bit, bit 31 overflow flag): all
 *   `depth` slots are usable; full = same index, different wrap bit.
 * - Each side caches the other side's index and reloads it only when the cache says full
 *   (producer) or empty (consumer): observers can be late, never wrong in the unsafe
 *   direction (the producer may see fewer free slots, the consumer fewer entries).
 * - Event/PRI rings never block the producer: `pushOrOverflow()` drops the entry, toggles
 *   PROD's overflow flag and counts it; the consumer sees `overflowed()` and acknowledges
 *   with `takeLost()`. Command rings apply back-pressure: `waitForSpace()` (async, for
 *   the coordinator) or `waitForSpaceSync()` (blocking, workers only).
 * - Wake-ups: publish() rings the consumer's doorbell, release() rings the producer's
 *   only if it flagged `producerWaiting`. Both are no-ops (one atomic load) when nobody
 *   sleeps.
 * - Memory ordering: JavaScript Atomics are sequentially consistent. A publish store
 *   orders every earlier plain write of slots and stamps before it; the consumer's
 *   `Atomics.load` of PROD that observes it makes them visible (and symmetrically for
 *   CONS: the producer never overwrites a slot the consumer still reads).
 * - Layout: 64-byte header lines (PROD, CONS, producerWaiting, geometry, two doorbells),
 *   then `depth * entryBytes` slot bytes, then one Float64 stamp and one Uint32 input
 *   sequence number per slot; `bytesFor()`
 *   gives the total (a multiple of 64); `byteOffset` must be a multiple of 64.
 */
export class SpscRing {
  readonly sab: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly depth: number;
  readonly log2: number;
  readonly entryBytes: number;
  readonly entryWords: number;
  /** The slots: entry i occupies `u32[i * entryWords … (i + 1) * entryWords - 1]`. */
  readonly u32: Uint32Array;
  /** Modelled time (ns) of the entry in each slot. */
  readonly stamps: Float64Array;
  /**
   * Input sequence number of the entry in each slot: the order in which the producer
   * accepted entries across several rings (a worker serves its command and DMA rings in
   * this one order, so its results do not depend on host timing).
   */
  readonly seqs: Uint32Array;
  /** waitForSpace() calls of this (producer) object still waiting. */
  private asyncWaiters = 0;
  readonly consumerBell: Doorbell;
  readonly producerBell: Doorbell;

  private readonly hdr: Uint32Array;
  private readonly idxMask: number;
  /** Producer-local: PROD as last stored (the producer is its only writer). */
  private prod: number;
  /** Producer-local: CONS as last loaded. */
  private consSeen: number;
  /** Consumer-local: CONS as last stored (the consumer is its only writer). */
  private cons: number;
  /** Consumer-local: PROD as last loaded. */
  private prodSeen: number;
  private roles = 0;

  /** Bytes of shared memory a ring of this geometry takes (a multiple of 64). */
  static bytesFor(g: RingGeometry): number {
    checkGeometry(g);
    return HEADER_BYTES + align64(g.depth * g.entryBytes) + align64(g.depth * 8) + align64(g.depth * 4);
  }

  /** A ring in its own SharedArrayBuffer. */
  static create(g: RingGeometry, opts: SpscRingOptions = {}): SpscRing {
    return new SpscRing(new SharedArrayBuffer(SpscRing.bytesFor(g)), 0, g, opts);
  }

  /** Attaches to the ring another thread described with `handle()`. */
  static attach(h: SpscRingHandle, opts: SpscRingOptions = {}): SpscRing {
    return new SpscRing(h.sab, h.byteOffset, h.geometry, opts);
  }

  /**
   * Builds this thread's end of the ring at `byteOffset` of `sab`. Zeroed memory is an
   * empty ring (the first end to attach writes the geometry); otherwise the geometry
   * must match the one already there.
   */
  constructor(sab: SharedArrayBuffer, byteOffset: number, g: RingGeometry, opts: SpscRingOptions = {}) {
    this.log2 = checkGeometry(g);
    const bytes = SpscRing.bytesFor(g);
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % LINE !== 0 || byteOffset + bytes > sab.byteLength) {
      throw simError('EINVAL', 'ring-attach', 'bad-offset',
        `offset ${byteOffset} + ${bytes} bytes in a ${sab.byteLength}-byte buffer (must be 64-aligned)`);
    }
    this.sab = sab;
    this.byteOffset = byteOffset;
    this.depth = g.depth;
    this.entryBytes = g.entryBytes;
    this.entryWords = g.entryBytes / 4;
    this.idxMask = g.depth - 1;
    this.hdr = new Uint32Array(sab, byteOffset, HEADER_BYTES / 4);
    this.u32 = new Uint32Array(sab, byteOffset + HEADER_BYTES, g.depth * this.entryWords);
    this.stamps = new Float64Array(sab, byteOffset + HEADER_BYTES + align64(g.depth * g.entryBytes), g.depth);
    this.seqs = new Uint32Array(sab, byteOffset + HEADER_BYTES + align64(g.depth * g.entryBytes) + align64(g.depth * 8), g.depth);

    // Both ends may attach at once to zeroed memory: they write the same values.
    const magic = Atomics.load(this.hdr, W_MAGIC); // acquire: pairs with the magic store below
    if (magic === 0) {
      Atomics.store(this.hdr, W_DEPTH, g.depth); // seq-cst: before the magic
      Atomics.store(this.hdr, W_ENTRY_BYTES, g.entryBytes); // seq-cst: before the magic
      Atomics.store(this.hdr, W_MAGIC, RING_MAGIC); // release: publishes the geometry words
    } else {
      const depth = Atomics.load(this.hdr, W_DEPTH); // acquire: after the magic was seen
      const entryBytes = Atomics.load(this.hdr, W_ENTRY_BYTES); // acquire: idem
      if (magic !== RING_MAGIC || depth !== g.depth || entryBytes !== g.entryBytes) {
        throw simError('EINVAL', 'ring-attach', 'geometry-mismatch', `ring at ${byteOffset} holds depth ${depth} × ${entryBytes} B`);
      }
    }
    // An end may attach after traffic started: both indices as they are now.
    this.prod = this.prodSeen = Atomics.load(this.hdr, W_PROD); // acquire: pairs with publish()
    this.cons = this.consSeen = Atomics.load(this.hdr, W_CONS); // acquire: pairs with release()

    this.consumerBell = opts.consumerBell ?? new Doorbell(sab, byteOffset + CONSUMER_BELL_OFFSET);
    this.producerBell = opts.producerBell ?? new Doorbell(sab, byteOffset + PRODUCER_BELL_OFFSET);
    if (opts.role === 'producer') this.roles = ROLE_PRODUCER;
    if (opts.role === 'consumer') this.roles = ROLE_CONSUMER;
  }

  /** What to post to the other thread so it can `SpscRing.attach()` (doorbells apart). */
  handle(): SpscRingHandle {
    return { sab: this.sab, byteOffset: this.byteOffset, geometry: { depth: this.depth, entryBytes: this.entryBytes } };
  }

  // ---- producer ------------------------------------------------------------------------

  /**
   * Free slots the producer may fill now. Reloads CONS only when the cached value shows
   * fewer than `want` (default 1: only when it says full), so it can be late (report
   * fewer than there are), never more. Ask for the batch size you need.
   */
  freeSlots(want = 1): number {
    return this.freeFor(want);
  }

  /** Slot index of the k-th free entry (producer). */
  prodSlot(k: number): number {
    return (this.prod + k) & this.idxMask;
  }

  /**
   * Slot index of the k-th entry of this end: the k-th free slot on a producer end, the
   * k-th available entry on a consumer end. An end used in both roles (single-thread
   * tests) must say which with prodSlot()/consSlot().
   */
  slot(k: number): number {
    if (this.roles === ROLE_PRODUCER) return (this.prod + k) & this.idxMask;
    if (this.roles === ROLE_CONSUMER) return (this.cons + k) & this.idxMask;
    throw new Error(`SpscRing.slot(): role of this end is ${this.roles === 0 ? 'not set' : 'both'}; ` +
      'pass { role } or use prodSlot()/consSlot()');
  }

  /**
   * Makes the next n filled slots visible to the consumer with one store of PROD, then
   * rings the consumer's doorbell (one atomic load when it is awake). Throws RangeError
   * if n exceeds the free slots (a producer bug: it wrote slots it did not own).
   */
  publish(n: number): void {
    if (n > this.freeFor(n) || n < 0) {
      throw new RangeError(`SpscRing.publish(${n}): only ${this.freeFor(n)} slots free`);
    }
    this.prod = qInc(this.prod, this.log2, n);
    Atomics.store(this.hdr, W_PROD, this.prod); // release: publishes slots [prod, prod+n)
    this.consumerBell.ring();
  }

  /**
   * Copies one entry (`entryWords` words of `words`; missing words are 0) and its stamp
   * into the next slot and publishes it. False when the ring is full.
   */
  tryPush(words: ArrayLike<number>, stamp: number): boolean {
    if (this.freeSlots() === 0) return false;
    const s = this.prod & this.idxMask;
    const ew = this.entryWords;
    const u32 = this.u32;
    const base = s * ew;
    for (let j = 0; j < ew; j++) u32[base + j] = words[j];
    this.stamps[s] = stamp;
    this.prod = qInc(this.prod, this.log2, 1);
    Atomics.store(this.hdr, W_PROD, this.prod); // release: publishes slot [prod, prod+1)
    this.consumerBell.ring();
    return true;
  }

  /**
   * Copies up to `count` entries from `src` (entry i at `src[(first + i) * entryWords]`)
   * and publishes them with one store; returns how many fit (0 when full, never blocks).
   * `stamps`: one per entry (read from index `first`), or one number for all; default 0.
   */
  pushMany(src: Uint32Array, count: number, stamps?: ArrayLike<number> | number, first = 0): number {
    this.roles |= ROLE_PRODUCER;
    const n = Math.min(count, this.freeFor(count));
    if (n <= 0) return 0;
    const ew = this.entryWords;
    const start = this.prod & this.idxMask;
    const part1 = Math.min(n, this.depth - start);
    copyWords(src, first * ew, this.u32, start * ew, part1 * ew);
    if (part1 < n) copyWords(src, (first + part1) * ew, this.u32, 0, (n - part1) * ew);
    if (typeof stamps === 'object') {
      copyStamps(stamps, first, this.stamps, start, part1);
      if (part1 < n) copyStamps(stamps, first + part1, this.stamps, 0, n - part1);
    } else {
      fillStamps(this.stamps, stamps ?? 0, start, part1);
      if (part1 < n) fillStamps(this.stamps, stamps ?? 0, 0, n - part1);
    }
    this.prod = qInc(this.prod, this.log2, n);
    Atomics.store(this.hdr, W_PROD, this.prod); // release: publishes slots [prod, prod+n)
    this.consumerBell.ring();
    return n;
  }

  /**
   * The event/PRI queue write: pushes the entry, or — when the ring is full — drops it
   * as the hardware does: counts it as lost and raises the overflow flag (toggles bit 31
   * of PROD unless an overflow is already pending). Never blocks. False when dropped.
   */
  pushOrOverflow(words: ArrayLike<number>, stamp: number): boolean {
    if (this.tryPush(words, stamp)) return true;
    // consSeen was just reloaded by freeSlots(): is an overflow already pending?
    Atomics.add(this.hdr, W_LOST, 1); // seq-cst: counted before the flag shows
    if (((this.prod ^ this.consSeen) & Q_OVF) === 0) {
      this.prod = (this.prod ^ Q_OVF) >>> 0;
      Atomics.store(this.hdr, W_PROD, this.prod); // release: publishes the overflow flag
      this.consumerBell.ring();
    }
    return false;
  }

  /**
   * Waits without blocking the thread until `need` slots are free (coordinator-side
   * producer of a command ring). Sets producerWaiting, re-checks CONS, then awaits the
   * producer doorbell (Atomics.waitAsync). Rejects with ETIMEDOUT after `timeoutMs`.
   */
  async waitForSpace(need: number, timeoutMs = Infinity): Promise<void> {
    this.checkNeed(need);
    if (this.freeFor(need) >= need) return;
    const deadline = performance.now() + timeoutMs;
    this.asyncWaiters++;
    try {
      for (;;) {
        // Dekker pair with release(): flag up, then re-check CONS; release() stores CONS, then reads the flag.
        Atomics.store(this.hdr, W_WAITING, 1); // seq-cst: before the re-check's load of CONS
        const left = deadline - performance.now();
        if (left <= 0) throw simError('ETIMEDOUT', 'ring-wait-space', 'ring-full', `${need} slots`);
        await this.producerBell.sleepAsync(() => this.freeFor(need) < need, left);
        if (this.freeFor(need) >= need) return;
      }
    } finally {
      // The last waiter out takes the flag down: another may still sleep on it (several
      // async callers of one ring), and it would miss the consumer's next release.
      if (--this.asyncWaiters === 0) Atomics.store(this.hdr, W_WAITING, 0); // seq-cst: no more wake-ups needed
    }
  }

  /**
   * The blocking form for a worker-side producer: spins up to `spinNs`, then sleeps on
   * the producer doorbell until `need` slots are free or `timeoutMs` passes. Returns
   * false on timeout. Throws on the main thread.
   */
  waitForSpaceSync(need: number, timeoutMs: number, spinNs = 10_000): boolean {
    this.checkNeed(need);
    if (this.freeFor(need) >= need) return true;
    const deadline = performance.now() + timeoutMs;
    try {
      for (;;) {
        // Dekker pair with release(): flag up, then re-check CONS; release() stores CONS, then reads the flag.
        Atomics.store(this.hdr, W_WAITING, 1); // seq-cst: before the re-check's load of CONS
        const left = deadline - performance.now();
        if (left <= 0) return false;
        this.producerBell.spinThenSleep(() => this.freeFor(need) < need, spinNs, left);
        if (this.freeFor(need) >= need) return true;
      }
    } finally {
      Atomics.store(this.hdr, W_WAITING, 0); // seq-cst: no more wake-ups needed
    }
  }

  // ---- consumer ------------------------------------------------------------------------

  /**
   * Entries the consumer may read now. Reloads PROD only when the cached value shows
   * fewer than `want` (default 1: only when it says empty), so it can be late (report
   * fewer than there are), never more.
   */
  available(want = 1): number {
    return this.availFor(want);
  }

  /** Slot index of the k-th available entry (consumer). */
  consSlot(k: number): number {
    return (this.cons + k) & this.idxMask;
  }

  /**
   * Returns n read entries to the producer with one store of CONS; rings the producer's
   * doorbell if it flagged that it waits for space. Throws RangeError if n exceeds the
   * published entries.
   */
  release(n: number): void {
    if (n > this.availFor(n) || n < 0) {
      throw new RangeError(`SpscRing.release(${n}): only ${this.availFor(n)} entries available`);
    }
    this.cons = qInc(this.cons, this.log2, n);
    Atomics.store(this.hdr, W_CONS, this.cons); // release: frees slots [cons, cons+n) for the producer
    if (Atomics.load(this.hdr, W_WAITING) !== 0) { // seq-cst: after the CONS store (Dekker pair with waitForSpace())
      Atomics.store(this.hdr, W_WAITING, 0); // seq-cst: the producer raises it again if still short
      this.producerBell.ring();
    }
  }

  /**
   * Copies up to `max` entries into `dst` (entry i at `dst[i * entryWords]`) and their
   * stamps into `dstStamps`, then releases them; returns how many.
   */
  popMany(dst: Uint32Array, max: number, dstStamps?: Float64Array): number {
    const n = Math.min(max, this.available());
    if (n <= 0) return 0;
    const ew = this.entryWords;
    const start = this.cons & this.idxMask;
    const part1 = Math.min(n, this.depth - start);
    copyWords(this.u32, start * ew, dst, 0, part1 * ew);
    if (part1 < n) copyWords(this.u32, 0, dst, part1 * ew, (n - part1) * ew);
    if (dstStamps) {
      for (let i = 0; i < part1; i++) dstStamps[i] = this.stamps[start + i];
      for (let i = part1; i < n; i++) dstStamps[i] = this.stamps[i - part1];
    }
    this.release(n);
    return n;
  }

  /** Blocks a worker consumer until an entry is available (spin, then sleep). */
  waitForEntriesSync(timeoutMs: number, spinNs = 10_000): boolean {
    if (this.available() > 0) return true;
    this.consumerBell.spinThenSleep(() => this.available() === 0, spinNs, timeoutMs);
    return this.available() > 0;
  }

  /** Awaits (never blocks) until an entry is available or `timeoutMs` passes. */
  async waitForEntries(timeoutMs = Infinity): Promise<boolean> {
    if (this.available() > 0) return true;
    await this.consumerBell.sleepAsync(() => this.available() === 0, timeoutMs);
    return this.available() > 0;
  }

  /**
   * True while an overflow is unacknowledged: PROD's overflow flag differs from CONS's
   * acknowledgement, or lost entries have not been taken yet. Either end may ask.
   */
  overflowed(): boolean {
    // The producer counts a lost entry before it raises the flag.
    const prod = Atomics.load(this.hdr, W_PROD); // seq-cst: observer
    const cons = Atomics.load(this.hdr, W_CONS); // seq-cst: observer
    return ((prod ^ cons) & Q_OVF) !== 0 ||
      Atomics.load(this.hdr, W_LOST) !== Atomics.load(this.hdr, W_LOST_ACK); // seq-cst: observer
  }

  /**
   * Consumer: acknowledges an overflow (copies PROD's flag into CONS, as software writes
   * EVTQ_CONS.OVACKFLG) and returns how many entries were lost since the last call.
   */
  takeLost(): number {
    this.roles |= ROLE_CONSUMER;
    const prod = Atomics.load(this.hdr, W_PROD); // acquire: the flag to acknowledge
    this.cons = ((this.cons & ~Q_OVF) | (prod & Q_OVF)) >>> 0;
    Atomics.store(this.hdr, W_CONS, this.cons); // release: acknowledges the flag
    const lost = Atomics.load(this.hdr, W_LOST); // seq-cst: counted before that flag rose
    const lostNow = (lost - Atomics.load(this.hdr, W_LOST_ACK)) >>> 0; // consumer-only word
    Atomics.store(this.hdr, W_LOST_ACK, lost); // consumer-only word
    return lostNow;
  }

  /** Total entries lost to overflow since the ring was created (u32, wraps). */
  lostTotal(): number {
    return Atomics.load(this.hdr, W_LOST); // seq-cst: observer
  }

  // ---- observers (racy; for stats and tests) ------------------------------------------

  /** PROD as in shared memory now. */
  loadProd(): number {
    return Atomics.load(this.hdr, W_PROD); // seq-cst: observer
  }

  /** CONS as in shared memory now. */
  loadCons(): number {
    return Atomics.load(this.hdr, W_CONS); // seq-cst: observer
  }

  /** True while the producer has flagged that it waits for space. */
  producerWaiting(): boolean {
    return Atomics.load(this.hdr, W_WAITING) !== 0; // seq-cst: observer
  }

  /** Entries in the ring as the shared indices say now (may be stale at once). */
  size(): number {
    const cons = Atomics.load(this.hdr, W_CONS); // seq-cst: CONS first, so used never looks negative
    return qUsed(Atomics.load(this.hdr, W_PROD), cons, this.log2); // seq-cst: observer
  }

  // ---- internals -----------------------------------------------------------------------

  /** Free slots, reloading CONS when the cache shows fewer than `need`. */
  private freeFor(need: number): number {
    this.roles |= ROLE_PRODUCER;
    let free = qFree(this.prod, this.consSeen, this.log2);
    if (free < need) {
      this.consSeen = Atomics.load(this.hdr, W_CONS); // acquire: pairs with release(); those slots are free
      free = qFree(this.prod, this.consSeen, this.log2);
    }
    return free;
  }

  /** Entries available, reloading PROD when the cache shows fewer than `want`. */
  private availFor(want: number): number {
    this.roles |= ROLE_CONSUMER;
    let n = qUsed(this.prodSeen, this.cons, this.log2);
    if (n < want) {
      this.prodSeen = Atomics.load(this.hdr, W_PROD); // acquire: pairs with publish(); slots and stamps visible
      n = qUsed(this.prodSeen, this.cons, this.log2);
    }
    return n;
  }

  private checkNeed(need: number): void {
    if (!Number.isInteger(need) || need < 1 || need > this.depth) {
      throw simError('EINVAL', 'ring-wait-space', 'need-exceeds-depth', `need ${need}, depth ${this.depth}`);
    }
  }
}

/**
 * Stamp runs: a 4-way unrolled loop. On shared memory it beats Float64Array fill()
 * (~60 ns vs ~150–200 ns for 256 stamps on Node 20) and set() for short runs.
 */
function fillStamps(dst: Float64Array, v: number, to: number, n: number): void {
  let i = 0;
  for (const end4 = n - 3; i < end4; i += 4) {
    dst[to + i] = v;
    dst[to + i + 1] = v;
    dst[to + i + 2] = v;
    dst[to + i + 3] = v;
  }
  for (; i < n; i++) dst[to + i] = v;
}

function copyStamps(src: ArrayLike<number>, from: number, dst: Float64Array, to: number, n: number): void {
  for (let i = 0; i < n; i++) dst[to + i] = src[from + i];
}

/** Plain copy of `n` words: a loop for short runs, `set` (memmove) for long ones. */
function copyWords(src: Uint32Array, from: number, dst: Uint32Array, to: number, n: number): void {
  if (n < SET_THRESHOLD_WORDS) {
    for (let i = 0; i < n; i++) dst[to + i] = src[from + i];
  } else if (from === 0 && n === src.length) {
    dst.set(src, to); // no subarray object on the common whole-batch path
  } else {
    dst.set(src.subarray(from, from + n), to);
  }
}
