import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ANY_DID,
  ANY_PASID_TAG,
  Iotlb,
  NO_PASID_TAG,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_USER,
  PERM_WRITE,
  type IotlbEntry,
} from '../../iommu-worker/iotlb.js';

const RW = PERM_READ | PERM_WRITE;
const P2M = 512; // 4 KiB pages per 2 MiB
const P1G = 262144; // 4 KiB pages per 1 GiB

function keyOf(e: IotlbEntry): string {
  return `${e.did}/${e.pasidTag}/${e.vpn}/${e.sizeShift}`;
}

function sortEntries(es: IotlbEntry[]): IotlbEntry[] {
  return [...es].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
}

function covers(e: IotlbEntry, vpn: number): boolean {
  return vpn >= e.vpn && vpn < e.vpn + 2 ** (e.sizeShift - 12);
}

describe('Iotlb config', () => {
  it('rejects entries or ways that are not powers of two, ways > entries, and unknown policies', () => {
    expect(() => new Iotlb({ entries: 48, ways: 4 })).toThrow(RangeError);
    expect(() => new Iotlb({ entries: 64, ways: 3 })).toThrow(RangeError);
    expect(() => new Iotlb({ entries: 0, ways: 1 })).toThrow(RangeError);
    expect(() => new Iotlb({ entries: 16, ways: 32 })).toThrow(RangeError);
    expect(() => new Iotlb({ entries: 1.5, ways: 1 })).toThrow(RangeError);
    expect(() => new Iotlb({ entries: 64, ways: 4, policy: 'random' as 'lru' })).toThrow(RangeError);
  });

  it('accepts direct-mapped, set-associative and fully associative geometries', () => {
    expect(new Iotlb({ entries: 64, ways: 1 }).sets).toBe(64);
    expect(new Iotlb({ entries: 64, ways: 8, policy: 'rr' }).sets).toBe(8);
    expect(new Iotlb({ entries: 64, ways: 64 }).sets).toBe(1);
  });

  it('exports the permission bits with the agreed values', () => {
    expect([PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV]).toEqual([1, 2, 4, 8]);
    expect(PERM_PRIV).toBe(PERM_USER);
    expect(NO_PASID_TAG).toBe(0xffffffff);
  });
});

describe('Iotlb lookup', () => {
  it('hits after insert and reports the cached outputs', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    t.insert(5, 7, 0x1234, 12, 0x9876, RW, 1);
    const h = t.lookup(5, 7, 0x1234);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(t.pfnOf(h)).toBe(0x9876);
    expect(t.permOf(h)).toBe(RW);
    expect(t.sizeShiftOf(h)).toBe(12);
    expect(t.pgttOf(h)).toBe(1);
    expect(t.vpnOf(h)).toBe(0x1234);
    expect(t.translatePfn(h, 0x1234)).toBe(0x9876);
  });

  it('misses on another did, another pasidTag or another page', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    t.insert(5, 7, 0x1234, 12, 0x9876, RW, 1);
    expect(t.lookup(6, 7, 0x1234)).toBe(-1);
    expect(t.lookup(5, 8, 0x1234)).toBe(-1);
    expect(t.lookup(5, NO_PASID_TAG, 0x1234)).toBe(-1);
    expect(t.lookup(5, 7, 0x1235)).toBe(-1);
  });

  it('shares a second-stage (NO_PASID_TAG) entry among all PASIDs of the domain but not with PASID-tagged lookups', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    // Filled on behalf of PASID 3 whose PASID entry is second-stage only (PGTT 2).
    t.insert(9, NO_PASID_TAG, 0x40, 12, 0x80, RW, 2);
    // PASID 11 of the same domain, also second-stage only, looks up with the same tag.
    expect(t.lookup(9, NO_PASID_TAG, 0x40)).toBeGreaterThanOrEqual(0);
    // A first-stage PASID looks up with its own tag and must not see it.
    expect(t.lookup(9, 11, 0x40)).toBe(-1);
    // Another domain must not see it.
    expect(t.lookup(10, NO_PASID_TAG, 0x40)).toBe(-1);
  });

  it('hits a 2 MiB entry for every 4 KiB page inside it and translates each to the right pfn', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    const vpn = 7 * P2M;
    const pfn = 300 * P2M;
    t.insert(1, 2, vpn, 21, pfn, RW, 3);
    for (let i = 0; i < P2M; i++) {
      const h = t.lookup(1, 2, vpn + i);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(t.sizeShiftOf(h)).toBe(21);
      expect(t.translatePfn(h, vpn + i)).toBe(pfn + i);
    }
    expect(t.lookup(1, 2, vpn - 1)).toBe(-1);
    expect(t.lookup(1, 2, vpn + P2M)).toBe(-1);
  });

  it('hits a 1 GiB entry for 4 KiB pages throughout it, including both ends', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    const vpn = 3 * P1G;
    const pfn = 17 * P1G;
    t.insert(1, 2, vpn, 30, pfn, PERM_READ, 1);
    for (const off of [0, 1, 511, 512, 4097, 100_000, P1G - 1]) {
      const h = t.lookup(1, 2, vpn + off);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(t.translatePfn(h, vpn + off)).toBe(pfn + off);
    }
    expect(t.lookup(1, 2, vpn + P1G)).toBe(-1);
    expect(t.lookup(1, 2, vpn - 1)).toBe(-1);
  });

  it('prefers the smallest page size when entries of different sizes overlap', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    t.insert(1, 2, 0, 21, P2M * 4, RW, 1);
    t.insert(1, 2, 5, 12, 999, PERM_READ, 1);
    const h = t.lookup(1, 2, 5);
    expect(t.sizeShiftOf(h)).toBe(12);
    expect(t.translatePfn(h, 5)).toBe(999);
    expect(t.translatePfn(t.lookup(1, 2, 6), 6)).toBe(P2M * 4 + 6);
  });

  it('keeps page numbers above 2^32 apart from those with the same low 32 bits', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    const high = 2 ** 40 + 5;
    t.insert(1, 2, high, 12, 2 ** 39, RW, 1);
    expect(t.lookup(1, 2, 5)).toBe(-1);
    const h = t.lookup(1, 2, high);
    expect(t.translatePfn(h, high)).toBe(2 ** 39);
    const big = 2 ** 44; // 1 GiB aligned, far above 2^32
    t.insert(1, 2, big, 30, 0, RW, 1);
    expect(t.translatePfn(t.lookup(1, 2, big + 77), big + 77)).toBe(77);
  });

  it('rewrites an entry inserted twice in place instead of duplicating it', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    t.insert(1, 2, 10, 12, 100, PERM_READ, 1);
    t.insert(1, 2, 10, 12, 200, RW, 1);
    expect(t.entries()).toEqual([{ did: 1, pasidTag: 2, vpn: 10, sizeShift: 12, pfn: 200, perm: RW, pgtt: 1 }]);
  });

  it('rejects malformed entries', () => {
    const t = new Iotlb({ entries: 64, ways: 4 });
    expect(() => t.insert(1, 2, 10, 21, 0, RW, 1)).toThrow(RangeError); // vpn not 2 MiB aligned
    expect(() => t.insert(1, 2, 0, 21, 10, RW, 1)).toThrow(RangeError); // pfn not aligned
    expect(() => t.insert(1, 2, 0, 13, 0, RW, 1)).toThrow(RangeError);
    expect(() => t.insert(0x20000, 2, 0, 12, 0, RW, 1)).toThrow(RangeError);
    expect(() => t.insert(1, -1, 0, 12, 0, RW, 1)).toThrow(RangeError);
    expect(() => t.insert(1, 2, 0, 12, 0, 16, 1)).toThrow(RangeError);
    expect(() => t.insert(1, 2, 0, 12, 0, RW, 0)).toThrow(RangeError);
    expect(() => t.insert(1, 2, 0, 12, 0, RW, 5)).toThrow(RangeError);
    expect(() => t.insert(1, 2, 2 ** 52, 12, 0, RW, 1)).toThrow(RangeError);
    expect(() => t.insert(1, 2, 0.5, 12, 0, RW, 1)).toThrow(RangeError);
    expect(t.size).toBe(0);
  });
});

describe('Iotlb replacement', () => {
  // One set of four ways, so every entry competes for the same set.
  const vpns = [0, 1, 2, 3, 4, 5];
  const present = (t: Iotlb) => t.entries().map((e) => e.vpn).sort((a, b) => a - b);

  it('LRU evicts the least recently used way', () => {
    const t = new Iotlb({ entries: 4, ways: 4, policy: 'lru' });
    for (const v of vpns.slice(0, 4)) t.insert(1, 1, v, 12, v, RW, 1);
    expect(t.lookup(1, 1, 0)).toBeGreaterThanOrEqual(0); // 0 becomes most recent; 1 is LRU
    t.insert(1, 1, 4, 12, 4, RW, 1);
    expect(present(t)).toEqual([0, 2, 3, 4]);
    expect(t.lookup(1, 1, 2)).toBeGreaterThanOrEqual(0); // order now 3, 0, 4, 2
    t.insert(1, 1, 5, 12, 5, RW, 1);
    expect(present(t)).toEqual([0, 2, 4, 5]);
    expect(t.stats().evictions).toBe(2);
  });

  it('round robin evicts in fill order regardless of hits', () => {
    const t = new Iotlb({ entries: 4, ways: 4, policy: 'rr' });
    for (const v of vpns.slice(0, 4)) t.insert(1, 1, v, 12, v, RW, 1);
    expect(t.lookup(1, 1, 0)).toBeGreaterThanOrEqual(0); // a hit does not protect 0
    t.insert(1, 1, 4, 12, 4, RW, 1);
    expect(present(t)).toEqual([1, 2, 3, 4]);
    t.insert(1, 1, 5, 12, 5, RW, 1);
    expect(present(t)).toEqual([2, 3, 4, 5]);
  });

  it('fills an invalidated way before evicting a valid one, under either policy', () => {
    for (const policy of ['lru', 'rr'] as const) {
      const t = new Iotlb({ entries: 4, ways: 4, policy });
      for (const v of vpns.slice(0, 4)) t.insert(1, 1, v, 12, v, RW, 1);
      expect(t.invalidatePasidRange(1, 1, 2, 0)).toBe(1);
      t.insert(1, 1, 4, 12, 4, RW, 1);
      expect(present(t)).toEqual([0, 1, 3, 4]);
      expect(t.stats().evictions).toBe(0);
    }
  });

  it('keeps a cache bigger than its working set free of evictions', () => {
    const t = new Iotlb({ entries: 1024, ways: 8 });
    for (let v = 0; v < 256; v++) t.insert(3, 4, 0x10000 + v, 12, v, RW, 1);
    for (let v = 0; v < 256; v++) expect(t.lookup(3, 4, 0x10000 + v)).toBeGreaterThanOrEqual(0);
    expect(t.stats().evictions).toBe(0);
  });
});

describe('Iotlb invalidation scopes', () => {
  function populated(): Iotlb {
    const t = new Iotlb({ entries: 256, ways: 8 });
    for (const did of [1, 2]) {
      for (const tag of [NO_PASID_TAG, 5, 6]) {
        t.insert(did, tag, 0x100, 12, 0x100, RW, tag === NO_PASID_TAG ? 2 : 1);
        t.insert(did, tag, 0x101, 12, 0x101, RW, tag === NO_PASID_TAG ? 2 : 1);
        t.insert(did, tag, 2 * P2M, 21, 2 * P2M, RW, tag === NO_PASID_TAG ? 2 : 1);
        t.insert(did, tag, P1G, 30, P1G, RW, tag === NO_PASID_TAG ? 2 : 1);
      }
    }
    return t; // 2 dids × 3 tags × 4 entries = 24
  }
  const tags = (es: IotlbEntry[]) => es.map((e) => `${e.did}/${e.pasidTag === NO_PASID_TAG ? 'sl' : e.pasidTag}/${e.vpn}`);

  it('global invalidation removes everything and reports the count', () => {
    const t = populated();
    expect(t.invalidateAll()).toBe(24);
    expect(t.entries()).toEqual([]);
    expect(t.lookup(1, 5, 0x100)).toBe(-1);
  });

  it('domain-selective invalidation removes every entry of the DID, PASID-tagged or not, and nothing else', () => {
    const t = populated();
    expect(t.invalidateDomain(1)).toBe(12);
    expect(t.entries().every((e) => e.did === 2)).toBe(true);
    expect(t.size).toBe(12);
  });

  it('page-selective invalidation removes only the non-PASID-tagged entries of the DID in the range', () => {
    const t = populated();
    expect(t.invalidateDomainRange(1, 0x100, 0)).toBe(1);
    expect(t.lookup(1, NO_PASID_TAG, 0x100)).toBe(-1);
    expect(t.lookup(1, NO_PASID_TAG, 0x101)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(1, 5, 0x100)).toBeGreaterThanOrEqual(0); // PASID-tagged: untouched by PSI
    expect(t.lookup(2, NO_PASID_TAG, 0x100)).toBeGreaterThanOrEqual(0); // other DID
    expect(t.size).toBe(23);
  });

  it('page-selective invalidation never touches PASID-tagged entries, even over the whole space', () => {
    const t = populated();
    expect(t.invalidateDomainRange(1, 0, 45)).toBe(4);
    expect(tags(t.entries().filter((e) => e.did === 1)).every((s) => !s.includes('/sl/'))).toBe(true);
    expect(t.size).toBe(20);
  });

  it('a PSI range that partly overlaps a 2 MiB entry removes it', () => {
    const t = populated();
    // One 4 KiB page in the middle of the 2 MiB entry at 2 * P2M.
    expect(t.invalidateDomainRange(1, 2 * P2M + 300, 0)).toBe(1);
    expect(t.lookup(1, NO_PASID_TAG, 2 * P2M)).toBe(-1);
    expect(t.lookup(1, NO_PASID_TAG, 2 * P2M + 511)).toBe(-1);
    expect(t.lookup(1, NO_PASID_TAG, P1G)).toBeGreaterThanOrEqual(0); // not in the range
    expect(t.lookup(1, 5, 2 * P2M)).toBeGreaterThanOrEqual(0);
  });

  it('a PSI range that partly overlaps a 1 GiB entry removes it without touching pages outside', () => {
    const t = populated();
    expect(t.invalidateDomainRange(2, P1G + P1G - 8, 3)).toBe(1);
    expect(t.lookup(2, NO_PASID_TAG, P1G)).toBe(-1);
    expect(t.lookup(2, NO_PASID_TAG, 2 * P2M)).toBeGreaterThanOrEqual(0);
  });

  it('PSI ignores the address bits below the mask, as hardware does', () => {
    const t = populated();
    // vpn 0x103 with am = 2 covers [0x100, 0x104).
    expect(t.invalidateDomainRange(1, 0x103, 2)).toBe(2);
    expect(t.lookup(1, NO_PASID_TAG, 0x100)).toBe(-1);
    expect(t.lookup(1, NO_PASID_TAG, 0x101)).toBe(-1);
  });

  it('PASID-based invalidation (granularity 2) removes exactly that PASID of that DID', () => {
    const t = populated();
    expect(t.invalidatePasid(1, 5)).toBe(4);
    expect(t.entries().filter((e) => e.did === 1 && e.pasidTag === 5)).toEqual([]);
    expect(t.entries().filter((e) => e.did === 2 && e.pasidTag === 5)).toHaveLength(4);
    expect(t.entries().filter((e) => e.did === 1 && e.pasidTag === NO_PASID_TAG)).toHaveLength(4);
    expect(t.size).toBe(20);
  });

  it('PASID-based PSI (granularity 3) removes that PASID’s entries overlapping the range', () => {
    const t = populated();
    expect(t.invalidatePasidRange(1, 6, 0x101, 0)).toBe(1);
    expect(t.lookup(1, 6, 0x101)).toBe(-1);
    expect(t.lookup(1, 6, 0x100)).toBeGreaterThanOrEqual(0);
    // vpn 3 * P2M - 2 with am = 2 is [3 * P2M - 4, 3 * P2M): the 2 MiB page's last 4 pages.
    expect(t.invalidatePasidRange(1, 6, 3 * P2M - 2, 2)).toBe(1);
    expect(t.lookup(1, 6, 2 * P2M)).toBe(-1);
    expect(t.lookup(1, 5, 2 * P2M)).toBeGreaterThanOrEqual(0);
  });

  it('rejects malformed invalidation arguments', () => {
    const t = populated();
    expect(() => t.invalidateDomainRange(1, -1, 0)).toThrow(RangeError);
    expect(() => t.invalidateDomainRange(1, 0, 64)).toThrow(RangeError);
    expect(() => t.invalidatePasidRange(1, 5, 0, 1.5)).toThrow(RangeError);
    expect(() => t.invalidateRange(1, 5, 0, 0)).toThrow(RangeError);
    expect(t.size).toBe(24);
  });

  it('invalidateRange with wildcards removes every tag in the range', () => {
    const t = populated();
    expect(t.invalidateRange(ANY_DID, ANY_PASID_TAG, 0x100, 1)).toBe(6);
    expect(t.invalidateRange(2, ANY_PASID_TAG, 0, Infinity)).toBe(9);
  });
});

describe('Iotlb stats', () => {
  it('counts hits, misses, inserts, evictions and invalidations', () => {
    const t = new Iotlb({ entries: 2, ways: 2 });
    t.insert(1, 1, 0, 12, 0, RW, 1);
    t.insert(1, 1, 1, 12, 1, RW, 1);
    t.insert(1, 1, 1, 12, 7, RW, 1); // re-insert: counted, no eviction
    t.insert(1, 1, 2, 12, 2, RW, 1); // evicts vpn 0 (LRU)
    t.lookup(1, 1, 2);
    t.lookup(1, 1, 1);
    t.lookup(1, 1, 0);
    expect(t.invalidateAll()).toBe(2);
    expect(t.stats()).toEqual({
      hits: 2, misses: 1, inserts: 4, evictions: 1, invalidations: 2, valid: 0, entries: 2, sets: 1, ways: 2,
    });
  });

  it('returns a plain object that later activity does not change', () => {
    const t = new Iotlb({ entries: 4, ways: 2 });
    const s = t.stats();
    t.lookup(0, 0, 0);
    expect(s.misses).toBe(0);
    expect(structuredClone(s)).toEqual(s);
  });
});

// ---- property-based: the IOTLB against a naive reference ------------------------------

type Op =
  | { k: 'insert'; did: number; tag: number; vpn: number; sizeShift: 12 | 21 | 30; pfn: number; perm: number }
  | { k: 'lookup'; did: number; tag: number; vpn: number }
  | { k: 'all' }
  | { k: 'domain'; did: number }
  | { k: 'domainRange'; did: number; vpn: number; am: number }
  | { k: 'pasid'; did: number; pasid: number }
  | { k: 'pasidRange'; did: number; pasid: number; vpn: number; am: number };

// Regions 1 GiB aligned, one of them above 2^32 pages and one far above. Offsets cluster
// near 0 and on page-size boundaries so that ranges and entries often touch at their edges.
const arbVpn = fc.tuple(
  fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.constantFrom(P1G, 2 ** 32, 2 ** 40 + P1G)),
  fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 15 }) },
    { weight: 3, arbitrary: fc.constantFrom(P2M - 2, P2M - 1, P2M, P2M + 1, 2 * P2M - 1, 2 * P2M, P1G - P2M, P1G - 2, P1G - 1) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 4095 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: P1G - 1 }) },
  ),
).map(([r, o]) => r + o);
const arbDid = fc.integer({ min: 0, max: 2 });
const arbPasid = fc.integer({ min: 0, max: 2 });
const arbTag = fc.oneof(arbPasid, fc.constant(NO_PASID_TAG));
const arbAm = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constantFrom(9, 18, 19, 30, 45));
const arbSize = fc.constantFrom<12 | 21 | 30>(12, 12, 12, 21, 21, 30);

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('insert' as const), did: arbDid, tag: arbTag, vpn: arbVpn, sizeShift: arbSize, pfn: fc.integer({ min: 0, max: 2 ** 20 }), perm: fc.integer({ min: 0, max: 15 }) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('lookup' as const), did: arbDid, tag: arbTag, vpn: arbVpn }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('all' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('domain' as const), did: arbDid }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('domainRange' as const), did: arbDid, vpn: arbVpn, am: arbAm }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pasid' as const), did: arbDid, pasid: arbPasid }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('pasidRange' as const), did: arbDid, pasid: arbPasid, vpn: arbVpn, am: arbAm }) },
);

/** The reference: which entries each invalidation scope selects, spelled out naively. */
function selectedBy(op: Op, e: IotlbEntry): boolean {
  const overlaps = (vpn: number, am: number) => {
    const start = Math.floor(vpn / 2 ** am) * 2 ** am;
    const end = start + 2 ** am;
    return e.vpn < end && e.vpn + 2 ** (e.sizeShift - 12) > start;
  };
  switch (op.k) {
    case 'all': return true;
    case 'domain': return e.did === op.did;
    case 'domainRange': return e.did === op.did && e.pasidTag === NO_PASID_TAG && overlaps(op.vpn, op.am);
    case 'pasid': return e.did === op.did && e.pasidTag === op.pasid;
    case 'pasidRange': return e.did === op.did && e.pasidTag === op.pasid && overlaps(op.vpn, op.am);
    default: return false;
  }
}

function apply(t: Iotlb, op: Op): number {
  switch (op.k) {
    case 'all': return t.invalidateAll();
    case 'domain': return t.invalidateDomain(op.did);
    case 'domainRange': return t.invalidateDomainRange(op.did, op.vpn, op.am);
    case 'pasid': return t.invalidatePasid(op.did, op.pasid);
    case 'pasidRange': return t.invalidatePasidRange(op.did, op.pasid, op.vpn, op.am);
    default: throw new Error('not an invalidation');
  }
}

/**
 * Runs `ops` against the IOTLB and a reference map of everything inserted and not yet
 * invalidated. With `noEvictions` the cache must hold exactly the reference; otherwise it
 * must hold a subset of it (evictions allowed), and every operation is checked against
 * the cache's own contents just before it.
 */
function check(t: Iotlb, ops: Op[], noEvictions: boolean): void {
  const ref = new Map<string, IotlbEntry>();
  let lookups = 0;
  for (const op of ops) {
    const before = t.entries();
    if (op.k === 'insert') {
      const pages = 2 ** (op.sizeShift - 12);
      const e: IotlbEntry = {
        did: op.did, pasidTag: op.tag, vpn: Math.floor(op.vpn / pages) * pages, sizeShift: op.sizeShift,
        pfn: op.pfn * pages, perm: op.perm, pgtt: op.tag === NO_PASID_TAG ? 2 : 1,
      };
      t.insert(e.did, e.pasidTag, e.vpn, e.sizeShift, e.pfn, e.perm, e.pgtt);
      ref.set(keyOf(e), e);
      const after = t.entries();
      expect(after.find((x) => keyOf(x) === keyOf(e))).toEqual(e);
      const afterKeys = new Set(after.map(keyOf));
      const lost = before.filter((x) => !afterKeys.has(keyOf(x)));
      expect(lost.length).toBeLessThanOrEqual(1); // at most one eviction
      if (noEvictions) expect(lost).toEqual([]);
    } else if (op.k === 'lookup') {
      lookups++;
      const h = t.lookup(op.did, op.tag, op.vpn);
      const candidates = before.filter((e) => e.did === op.did && e.pasidTag === op.tag && covers(e, op.vpn));
      if (candidates.length === 0) {
        expect(h).toBe(-1);
      } else {
        expect(h).toBeGreaterThanOrEqual(0);
        const smallest = Math.min(...candidates.map((e) => e.sizeShift));
        const e = candidates.find((c) => c.sizeShift === smallest)!;
        expect(t.sizeShiftOf(h)).toBe(smallest);
        expect(t.translatePfn(h, op.vpn)).toBe(e.pfn + (op.vpn - e.vpn));
        expect(t.permOf(h)).toBe(e.perm);
      }
      expect(sortEntries(t.entries())).toEqual(sortEntries(before));
    } else {
      const expected = before.filter((e) => selectedBy(op, e));
      expect(apply(t, op)).toBe(expected.length);
      const removedKeys = new Set(expected.map(keyOf));
      expect(sortEntries(t.entries())).toEqual(sortEntries(before.filter((e) => !removedKeys.has(keyOf(e)))));
      for (const [k, e] of ref) if (selectedBy(op, e)) ref.delete(k);
    }
    // Nothing in the cache that the reference does not have (no stale or phantom entry).
    const now = t.entries();
    for (const e of now) expect(ref.get(keyOf(e))).toEqual(e);
    if (noEvictions) expect(now.length).toBe(ref.size);
    const st = t.stats();
    expect(st.valid).toBe(now.length);
    expect(st.hits + st.misses).toBe(lookups);
  }
}

describe('Iotlb against a reference model (property-based)', () => {
  it('matches the reference exactly when nothing is evicted', () => {
    fc.assert(fc.property(fc.array(arbOp, { minLength: 20, maxLength: 60, size: 'max' }), (ops) => {
      // 16 sets × 64 ways: at most 60 inserts can never overflow a set.
      check(new Iotlb({ entries: 1024, ways: 64 }), ops, true);
    }), { numRuns: 200 });
  });

  it('stays a subset of the reference with each scope exact, under eviction pressure', () => {
    fc.assert(fc.property(
      fc.array(arbOp, { minLength: 20, maxLength: 80, size: 'max' }),
      fc.constantFrom({ entries: 16, ways: 2, policy: 'lru' as const }, { entries: 8, ways: 4, policy: 'rr' as const }, { entries: 4, ways: 1 }),
      (ops, cfg) => check(new Iotlb(cfg), ops, false),
    ), { numRuns: 300 });
  });
});
