/**
 * The v5 semantics profile: device features AUX/SVA/IOPF and auxiliary domains
 * (SEMANTICS.md §1.7, §2.5). Every test checks the errno and the state after the call,
 * and DMA where it matters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator } from 'iommu-sim';
import { expectRejectsCode, expectThrowsCode } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sims: Simulator[] = [];
afterEach(async () => {
  await Promise.all(sims.map((s) => s.close()));
  sims = [];
});

async function start(semantics: 'latest' | 'v5' = 'v5', devices = [
  { bdf: '0000:03:00.0', pri: true },
  { bdf: '0000:04:00.0' },
  { bdf: '0000:05:00.0', pasidBits: 0 },
  { bdf: '0000:06:00.0', pasidBits: 4 },
]) {
  const sim = await Simulator.start({ semantics, topology: { iommus: 1, devices } });
  sims.push(sim);
  return { sim, dev: sim.topology.devices };
}



describe('device features (v5)', () => {
  it('do not exist in the latest profile (EOPNOTSUPP)', async () => {
    const { sim, dev } = await start('latest');
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[0], 'aux'), 'EOPNOTSUPP');
    await expectRejectsCode(sim.iommu.auxAttachDevice(sim.iommu.domainAlloc('paging'), dev[0]), 'EOPNOTSUPP');
  });

  it('report what a device supports: AUX and SVA need PASID, IOPF needs PRI', async () => {
    const { sim, dev } = await start();
    expect(sim.iommu.devHasFeature(dev[0], 'aux')).toBe(true);
    expect(sim.iommu.devHasFeature(dev[0], 'iopf')).toBe(true);
    expect(sim.iommu.devHasFeature(dev[1], 'iopf')).toBe(false);
    expect(sim.iommu.devHasFeature(dev[2], 'aux')).toBe(false);
    expect(sim.iommu.devHasFeature(dev[2], 'sva')).toBe(false);
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[2], 'aux'), 'EINVAL');
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[2], 'sva'), 'ENODEV');
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[1], 'iopf'), 'ENODEV');
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[0], 'bogus' as 'aux'), 'EINVAL');
    expect(sim.iommu.devFeatureEnabled(dev[2], 'aux')).toBe(false);
  });

  it('refuses enabling an enabled feature (EBUSY) and disabling one not enabled (EINVAL)', async () => {
    const { sim, dev } = await start();
    sim.iommu.devEnableFeature(dev[1], 'aux');
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[1], 'aux'), 'EBUSY');
    expectThrowsCode(() => sim.iommu.devDisableFeature(dev[1], 'sva'), 'EINVAL');
    sim.iommu.devDisableFeature(dev[1], 'aux');
    expect(sim.iommu.devFeatureEnabled(dev[1], 'aux')).toBe(false);
  });

  it('orders IOPF before SVA on a device that can fault, and SVA before IOPF on the way down', async () => {
    const { sim, dev } = await start();
    expectThrowsCode(() => sim.iommu.devEnableFeature(dev[0], 'sva'), 'EINVAL');
    expect(sim.iommu.devFeatureEnabled(dev[0], 'sva')).toBe(false);
    sim.iommu.devEnableFeature(dev[0], 'iopf');
    sim.iommu.devEnableFeature(dev[0], 'sva');
    expectThrowsCode(() => sim.iommu.devDisableFeature(dev[0], 'iopf'), 'EBUSY');
    expect(sim.iommu.devFeatureEnabled(dev[0], 'iopf')).toBe(true);
    sim.iommu.devDisableFeature(dev[0], 'sva');
    sim.iommu.devDisableFeature(dev[0], 'iopf');
    // A PASID device without PRI enables SVA directly.
    sim.iommu.devEnableFeature(dev[1], 'sva');
    expect(sim.iommu.devFeatureEnabled(dev[1], 'sva')).toBe(true);
  });
});

describe('auxiliary domains (v5)', () => {
  it('need AUX enabled (ENODEV) and an unmanaged domain (EPERM)', async () => {
    const { sim, dev } = await start();
    const d = sim.iommu.domainAlloc('paging');
    await expectRejectsCode(sim.iommu.auxAttachDevice(d, dev[1]), 'ENODEV');
    sim.iommu.devEnableFeature(dev[1], 'aux');
    await expectRejectsCode(sim.iommu.auxAttachDevice(sim.iommu.domainAlloc('dma'), dev[1]), 'EPERM');
    expectThrowsCode(() => sim.iommu.auxGetPasid(d, dev[1]), 'EINVAL');
  });

  it('give each domain one default PASID, the same on every device, reaching the domain by DMA', async () => {
    const { sim, dev } = await start();
    for (const d of [dev[0], dev[1]]) sim.iommu.devEnableFeature(d, 'aux');
    const a = sim.iommu.domainAlloc('paging');
    const b = sim.iommu.domainAlloc('paging');
    await sim.iommu.auxAttachDevice(a, dev[0]);
    await sim.iommu.auxAttachDevice(a, dev[1]);
    await sim.iommu.auxAttachDevice(b, dev[1]);
    const pa = sim.iommu.auxGetPasid(a, dev[0]);
    expect(pa).toBe(1);
    expect(sim.iommu.auxGetPasid(a, dev[1])).toBe(pa);
    expect(sim.iommu.auxGetPasid(b, dev[1])).toBe(2);
    await sim.iommu.map(a, 0x1000n, 0xa000n, 0x1000n, RW);
    await sim.iommu.map(b, 0x1000n, 0xb000n, 0x1000n, RW);
    for (const d of [dev[0], dev[1]]) {
      const r = await sim.dma(d, { addr: 0x1000n, access: 'read', pasid: pa });
      expect(r.ok && r.paddr).toBe(0xa000n);
    }
    const rb = await sim.dma(dev[1], { addr: 0x1000n, access: 'read', pasid: 2 });
    expect(rb.ok && rb.paddr).toBe(0xb000n);
    // The RID still goes through the default domain, which maps nothing.
    expect((await sim.dma(dev[1], { addr: 0x1000n, access: 'read' })).ok).toBe(false);
    await expectRejectsCode(sim.iommu.auxAttachDevice(a, dev[0]), 'EBUSY');
  });

  it('free the PASID with the last detach, after which its DMA faults and the PASID is reused', async () => {
    const { sim, dev } = await start();
    for (const d of [dev[0], dev[1]]) sim.iommu.devEnableFeature(d, 'aux');
    const a = sim.iommu.domainAlloc('paging');
    await sim.iommu.map(a, 0x1000n, 0xa000n, 0x1000n, RW);
    await sim.iommu.auxAttachDevice(a, dev[0]);
    await sim.iommu.auxAttachDevice(a, dev[1]);
    expect((await sim.dma(dev[0], { addr: 0x1000n, access: 'read', pasid: 1 })).ok).toBe(true);
    await sim.iommu.auxDetachDevice(a, dev[0]);
    expect((await sim.dma(dev[0], { addr: 0x1000n, access: 'read', pasid: 1 })).ok).toBe(false);
    expect((await sim.dma(dev[1], { addr: 0x1000n, access: 'read', pasid: 1 })).ok).toBe(true);
    expectThrowsCode(() => sim.iommu.auxGetPasid(a, dev[0]), 'EINVAL');
    expect(sim.iommu.allocGlobalPasid(dev[0])).toBe(2); // 1 is still a's
    await sim.iommu.auxDetachDevice(a, dev[1]);
    await sim.iommu.auxDetachDevice(a, dev[1]); // never fails
    expect(sim.iommu.allocGlobalPasid(dev[0])).toBe(1);
  });

  it('refuse a device too narrow for the domain\'s PASID (EINVAL) and report exhaustion (ENOSPC)', async () => {
    const { sim, dev } = await start();
    sim.iommu.devEnableFeature(dev[0], 'aux');
    sim.iommu.devEnableFeature(dev[3], 'aux'); // 4-bit PASIDs: 1..15
    for (let i = 1; i <= 15; i++) expect(sim.iommu.allocGlobalPasid(dev[3])).toBe(i);
    const wide = sim.iommu.domainAlloc('paging');
    await sim.iommu.auxAttachDevice(wide, dev[0]);
    expect(sim.iommu.auxGetPasid(wide, dev[0])).toBe(16);
    await expectRejectsCode(sim.iommu.auxAttachDevice(wide, dev[3]), 'EINVAL');
    await expectRejectsCode(sim.iommu.auxAttachDevice(sim.iommu.domainAlloc('paging'), dev[3]), 'ENOSPC');
    expect(sim.iommu.allocGlobalPasid(dev[3])).toBe(0xffffffff);
  });

  it('exclude a whole-device attach while AUX is enabled (EPERM) or aux users exist (EBUSY)', async () => {
    const { sim, dev } = await start();
    sim.iommu.devEnableFeature(dev[1], 'aux');
    const p = sim.iommu.domainAlloc('paging');
    const before = sim.iommu.getDomainForDev(dev[1]);
    await expectRejectsCode(sim.iommu.attachDevice(p, dev[1]), 'EPERM');
    expect(sim.iommu.getDomainForDev(dev[1])).toBe(before);
    await sim.iommu.auxAttachDevice(p, dev[1]);
    await expectRejectsCode(sim.iommu.attachDevice(sim.iommu.domainAlloc('dma'), dev[1]), 'EBUSY');
    expectThrowsCode(() => sim.iommu.devDisableFeature(dev[1], 'aux'), 'EBUSY');
    await sim.iommu.auxDetachDevice(p, dev[1]);
    sim.iommu.devDisableFeature(dev[1], 'aux');
    await sim.iommu.attachDevice(p, dev[1]);
    expect(sim.iommu.getDomainForDev(dev[1])).toBe(p);
  });

  it('have no PASID-attach API in v5 (EOPNOTSUPP)', async () => {
    const { sim, dev } = await start();
    await expectRejectsCode(sim.iommu.attachDevicePasid(sim.iommu.domainAlloc('paging'), dev[1], 3), 'EOPNOTSUPP');
  });
});
