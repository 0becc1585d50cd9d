/**
 * The v5 profile's PASID space is the ioasid allocator (SEMANTICS.md §2.1): aux domains,
 * SVA and allocGlobalPasid draw from it, and from a registered custom allocator.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator } from 'iommu-sim';
import { expectThrowsCode } from '../e2e/helpers.js';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(semantics: 'latest' | 'v5' = 'v5') {
  sim = await Simulator.start({ semantics, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:04:00.0' }] } });
  return { sim, dev: sim.topology.devices };
}

describe('the v5 ioasid space', () => {
  it('exists only in the v5 profile', async () => {
    const { sim } = await start('latest');
    expectThrowsCode(() => sim.iommu.ioasid, 'EOPNOTSUPP');
    expectThrowsCode(() => sim.iommu.svaAllocPasid(sim.mm.create(), 1, 10), 'EOPNOTSUPP');
  });

  it('supplies aux-domain and SVA PASIDs, findable with their owner', async () => {
    const { sim, dev } = await start();
    sim.iommu.devEnableFeature(dev[0], 'aux');
    sim.iommu.devEnableFeature(dev[1], 'sva');
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.auxAttachDevice(d, dev[0]);
    expect(sim.iommu.auxGetPasid(d, dev[0])).toBe(1);
    expect(sim.iommu.ioasid.find(null, 1)).toBe(d);
    const mm = sim.mm.create();
    await sim.iommu.svaBindDevice(dev[1], mm);
    expect(mm.pasid).toBe(2);
    expect(sim.iommu.ioasid.find(sim.iommu.ioasid.svaSet, 2)).toBe(mm);
    expectThrowsCode(() => sim!.iommu.ioasid.find(sim!.iommu.ioasid.declareSet('other'), 2), 'EACCES');
  });

  it('hands PASIDs out from a registered custom (virtual-command) allocator, and refuses to register while ids are out', async () => {
    const { sim, dev } = await start();
    let next = 100;
    const freed: number[] = [];
    const vcmd = { alloc: () => next++, free: (id: number) => { freed.push(id); } };
    expect(sim.iommu.allocGlobalPasid(dev[0])).toBe(1);
    expectThrowsCode(() => sim!.iommu.ioasid.registerAllocator(vcmd), 'EAGAIN');
    sim.iommu.freeGlobalPasid(1);
    sim.iommu.ioasid.registerAllocator(vcmd);
    sim.iommu.devEnableFeature(dev[0], 'aux');
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.auxAttachDevice(d, dev[0]);
    expect(sim.iommu.auxGetPasid(d, dev[0])).toBe(100);
    await sim.iommu.auxDetachDevice(d, dev[0]);
    expect(freed).toEqual([100]);
  });

  it('applies iommu_sva_alloc_pasid\'s rules: EINVAL range, EOVERFLOW for a PASID outside [min, max), kept once allocated', async () => {
    const { sim, dev } = await start();
    const mm = sim.mm.create();
    expectThrowsCode(() => sim!.iommu.svaAllocPasid(mm, 0, 10), 'EINVAL');
    expectThrowsCode(() => sim!.iommu.svaAllocPasid(mm, 5, 4), 'EINVAL');
    expect(sim.iommu.svaAllocPasid(mm, 3, 10)).toBe(3);
    expect(sim.iommu.svaAllocPasid(mm, 1, 10)).toBe(3);
    expectThrowsCode(() => sim!.iommu.svaAllocPasid(mm, 4, 10), 'EOVERFLOW');
    expectThrowsCode(() => sim!.iommu.svaAllocPasid(mm, 1, 3), 'EOVERFLOW');
    sim.iommu.devEnableFeature(dev[0], 'sva');
    const h = await sim.iommu.svaBindDevice(dev[0], mm);
    expect(sim.iommu.svaGetPasid(h)).toBe(3);
    await sim.iommu.svaUnbindDevice(h);
    await mm.exit();
    mm.free();
    expectThrowsCode(() => sim!.iommu.ioasid.find(null, 3), 'ENOENT');
    expect(sim.iommu.svaAllocPasid(sim.mm.create(), 3, 3)).toBe(3); // freed with its mm, reusable
  });
});
