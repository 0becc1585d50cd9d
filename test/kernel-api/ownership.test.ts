/**
 * SEMANTICS.md §1.2 (DMA ownership) and the modern-core form of §1.6, rule by rule:
 * claim by owner cookie (EINVAL without one, EPERM for another owner or over a kernel
 * driver, refcount for the same cookie), EBUSY while a non-default domain or a PASID is
 * attached, the blocking domain while owned, release back to the default domain, and the
 * kernel driver's use/unuse of the default domain. State and DMA are checked after each call.
 */
import { describe, expect, it } from 'vitest';
import { type Device, type Simulator, type TopologySpec } from 'iommu-sim';
import {
  BLOCKED, MULTI_DEVICE_GROUPS, PAGE, RW, SKIP_MULTI, expectRejectsCode, groupPair, pa, reach, startSim, switchTopology,
} from './kapi-helpers.js';

const IOVA = 0x10_0000n;
const DEF_PA = 0x1_0000_0000n;
const ONE = { iommus: 1, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:04:00.0' }] } satisfies TopologySpec;

/** dev's default domain mapped so DMA through it is recognisable; returns the device. */
async function setup(topology: TopologySpec = ONE): Promise<{ sim: Simulator; a: Device }> {
  const sim = await startSim(topology);
  const a = sim.topology.devices[0];
  await sim.iommu.map(sim.iommu.groupState(a.group).defaultDomain, IOVA, DEF_PA, PAGE, RW);
  expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
  return { sim, a };
}

function owned(sim: Simulator, dev: Device): { owner: object | undefined; cnt: number; domain: string } {
  const st = sim.iommu.groupState(dev.group);
  const domain = st.domain === st.defaultDomain ? 'default' : st.domain === st.blockingDomain ? 'blocking' : `domain#${st.domain.id}`;
  return { owner: sim.iommu.dmaOwner(dev), cnt: st.ownerCnt, domain };
}

describe('claiming DMA ownership (§1.2)', () => {
  it('puts the group on its blocking domain with the owner cookie: DMA is blocked', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'blocking' });
    expect(sim.iommu.getDomainForDev(a).type).toBe('blocked');
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    expect(sim.test.pasidEntry(a, 0)?.present).toBe(false);
    // The other group is untouched.
    const b = sim.topology.devices[1];
    expect(owned(sim, b)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
  });

  it('rejects a missing owner cookie with EINVAL (device and group claims), changing nothing', async () => {
    const { sim, a } = await setup();
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, null as unknown as object), 'EINVAL');
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, undefined as unknown as object), 'EINVAL');
    await expectRejectsCode(sim.iommu.groupClaimDmaOwner(a.group, null as unknown as object), 'EINVAL');
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
  });

  it('rejects another owner with EPERM, and a claim over a kernel driver using the default domain', async () => {
    const { sim, a } = await setup();
    const [o1, o2] = [{}, {}];
    await sim.iommu.deviceClaimDmaOwner(a, o1);
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, o2), 'EPERM');
    expect(owned(sim, a)).toEqual({ owner: o1, cnt: 1, domain: 'blocking' });
    const b = sim.topology.devices[1];
    sim.iommu.deviceUseDefaultDomain(b); // a kernel driver bound to b
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(b, o2), 'EPERM');
    expect(owned(sim, b)).toEqual({ owner: undefined, cnt: 1, domain: 'default' });
  });

  it('counts claims with the same cookie: the group stays owned until the last release', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    expect(owned(sim, a)).toEqual({ owner, cnt: 2, domain: 'blocking' });
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'blocking' });
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
  });

  it.skipIf(!MULTI_DEVICE_GROUPS)(`shares ownership of a group device by device for one cookie, EPERM for another${MULTI_DEVICE_GROUPS ? '' : ` (skipped: ${SKIP_MULTI})`}`, async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    await sim.iommu.map(sim.iommu.groupState(g).defaultDomain, IOVA, DEF_PA, PAGE, RW);
    const [fd1, fd2] = [{}, {}];
    await sim.iommu.deviceClaimDmaOwner(a, fd1);
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(b, fd2), 'EPERM');
    await sim.iommu.deviceClaimDmaOwner(b, fd1);
    expect(owned(sim, b)).toEqual({ owner: fd1, cnt: 2, domain: 'blocking' });
    for (const dev of [a, b]) expect(await reach(sim, dev, IOVA)).toBe(BLOCKED);
    await expectRejectsCode(sim.iommu.groupClaimDmaOwner(g, fd1), 'EPERM');
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(await reach(sim, b, IOVA)).toBe(BLOCKED);
    await sim.iommu.deviceReleaseDmaOwner(b);
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
    for (const dev of [a, b]) expect(await reach(sim, dev, IOVA)).toBe(pa(DEF_PA));
  });

  it('group claims (legacy VFIO) are refused with EPERM while anyone holds the group, even the same cookie', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.groupClaimDmaOwner(a.group, owner);
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'blocking' });
    await expectRejectsCode(sim.iommu.groupClaimDmaOwner(a.group, owner), 'EPERM');
    await sim.iommu.groupReleaseDmaOwner(a.group);
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
    sim.iommu.deviceUseDefaultDomain(a);
    await expectRejectsCode(sim.iommu.groupClaimDmaOwner(a.group, owner), 'EPERM');
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
  });

  it('refuses with EBUSY while a non-default domain is attached', async () => {
    const { sim, a } = await setup();
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(d, IOVA, 0x5000_0000n, PAGE, RW);
    await sim.iommu.attachDevice(d, a);
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, {}), 'EBUSY');
    await expectRejectsCode(sim.iommu.groupClaimDmaOwner(a.group, {}), 'EBUSY');
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: `domain#${d.id}` });
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
  });

  it('refuses with EBUSY while a PASID is attached (§1.6: no ownership change under PASID users)', async () => {
    const { sim, a } = await setup();
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(d, IOVA, 0x5000_0000n, PAGE, RW);
    await sim.iommu.attachDevicePasid(d, a, 3);
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, {}), 'EBUSY');
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
    expect(await reach(sim, a, IOVA, 3)).toBe(pa(0x5000_0000n));
    await sim.iommu.detachDevicePasid(d, a, 3);
    await sim.iommu.deviceClaimDmaOwner(a, {});
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
  });
});

describe('releasing DMA ownership (§1.2)', () => {
  it('returns the group to its default domain, also from a domain the owner attached', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(d, IOVA, 0x5000_0000n, PAGE, RW);
    await sim.iommu.attachDevice(d, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
    expect(d.attachments.size).toBe(0);
  });

  it('is a no-op (the kernel WARNs) while PASIDs are still attached: ownership stays', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(d, IOVA, 0x5000_0000n, PAGE, RW);
    await sim.iommu.attachDevicePasid(d, a, 3);
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'blocking' });
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    expect(await reach(sim, a, IOVA, 3)).toBe(pa(0x5000_0000n));
    await sim.iommu.detachDevicePasid(d, a, 3);
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 0, domain: 'default' });
  });

  it('never fails, even when every programming step would fail', async () => {
    const { sim, a } = await setup();
    await sim.iommu.deviceClaimDmaOwner(a, {});
    sim.test.failNth(1);
    await sim.iommu.deviceReleaseDmaOwner(a);
    expect(sim.test.failNthSteps()).toBe(0);
    sim.test.failNth(0);
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
  });
});

describe('use / unuse of the default domain by kernel drivers (§1.2)', () => {
  it('counts users; a second user is fine on the default domain', async () => {
    const { sim, a } = await setup();
    sim.iommu.deviceUseDefaultDomain(a);
    sim.iommu.deviceUseDefaultDomain(a);
    expect(owned(sim, a)).toEqual({ owner: undefined, cnt: 2, domain: 'default' });
    sim.iommu.deviceUnuseDefaultDomain(a);
    sim.iommu.deviceUnuseDefaultDomain(a);
    expect(owned(sim, a).cnt).toBe(0);
    await sim.iommu.deviceClaimDmaOwner(a, {}); // free for user space again
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
  });

  it('is EBUSY while the group is owned by user space', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    expect(() => sim.iommu.deviceUseDefaultDomain(a)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'blocking' });
  });

  it('is EBUSY while owned even when the owner put the default domain back on the group', async () => {
    const { sim, a } = await setup();
    const owner = {};
    await sim.iommu.deviceClaimDmaOwner(a, owner);
    const st = sim.iommu.groupState(a.group);
    await sim.iommu.attachGroup(st.defaultDomain, a.group); // over blocking: allowed
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'default' });
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
    expect(() => sim.iommu.deviceUseDefaultDomain(a)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(owned(sim, a).cnt).toBe(1);
    await sim.iommu.detachGroup(st.defaultDomain, a.group); // the core domain of an owned group is blocking
    expect(owned(sim, a)).toEqual({ owner, cnt: 1, domain: 'blocking' });
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
  });

  it('is EBUSY with a user while a non-default domain is attached, fine without one', async () => {
    const { sim, a } = await setup();
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevice(d, a);
    sim.iommu.deviceUseDefaultDomain(a); // owner_cnt was 0: no check
    expect(() => sim.iommu.deviceUseDefaultDomain(a)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(owned(sim, a).cnt).toBe(1);
  });

  it('is EBUSY with a user while a PASID is attached, and unuse then leaves the count alone', async () => {
    const { sim, a } = await setup();
    sim.iommu.deviceUseDefaultDomain(a);
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevicePasid(d, a, 5);
    expect(() => sim.iommu.deviceUseDefaultDomain(a)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    sim.iommu.deviceUnuseDefaultDomain(a); // WARN in the kernel: PASIDs attached
    expect(owned(sim, a).cnt).toBe(1);
    await sim.iommu.detachDevicePasid(d, a, 5);
    sim.iommu.deviceUnuseDefaultDomain(a);
    expect(owned(sim, a).cnt).toBe(0);
    expect(await reach(sim, a, IOVA)).toBe(pa(DEF_PA));
  });
});
