/**
 * SEMANTICS.md §1.4 (PASID basics) and §1.5 (PASID attach / replace / detach), rule by
 * rule: PASID 0 reserved, the width rules (device, IOMMU, every PASID-capable device of
 * the group, a device without PASID), EBUSY on an occupied PASID even for the same domain,
 * the group-wide attach with rollback, replace (EINVAL when not attached, the same domain a
 * no-op, the old domain kept on failure) and detach (never failing, blocking that PASID).
 * State, PASID-table entries and PASID-tagged DMA are checked after each call.
 */
import { describe, expect, it } from 'vitest';
import { type Domain, type Simulator, type TopologySpec } from 'iommu-sim';
import {
  BLOCKED, dn, MULTI_DEVICE_GROUPS, PAGE, RW, SKIP_MULTI, caught, entryOf, expectRejectsCode, groupPair, invalidationsDuring,
  pa, reach, snapshot, startSim, switchTopology,
} from './kapi-helpers.js';

const IOVA = 0x10_0000n;
const TOPO = {
  iommus: [{}, { pasidBits: 5 }],
  devices: [
    { bdf: '0000:03:00.0' },                  // A: 2^20 PASIDs
    { bdf: '0000:04:00.0', pasidBits: 4 },    // S: 16
    { bdf: '0000:05:00.0', pasidBits: 0 },    // N: no PASID
    { bdf: '0000:83:00.0', iommu: 1 },        // W: 20 bits behind a 5-bit IOMMU → 32
  ],
} satisfies TopologySpec;

async function mapped(sim: Simulator, paddr: bigint): Promise<Domain> {
  const d = sim.iommu.domainAlloc('paging');
  await sim.iommu.map(d, IOVA, paddr, PAGE, RW);
  return d;
}

async function start() {
  const sim = await startSim(TOPO);
  const [A, S, N, W] = sim.topology.devices;
  return { sim, A, S, N, W };
}

describe('PASID attach (§1.4, §1.5)', () => {
  it('points (dev, PASID) at the domain: lookup, PASID-table entry with its DID, PASID DMA; the RID is untouched', async () => {
    const { sim, A } = await start();
    const def = sim.iommu.getDomainForDev(A);
    await sim.iommu.map(def, IOVA, 0x1_0000_0000n, PAGE, RW);
    const d = await mapped(sim, 0x5000_0000n);
    expect(dn(sim.iommu.getDomainForDevPasid(A, 7))).toBe('-');
    await sim.iommu.attachDevicePasid(d, A, 7);
    expect(dn(sim.iommu.getDomainForDevPasid(A, 7))).toBe(dn(d));
    expect(dn(sim.iommu.groupState(A.group).pasids.get(7))).toBe(dn(d));
    expect(entryOf(sim, A, 7)?.did).toBe(d.dids.get(0)?.did);
    expect(await reach(sim, A, IOVA, 7)).toBe(pa(0x5000_0000n));
    expect(await reach(sim, A, IOVA)).toBe(pa(0x1_0000_0000n));
    expect(dn(sim.iommu.getDomainForDev(A))).toBe(dn(def));
    expect(await reach(sim, A, IOVA, 8)).toBe(BLOCKED); // another PASID: no entry
  });

  it('rejects PASID 0 (IOMMU_NO_PASID, the RID) with EINVAL for attach and replace', async () => {
    const { sim, A } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, A, 0), 'EINVAL');
    await expectRejectsCode(sim.iommu.replaceDevicePasid(d, A, 0), 'EINVAL');
    expect(dn(sim.iommu.getDomainForDev(A))).not.toBe(dn(d));
    expect(sim.iommu.groupState(A.group).pasids.size).toBe(0);
    expect(d.dids.size).toBe(0);
  });

  it('rejects PASIDs outside 1..max_pasids-1 with EINVAL: device width, IOMMU width, 2^20, negative', async () => {
    const { sim, A, S, W } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    expect([A.maxPasids, S.maxPasids, W.maxPasids]).toEqual([1 << 20, 16, 32]);
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, S, 16), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, A, 1 << 20), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, A, -1), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, A, 1.5), 'EINVAL');
    const dw = sim.iommu.domainAlloc('paging');
    await expectRejectsCode(sim.iommu.attachDevicePasid(dw, W, 32), 'EINVAL');
    for (const dev of [A, S, W]) expect(sim.iommu.groupState(dev.group).pasids.size).toBe(0);
    await sim.iommu.attachDevicePasid(d, S, 15);
    await sim.iommu.attachDevicePasid(d, A, (1 << 20) - 1);
    await sim.iommu.attachDevicePasid(dw, W, 31);
    expect(await reach(sim, S, IOVA, 15)).toBe(pa(0x5000_0000n));
    expect(await reach(sim, A, IOVA, (1 << 20) - 1)).toBe(pa(0x5000_0000n));
  });

  it('rejects a device that cannot issue PASID-tagged DMA with EINVAL', async () => {
    const { sim, N } = await start();
    expect(N.maxPasids).toBe(0);
    const d = await mapped(sim, 0x5000_0000n);
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, N, 1), 'EINVAL');
    expect(dn(sim.iommu.getDomainForDevPasid(N, 1))).toBe('-');
    expect(await reach(sim, N, IOVA, 1)).toBe('fault:pasid-invalid');
  });

  it('rejects an occupied PASID with EBUSY, even for the same domain; the attached domain stays', async () => {
    const { sim, A } = await start();
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevicePasid(d1, A, 7);
    const before = snapshot(sim, [A], [0, 7], { d1, d2 });
    const inv = await invalidationsDuring(sim, async () => {
      await expectRejectsCode(sim.iommu.attachDevicePasid(d2, A, 7), 'EBUSY');
      await expectRejectsCode(sim.iommu.attachDevicePasid(d1, A, 7), 'EBUSY');
    });
    expect(inv).toEqual([]);
    expect(snapshot(sim, [A], [0, 7], { d1, d2 })).toEqual(before);
    expect(await reach(sim, A, IOVA, 7)).toBe(pa(0x5000_0000n));
  });

  it('rejects a domain made for another IOMMU with EINVAL', async () => {
    const { sim, A, W } = await start();
    const foreign = sim.iommu.domainAlloc('paging', { dev: W });
    await expectRejectsCode(sim.iommu.attachDevicePasid(foreign, A, 3), 'EINVAL');
    expect(dn(sim.iommu.getDomainForDevPasid(A, 3))).toBe('-');
  });

  it('attaches regardless of the RID domain: PASIDs of an owned (blocked) RID still translate', async () => {
    const { sim, A } = await start();
    await sim.iommu.deviceClaimDmaOwner(A, {});
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevicePasid(d, A, 2);
    expect(await reach(sim, A, IOVA)).toBe(BLOCKED);
    expect(await reach(sim, A, IOVA, 2)).toBe(pa(0x5000_0000n));
  });

  it('leaves the PASID free and nothing programmed when the attach fails (every failing step)', async () => {
    const { sim, A } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    expect(await reach(sim, A, IOVA, 700)).toBe('fault:pasid-invalid'); // programs A's tables (lazily, on first use)
    let failures = 0;
    for (let n = 1; ; n++) {
      const before = snapshot(sim, [A], [0, 700], { d });
      sim.test.failNth(n);
      const err = await caught(() => sim.iommu.attachDevicePasid(d, A, 700));
      const steps = sim.test.failNthSteps();
      sim.test.failNth(0);
      if (!err) {
        expect(steps).toBeLessThan(n);
        break;
      }
      failures++;
      expect((err as { code?: string }).code).toBe('ENOMEM');
      expect(snapshot(sim, [A], [0, 700], { d })).toEqual(before);
      expect(dn(sim.iommu.getDomainForDevPasid(A, 700))).toBe('-');
      expect(await reach(sim, A, IOVA, 700)).not.toMatch(/^pa:/);
    }
    expect(failures).toBeGreaterThanOrEqual(2); // the DID and the entry write (and the new PASID table)
    expect(await reach(sim, A, IOVA, 700)).toBe(pa(0x5000_0000n));
  });
});

describe.skipIf(!MULTI_DEVICE_GROUPS)(`PASID attach across a group (§1.5 rules 5, 7)${MULTI_DEVICE_GROUPS ? '' : ` (skipped: ${SKIP_MULTI})`}`, () => {
  it('gives the PASID to every PASID-capable device of the group, with one DID', async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevicePasid(d, a, 9);
    for (const dev of [a, b]) {
      expect(dn(sim.iommu.getDomainForDevPasid(dev, 9))).toBe(dn(d));
      expect(entryOf(sim, dev, 9)?.did).toBe(d.dids.get(0)?.did);
      expect(await reach(sim, dev, IOVA, 9)).toBe(pa(0x5000_0000n));
    }
    expect(d.dids.get(0)?.refs).toBe(2);
    expect(dn(sim.iommu.groupState(g).pasids.get(9))).toBe(dn(d));
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, b, 9), 'EBUSY'); // via the other device: same slot
  });

  it('checks the width against every PASID-capable device and skips devices without PASID', async () => {
    const sim = await startSim(switchTopology({}, { pasidBits: 4 }, [], 1));
    const [a, b] = groupPair(sim);
    const d = await mapped(sim, 0x5000_0000n);
    await expectRejectsCode(sim.iommu.attachDevicePasid(d, a, 16), 'EINVAL'); // b has 16 PASIDs
    expect(dn(sim.iommu.getDomainForDevPasid(a, 16))).toBe('-');
    await sim.iommu.attachDevicePasid(d, a, 15);
    expect(await reach(sim, b, IOVA, 15)).toBe(pa(0x5000_0000n));

    const sim2 = await startSim(switchTopology({}, { pasidBits: 0 }));
    const [a2, n2] = groupPair(sim2);
    const d2 = sim2.iommu.domainAlloc('paging');
    await sim2.iommu.map(d2, IOVA, 0x6000_0000n, PAGE, RW);
    await expectRejectsCode(sim2.iommu.attachDevicePasid(d2, n2, 3), 'EINVAL'); // the target cannot
    await sim2.iommu.attachDevicePasid(d2, a2, 1 << 19); // the no-PASID device does not limit the width
    expect(await reach(sim2, a2, IOVA, 1 << 19)).toBe(pa(0x6000_0000n));
    expect(await reach(sim2, n2, IOVA, 3)).toBe('fault:pasid-invalid');
    expect(d2.dids.get(0)?.refs).toBe(1);
  });

  it('rolls the first device back when the second fails: its entry is cleared again, the PASID stays free', async () => {
    const sim = await startSim(switchTopology());
    const [a, b] = groupPair(sim);
    const d = await mapped(sim, 0x5000_0000n);
    // Count the steps of a successful attach, undo it, and fail its last step (the second device's entry).
    sim.test.failNth(0);
    await sim.iommu.attachDevicePasid(d, a, 9);
    const steps = sim.test.failNthSteps();
    await sim.iommu.detachDevicePasid(d, a, 9);
    const before = snapshot(sim, [a, b], [0, 9], { d });
    sim.test.failNth(steps);
    const err = await caught(() => sim.iommu.attachDevicePasid(d, a, 9));
    sim.test.failNth(0);
    expect((err as { code?: string })?.code).toBe('ENOMEM');
    expect(snapshot(sim, [a, b], [0, 9], { d })).toEqual(before);
    for (const dev of [a, b]) {
      expect(entryOf(sim, dev, 9)).toBeNull();
      expect(await reach(sim, dev, IOVA, 9)).toBe(BLOCKED);
    }
    expect(d.dids.size).toBe(0);
    await sim.iommu.attachDevicePasid(d, b, 9); // free: a new attach works
    expect(await reach(sim, a, IOVA, 9)).toBe(pa(0x5000_0000n));
  });

  it('replaces and detaches group-wide', async () => {
    const sim = await startSim(switchTopology());
    const [a, b] = groupPair(sim);
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevicePasid(d1, a, 9);
    await sim.iommu.replaceDevicePasid(d2, b, 9);
    for (const dev of [a, b]) {
      expect(dn(sim.iommu.getDomainForDevPasid(dev, 9))).toBe(dn(d2));
      expect(await reach(sim, dev, IOVA, 9)).toBe(pa(0x6000_0000n));
    }
    expect(d1.dids.size).toBe(0);
    await sim.iommu.detachDevicePasid(d2, a, 9);
    for (const dev of [a, b]) {
      expect(entryOf(sim, dev, 9)).toBeNull();
      expect(await reach(sim, dev, IOVA, 9)).toBe(BLOCKED);
    }
    expect(d2.dids.size).toBe(0);
  });
});

describe('PASID replace (§1.5)', () => {
  it('rejects a PASID that is not attached with EINVAL', async () => {
    const { sim, A, N } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    await expectRejectsCode(sim.iommu.replaceDevicePasid(d, A, 4), 'EINVAL');
    await expectRejectsCode(sim.iommu.replaceDevicePasid(d, N, 4), 'EINVAL');
    expect(dn(sim.iommu.getDomainForDevPasid(A, 4))).toBe('-');
    expect(d.dids.size).toBe(0);
  });

  it('switches the PASID to the new domain without a detour through blocking', async () => {
    const { sim, A } = await start();
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevicePasid(d1, A, 4);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
    const inv = await invalidationsDuring(sim, () => sim.iommu.replaceDevicePasid(d2, A, 4));
    expect(inv.map((e) => e.kind)).toEqual(['replace']);
    expect(dn(sim.iommu.getDomainForDevPasid(A, 4))).toBe(dn(d2));
    expect(entryOf(sim, A, 4)?.did).toBe(d2.dids.get(0)?.did);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x6000_0000n));
    expect(d1.dids.size).toBe(0);
  });

  it('treats the same domain as a no-op', async () => {
    const { sim, A } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevicePasid(d, A, 4);
    const before = snapshot(sim, [A], [0, 4], { d });
    expect(await invalidationsDuring(sim, () => sim.iommu.replaceDevicePasid(d, A, 4))).toEqual([]);
    expect(snapshot(sim, [A], [0, 4], { d })).toEqual(before);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
  });

  it('keeps the old domain when the replace fails (every failing step)', async () => {
    const { sim, A } = await start();
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevicePasid(d1, A, 4);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
    let failures = 0;
    for (let n = 1; ; n++) {
      const before = snapshot(sim, [A], [0, 4], { d1, d2 });
      sim.test.failNth(n);
      const err = await caught(() => sim.iommu.replaceDevicePasid(d2, A, 4));
      const steps = sim.test.failNthSteps();
      sim.test.failNth(0);
      if (!err) {
        expect(steps).toBeLessThan(n);
        break;
      }
      failures++;
      expect((err as { code?: string }).code).toBe('ENOMEM');
      expect(snapshot(sim, [A], [0, 4], { d1, d2 })).toEqual(before);
      expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
    }
    expect(failures).toBeGreaterThan(0);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x6000_0000n));
  });
});

describe('PASID detach (§1.5)', () => {
  it('blocks DMA on that PASID only, releasing the DID; other PASIDs and the RID keep translating', async () => {
    const { sim, A } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    const rid = await mapped(sim, 0x7000_0000n);
    await sim.iommu.attachDevice(rid, A);
    await sim.iommu.attachDevicePasid(d, A, 4);
    await sim.iommu.attachDevicePasid(d, A, 5);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n)); // warm the caches
    await sim.iommu.detachDevicePasid(d, A, 4);
    expect(dn(sim.iommu.getDomainForDevPasid(A, 4))).toBe('-');
    expect(entryOf(sim, A, 4)).toBeNull();
    expect(await reach(sim, A, IOVA, 4)).toBe(BLOCKED);
    expect(await reach(sim, A, IOVA, 5)).toBe(pa(0x5000_0000n));
    expect(await reach(sim, A, IOVA)).toBe(pa(0x7000_0000n));
    expect(d.dids.get(0)?.refs).toBe(1);
    await sim.iommu.detachDevicePasid(d, A, 5);
    expect(d.dids.size).toBe(0);
  });

  it('never fails, even when every programming step would fail; a mismatched detach is a no-op', async () => {
    const { sim, A } = await start();
    const d = await mapped(sim, 0x5000_0000n);
    const other = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevicePasid(d, A, 4);
    await sim.iommu.detachDevicePasid(other, A, 4);
    await sim.iommu.detachDevicePasid(d, A, 6);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
    sim.test.failNth(1);
    await sim.iommu.detachDevicePasid(d, A, 4);
    expect(sim.test.failNthSteps()).toBe(0);
    sim.test.failNth(0);
    expect(await reach(sim, A, IOVA, 4)).toBe(BLOCKED);
    expect(sim.iommu.groupState(A.group).pasids.size).toBe(0);
  });
});

describe('PASIDs and the RID are independent', () => {
  it('keeps PASID attachments across RID attach, replace and detach', async () => {
    const { sim, A } = await start();
    const p = await mapped(sim, 0x5000_0000n);
    const r1 = await mapped(sim, 0x6000_0000n);
    const r2 = await mapped(sim, 0x7000_0000n);
    await sim.iommu.attachDevicePasid(p, A, 4);
    await sim.iommu.attachDevice(r1, A);
    await sim.iommu.replaceGroupDomain(A.group, r2);
    expect(await reach(sim, A, IOVA)).toBe(pa(0x7000_0000n));
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
    await sim.iommu.detachDevice(r2, A);
    expect(await reach(sim, A, IOVA, 4)).toBe(pa(0x5000_0000n));
    expect(dn(sim.iommu.getDomainForDevPasid(A, 4))).toBe(dn(p));
  });
});
