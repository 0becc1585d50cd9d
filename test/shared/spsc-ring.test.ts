import { mulberry32 } from '../../shared/prng.js';
import { describe, expect, it } from 'vitest';
import { isSimError } from '../../shared/errors.js';
import {
  Q_OVF, qEmpty, qFree, qFull, qIdx, qInc, qMake, qOvf, qUsed, qWrap,
} from '../../shared/layout/queue-pointer.js';
import { Doorbell } from '../../shared/ring/doorbell.js';
import { SpscRing } from '../../shared/ring/spsc-ring.js';


function expectSimError(fn: () => unknown, code: string, reason?: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSimError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    if (reason) expect((e as { reason: string }).reason).toBe(reason);
    return;
  }
  throw new Error(`expected ${code}`);
}

const entry = (seq: number, words: number) => Array.from({ length: words }, (_, j) => (j === 0 ? seq : (seq * 31 + j) >>> 0));

describe('queue pointer (SMMUv3 PROD/CONS encoding)', () => {
  it('splits a pointer into index, wrap bit and overflow flag', () => {
    const p = qMake(5, 1, 4, 1);
    expect(p).toBe((Q_OVF | 0x10 | 5) >>> 0);
    expect(qIdx(p, 4)).toBe(5);
    expect(qWrap(p, 4)).toBe(1);
    expect(qOvf(p)).toBe(1);
    expect(qOvf(qMake(5, 1, 4))).toBe(0);
  });

  it('flips the wrap bit every lap and keeps the overflow flag', () => {
    const log2 = 3;
    let p = 0;
    for (let i = 0; i < 8; i++) p = qInc(p, log2);
    expect(qIdx(p, log2)).toBe(0);
    expect(qWrap(p, log2)).toBe(1);
    p = qInc(p, log2, 8);
    expect(p).toBe(0);
    const o = (Q_OVF | qMake(7, 1, log2)) >>> 0;
    const n = qInc(o, log2, 3);
    expect(qOvf(n)).toBe(1);
    expect(qIdx(n, log2)).toBe(2);
    expect(qWrap(n, log2)).toBe(0);
    expect(n).toBe((Q_OVF | 2) >>> 0);
  });

  it('tells full from empty by the wrap bit, ignoring overflow flags', () => {
    const log2 = 4;
    const empty = qMake(3, 1, log2);
    const full = qMake(3, 0, log2);
    expect(qEmpty(empty, empty, log2)).toBe(true);
    expect(qFull(empty, empty, log2)).toBe(false);
    expect(qFull(full, empty, log2)).toBe(true);
    expect(qEmpty(full, empty, log2)).toBe(false);
    expect(qUsed(full, empty, log2)).toBe(16);
    expect(qFree(full, empty, log2)).toBe(0);
    // the overflow flag on either pointer changes nothing
    expect(qFull((full | Q_OVF) >>> 0, empty, log2)).toBe(true);
    expect(qEmpty((empty | Q_OVF) >>> 0, empty, log2)).toBe(true);
    expect(qUsed((qMake(1, 0, log2) | Q_OVF) >>> 0, qMake(14, 1, log2), log2)).toBe(3);
  });

  it('counts used entries across the wrap for every distance', () => {
    const log2 = 3;
    for (let c = 0; c < 16; c++) {
      for (let used = 0; used <= 8; used++) {
        const cc = qMake(c % 8, c >> 3, log2); // every starting index, both wrap values
        const pp = qInc(cc, log2, used);
        expect(qUsed(pp, cc, log2)).toBe(used);
        expect(qFull(pp, cc, log2)).toBe(used === 8);
        expect(qEmpty(pp, cc, log2)).toBe(used === 0);
      }
    }
  });

  it('works at the largest depth (2^30) without touching bit 31', () => {
    const log2 = 30;
    const p = qInc(qMake((1 << 30) - 1, 1, log2), log2);
    expect(p).toBe(0);
    const q = qInc((Q_OVF | qMake((1 << 30) - 1, 0, log2)) >>> 0, log2);
    expect(q).toBe((Q_OVF | (1 << 30)) >>> 0);
    expect(qFull(qMake(0, 1, log2), 0, log2)).toBe(true);
    expect(qUsed(qMake(0, 1, log2), 0, log2)).toBe(1 << 30);
  });
});

describe('SpscRing geometry and attach', () => {
  it('rejects a depth that is not a power of two ≥ 2 with EINVAL', () => {
    for (const depth of [0, 1, 3, 6, 100, 2.5, -4]) {
      expectSimError(() => SpscRing.create({ depth, entryBytes: 16 }), 'EINVAL', 'depth-not-power-of-two');
    }
  });

  it('rejects entry sizes that are not a positive multiple of 4 with EINVAL', () => {
    for (const entryBytes of [0, 2, 6, 17, 4.5]) {
      expectSimError(() => SpscRing.create({ depth: 8, entryBytes }), 'EINVAL', 'entry-bytes-not-multiple-of-4');
    }
  });

  it('sizes memory in whole 64-byte lines', () => {
    for (const [depth, entryBytes] of [[2, 4], [8, 16], [64, 32], [1024, 16], [4, 12]]) {
      const bytes = SpscRing.bytesFor({ depth, entryBytes });
      expect(bytes % 64).toBe(0);
      expect(bytes).toBeGreaterThanOrEqual(depth * (entryBytes + 8));
    }
  });

  it('attaches a second end that sees what the first published, and checks geometry', () => {
    const g = { depth: 8, entryBytes: 16 };
    const p = SpscRing.create(g, { role: 'producer' });
    expect(p.tryPush([7, 8, 9, 10], 123)).toBe(true);
    const c = SpscRing.attach(p.handle(), { role: 'consumer' });
    expect(c.available()).toBe(1);
    const s = c.slot(0);
    expect(Array.from(c.u32.subarray(s * 4, s * 4 + 4))).toEqual([7, 8, 9, 10]);
    expect(c.stamps[s]).toBe(123);
    expectSimError(() => new SpscRing(p.sab, 0, { depth: 4, entryBytes: 16 }), 'EINVAL', 'geometry-mismatch');
    expectSimError(() => new SpscRing(p.sab, 0, { depth: 8, entryBytes: 8 }), 'EINVAL', 'geometry-mismatch');
    expectSimError(() => new SpscRing(p.sab, 32, g), 'EINVAL', 'bad-offset');
  });

  it('packs several rings in one buffer without interference', () => {
    const g = { depth: 4, entryBytes: 8 };
    const bytes = SpscRing.bytesFor(g);
    const sab = new SharedArrayBuffer(3 * bytes);
    const rings = [0, 1, 2].map((i) => new SpscRing(sab, i * bytes, g));
    rings.forEach((r, i) => { for (let k = 0; k < 4; k++) expect(r.tryPush([i, k], i * 10 + k)).toBe(true); });
    rings.forEach((r, i) => {
      expect(r.tryPush([9, 9], 0)).toBe(false);
      const dst = new Uint32Array(8);
      const st = new Float64Array(4);
      expect(r.popMany(dst, 8, st)).toBe(4);
      expect(Array.from(dst)).toEqual([i, 0, i, 1, i, 2, i, 3]);
      expect(Array.from(st)).toEqual([0, 1, 2, 3].map((k) => i * 10 + k));
    });
  });
});

describe('SpscRing single-thread behaviour', () => {
  it('is full after exactly depth entries and empty after releasing them', () => {
    const r = SpscRing.create({ depth: 8, entryBytes: 16 });
    expect(r.available()).toBe(0);
    expect(r.freeSlots()).toBe(8);
    for (let i = 0; i < 8; i++) expect(r.tryPush(entry(i, 4), i)).toBe(true);
    expect(r.tryPush(entry(8, 4), 8)).toBe(false);
    expect(r.freeSlots()).toBe(0);
    expect(qIdx(r.loadProd(), r.log2)).toBe(qIdx(r.loadCons(), r.log2));
    expect(qWrap(r.loadProd(), r.log2)).not.toBe(qWrap(r.loadCons(), r.log2));
    expect(r.available()).toBe(8);
    expect(r.size()).toBe(8);
    r.release(1);
    expect(r.freeSlots()).toBe(1);
    expect(r.tryPush(entry(8, 4), 8)).toBe(true);
    expect(r.freeSlots()).toBe(0);
    r.release(7);
    expect(r.available()).toBe(1);
    r.release(1);
    expect(r.available()).toBe(0);
    expect(r.loadProd()).toBe(r.loadCons());
    expect(r.freeSlots()).toBe(8);
  });

  it('keeps order through thousands of wrap-arounds with random batch sizes', () => {
    const rnd = mulberry32(11);
    const g = { depth: 16, entryBytes: 16 };
    const r = SpscRing.create(g);
    const ew = r.entryWords;
    const src = new Uint32Array(g.depth * ew);
    const stamps = new Float64Array(g.depth);
    let sent = 0;
    let got = 0;
    let wraps = 0;
    let lastWrap = qWrap(r.loadProd(), r.log2);
    let bad = '';
    while (got < 100_000) {
      const want = 1 + Math.floor(rnd() * g.depth);
      const free = r.freeSlots();
      const n = Math.min(want, free);
      for (let i = 0; i < n; i++) {
        src.set(entry(sent + i, ew), i * ew);
        stamps[i] = (sent + i) * 1.5;
      }
      if (r.pushMany(src, n, stamps) !== n) bad ||= `short push at ${sent}`;
      sent += n;
      const w = qWrap(r.loadProd(), r.log2);
      if (w !== lastWrap) { wraps++; lastWrap = w; }
      const avail = r.available();
      const take = Math.min(avail, 1 + Math.floor(rnd() * g.depth));
      for (let k = 0; k < take; k++) {
        const s = r.consSlot(k);
        const seq = got + k;
        if (r.u32[s * ew] !== seq || r.u32[s * ew + 3] !== ((seq * 31 + 3) >>> 0) || r.stamps[s] !== seq * 1.5) {
          bad ||= `entry ${seq}: ${Array.from(r.u32.subarray(s * ew, s * ew + ew))} stamp ${r.stamps[s]}`;
        }
      }
      r.release(take);
      got += take;
    }
    expect(bad).toBe('');
    expect(wraps).toBeGreaterThan(1000);
    expect(sent - got).toBe(r.size());
  });

  it('publishes a batch written in place with one publish and releases it in parts', () => {
    const r = SpscRing.create({ depth: 8, entryBytes: 8 });
    // move the indices off zero so the batch straddles the wrap
    for (let i = 0; i < 6; i++) r.tryPush([100 + i, 0], 0);
    r.release(r.available());
    expect(r.freeSlots()).toBe(2); // late: CONS is reloaded only when the cache is short
    expect(r.freeSlots(5)).toBe(8);
    const prodBefore = r.loadProd();
    for (let k = 0; k < 5; k++) {
      const s = r.prodSlot(k);
      r.u32[s * 2] = k;
      r.u32[s * 2 + 1] = 0xabc;
      r.stamps[s] = 1000 + k;
    }
    expect(r.loadProd()).toBe(prodBefore); // nothing visible before publish
    expect(r.available()).toBe(0);
    r.publish(5);
    expect(r.available()).toBe(5);
    expect([0, 1, 2, 3, 4].map((k) => r.u32[r.consSlot(k) * 2])).toEqual([0, 1, 2, 3, 4]);
    expect([0, 1, 2, 3, 4].map((k) => r.stamps[r.consSlot(k)])).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(r.consSlot(2)).toBe(0); // wrapped: slots 6, 7, 0, 1, 2
    r.release(2);
    expect(r.available()).toBe(3);
    expect(r.u32[r.consSlot(0) * 2]).toBe(2);
    r.release(3);
    expect(r.available()).toBe(0);
  });

  it('refuses to publish more than is free or release more than is available', () => {
    const r = SpscRing.create({ depth: 4, entryBytes: 4 });
    expect(() => r.publish(5)).toThrow(RangeError);
    r.publish(4);
    expect(() => r.publish(1)).toThrow(RangeError);
    expect(r.available()).toBe(4);
    expect(() => r.release(5)).toThrow(RangeError);
  });

  it('carries stamps with entries, per entry or one for the whole batch', () => {
    const r = SpscRing.create({ depth: 4, entryBytes: 4 });
    r.pushMany(Uint32Array.of(1, 2, 3), 3, Float64Array.of(0.5, 1e18, -3));
    const dst = new Uint32Array(4);
    const st = new Float64Array(4);
    expect(r.popMany(dst, 4, st)).toBe(3);
    expect(Array.from(st.subarray(0, 3))).toEqual([0.5, 1e18, -3]);
    expect(r.pushMany(Uint32Array.of(4, 5, 6, 7), 4, 42)).toBe(4); // wraps at slot 3
    expect(r.popMany(dst, 4, st)).toBe(4);
    expect(Array.from(dst)).toEqual([4, 5, 6, 7]);
    expect(Array.from(st)).toEqual([42, 42, 42, 42]);
    r.pushMany(Uint32Array.of(8), 1);
    expect(r.stamps[r.consSlot(0)]).toBe(0);
  });

  it('pushMany copies as many as fit and starts at the given entry', () => {
    const r = SpscRing.create({ depth: 4, entryBytes: 8 });
    const src = Uint32Array.from({ length: 12 }, (_, i) => i);
    expect(r.pushMany(src, 6, undefined, 0)).toBe(4);
    expect(r.pushMany(src, 2, undefined, 4)).toBe(0);
    const dst = new Uint32Array(8);
    r.popMany(dst, 4);
    expect(Array.from(dst)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.pushMany(src, 2, undefined, 4)).toBe(2);
    r.popMany(dst, 4);
    expect(Array.from(dst.subarray(0, 4))).toEqual([8, 9, 10, 11]);
  });

  it('on a full event ring, drops entries, raises the overflow flag and counts them', () => {
    const ev = SpscRing.create({ depth: 4, entryBytes: 32 });
    for (let i = 0; i < 4; i++) expect(ev.pushOrOverflow(entry(i, 8), i)).toBe(true);
    expect(ev.overflowed()).toBe(false);
    for (let i = 4; i < 7; i++) expect(ev.pushOrOverflow(entry(i, 8), i)).toBe(false);
    expect(ev.overflowed()).toBe(true);
    expect(ev.lostTotal()).toBe(3);
    expect(qOvf(ev.loadProd())).toBe(1); // PROD.OVFLG toggled once, not per lost entry
    expect(qOvf(ev.loadCons())).toBe(0);
    // the entries already queued are intact, and draining keeps the flag
    expect(ev.available()).toBe(4);
    for (let k = 0; k < 4; k++) expect(ev.u32[ev.consSlot(k) * 8]).toBe(k);
    ev.release(4);
    expect(qOvf(ev.loadProd())).toBe(1);
    expect(ev.overflowed()).toBe(true);
    // room again: new records are written while the overflow is still unacknowledged
    expect(ev.pushOrOverflow(entry(7, 8), 7)).toBe(true);
    expect(ev.takeLost()).toBe(3);
    expect(ev.overflowed()).toBe(false);
    expect(qOvf(ev.loadCons())).toBe(1); // CONS.OVACKFLG = PROD.OVFLG
    expect(ev.takeLost()).toBe(0);
    expect(ev.available()).toBe(1);
    expect(ev.u32[ev.consSlot(0) * 8]).toBe(7);
    // a second overflow toggles the flag back
    for (let i = 0; i < 3; i++) ev.pushOrOverflow(entry(8 + i, 8), 0);
    expect(ev.pushOrOverflow(entry(11, 8), 0)).toBe(false);
    expect(qOvf(ev.loadProd())).toBe(0);
    expect(ev.overflowed()).toBe(true);
    expect(ev.takeLost()).toBe(1);
    expect(ev.overflowed()).toBe(false);
    expect(ev.lostTotal()).toBe(4);
  });

  it('slot() needs a role when one object plays both ends', () => {
    const r = SpscRing.create({ depth: 4, entryBytes: 4 });
    r.freeSlots();
    expect(r.slot(1)).toBe(1);
    r.available();
    expect(() => r.slot(0)).toThrow(/role/);
    const c = SpscRing.attach(r.handle(), { role: 'consumer' });
    expect(c.slot(0)).toBe(0);
  });
});

describe('SpscRing back-pressure and doorbells (one thread)', () => {
  it('waitForSpace resolves when the consumer releases, without blocking the thread', async () => {
    const g = { depth: 4, entryBytes: 4 };
    const p = SpscRing.create(g, { role: 'producer' });
    const c = SpscRing.attach(p.handle(), { role: 'consumer' });
    for (let i = 0; i < 4; i++) p.tryPush([i], 0);
    let done = false;
    const wait = p.waitForSpace(2, 5_000).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    expect(p.producerWaiting()).toBe(true);
    expect(c.available()).toBe(4);
    c.release(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false); // one slot is not enough
    c.release(1);
    await wait;
    expect(done).toBe(true);
    expect(p.freeSlots()).toBe(2);
    expect(p.producerWaiting()).toBe(false);
  });

  it('several async waiters: one that returns does not take the waiting flag from one still asleep (the lost wake-up)', async () => {
    const p = SpscRing.create({ depth: 4, entryBytes: 4 }, { role: 'producer' });
    const c = SpscRing.attach(p.handle(), { role: 'consumer' });
    for (let i = 0; i < 4; i++) p.tryPush([i], 0);
    let big = false;
    // The waiter for 2 slots sleeps first, so it is woken first and goes back to sleep
    // before the waiter for 1 slot returns.
    const w2 = p.waitForSpace(2, 2_000).then(() => { big = true; });
    const w1 = p.waitForSpace(1, 2_000);
    await new Promise((r) => setTimeout(r, 20));
    c.release(1);
    await w1;
    await new Promise((r) => setTimeout(r, 20));
    expect(big).toBe(false);
    expect(p.producerWaiting()).toBe(true); // the 2-slot waiter still asks to be rung
    c.release(1);
    await w2;
    expect(big).toBe(true);
    expect(p.producerWaiting()).toBe(false);
  });

  it('waitForSpace times out with ETIMEDOUT and rejects impossible requests with EINVAL', async () => {
    const p = SpscRing.create({ depth: 2, entryBytes: 4 });
    p.tryPush([1], 0);
    p.tryPush([2], 0);
    await expect(p.waitForSpace(1, 30)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(p.waitForSpace(3)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(SpscRing.create({ depth: 2, entryBytes: 4 }).waitForSpace(2)).resolves.toBeUndefined();
  });

  it('a doorbell nobody sleeps on costs nothing: ring() leaves the counter alone', () => {
    const bell = Doorbell.create();
    bell.ring();
    bell.ring();
    expect(bell.wakeCount()).toBe(0);
    expect(bell.isSleeping()).toBe(false);
    bell.kick();
    expect(bell.wakeCount()).toBe(1);
  });

  it('sleepAsync returns not-empty at once, wakes on ring(), and times out', async () => {
    const bell = Doorbell.create();
    expect(await bell.sleepAsync(() => false, 1000)).toBe('not-empty');
    expect(bell.isSleeping()).toBe(false);
    const p = bell.sleepAsync(() => true, 10_000);
    expect(bell.isSleeping()).toBe(true);
    bell.ring();
    expect(await p).toBe('woken');
    expect(bell.isSleeping()).toBe(false);
    expect(await bell.sleepAsync(() => true, 20)).toBe('timed-out');
  });

  it('one ring() wakes every pending async sleeper of the thread', async () => {
    const bell = Doorbell.create();
    const a = bell.sleepAsync(() => true, 10_000);
    const b = bell.sleepAsync(() => true, 10_000);
    bell.ring();
    expect(await Promise.all([a, b])).toEqual(['woken', 'woken']);
  });

  it('several rings can share one consumer doorbell', async () => {
    const bell = Doorbell.create();
    const g = { depth: 4, entryBytes: 4 };
    const r1 = SpscRing.create(g, { consumerBell: bell });
    const r2 = SpscRing.create(g, { consumerBell: bell });
    const idle = () => r1.available() === 0 && r2.available() === 0;
    const p = bell.sleepAsync(idle, 10_000);
    r2.tryPush([5], 0);
    expect(await p).toBe('woken');
    expect(r2.available()).toBe(1);
  });

  it('sleep() refuses to block the main thread', () => {
    expect(() => Doorbell.create().sleep(() => true, 1)).toThrow(/main thread/);
  });
});
