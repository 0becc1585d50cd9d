/**
 * The v5 ioasid allocator and iommu_sva_alloc_pasid (SEMANTICS.md §2.1): one test per rule
 * and errno.
 */
import { describe, expect, it } from 'vitest';
import { INVALID_IOASID, Ioasid, type IoasidAllocatorOps, MmPasid, svaAllocPasid } from '../../coordinator/ioasid.js';
import { PASID_SPACE } from '../../coordinator/pasid-ida.js';

import { code } from '../helpers/errno.js';

/** A paravirt (vcmd-like) allocator handing out ids from `base` upward. */
function vcmd(base: number) {
  const live = new Set<number>();
  const log: string[] = [];
  const ops: IoasidAllocatorOps = {
    alloc(min, max) {
      for (let id = Math.max(min, base); id <= max; id++) {
        if (!live.has(id)) { live.add(id); log.push(`alloc ${id}`); return id; }
      }
      return INVALID_IOASID;
    },
    free(id) { live.delete(id); log.push(`free ${id}`); },
  };
  return { ops, live, log };
}

describe('ioasid: default allocator', () => {
  it('hands out the lowest free id in [min, max] inclusive and reuses freed ids lowest first', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    expect(io.alloc(s, 1, 10)).toBe(1);
    expect(io.alloc(s, 1, 10)).toBe(2);
    expect(io.alloc(s, 5, 10)).toBe(5);
    expect(io.alloc(s, 1, 10)).toBe(3);
    io.free(2);
    expect(io.alloc(s, 1, 10)).toBe(2);
    expect(io.alloc(s, 10, 10)).toBe(10);
  });

  it('returns INVALID_IOASID (0xffffffff) when the range is exhausted or empty', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    expect(io.alloc(s, 7, 8)).toBe(7);
    expect(io.alloc(s, 7, 8)).toBe(8);
    expect(io.alloc(s, 7, 8)).toBe(INVALID_IOASID);
    expect(INVALID_IOASID).toBe(0xffffffff);
    expect(io.alloc(s, 9, 8)).toBe(INVALID_IOASID);
  });

  it('ignores freeing an unknown id', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const id = io.alloc(s, 1, 10);
    io.free(5);
    io.free(INVALID_IOASID);
    io.free(id);
    io.free(id);
    expect(io.stats().outstanding).toBe(0);
    expect(io.alloc(s, 1, 10)).toBe(1);
  });

  it('finds the private data of an id in its set, or in any set with null', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const data = { vm: 1 };
    const id = io.alloc(s, 1, 10, data);
    expect(io.find(s, id)).toBe(data);
    expect(io.find(null, id)).toBe(data);
  });

  it('find of an unknown id fails with ENOENT', () => {
    const io = new Ioasid();
    expect(code(() => io.find(null, 3))).toBe('ENOENT');
  });

  it('find of an id in another set fails with EACCES, even for a set of the same name', () => {
    const io = new Ioasid();
    const a = io.declareSet('vm');
    const b = io.declareSet('vm');
    const id = io.alloc(a, 1, 10, 'x');
    expect(code(() => io.find(b, id))).toBe('EACCES');
  });

  it('find returns null when the getter refuses the data', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const id = io.alloc(s, 1, 10, 'dying');
    expect(io.find(s, id, (d) => d !== 'dying')).toBeNull();
    expect(io.find(s, id, () => true)).toBe('dying');
  });

  it('setData replaces the data; an unknown id fails with ENOENT', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const id = io.alloc(s, 1, 10, 'a');
    io.setData(id, 'b');
    expect(io.find(s, id)).toBe('b');
    expect(code(() => io.setData(99, 'c'))).toBe('ENOENT');
  });

  it('allocates and frees the whole 20-bit space in order', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    let bad = 0;
    for (let i = 1; i < PASID_SPACE; i++) if (io.alloc(s, 1, PASID_SPACE - 1) !== i) bad++;
    expect(bad).toBe(0);
    expect(io.stats().outstanding).toBe(PASID_SPACE - 1);
    expect(io.alloc(s, 1, PASID_SPACE - 1)).toBe(INVALID_IOASID);
    for (let i = 1; i < PASID_SPACE; i++) io.free(i);
    expect(io.stats().outstanding).toBe(0);
    expect(io.alloc(s, 1, PASID_SPACE - 1)).toBe(1);
  });
});

describe('ioasid: custom allocators', () => {
  it('a registered custom allocator takes precedence over the default', () => {
    const io = new Ioasid();
    const s = io.declareSet('guest');
    const v = vcmd(100);
    io.registerAllocator(v.ops);
    expect(io.alloc(s, 1, 1000, 'd')).toBe(100);
    expect(io.find(s, 100)).toBe('d');
    io.free(100);
    expect(v.log).toEqual(['alloc 100', 'free 100']);
    expect(io.stats().active).toBe('custom');
  });

  it('registering while the default allocator has outstanding ids fails with EAGAIN', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const id = io.alloc(s, 1, 10);
    const v = vcmd(100);
    expect(code(() => io.registerAllocator(v.ops))).toBe('EAGAIN');
    io.free(id);
    io.registerAllocator(v.ops);
    expect(io.stats().active).toBe('custom');
  });

  it('registering the same ops twice fails with EEXIST', () => {
    const io = new Ioasid();
    const v = vcmd(100);
    io.registerAllocator(v.ops);
    expect(code(() => io.registerAllocator(v.ops))).toBe('EEXIST');
  });

  it('ops sharing the same alloc/free functions share one space', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const v = vcmd(100);
    const twin: IoasidAllocatorOps = { alloc: v.ops.alloc, free: v.ops.free };
    io.registerAllocator(v.ops);
    io.registerAllocator(twin);
    expect(io.stats().customAllocators).toBe(1);
    const a = io.alloc(s, 1, 1000);
    // The first ops goes; the twin keeps the space (and its ids) active.
    io.unregisterAllocator(v.ops);
    expect(io.stats().active).toBe('custom');
    expect(io.alloc(s, 1, 1000)).toBe(a + 1);
    expect(io.find(s, a)).toBeUndefined();
    expect(io.stats().outstanding).toBe(2);
  });

  it('a custom allocator with different functions waits behind the active one and takes over when it goes', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const first = vcmd(100);
    const second = vcmd(500);
    io.registerAllocator(first.ops);
    io.registerAllocator(second.ops);
    expect(io.alloc(s, 1, 1000)).toBe(100);
    io.free(100);
    io.unregisterAllocator(first.ops);
    expect(io.alloc(s, 1, 1000)).toBe(500);
    expect(second.log).toEqual(['alloc 500']);
  });

  it('only the active allocator sees ids: the default allocator returns when the last custom one goes', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const v = vcmd(100);
    io.registerAllocator(v.ops);
    const id = io.alloc(s, 1, 1000);
    io.free(id);
    io.unregisterAllocator(v.ops);
    expect(io.stats()).toEqual({ outstanding: 0, active: 'default', customAllocators: 0, orphaned: 0 });
    expect(io.alloc(s, 1, 1000)).toBe(1);
    expect(v.log).toEqual(['alloc 100', 'free 100']);
  });

  it('unregistering the last custom allocator with ids outstanding orphans them (WARN) and never throws', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const v = vcmd(100);
    io.registerAllocator(v.ops);
    const a = io.alloc(s, 1, 1000);
    const b = io.alloc(s, 1, 1000);
    io.unregisterAllocator(v.ops);
    expect(io.stats().orphaned).toBe(2);
    expect(io.warnings.length).toBe(1);
    expect(v.log).toEqual([`alloc ${a}`, `alloc ${b}`]); // ops.free was not called for them
    expect(code(() => io.find(null, a))).toBe('ENOENT');
    io.free(b); // unknown now: no-op
    expect(io.stats().active).toBe('default');
    expect(io.alloc(s, 1, 1000)).toBe(1);
  });

  it('unregistering unknown ops is a no-op', () => {
    const io = new Ioasid();
    io.unregisterAllocator(vcmd(1).ops);
    expect(io.stats().active).toBe('default');
  });

  it('an id a custom allocator returns outside [min, max] fails the allocation and is handed back', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    const v = vcmd(100);
    io.registerAllocator({ alloc: (min, max) => v.ops.alloc(min, max + 1000), free: (id) => v.ops.free(id) });
    expect(io.alloc(s, 1, 50)).toBe(INVALID_IOASID);
    expect(v.live.size).toBe(0);
  });
});

describe('svaAllocPasid (v5 iommu_sva_alloc_pasid)', () => {
  it('allocates the lowest free PASID in [min, max] in the SVA set, owned by the mm', () => {
    const io = new Ioasid();
    const owner = { name: 'mm1' };
    const mm = new MmPasid(io, owner);
    expect(svaAllocPasid(mm, 1, 100)).toBe(1);
    expect(mm.pasid).toBe(1);
    expect(io.find(io.svaSet, 1)).toBe(owner);
    expect(code(() => io.find(io.declareSet('other'), 1))).toBe('EACCES');
  });

  it('min == 0, max < min or INVALID bounds fail with EINVAL', () => {
    const mm = new MmPasid(new Ioasid());
    expect(code(() => svaAllocPasid(mm, 0, 10))).toBe('EINVAL');
    expect(code(() => svaAllocPasid(mm, 5, 4))).toBe('EINVAL');
    expect(code(() => svaAllocPasid(mm, INVALID_IOASID, INVALID_IOASID))).toBe('EINVAL');
    expect(code(() => svaAllocPasid(mm, 1, INVALID_IOASID))).toBe('EINVAL');
    expect(mm.valid).toBe(false);
  });

  it('an mm keeps its PASID for any range containing it', () => {
    const io = new Ioasid();
    const mm = new MmPasid(io);
    const p = svaAllocPasid(mm, 1, 100);
    expect(svaAllocPasid(mm, 1, 50)).toBe(p);
    expect(io.stats().outstanding).toBe(1);
  });

  it('an mm whose PASID is outside [min, max) fails with EOVERFLOW (max itself overflows)', () => {
    const io = new Ioasid();
    const s = io.declareSet('s');
    for (let i = 1; i < 8; i++) io.alloc(s, 1, 100);
    const mm = new MmPasid(io);
    expect(svaAllocPasid(mm, 1, 100)).toBe(8);
    expect(code(() => svaAllocPasid(mm, 9, 100))).toBe('EOVERFLOW');
    expect(code(() => svaAllocPasid(mm, 1, 8))).toBe('EOVERFLOW');
    expect(svaAllocPasid(mm, 1, 9)).toBe(8);
  });

  it('allocation failure is ENOMEM', () => {
    const io = new Ioasid();
    const a = new MmPasid(io);
    const b = new MmPasid(io);
    expect(svaAllocPasid(a, 1, 1)).toBe(1);
    expect(code(() => svaAllocPasid(b, 1, 1))).toBe('ENOMEM');
    expect(b.valid).toBe(false);
  });

  it('the PASID is kept until the mm is freed (drop), then returns to the allocator', () => {
    const io = new Ioasid();
    const a = new MmPasid(io);
    expect(svaAllocPasid(a, 1, 10)).toBe(1);
    const b = new MmPasid(io);
    expect(svaAllocPasid(b, 1, 10)).toBe(2);
    a.drop();
    expect(a.pasid).toBe(INVALID_IOASID);
    a.drop(); // idempotent
    expect(svaAllocPasid(new MmPasid(io), 1, 10)).toBe(1);
  });
});
