/**
 * SEMANTICS.md §1.1 rule 9 and §1.5 rule 4: a device in reset/recovery
 * (pci_dev_reset_iommu_prepare … done). Attaches of the group (RID or PASID) fail with
 * EBUSY, the device's RID and PASIDs are parked on blocking (its DMA faults) and restored
 * afterwards to whatever the group has then; detaches still work meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { type Domain, type Simulator, type TopologySpec } from 'iommu-sim';
import {
  BLOCKED, dn, MULTI_DEVICE_GROUPS, PAGE, RW, SKIP_MULTI, entryOf, expectRejectsCode, groupPair, pa, reach, snapshot, startSim,
  switchTopology,
} from './kapi-helpers.js';

const IOVA = 0x10_0000n;
const TOPO = { iommus: 1, devices: [{ bdf: '0000:03:00.0', pasidBits: 4 }, { bdf: '0000:04:00.0' }] } satisfies TopologySpec;

async function mapped(sim: Simulator, paddr: bigint): Promise<Domain> {
  const d = sim.iommu.domainAlloc('paging');
  await sim.iommu.map(d, IOVA, paddr, PAGE, RW);
  return d;
}

describe('device reset (§1.1 rule 9)', () => {
  it('blocks the device\'s DMA on the RID and every PASID during reset and restores both after', async () => {
    const sim = await startSim(TOPO);
    const [a, other] = sim.topology.devices;
    const rid = await mapped(sim, 0x5000_0000n);
    const p = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevice(rid, a);
    await sim.iommu.attachDevicePasid(p, a, 3);
    await sim.iommu.attachDevice(rid, other);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    expect(await reach(sim, a, IOVA, 3)).toBe(pa(0x6000_0000n));
    await sim.iommu.deviceResetPrepare(a);
    expect(sim.iommu.groupState(a.group).resetting.has(a.rid)).toBe(true);
    expect(entryOf(sim, a, 0)).toBeNull();
    expect(entryOf(sim, a, 3)).toBeNull();
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    expect(await reach(sim, a, IOVA, 3)).toBe(BLOCKED);
    // The kernel-side attachments are kept; another group is not affected.
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(rid));
    expect(dn(sim.iommu.getDomainForDevPasid(a, 3))).toBe(dn(p));
    expect(await reach(sim, other, IOVA)).toBe(pa(0x5000_0000n));
    await sim.iommu.deviceResetDone(a);
    expect(sim.iommu.groupState(a.group).resetting.size).toBe(0);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    expect(await reach(sim, a, IOVA, 3)).toBe(pa(0x6000_0000n));
  });

  it('fails every attach of the group with EBUSY while resetting, changing nothing', async () => {
    const sim = await startSim(TOPO);
    const [a] = sim.topology.devices;
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    const p = await mapped(sim, 0x7000_0000n);
    await sim.iommu.attachDevice(d1, a);
    await sim.iommu.attachDevicePasid(p, a, 3);
    await sim.iommu.deviceResetPrepare(a);
    await sim.iommu.detachDevice(d1, a); // detach is allowed (back to the default domain)
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(sim.iommu.groupState(a.group).defaultDomain));
    const before = snapshot(sim, [a], [0, 3, 4], { d1, d2, p });
    await expectRejectsCode(sim.iommu.attachDevice(d2, a), 'EBUSY'); // over the default: EBUSY only for the reset
    await expectRejectsCode(sim.iommu.attachGroup(d2, a.group), 'EBUSY');
    await expectRejectsCode(sim.iommu.replaceGroupDomain(a.group, d2), 'EBUSY');
    await expectRejectsCode(sim.iommu.attachDevicePasid(d2, a, 4), 'EBUSY');
    await expectRejectsCode(sim.iommu.replaceDevicePasid(d2, a, 3), 'EBUSY');
    await expectRejectsCode(sim.iommu.attachDevicePasid(d2, a, 16), 'EBUSY'); // the reset is checked before the width (§1.5 rules 4, 5)
    await expectRejectsCode(sim.iommu.deviceResetPrepare(a), 'EBUSY'); // already resetting
    expect(snapshot(sim, [a], [0, 3, 4], { d1, d2, p })).toEqual(before);
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    expect(d2.dids.size).toBe(0);
    await sim.iommu.deviceResetDone(a);
    await sim.iommu.attachDevice(d2, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x6000_0000n));
  });

  it('restores what the group has at the end: detaches during the reset stick', async () => {
    const sim = await startSim(TOPO);
    const [a] = sim.topology.devices;
    const def = sim.iommu.getDomainForDev(a);
    await sim.iommu.map(def, IOVA, 0x1_0000_0000n, PAGE, RW);
    const d1 = await mapped(sim, 0x5000_0000n);
    const p = await mapped(sim, 0x7000_0000n);
    await sim.iommu.attachDevice(d1, a);
    await sim.iommu.attachDevicePasid(p, a, 3);
    await sim.iommu.deviceResetPrepare(a);
    await sim.iommu.detachDevice(d1, a);
    await sim.iommu.detachDevicePasid(p, a, 3);
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    await sim.iommu.deviceResetDone(a);
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(def));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x1_0000_0000n));
    expect(await reach(sim, a, IOVA, 3)).toBe(BLOCKED);
    expect(d1.dids.size).toBe(0);
    expect(p.dids.size).toBe(0);
  });

  it('parks a device that was never programmed, and programs it on done', async () => {
    const sim = await startSim(TOPO);
    const [a] = sim.topology.devices;
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.deviceResetPrepare(a); // a has done nothing yet
    expect(await reach(sim, a, IOVA)).toMatch(/^fault:/); // no PASID table yet: not even the RID's entry
    await sim.iommu.deviceResetDone(a);
    await sim.iommu.attachDevice(d, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
  });

  it.skipIf(!MULTI_DEVICE_GROUPS)(`makes attaches of the whole group EBUSY but blocks only the resetting device${MULTI_DEVICE_GROUPS ? '' : ` (skipped: ${SKIP_MULTI})`}`, async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachGroup(d1, g);
    await sim.iommu.deviceResetPrepare(a);
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    expect(await reach(sim, b, IOVA)).toBe(pa(0x5000_0000n));
    await expectRejectsCode(sim.iommu.replaceGroupDomain(g, d2), 'EBUSY');
    await expectRejectsCode(sim.iommu.attachDevicePasid(d2, b, 5), 'EBUSY');
    await sim.iommu.deviceResetDone(a);
    await sim.iommu.replaceGroupDomain(g, d2);
    for (const dev of [a, b]) expect(await reach(sim, dev, IOVA)).toBe(pa(0x6000_0000n));
  });
});
