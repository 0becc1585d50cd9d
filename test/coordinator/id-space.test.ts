import { describe, expect, it } from 'vitest';
import { ID_SPACE_SPECS, IdSpace, type IdSpaceKind } from '../../coordinator/id-space.js';
import { type SimErrorCode, isSimError } from '../../shared/errors.js';
import { mulberry32 } from '../../shared/prng.js';

function expectErr(code: SimErrorCode, reason: string, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(isSimError(e, code), String(e)).toBe(true);
    expect((e as { reason: string }).reason).toBe(reason);
    return;
  }
  throw new Error(`expected ${code} (${reason}), got success`);
}

function fill(s: IdSpace): number[] {
  const ids: number[] = [];
  for (let i = 0; i < s.capacity; i++) ids.push(s.alloc('fill'));
  return ids;
}

describe('16-bit tag spaces', () => {
  it.each([
    ['smmu-asid', 1, 'EBUSY', 'asid-exhausted'],
    ['smmu-vmid', 1, 'ENOSPC', 'vmid-exhausted'],
    ['amd-domain-id', 1, 'ENOMEM', 'domain-id-exhausted'],
    ['vtd-did', 2, 'ENOSPC', 'did-exhausted'],
  ] as const)('%s hands out %i … 65535 lowest first, then fails with %s like the kernel', (kind, first, code, reason) => {
    const s = new IdSpace(kind as IdSpaceKind);
    expect([s.first, s.max, s.capacity]).toEqual([first, 65535, 65536 - first]);
    const ids = fill(s);
    expect(ids[0]).toBe(first);
    expect(ids.at(-1)).toBe(65535);
    expect(ids.every((id, i) => id === first + i)).toBe(true);
    expect([s.inUse, s.available]).toEqual([s.capacity, 0]);
    expectErr(code, reason, () => s.alloc('domain-alloc'));
    // Freeing one id makes exactly that id the next one handed out.
    s.free(4242);
    expect(s.alloc('again')).toBe(4242);
    expectErr(code, reason, () => s.alloc('domain-alloc'));
  });

  it('reports AMD GCR3-table domain-id exhaustion as ENOSPC (setup_gcr3_table) and rejects unknown paths', () => {
    const s = new IdSpace('amd-domain-id', { bits: 2 });
    fill(s);
    expectErr('ENOMEM', 'domain-id-exhausted', () => s.alloc('domain-alloc'));
    expectErr('ENOSPC', 'domain-id-exhausted', () => s.alloc('gcr3', 'gcr3-table'));
    expectErr('EINVAL', 'unknown-path', () => s.alloc('x', 'nope'));
  });

  it('narrows to 8 bits for SMMUs without ASID16/VMID16 and refuses widths above 16', () => {
    const asid = new IdSpace('smmu-asid', { bits: 8 });
    expect([asid.max, asid.capacity]).toEqual([255, 255]);
    fill(asid);
    expectErr('EBUSY', 'asid-exhausted', () => asid.alloc('sva-bind'));
    expectErr('EINVAL', 'bad-width', () => new IdSpace('smmu-vmid', { bits: 17 }));
    expectErr('EINVAL', 'bad-width', () => new IdSpace('smmu-vmid', { bits: 0 }));
  });

  it('never hands out the reserved ids below first', () => {
    const s = new IdSpace('vtd-did', { bits: 3 });
    expect(fill(s)).toEqual([2, 3, 4, 5, 6, 7]);
    expect([s.has(0), s.has(1)]).toEqual([false, false]);
  });

  it('reserves given ids with the allocator\'s own errno when taken, EINVAL when out of range', () => {
    const vmid = new IdSpace('smmu-vmid');
    vmid.reserve(7, 'kdump');
    expect(vmid.has(7)).toBe(true);
    expectErr('ENOSPC', 'id-in-use', () => vmid.reserve(7, 'kdump'));
    expectErr('EINVAL', 'id-out-of-range', () => vmid.reserve(0, 'kdump'));
    expectErr('EINVAL', 'id-out-of-range', () => vmid.reserve(65536, 'kdump'));
    const asid = new IdSpace('smmu-asid');
    asid.reserve(1, 'kdump');
    expectErr('EBUSY', 'id-in-use', () => asid.reserve(1, 'kdump'));
    // Allocation skips reserved ids.
    expect(asid.alloc('a')).toBe(2);
    expect(vmid.alloc('a')).toBe(1);
  });

  it('refuses to free an id that is not allocated', () => {
    const s = new IdSpace('smmu-vmid');
    expectErr('EINVAL', 'id-not-allocated', () => s.free(1));
    const id = s.alloc('a');
    s.free(id);
    expectErr('EINVAL', 'id-not-allocated', () => s.free(id));
    expectErr('EINVAL', 'id-not-allocated', () => s.free(-1));
    expectErr('EINVAL', 'id-not-allocated', () => s.free(70000));
  });

  it('gives the lowest free DID from 2 (as Linux\'s ida) over a random alloc/free sequence, then ENOSPC', () => {
    const rnd = mulberry32(7);
    const a = new IdSpace('vtd-did', { bits: 6 });
    const b = new LowestFree(2, 63);
    const live: number[] = [];
    for (let i = 0; i < 5000; i++) {
      if (live.length > 0 && (rnd() < 0.45 || live.length === a.capacity)) {
        const id = live.splice(Math.floor(rnd() * live.length), 1)[0];
        a.free(id);
        b.free(id);
      } else {
        const x = a.alloc('attach');
        expect(b.alloc('attach')).toBe(x);
        live.push(x);
      }
      expect(a.inUse).toBe(live.length);
    }
    while (live.length < a.capacity) {
      const x = a.alloc('fill');
      expect(b.alloc('fill')).toBe(x);
      live.push(x);
    }
    expectErr('ENOSPC', 'did-exhausted', () => a.alloc('attach'));
    expect(() => b.alloc('attach')).toThrow('full');
  });

  it('documents the kernel source and scope of every space', () => {
    for (const s of Object.values(ID_SPACE_SPECS)) {
      expect(s.width.bits).toBe(16);
      expect(s.source.length).toBeGreaterThan(20);
    }
    expect(ID_SPACE_SPECS['smmu-asid'].scope).toBe('global');
    expect(ID_SPACE_SPECS['smmu-vmid'].scope).toBe('per-iommu');
    expect(ID_SPACE_SPECS['amd-domain-id'].scope).toBe('global');
  });
});

/** Reference model: a set, lowest free id in [first, max]. */
class LowestFree {
  private readonly used = new Set<number>();
  constructor(private readonly first: number, private readonly max: number) {}
  alloc(_op: string): number {
    for (let id = this.first; id <= this.max; id++) if (!this.used.has(id)) { this.used.add(id); return id; }
    throw new Error('full');
  }
  free(id: number): void {
    this.used.delete(id);
  }
}
