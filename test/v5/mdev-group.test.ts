/**
 * Seed 004: vfio type1's attach of an mdev group in the v5 profile — through the aux path
 * when the mdev's parent has AUX enabled, through a normal attach of the parent (an
 * SR-IOV VF) otherwise; one parent per group; one aux domain per mdev group.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator } from 'iommu-sim';
import { expectRejectsCode, expectThrowsCode } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});


async function machine() {
  sim = await Simulator.start({
    semantics: 'v5',
    topology: {
      iommus: 1,
      devices: [
        { bdf: '0000:07:00.0' },
        { bdf: '0000:07:00.1', kind: 'vf', parent: '0000:07:00.0' },
        { bdf: 'mdev-aux-0', kind: 'mdev', parent: '0000:07:00.0' },
        { bdf: 'mdev-vf-0', kind: 'mdev', parent: '0000:07:00.1' },
      ],
    },
  } as Parameters<typeof Simulator.start>[0]);
  const [pf, vf, mAux, mVf] = sim.topology.devices;
  return { sim, pf, vf, mAux, mVf };
}

describe('mdev group attach (v5, seed 004)', () => {
  it('attaches through the aux path when the parent has AUX enabled: the mdev\'s DMA carries the domain\'s PASID', async () => {
    const { sim, pf, mAux } = await machine();
    sim.iommu.devEnableFeature(pf, 'aux');
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(d, 0x1000n, 0xd000n, 0x1000n, RW);
    await sim.iommu.attachMdevGroup(d, mAux.group);
    const pasid = sim.iommu.auxGetPasid(d, pf);
    expect(pasid).toBeGreaterThan(0);
    const r = await sim.dma(mAux, { addr: 0x1000n, access: 'read' });
    expect(r.ok && r.paddr).toBe(0xd000n);
    // The parent's own (RID) DMA still goes through its default domain.
    expect((await sim.dma(pf, { addr: 0x1000n, access: 'read' })).ok).toBe(false);
    await expectRejectsCode(sim.iommu.attachMdevGroup(sim.iommu.domainAlloc('paging'), mAux.group), 'EBUSY');
    await sim.iommu.detachMdevGroup(d, mAux.group);
    expect((await sim.dma(pf, { addr: 0x1000n, access: 'read', pasid })).ok).toBe(false);
  });

  it('attaches the VF normally for a VF-backed mdev: the VF\'s RID reaches the domain', async () => {
    const { sim, vf, mVf } = await machine();
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(d, 0x1000n, 0xe000n, 0x1000n, RW);
    await sim.iommu.attachMdevGroup(d, mVf.group);
    expect(sim.iommu.getDomainForDev(vf)).toBe(d);
    const r = await sim.dma(mVf, { addr: 0x1000n, access: 'read' });
    expect(r.ok && r.paddr).toBe(0xe000n);
    await sim.iommu.detachMdevGroup(d, mVf.group);
    expect(sim.iommu.getDomainForDev(vf)).not.toBe(d);
  });

  it('refuses a group that is not made of mdevs of one parent (EINVAL)', async () => {
    const { sim, pf } = await machine();
    await expectRejectsCode(sim.iommu.attachMdevGroup(sim.iommu.domainAlloc('paging'), pf.group), 'EINVAL');
  });
});
