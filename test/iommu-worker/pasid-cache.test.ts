import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ContextCache } from '../../iommu-worker/context-cache.js';
import { PasidCache } from '../../iommu-worker/pasid-cache.js';

interface Ctx { sid: number; pasidDir: number }
interface Pe { did: number; pgtt: number }

const rid = (bus: number, dev: number, fn: number) => (bus << 8) | (dev << 3) | fn;

describe('ContextCache', () => {
  it('rejects a bad geometry', () => {
    expect(() => new ContextCache<Ctx>({ entries: 100, ways: 4 })).toThrow(RangeError);
    expect(() => new ContextCache<Ctx>({ entries: 64, ways: 128 })).toThrow(RangeError);
  });

  it('returns the very object inserted for a source id and misses for others', () => {
    const c = new ContextCache<Ctx>({ entries: 64, ways: 4 });
    const v = { sid: rid(3, 1, 0), pasidDir: 0x1000 };
    c.insert(v.sid, v);
    expect(c.lookup(v.sid)).toBe(v);
    expect(c.lookup(rid(3, 1, 1))).toBeUndefined();
    expect(c.lookup(rid(4, 1, 0))).toBeUndefined();
  });

  it('replaces the value of a source id inserted twice', () => {
    const c = new ContextCache<Ctx>({ entries: 8, ways: 2 });
    c.insert(5, { sid: 5, pasidDir: 1 });
    c.insert(5, { sid: 5, pasidDir: 2 });
    expect(c.lookup(5)?.pasidDir).toBe(2);
    expect(c.size).toBe(1);
  });

  it('device-selective invalidation with FM 0 removes just that function', () => {
    const c = new ContextCache<Ctx>({ entries: 64, ways: 8 });
    for (let fn = 0; fn < 8; fn++) c.insert(rid(2, 3, fn), { sid: rid(2, 3, fn), pasidDir: fn });
    expect(c.invalidateDevice(rid(2, 3, 5), 0)).toBe(1);
    expect(c.lookup(rid(2, 3, 5))).toBeUndefined();
    expect(c.size).toBe(7);
  });

  it('device-selective invalidation masks function bits 2, 2:1 and 2:0 for FM 1, 2 and 3', () => {
    const fns = (fm: number, fn: number) => {
      const c = new ContextCache<Ctx>({ entries: 64, ways: 8 });
      for (let f = 0; f < 8; f++) c.insert(rid(2, 3, f), { sid: rid(2, 3, f), pasidDir: f });
      c.insert(rid(2, 4, fn), { sid: rid(2, 4, fn), pasidDir: 99 }); // another device: never touched
      const removed = c.invalidateDevice(rid(2, 3, fn), fm);
      expect(c.lookup(rid(2, 4, fn))).toBeDefined();
      const gone = [...Array(8).keys()].filter((f) => c.entries().every((e) => e.sid !== rid(2, 3, f)));
      expect(gone.length).toBe(removed);
      return gone;
    };
    expect(fns(1, 5)).toEqual([1, 5]);
    expect(fns(2, 5)).toEqual([1, 3, 5, 7]);
    expect(fns(3, 5)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(fns(2, 0)).toEqual([0, 2, 4, 6]);
  });

  it('domain-selective invalidation removes every entry, since scalable-mode context entries carry no DID', () => {
    const c = new ContextCache<Ctx>({ entries: 64, ways: 8 });
    for (let d = 0; d < 5; d++) c.insert(rid(1, d, 0), { sid: rid(1, d, 0), pasidDir: d });
    expect(c.invalidateDomain(42)).toBe(5);
    expect(c.size).toBe(0);
  });

  it('global invalidation removes everything', () => {
    const c = new ContextCache<Ctx>({ entries: 16, ways: 4 });
    for (let s = 0; s < 6; s++) c.insert(s, { sid: s, pasidDir: s });
    expect(c.invalidateAll()).toBe(6);
    expect(c.lookup(3)).toBeUndefined();
  });

  it('evicts the least recently used entry of a full set (LRU) or the oldest fill (RR)', () => {
    for (const policy of ['lru', 'rr'] as const) {
      const c = new ContextCache<Ctx>({ entries: 2, ways: 2, policy });
      c.insert(1, { sid: 1, pasidDir: 1 });
      c.insert(2, { sid: 2, pasidDir: 2 });
      c.lookup(1);
      c.insert(3, { sid: 3, pasidDir: 3 });
      const left = c.entries().map((e) => e.sid).sort();
      expect(left).toEqual(policy === 'lru' ? [1, 3] : [2, 3]);
    }
  });

  it('rejects bad source ids and function masks', () => {
    const c = new ContextCache<Ctx>({ entries: 16, ways: 4 });
    expect(() => c.insert(0x10000, { sid: 0, pasidDir: 0 })).toThrow(RangeError);
    expect(() => c.invalidateDevice(1, 4)).toThrow(RangeError);
    expect(() => c.invalidateDevice(-1, 0)).toThrow(RangeError);
  });

  it('counts hits, misses, inserts, evictions and invalidations', () => {
    const c = new ContextCache<Ctx>({ entries: 1, ways: 1 });
    c.insert(1, { sid: 1, pasidDir: 0 });
    c.lookup(1);
    c.lookup(2);
    c.insert(2, { sid: 2, pasidDir: 0 });
    c.invalidateDevice(2, 0);
    expect(c.stats()).toEqual({
      hits: 1, misses: 1, inserts: 2, evictions: 1, invalidations: 1, valid: 0, entries: 1, sets: 1, ways: 1,
    });
  });
});

describe('PasidCache', () => {
  function filled(): PasidCache<Pe> {
    const c = new PasidCache<Pe>({ entries: 256, ways: 16 });
    // Two devices; PASIDs 0..3 in DID 1, PASIDs 10..11 in DID 2, and PASID 1 of device B in DID 2.
    for (const sid of [0x100, 0x208]) {
      for (let p = 0; p < 4; p++) c.insert(sid, p, 1, { did: 1, pgtt: 1 });
      for (const p of [10, 11]) c.insert(sid, p, 2, { did: 2, pgtt: 2 });
    }
    c.insert(0x208, 1, 2, { did: 2, pgtt: 3 }); // re-point device B's PASID 1 at DID 2
    return c; // 12 entries
  }

  it('returns the object inserted for (sid, pasid) and misses for other pairs', () => {
    const c = new PasidCache<Pe>({ entries: 64, ways: 4 });
    const v = { did: 9, pgtt: 1 };
    c.insert(0x1234, 0xfffff, 9, v);
    expect(c.lookup(0x1234, 0xfffff)).toBe(v);
    expect(c.lookup(0x1234, 0xffffe)).toBeUndefined();
    expect(c.lookup(0x1235, 0xfffff)).toBeUndefined();
    expect(c.entries()).toEqual([{ sid: 0x1234, pasid: 0xfffff, did: 9, value: v }]);
  });

  it('all-PASIDs-of-DID invalidation (GRAN 0) removes that DID’s entries on every device and nothing else', () => {
    const c = filled();
    expect(c.invalidateDomain(2)).toBe(5);
    expect(c.entries().every((e) => e.did === 1)).toBe(true);
    expect(c.lookup(0x208, 1)).toBeUndefined(); // re-pointed to DID 2
    expect(c.lookup(0x100, 1)).toBeDefined();
  });

  it('PASID-selective invalidation (GRAN 1) removes (did, pasid) on every device, not the same PASID under another DID', () => {
    const c = filled();
    expect(c.invalidatePasid(1, 1)).toBe(1); // device A's PASID 1; device B's PASID 1 is in DID 2
    expect(c.lookup(0x100, 1)).toBeUndefined();
    expect(c.lookup(0x208, 1)).toBeDefined();
    expect(c.invalidatePasid(2, 10)).toBe(2);
    expect(c.lookup(0x100, 10)).toBeUndefined();
    expect(c.lookup(0x208, 10)).toBeUndefined();
    expect(c.size).toBe(9);
  });

  it('global invalidation (GRAN 3) removes everything', () => {
    const c = filled();
    expect(c.invalidateAll()).toBe(12);
    expect(c.entries()).toEqual([]);
  });

  it('spreads PASID 0 of many devices over the sets instead of piling them into one', () => {
    const c = new PasidCache<Pe>({ entries: 64, ways: 4 });
    for (let sid = 0; sid < 32; sid++) c.insert(sid << 3, 0, 1, { did: 1, pgtt: 2 });
    // 32 keys into 16 sets of 4 ways: a hash on the PASID alone would keep only 4.
    expect(c.size).toBeGreaterThan(24);
  });

  it('rejects out-of-range keys and DIDs', () => {
    const c = new PasidCache<Pe>({ entries: 16, ways: 4 });
    expect(() => c.insert(0, 1 << 20, 1, { did: 1, pgtt: 1 })).toThrow(RangeError);
    expect(() => c.insert(0x10000, 0, 1, { did: 1, pgtt: 1 })).toThrow(RangeError);
    expect(() => c.insert(0, 0, 0x20000, { did: 1, pgtt: 1 })).toThrow(RangeError);
    expect(() => c.invalidatePasid(1, -1)).toThrow(RangeError);
    expect(() => c.invalidateDomain(-1)).toThrow(RangeError);
  });

  it('counts statistics', () => {
    const c = filled();
    c.lookup(0x100, 0);
    c.lookup(0x100, 99);
    c.invalidatePasid(1, 0);
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1, inserts: 13, evictions: 0, invalidations: 2, valid: 10 });
  });

  it('matches a reference model over random insert / invalidate / lookup sequences (property-based)', () => {
    type Op =
      | { k: 'insert'; sid: number; pasid: number; did: number }
      | { k: 'lookup'; sid: number; pasid: number }
      | { k: 'domain'; did: number }
      | { k: 'pasid'; did: number; pasid: number }
      | { k: 'all' };
    const sid = fc.constantFrom(0, 8, 0x100, 0xffff);
    const pasid = fc.constantFrom(0, 1, 2, 0xfffff);
    const did = fc.integer({ min: 0, max: 2 });
    const arbOp: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ k: fc.constant('insert' as const), sid, pasid, did }) },
      { weight: 4, arbitrary: fc.record({ k: fc.constant('lookup' as const), sid, pasid }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('domain' as const), did }) },
      { weight: 2, arbitrary: fc.record({ k: fc.constant('pasid' as const), did, pasid }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('all' as const) }) },
    );
    fc.assert(fc.property(
      fc.array(arbOp, { minLength: 10, maxLength: 60, size: 'max' }),
      fc.constantFrom({ entries: 64, ways: 64 }, { entries: 8, ways: 2 }, { entries: 4, ways: 1, policy: 'rr' as const }),
      (ops, cfg) => {
        const c = new PasidCache<{ did: number; n: number }>(cfg);
        const noEvict = cfg.entries >= 16; // 16 distinct keys at most
        const ref = new Map<string, { sid: number; pasid: number; did: number; n: number }>();
        let n = 0;
        for (const op of ops) {
          const before = c.entries();
          if (op.k === 'insert') {
            const v = { did: op.did, n: n++ };
            c.insert(op.sid, op.pasid, op.did, v);
            ref.set(`${op.sid}/${op.pasid}`, { sid: op.sid, pasid: op.pasid, did: op.did, n: v.n });
            expect(c.lookup(op.sid, op.pasid)).toBe(v);
          } else if (op.k === 'lookup') {
            const got = c.lookup(op.sid, op.pasid);
            const inCache = before.find((e) => e.sid === op.sid && e.pasid === op.pasid);
            expect(got).toBe(inCache?.value);
          } else {
            const sel = (e: { did: number; pasid: number }) =>
              op.k === 'all' || (op.k === 'domain' && e.did === op.did) ||
              (op.k === 'pasid' && e.did === op.did && e.pasid === op.pasid);
            const removed = op.k === 'all' ? c.invalidateAll()
              : op.k === 'domain' ? c.invalidateDomain(op.did) : c.invalidatePasid(op.did, op.pasid);
            expect(removed).toBe(before.filter(sel).length);
            expect(c.entries().length).toBe(before.length - removed);
            expect(c.entries().some(sel)).toBe(false);
            for (const [k, e] of ref) if (sel(e)) ref.delete(k);
          }
          // Every cached entry is current (the reference holds the same did and value).
          for (const e of c.entries()) {
            const r = ref.get(`${e.sid}/${e.pasid}`);
            expect(r).toBeDefined();
            expect(e.did).toBe(r!.did);
            expect(e.value.n).toBe(r!.n);
          }
          if (noEvict) expect(c.size).toBe(ref.size);
        }
      },
    ), { numRuns: 200 });
  });
});

describe('lookupAt (the translator\'s re-check of the last hit slot)', () => {
  it('hits the remembered slot with the same counting as lookup, and misses once the slot changed', () => {
    const pc = new PasidCache<string>({ entries: 2, ways: 2 });
    pc.insert(0x100, 5, 2, 'a');
    expect(pc.lookup(0x100, 5)).toBe('a');
    const slot = pc.lastSlot;
    expect(pc.lookupAt(slot, 0x100, 5)).toBe('a');
    expect(pc.stats().hits).toBe(2);
    expect(pc.lookupAt(slot, 0x100, 6)).toBeUndefined(); // another key: nothing counted
    expect(pc.stats().hits + pc.stats().misses).toBe(2);
    pc.invalidatePasid(2, 5);
    expect(pc.lookupAt(slot, 0x100, 5)).toBeUndefined();
    pc.insert(0x200, 7, 3, 'b');
    pc.insert(0x300, 8, 3, 'c'); // may reuse the slot
    expect(pc.lookupAt(slot, 0x100, 5)).toBeUndefined();
  });

  it('keeps LRU order identical to plain lookups', () => {
    const a = new ContextCache<number>({ entries: 2, ways: 2 });
    const b = new ContextCache<number>({ entries: 2, ways: 2 });
    for (const c of [a, b]) { c.insert(1, 1); c.insert(2, 2); }
    a.lookup(1);
    const s = a.lastSlot;
    a.lookup(2);
    expect(a.lookupAt(s, 1)).toBe(1); // touches sid 1 again
    b.lookup(1); b.lookup(2); b.lookup(1);
    a.insert(3, 3); b.insert(3, 3); // both evict sid 2, the least recently used
    expect(a.lookup(2)).toBeUndefined();
    expect(b.lookup(2)).toBeUndefined();
    expect(a.lookup(1)).toBe(1);
    expect(b.lookup(1)).toBe(1);
    expect(a.stats()).toEqual(b.stats());
  });
});
