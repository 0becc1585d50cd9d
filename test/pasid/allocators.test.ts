/**
 * PASID allocation policies ('global' | 'per-device') behind one interface, and quota'd
 * PASID sets (SEMANTICS.md §2.1 quota extension, §2.2, §2.4).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LowestFreeIda, PASID_MAX_ID, PasidCapacity, type PasidDevice, type PasidPolicy, createPasidAllocator,
} from '../../coordinator/pasid-allocator.js';
import { PASID_SPACE, PasidIda } from '../../coordinator/pasid-ida.js';

import { code } from '../helpers/errno.js';

const dev = (id: number, bits = 20): PasidDevice => ({ id, maxPasids: bits === 0 ? 0 : 2 ** bits });
const POLICIES: PasidPolicy[] = ['global', 'per-device'];

describe('LowestFreeIda', () => {
  it('answers every alloc/free/claim sequence exactly as PasidIda does', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('alloc' as const), min: fc.integer({ min: -2, max: 70 }), span: fc.integer({ min: -2, max: 70 }) }),
      fc.record({ k: fc.constant('free' as const), id: fc.integer({ min: -1, max: 140 }) }),
      fc.record({ k: fc.constant('claim' as const), id: fc.integer({ min: 0, max: 140 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const ref = new PasidIda();
      const ida = new LowestFreeIda();
      for (const o of ops) {
        if (o.k === 'alloc') expect(ida.alloc(o.min, o.min + o.span)).toBe(ref.alloc(o.min, o.min + o.span));
        else if (o.k === 'free') { ida.free(o.id); ref.free(o.id); }
        else expect(ida.claim(o.id)).toBe(ref.claim(o.id));
      }
      expect(ida.allocated).toBe(ref.allocated);
    }), { seed: 1, numRuns: 300 });
  });
});

describe.each(POLICIES)('%s policy: common rules', (policy) => {
  it('hands out the lowest free PASID from 1, never PASID 0, and reuses freed ones lowest first', () => {
    const a = createPasidAllocator(policy);
    const d = dev(1);
    expect(a.policy).toBe(policy);
    expect([a.alloc({ dev: d }), a.alloc({ dev: d }), a.alloc({ dev: d })]).toEqual([1, 2, 3]);
    a.free(2, d);
    a.free(1, d);
    expect(a.alloc({ dev: d })).toBe(1);
    expect(a.alloc({ dev: d })).toBe(2);
    expect(a.alloc({ dev: d, min: 0 })).toBe(4);
    expect(a.inUse(0, d)).toBe(false);
  });

  it('honours min and max (inclusive) and returns -1 when the range is full or empty', () => {
    const a = createPasidAllocator(policy);
    const d = dev(1);
    expect(a.alloc({ dev: d, min: 10, max: 11 })).toBe(10);
    expect(a.alloc({ dev: d, min: 10, max: 11 })).toBe(11);
    expect(a.alloc({ dev: d, min: 10, max: 11 })).toBe(-1);
    expect(a.alloc({ dev: d, min: 12, max: 11 })).toBe(-1);
    expect(a.stats().failures).toBe(2);
  });

  it('gives a device with max_pasids 0 no PASID', () => {
    const a = createPasidAllocator(policy);
    expect(a.alloc({ dev: dev(1, 0) })).toBe(-1);
  });

  it('bounds an allocation for a set of devices by the narrowest one', () => {
    const a = createPasidAllocator(policy);
    const wide = dev(1, 20);
    const narrow = dev(2, 2); // valid PASIDs 1..3
    const devices = [wide, narrow];
    expect([1, 2, 3].map(() => a.alloc({ devices }))).toEqual([1, 2, 3]);
    expect(a.alloc({ devices })).toBe(-1);
    expect(a.alloc({ dev: wide })).toBe(4);
  });

  it('records the owner and forgets it on free', () => {
    const a = createPasidAllocator(policy);
    const d = dev(1);
    const owner = { vm: 7 };
    const p = a.alloc({ dev: d, owner });
    expect(a.ownerOf(p, d)).toBe(owner);
    a.free(p, d);
    expect(a.ownerOf(p, d)).toBeUndefined();
    expect(a.inUse(p, d)).toBe(false);
  });

  it('ignores freeing a PASID that is not in use', () => {
    const a = createPasidAllocator(policy);
    const d = dev(1);
    a.free(5, d);
    expect(a.stats()).toMatchObject({ inUse: 0, frees: 0 });
  });

  it('rejects non-integer bounds with EINVAL', () => {
    const a = createPasidAllocator(policy);
    expect(code(() => a.alloc({ dev: dev(1), min: 1.5 }))).toBe('EINVAL');
    expect(code(() => a.alloc({ dev: dev(1), max: Number.NaN }))).toBe('EINVAL');
  });

  it('allocates and frees the whole 20-bit space in order', () => {
    const a = createPasidAllocator(policy);
    const d = dev(1);
    let bad = 0;
    for (let i = 1; i < PASID_SPACE; i++) if (a.alloc({ dev: d }) !== i) bad++;
    expect(bad).toBe(0);
    expect(a.alloc({ dev: d })).toBe(-1);
    expect(a.stats()).toMatchObject({ inUse: PASID_SPACE - 1, allocs: PASID_SPACE - 1, failures: 1 });
    for (let i = 1; i < PASID_SPACE; i++) a.free(i, d);
    expect(a.stats()).toMatchObject({ inUse: 0, frees: PASID_SPACE - 1 });
    expect(a.alloc({ dev: d })).toBe(1);
  });
});

describe('global policy', () => {
  it('numbers PASIDs system-wide: two devices never get the same live PASID', () => {
    const a = createPasidAllocator('global');
    expect(a.alloc({ dev: dev(1) })).toBe(1);
    expect(a.alloc({ dev: dev(2) })).toBe(2);
    expect(a.inUse(1)).toBe(true);
    expect(a.inUse(1, dev(2))).toBe(true); // the device does not matter
  });

  it('with no device allocates from the whole space 1..2^20-1', () => {
    const a = createPasidAllocator('global');
    expect(a.alloc({ min: PASID_MAX_ID })).toBe(PASID_MAX_ID);
    expect(a.alloc({ min: PASID_MAX_ID })).toBe(-1);
  });

  it('can share an existing IDA, so allocGlobalPasid and the allocator see one space', () => {
    const ida = new PasidIda();
    expect(ida.alloc(1, 10)).toBe(1);
    const a = createPasidAllocator('global', { ida });
    expect(a.alloc({ dev: dev(1) })).toBe(2);
    expect(ida.has(2)).toBe(true);
    expect(code(() => createPasidAllocator('per-device', { ida }))).toBe('EINVAL');
  });
});

describe('per-device policy', () => {
  it('numbers PASIDs per device: the same number is live on two devices independently', () => {
    const a = createPasidAllocator('per-device');
    const d1 = dev(1);
    const d2 = dev(2);
    expect(a.alloc({ dev: d1 })).toBe(1);
    expect(a.alloc({ dev: d2 })).toBe(1);
    a.free(1, d1);
    expect(a.inUse(1, d1)).toBe(false);
    expect(a.inUse(1, d2)).toBe(true);
    expect(a.stats()).toMatchObject({ inUse: 1, spaces: 2 });
  });

  it('for a set of devices takes the lowest number free on all of them, on each', () => {
    const a = createPasidAllocator('per-device');
    const d1 = dev(1);
    const d2 = dev(2);
    a.alloc({ dev: d1 }); // 1 on d1
    a.alloc({ dev: d1 }); // 2 on d1
    a.alloc({ dev: d2, min: 3, max: 3 }); // 3 on d2
    expect(a.alloc({ devices: [d1, d2] })).toBe(4);
    expect(a.inUse(4, d1) && a.inUse(4, d2)).toBe(true);
    expect(a.alloc({ dev: d2 })).toBe(1);
  });

  it('needs a device: alloc, free and lookups without one fail with EINVAL', () => {
    const a = createPasidAllocator('per-device');
    expect(code(() => a.alloc({}))).toBe('EINVAL');
    expect(code(() => a.free(1))).toBe('EINVAL');
    expect(code(() => a.inUse(1))).toBe('EINVAL');
  });
});

describe.each(POLICIES)("quota'd PASID sets (%s policy)", (policy) => {
  it('allocation beyond the quota fails (-1) while other sets still allocate', () => {
    const cap = new PasidCapacity(createPasidAllocator(policy), 100);
    const d = dev(1);
    const vm1 = cap.createSet('vm1', 2);
    const vm2 = cap.createSet('vm2', 2);
    expect(vm1.alloc({ dev: d })).toBe(1);
    expect(vm1.alloc({ dev: d })).toBeGreaterThan(0);
    expect(vm1.alloc({ dev: d })).toBe(-1);
    expect(vm2.alloc({ dev: d })).toBeGreaterThan(0);
    expect(vm1.used).toBe(2);
    vm1.free(1, d);
    expect(vm1.used).toBe(1);
    expect(vm1.alloc({ dev: d })).toBe(1);
  });

  it('a quota exceeding the available capacity fails with ENOSPC', () => {
    const cap = new PasidCapacity(createPasidAllocator(policy), 10);
    cap.createSet('vm1', 6);
    expect(code(() => cap.createSet('vm2', 5))).toBe('ENOSPC');
    expect(cap.available).toBe(4);
    cap.createSet('vm2', 4);
    expect(cap.available).toBe(0);
  });

  it('a duplicate token fails with EEXIST', () => {
    const cap = new PasidCapacity(createPasidAllocator(policy), 10);
    const token = { vm: 1 };
    cap.createSet(token, 1);
    expect(code(() => cap.createSet(token, 1))).toBe('EEXIST');
  });

  it('shrinking a set below its current usage fails with EINVAL; growing past capacity with ENOSPC', () => {
    const cap = new PasidCapacity(createPasidAllocator(policy), 10);
    const d = dev(1);
    const set = cap.createSet('vm', 4);
    set.alloc({ dev: d });
    set.alloc({ dev: d });
    set.alloc({ dev: d });
    expect(code(() => cap.adjustSet(set, 2))).toBe('EINVAL');
    expect(set.quota).toBe(4);
    cap.adjustSet(set, 3);
    expect(cap.available).toBe(7);
    expect(code(() => cap.adjustSet(set, 11))).toBe('ENOSPC');
    cap.adjustSet(set, 10);
    expect(cap.available).toBe(0);
  });

  it('records the token as the owner and frees everything when the set is destroyed', () => {
    const alloc = createPasidAllocator(policy);
    const cap = new PasidCapacity(alloc, 10);
    const d = dev(1);
    const set = cap.createSet('vm', 5);
    const p = set.alloc({ dev: d });
    expect(alloc.ownerOf(p, d)).toBe('vm');
    expect(set.has(p, d)).toBe(true);
    set.alloc({ devices: [d, dev(2)] });
    cap.destroySet(set);
    expect(alloc.stats().inUse).toBe(0);
    expect(cap.available).toBe(10);
    expect(code(() => set.alloc({ dev: d }))).toBe('ENOENT');
  });

  it('one allocation spanning several devices counts once and is freed on all of them', () => {
    const alloc = createPasidAllocator(policy);
    const cap = new PasidCapacity(alloc, 10);
    const d1 = dev(1);
    const d2 = dev(2);
    const set = cap.createSet('vm', 1);
    const p = set.alloc({ devices: [d1, d2] });
    expect(set.used).toBe(1);
    set.free(p, d2);
    expect(set.used).toBe(0);
    expect(alloc.inUse(p, d1) || alloc.inUse(p, d2)).toBe(false);
  });
});
