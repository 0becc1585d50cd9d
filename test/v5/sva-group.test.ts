/**
 * The v5 (2018) SVA group calls: bind_group binds every device of a group at the mm's PASID
 * or none of them; unbind_group; unbind_dev_all at device shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator, isSimError } from 'iommu-sim';
import { expectRejectsCode } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start() {
  sim = await Simulator.start({
    semantics: 'v5', testHooks: true,
    topology: { iommus: 1, devices: [{ bdf: '0000:05:00.0', multifunctionAcs: false }, { bdf: '0000:05:00.1', multifunctionAcs: false }, { bdf: '0000:06:00.0' }] },
  });
  const [f0, f1, solo] = sim.topology.devices;
  return { sim, f0, f1, solo };
}

async function reaches(s: Simulator, dev: Parameters<Simulator['dma']>[0], va: bigint, pasid: number): Promise<boolean> {
  return (await s.dma(dev, { addr: va, access: 'read', pasid })).ok;
}

describe('v5 SVA group calls', () => {
  it('bind_group binds every device of the group at the mm\'s PASID; unbind_group unbinds them', async () => {
    const { sim, f0, f1 } = await start();
    expect(f0.group).toBe(f1.group);
    for (const d of [f0, f1]) sim.iommu.devEnableFeature(d, 'sva');
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW, populate: true });
    const pasid = await sim.iommu.svaBindGroup(f0.group, mm);
    expect(pasid).toBe(mm.pasid);
    for (const d of [f0, f1]) expect(await reaches(sim, d, va, pasid)).toBe(true);
    await sim.iommu.svaUnbindGroup(f0.group, pasid);
    for (const d of [f0, f1]) expect(await reaches(sim, d, va, pasid)).toBe(false);
    await sim.iommu.svaUnbindGroup(f0.group, pasid); // never fails
  });

  it('bind_group needs SVA on every device (ENODEV) and binds none then', async () => {
    const { sim, f0, f1 } = await start();
    sim.iommu.devEnableFeature(f0, 'sva');
    const mm = sim.mm.create();
    await expectRejectsCode(sim.iommu.svaBindGroup(f0.group, mm), 'ENODEV');
    expect(sim.iommu.getDomainForDevPasid(f0, 1)).toBeUndefined();
    expect(sim.iommu.getDomainForDevPasid(f1, 1)).toBeUndefined();
  });

  it('bind_group is all or nothing: a programming failure at any step leaves no device bound', async () => {
    const { sim, f0, f1 } = await start();
    for (const d of [f0, f1]) sim.iommu.devEnableFeature(d, 'sva');
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW, populate: true });
    let failures = 0;
    for (let n = 1; ; n++) {
      sim.test.failNth(n);
      try {
        const pasid = await sim.iommu.svaBindGroup(f0.group, mm);
        sim.test.failNth(0);
        for (const d of [f0, f1]) expect(await reaches(sim, d, va, pasid)).toBe(true);
        break;
      } catch (e) {
        expect(isSimError(e, 'ENOMEM')).toBe(true);
        failures++;
        sim.test.failNth(0);
        for (const d of [f0, f1]) {
          expect(sim.iommu.getDomainForDevPasid(d, mm.pasid!)).toBeUndefined();
          expect(await reaches(sim, d, va, mm.pasid!)).toBe(false);
        }
      }
    }
    expect(failures).toBeGreaterThan(1); // both devices' programming steps were hit
  });

  it('unbind_dev_all drops every bond of the device, whatever the counts', async () => {
    const { sim, solo } = await start();
    sim.iommu.devEnableFeature(solo, 'sva');
    const m1 = sim.mm.create();
    const m2 = sim.mm.create();
    const va = m2.mmap({ length: 0x1000n, prot: RW, populate: true });
    await sim.iommu.svaBindDevice(solo, m1);
    await sim.iommu.svaBindDevice(solo, m1);
    const h2 = await sim.iommu.svaBindDevice(solo, m2);
    expect(await reaches(sim, solo, va, sim.iommu.svaGetPasid(h2))).toBe(true);
    await sim.iommu.svaUnbindDevAll(solo);
    expect(sim.iommu.getDomainForDevPasid(solo, m1.pasid!)).toBeUndefined();
    expect(await reaches(sim, solo, va, m2.pasid!)).toBe(false);
    sim.iommu.devDisableFeature(solo, 'sva'); // no bonds left
  });
});
