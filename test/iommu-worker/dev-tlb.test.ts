import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DevTlb, NO_PASID_TAG, type DevTlbEntry } from '../../iommu-worker/dev-tlb.js';
import { PERM_READ, PERM_WRITE } from '../../iommu-worker/iotlb.js';

const RW = PERM_READ | PERM_WRITE;
const P2M = 512;

function filled(): DevTlb {
  const t = new DevTlb({ entries: 64, ways: 4 });
  for (const tag of [NO_PASID_TAG, 0, 7, 8]) {
    t.insert(tag, 0x10, 12, 0x110, RW, 1);
    t.insert(tag, 0x11, 12, 0x111, RW, 1);
    t.insert(tag, P2M, 21, 4 * P2M, RW, 1);
  }
  return t; // 12 entries
}

describe('DevTlb', () => {
  it('rejects a bad geometry', () => {
    expect(() => new DevTlb({ entries: 24, ways: 8 })).toThrow(RangeError);
    expect(() => new DevTlb({ entries: 8, ways: 16 })).toThrow(RangeError);
  });

  it('hits after insert and translates, including inside a 2 MiB page', () => {
    const t = filled();
    const h = t.lookup(7, 0x11);
    expect(t.translatePfn(h, 0x11)).toBe(0x111);
    expect(t.permOf(h)).toBe(RW);
    const h2 = t.lookup(7, P2M + 100);
    expect(t.sizeShiftOf(h2)).toBe(21);
    expect(t.pgttOf(h2)).toBe(1);
    expect(t.translatePfn(h2, P2M + 100)).toBe(4 * P2M + 100);
  });

  it('keeps requests without PASID apart from PASID 0 and from other PASIDs', () => {
    const t = new DevTlb({ entries: 16, ways: 4 });
    t.insert(NO_PASID_TAG, 5, 12, 50, RW, 2);
    expect(t.lookup(NO_PASID_TAG, 5)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 5)).toBe(-1);
    expect(t.lookup(3, 5)).toBe(-1);
  });

  it('an invalidation without PASID removes only the no-PASID entries in the range', () => {
    const t = filled();
    expect(t.invalidate(NO_PASID_TAG, 0x10, 1)).toBe(1);
    expect(t.lookup(NO_PASID_TAG, 0x10)).toBe(-1);
    expect(t.lookup(NO_PASID_TAG, 0x11)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 0x10)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(7, 0x10)).toBeGreaterThanOrEqual(0);
    expect(t.size).toBe(11);
  });

  it('a PASID invalidation removes only that PASID’s entries, including a partly covered 2 MiB page', () => {
    const t = filled();
    expect(t.invalidate(7, P2M + 511, 2)).toBe(1); // the 2 MiB page's last page and the next one
    expect(t.lookup(7, P2M)).toBe(-1);
    expect(t.lookup(8, P2M)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(NO_PASID_TAG, P2M)).toBeGreaterThanOrEqual(0);
    expect(t.invalidate(7, 0, 0x100)).toBe(2);
    expect(t.entries().filter((e) => e.pasidTag === 7)).toEqual([]);
    expect(t.size).toBe(9);
  });

  it('a global (all-PASIDs) invalidation removes every tag in the range and nothing outside it', () => {
    const t = filled();
    expect(t.invalidate('all-pasids', 0x10, 2)).toBe(8);
    expect(t.entries().every((e) => e.sizeShift === 21)).toBe(true);
    expect(t.size).toBe(4);
  });

  it('invalidateAll empties it', () => {
    const t = filled();
    expect(t.invalidateAll()).toBe(12);
    expect(t.entries()).toEqual([]);
  });

  it('rejects malformed invalidations', () => {
    const t = filled();
    expect(() => t.invalidate(7, 0, 0)).toThrow(RangeError);
    expect(() => t.invalidate(7, -1, 1)).toThrow(RangeError);
    expect(() => t.invalidate(-2, 0, 1)).toThrow(RangeError);
    expect(() => t.invalidate('some' as 'all-pasids', 0, 1)).toThrow(RangeError);
    expect(t.size).toBe(12);
  });

  it('reports entries without a DID and counts statistics', () => {
    const t = new DevTlb({ entries: 4, ways: 4 });
    t.insert(3, 8, 12, 9, PERM_READ, 4);
    t.lookup(3, 8);
    t.lookup(4, 8);
    expect(t.entries()).toEqual([{ pasidTag: 3, vpn: 8, sizeShift: 12, pfn: 9, perm: PERM_READ, pgtt: 4 }]);
    expect(t.stats()).toMatchObject({ hits: 1, misses: 1, inserts: 1, evictions: 0, invalidations: 0, valid: 1 });
  });

  it('behaves as a reference model of ATS invalidation over random sequences (property-based)', () => {
    type Op =
      | { k: 'insert'; tag: number; vpn: number; big: boolean }
      | { k: 'inv'; tag: number | 'all-pasids'; vpn: number; npages: number }
      | { k: 'all' };
    const arbTag = fc.constantFrom(NO_PASID_TAG, 0, 1, 2);
    const arbVpn = fc.oneof(fc.integer({ min: 0, max: 1100 }), fc.integer({ min: 2 ** 33, max: 2 ** 33 + 1100 }));
    const arbOp: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ k: fc.constant('insert' as const), tag: arbTag, vpn: arbVpn, big: fc.boolean() }) },
      {
        weight: 2,
        arbitrary: fc.record({
          k: fc.constant('inv' as const),
          tag: fc.oneof(arbTag, fc.constant('all-pasids' as const)),
          vpn: arbVpn,
          npages: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom(512, 1024, 2 ** 40)),
        }),
      },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('all' as const) }) },
    );
    const key = (e: DevTlbEntry) => `${e.pasidTag}/${e.vpn}/${e.sizeShift}`;
    const sorted = (es: DevTlbEntry[]) => es.map(key).sort();
    fc.assert(fc.property(fc.array(arbOp, { minLength: 10, maxLength: 60, size: 'max' }), (ops) => {
      const t = new DevTlb({ entries: 256, ways: 64 }); // never evicts with ≤ 60 inserts
      const ref = new Map<string, DevTlbEntry>();
      for (const op of ops) {
        if (op.k === 'insert') {
          const sizeShift = op.big ? 21 : 12;
          const vpn = op.big ? op.vpn - (op.vpn % P2M) : op.vpn;
          const e: DevTlbEntry = { pasidTag: op.tag, vpn, sizeShift, pfn: vpn + 4 * P2M, perm: RW, pgtt: 1 };
          t.insert(e.pasidTag, e.vpn, e.sizeShift, e.pfn, e.perm, e.pgtt);
          ref.set(key(e), e);
        } else if (op.k === 'all') {
          expect(t.invalidateAll()).toBe(ref.size);
          ref.clear();
        } else {
          let n = 0;
          for (const [k, e] of ref) {
            const tagOk = op.tag === 'all-pasids' || op.tag === e.pasidTag;
            const overlaps = e.vpn < op.vpn + op.npages && e.vpn + 2 ** (e.sizeShift - 12) > op.vpn;
            if (tagOk && overlaps) {
              ref.delete(k);
              n++;
            }
          }
          expect(t.invalidate(op.tag, op.vpn, op.npages)).toBe(n);
        }
        expect(sorted(t.entries())).toEqual(sorted([...ref.values()]));
      }
    }), { numRuns: 200 });
  });
});
