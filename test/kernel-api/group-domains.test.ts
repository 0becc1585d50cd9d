/**
 * SEMANTICS.md §1.1 (iommu_group) and the default-domain part of §1.3, rule by rule:
 * default domain types, attach_device's singleton rule, EBUSY over a caller's domain,
 * setting the current domain again, attach_group, detach back to the core domain (never
 * failing), replace (old domain kept on failure, no detour through blocking), and
 * require_direct devices refusing the blocking domain. Every test checks the state after
 * the call and what the device's DMA reaches.
 */
import { describe, expect, it } from 'vitest';
import { type Device, type Domain, type Simulator, type TopologySpec } from 'iommu-sim';
import {
  BLOCKED, dn, MULTI_DEVICE_GROUPS, PAGE, REQUIRE_DIRECT_FIELD, RESERVED_REGIONS_FIELD, RW, SKIP_MULTI, SKIP_REQUIRE_DIRECT,
  SKIP_RESERVED, SKIP_UNTRUSTED, UNMAPPED, UNTRUSTED_FIELD, caught, entryOf, expectRejectsCode, groupPair, invalidationsDuring,
  pa, reach, snapshot, startSim, switchTopology,
} from './kapi-helpers.js';

const IOVA = 0x10_0000n;
const TWO = { iommus: 2, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:04:00.0' }, { bdf: '0000:83:00.0', iommu: 1 }] } satisfies TopologySpec;

/** A paging domain mapping IOVA → paddr. */
async function mapped(sim: Simulator, paddr: bigint, opts: Parameters<Simulator['iommu']['domainAlloc']>[1] = {}): Promise<Domain> {
  const d = sim.iommu.domainAlloc('paging', opts);
  await sim.iommu.map(d, IOVA, paddr, PAGE, RW);
  return d;
}

/** Maps IOVA in the default domain of dev's group, so DMA through it is recognisable. */
async function markDefault(sim: Simulator, dev: Device, paddr: bigint): Promise<Domain> {
  const def = sim.iommu.groupState(dev.group).defaultDomain;
  await sim.iommu.map(def, IOVA, paddr, PAGE, RW);
  return def;
}

describe('default domain (§1.3)', () => {
  it('is a strict DMA domain by default, the group\'s current domain, translating what it maps', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const st = sim.iommu.groupState(a.group);
    expect(st.defaultDomain.type).toBe('dma');
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(st.defaultDomain));
    expect(st.blockingDomain.type).toBe('blocked');
    expect(dn(st.defaultDomain)).not.toBe(dn(sim.iommu.groupState(sim.topology.devices[1].group).defaultDomain));
    expect(await reach(sim, a, IOVA)).toBe(UNMAPPED);
    await sim.iommu.map(st.defaultDomain, IOVA, 0x7000_0000n, PAGE, RW);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x7000_0000n));
  });

  it("is an identity domain with defaultDomain: 'identity' (DMA reaches iova, map EINVAL)", async () => {
    const sim = await startSim(TWO, { defaultDomain: 'identity' });
    const [a, , c] = sim.topology.devices;
    for (const dev of [a, c]) {
      const def = sim.iommu.getDomainForDev(dev);
      expect(def.type).toBe('identity');
      expect(sim.iommu.iovaToPhys(def, 0x1234_5000n)).toBe(0x1234_5000n);
      expect(await reach(sim, dev, 0x1234_5678n)).toBe(pa(0x1234_5678n));
      await expectRejectsCode(sim.iommu.map(def, IOVA, IOVA, PAGE, RW), 'EINVAL');
    }
    expect(entryOf(sim, a, 0)?.did).toBe(1); // FLPT_DEFAULT_DID, pass-through
  });

  it("is a lazy DMA-FQ domain with defaultDomain: 'dma-fq'", async () => {
    const sim = await startSim(TWO, { defaultDomain: 'dma-fq' });
    const [a] = sim.topology.devices;
    const def = sim.iommu.getDomainForDev(a);
    expect(def.type).toBe('dma-fq');
    await sim.iommu.map(def, IOVA, 0x7000_0000n, PAGE, RW);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x7000_0000n));
  });

  it.skipIf(!UNTRUSTED_FIELD)(`is forced to strict DMA for an untrusted device whatever the option${UNTRUSTED_FIELD ? '' : ` (skipped: ${SKIP_UNTRUSTED})`}`, async () => {
    for (const option of ['dma-fq', 'identity'] as const) {
      const sim = await startSim({ iommus: 1, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:04:00.0', untrusted: true }] } satisfies TopologySpec, { defaultDomain: option });
      const [trusted, untrusted] = sim.topology.devices;
      expect(untrusted.untrusted).toBe(true);
      expect(sim.iommu.getDomainForDev(trusted).type).toBe(option);
      expect(sim.iommu.getDomainForDev(untrusted).type).toBe('dma');
      expect(await reach(sim, untrusted, IOVA)).toBe(UNMAPPED); // translated, not passed through
      await sim.close();
    }
    // Below an external-facing port (set_pcie_untrusted) without saying so.
    const sim = await startSim({
      iommus: 1, switches: [{ id: 'tb', acs: true, externalFacing: true }], devices: [{ bdf: '0000:07:00.0', behind: 'tb' }],
    } satisfies TopologySpec, { defaultDomain: 'identity' });
    const [ext] = sim.topology.devices;
    expect(ext.untrusted).toBe(true);
    expect(sim.iommu.getDomainForDev(ext).type).toBe('dma');
  });

  it.skipIf(!RESERVED_REGIONS_FIELD)(`maps a device's direct (RMRR) regions 1:1 in its default domain${RESERVED_REGIONS_FIELD ? '' : ` (skipped: ${SKIP_RESERVED})`}`, async () => {
    const sim = await startSim({
      iommus: 1, devices: [{ bdf: '0000:03:00.0', reservedRegions: [{ start: 0xe000_0000n, last: 0xe000_1fffn, type: 'direct' }] }],
    } satisfies TopologySpec);
    const [a] = sim.topology.devices;
    const def = sim.iommu.getDomainForDev(a);
    expect(sim.iommu.iovaToPhys(def, 0xe000_1008n)).toBe(0xe000_1008n);
    expect(await reach(sim, a, 0xe000_0040n)).toBe(pa(0xe000_0040n));
    expect(await reach(sim, a, 0xe000_2000n)).toBe(UNMAPPED);
    // A direct region makes the device require direct mappings (§1.1 rule 8): no blocking.
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, {}), 'EINVAL');
    expect(await reach(sim, a, 0xe000_0040n)).toBe(pa(0xe000_0040n));
  });
});

describe('attach_device (§1.1 rules 3, 4)', () => {
  it('attaches a singleton group: state and DMA move to the new domain', async () => {
    const sim = await startSim(TWO);
    const [a, b] = sim.topology.devices;
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    const d = await mapped(sim, 0x5000_0000n);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x1_0000_0000n));
    await sim.iommu.attachDevice(d, a);
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d));
    expect(dn(sim.iommu.groupState(a.group).domain)).toBe(dn(d));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    expect(dn(sim.iommu.getDomainForDev(b))).not.toBe(dn(d)); // only that group
    expect(def.attachments.size).toBe(0);
    expect([...d.attachments.values()].map((x) => [x.dev, x.pasid])).toEqual([[a, 0]]);
  });

  it('rejects a device that is not in the topology with ENODEV', async () => {
    const sim = await startSim(TWO);
    const other = await startSim(TWO);
    const d = sim.iommu.domainAlloc('paging');
    await expectRejectsCode(sim.iommu.attachDevice(d, other.topology.devices[0]), 'ENODEV');
  });

  it('rejects with EBUSY while a caller\'s domain is attached, even the same one again; the old stays', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevice(d1, a);
    await expectRejectsCode(sim.iommu.attachDevice(d2, a), 'EBUSY');
    await expectRejectsCode(sim.iommu.attachDevice(d1, a), 'EBUSY');
    await expectRejectsCode(sim.iommu.attachGroup(d2, a.group), 'EBUSY');
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d1));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    expect(d2.attachments.size).toBe(0);
    expect(d2.dids.size).toBe(0);
  });

  it('rejects a domain made for another IOMMU with EINVAL (a soft failure: another domain then attaches)', async () => {
    const sim = await startSim(TWO);
    const [a, , c] = sim.topology.devices;
    const foreign = await mapped(sim, 0x5000_0000n, { dev: c });
    await expectRejectsCode(sim.iommu.attachDevice(foreign, a), 'EINVAL');
    expect(sim.iommu.getDomainForDev(a).type).toBe('dma');
    expect(foreign.dids.size).toBe(0);
    const ok = await mapped(sim, 0x6000_0000n, { dev: a });
    await sim.iommu.attachDevice(ok, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x6000_0000n));
    await sim.iommu.attachDevice(foreign, c);
    expect(await reach(sim, c, IOVA)).toBe(pa(0x5000_0000n));
  });

  it('attaches over the blocking domain of an owned group (not EBUSY)', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    await sim.iommu.deviceClaimDmaOwner(a, {});
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevice(d, a);
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
  });

  it('treats setting the current core domain again as a no-op (no invalidation, nothing changes)', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x1_0000_0000n));
    const before = snapshot(sim, [a], [0], { def });
    const inv = await invalidationsDuring(sim, async () => {
      await sim.iommu.attachDevice(def, a);
      await sim.iommu.attachGroup(def, a.group);
      await sim.iommu.replaceGroupDomain(a.group, def);
    });
    expect(inv).toEqual([]);
    expect(snapshot(sim, [a], [0], { def })).toEqual(before);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x1_0000_0000n));
  });

  it('treats replacing a caller\'s domain by itself as a no-op', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevice(d, a);
    const before = snapshot(sim, [a], [0], { d });
    expect(await invalidationsDuring(sim, () => sim.iommu.replaceGroupDomain(a.group, d))).toEqual([]);
    expect(snapshot(sim, [a], [0], { d })).toEqual(before);
  });
});

describe.skipIf(!MULTI_DEVICE_GROUPS)(`multi-device groups (§1.1 rules 1, 3, 5)${MULTI_DEVICE_GROUPS ? '' : ` (skipped: ${SKIP_MULTI})`}`, () => {
  it('rejects attach_device on a group of two with EINVAL, changing nothing', async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    const d = await mapped(sim, 0x5000_0000n);
    await expectRejectsCode(sim.iommu.attachDevice(d, a), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachDevice(d, b), 'EINVAL');
    expect(dn(sim.iommu.groupState(g).domain)).toBe(dn(def));
    for (const dev of [a, b]) expect(await reach(sim, dev, IOVA)).toBe(pa(0x1_0000_0000n));
    expect(d.dids.size).toBe(0);
  });

  it('attaches the whole group with attach_group: every device translates through the domain', async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachGroup(d, g);
    for (const dev of [a, b]) {
      expect(dn(sim.iommu.getDomainForDev(dev))).toBe(dn(d));
      expect(await reach(sim, dev, IOVA)).toBe(pa(0x5000_0000n));
    }
    expect(entryOf(sim, a, 0)?.did).toBe(entryOf(sim, b, 0)?.did); // one DID per IOMMU
    expect(d.dids.get(0)?.refs).toBe(2);
  });

  it('rolls the first device back when the second fails (no partial group state)', async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    const d = await mapped(sim, 0x5000_0000n);
    for (const dev of [a, b]) expect(await reach(sim, dev, IOVA)).toBe(pa(0x1_0000_0000n));
    // Count the steps of a successful attach, go back, and fail the last one (the second device's).
    sim.test.failNth(0);
    await sim.iommu.attachGroup(d, g);
    const steps = sim.test.failNthSteps();
    await sim.iommu.detachGroup(d, g);
    const before = snapshot(sim, [a, b], [0], { def, d });
    sim.test.failNth(steps);
    let err: unknown;
    const inv = await invalidationsDuring(sim, async () => { err = await caught(() => sim.iommu.attachGroup(d, g)); });
    sim.test.failNth(0);
    expect((err as { code?: string })?.code).toBe('ENOMEM');
    expect(inv.length, 'the first device was switched and switched back (a flush each way)').toBeGreaterThanOrEqual(2);
    expect(snapshot(sim, [a, b], [0], { def, d })).toEqual(before);
    for (const dev of [a, b]) expect(await reach(sim, dev, IOVA)).toBe(pa(0x1_0000_0000n));
  });

  it('detaches the whole group back to the default domain', async () => {
    const sim = await startSim(switchTopology());
    const [a, b, g] = groupPair(sim);
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachGroup(d, g);
    await sim.iommu.detachDevice(d, a); // not a singleton: iommu_detach_device WARNs and does nothing
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d));
    await sim.iommu.detachGroup(d, g);
    for (const dev of [a, b]) {
      expect(dn(sim.iommu.getDomainForDev(dev))).toBe(dn(def));
      expect(await reach(sim, dev, IOVA)).toBe(pa(0x1_0000_0000n));
    }
    expect(d.dids.size).toBe(0);
  });
});

describe('detach (§1.1 rule 6)', () => {
  it('returns a kernel-owned group to its default domain: DMA reaches the default domain again', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevice(d, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    await sim.iommu.detachDevice(d, a);
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(def));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x1_0000_0000n));
    expect(d.attachments.size).toBe(0);
    expect(d.dids.size).toBe(0);
  });

  it('returns an owned group to the blocking domain: DMA faults', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    await markDefault(sim, a, 0x1_0000_0000n);
    await sim.iommu.deviceClaimDmaOwner(a, {});
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevice(d, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    await sim.iommu.detachGroup(d, a.group);
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(sim.iommu.groupState(a.group).blockingDomain));
    expect(await reach(sim, a, IOVA)).toBe(BLOCKED);
    expect(entryOf(sim, a, 0)).toBeNull();
  });

  it('never fails, even when every programming step would fail, and a mismatched detach is a no-op', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const def = await markDefault(sim, a, 0x1_0000_0000n);
    const d = await mapped(sim, 0x5000_0000n);
    const other = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevice(d, a);
    await sim.iommu.detachDevice(other, a); // not attached: nothing happens
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d));
    for (let n = 1; n <= 3; n++) {
      sim.test.failNth(n);
      await sim.iommu.detachDevice(d, a);
      expect(sim.test.failNthSteps(), 'detach takes no failable step').toBe(0);
      sim.test.failNth(0);
      expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(def));
      expect(await reach(sim, a, IOVA)).toBe(pa(0x1_0000_0000n));
      await sim.iommu.attachDevice(d, a);
    }
  });

  it('never fails as the first call that touches a group (its default domain exists from probe time)', async () => {
    const sim = await startSim(TWO);
    const [a, b, c] = sim.topology.devices;
    const d = sim.iommu.domainAlloc('paging');
    sim.test.failNth(1);
    await sim.iommu.detachDevice(d, a);
    await sim.iommu.detachGroup(d, b.group);
    await sim.iommu.detachDevicePasid(d, c, 3);
    expect(sim.iommu.getDomainForDev(a).type).toBe('dma');
    expect(sim.test.failNthSteps()).toBe(0);
    sim.test.failNth(0);
    expect(await reach(sim, a, IOVA)).toBe(UNMAPPED);
  });
});

describe('replace (§1.1 rule 7)', () => {
  it('switches the RID domain of an attached group without detaching first', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevice(d1, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    await sim.iommu.replaceGroupDomain(a.group, d2);
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d2));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x6000_0000n));
    expect(d1.attachments.size).toBe(0);
    expect(d1.dids.size).toBe(0);
  });

  it('does not pass through blocking: DMA in flight during the switch keeps translating, no detach flush', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevice(d1, a);
    const reqs = Array.from({ length: 64 }, () => ({ addr: IOVA, access: 'read' as const }));
    const seen = new Set<string>();
    const inv = await invalidationsDuring(sim, async () => {
      for (let round = 0; round < 6; round++) {
        const to = round % 2 === 0 ? d2 : d1;
        const [, res] = await Promise.all([sim.iommu.replaceGroupDomain(a.group, to), sim.dmaBatch(a, reqs)]);
        for (const r of res) seen.add(r.ok ? pa(r.paddr) : `fault:${r.fault.reason}`);
      }
    });
    expect([...seen].filter((s) => s.startsWith('fault'))).toEqual([]);
    expect(inv.length).toBeGreaterThan(0);
    expect(inv.filter((e) => e.kind !== 'replace')).toEqual([]);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
  });

  it('keeps the old domain when the replace fails (every failing step)', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d1 = await mapped(sim, 0x5000_0000n);
    const d2 = await mapped(sim, 0x6000_0000n);
    await sim.iommu.attachDevice(d1, a);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    let failures = 0;
    for (let n = 1; ; n++) {
      const before = snapshot(sim, [a], [0], { d1, d2 });
      sim.test.failNth(n);
      const err = await caught(() => sim.iommu.replaceGroupDomain(a.group, d2));
      const steps = sim.test.failNthSteps();
      sim.test.failNth(0);
      if (!err) {
        expect(steps).toBeLessThan(n);
        break;
      }
      failures++;
      expect((err as { code?: string }).code).toBe('ENOMEM');
      expect(snapshot(sim, [a], [0], { d1, d2 })).toEqual(before);
      expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d1));
      expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
    }
    expect(failures).toBeGreaterThan(0);
    expect(await reach(sim, a, IOVA)).toBe(pa(0x6000_0000n));
  });

  it('rejects a foreign domain with EINVAL and keeps the old one', async () => {
    const sim = await startSim(TWO);
    const [a, , c] = sim.topology.devices;
    const d1 = await mapped(sim, 0x5000_0000n);
    const foreign = await mapped(sim, 0x6000_0000n, { dev: c });
    await sim.iommu.attachDevice(d1, a);
    await expectRejectsCode(sim.iommu.replaceGroupDomain(a.group, foreign), 'EINVAL');
    expect(dn(sim.iommu.getDomainForDev(a))).toBe(dn(d1));
    expect(await reach(sim, a, IOVA)).toBe(pa(0x5000_0000n));
  });
});

describe.skipIf(!REQUIRE_DIRECT_FIELD)(`require_direct devices (§1.1 rule 8)${REQUIRE_DIRECT_FIELD ? '' : ` (skipped: ${SKIP_REQUIRE_DIRECT})`}`, () => {
  const RD = { iommus: 1, devices: [{ bdf: '0000:03:00.0', requireDirect: true }, { bdf: '0000:04:00.0' }] } satisfies TopologySpec;

  it('refuses the blocking domain with EINVAL: no DMA ownership claim, no blocked attach or replace', async () => {
    const sim = await startSim(RD);
    const [rd, plain] = sim.topology.devices;
    expect(rd.requireDirect).toBe(true);
    const def = await markDefault(sim, rd, 0x1_0000_0000n);
    const blocked = sim.iommu.domainAlloc('blocked');
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(rd, {}), 'EINVAL');
    await expectRejectsCode(sim.iommu.groupClaimDmaOwner(rd.group, {}), 'EINVAL');
    expect(sim.iommu.dmaOwner(rd)).toBeUndefined();
    expect(sim.iommu.groupState(rd.group).ownerCnt).toBe(0);
    await expectRejectsCode(sim.iommu.attachDevice(blocked, rd), 'EINVAL');
    const d = await mapped(sim, 0x5000_0000n);
    await sim.iommu.attachDevice(d, rd); // a paging domain is fine
    await expectRejectsCode(sim.iommu.replaceGroupDomain(rd.group, blocked), 'EINVAL');
    expect(dn(sim.iommu.getDomainForDev(rd))).toBe(dn(d));
    expect(await reach(sim, rd, IOVA)).toBe(pa(0x5000_0000n));
    await sim.iommu.detachDevice(d, rd);
    expect(dn(sim.iommu.getDomainForDev(rd))).toBe(dn(def));
    // The other device can be blocked.
    await sim.iommu.deviceClaimDmaOwner(plain, {});
    expect(await reach(sim, plain, IOVA)).toBe(BLOCKED);
  });

  it.skipIf(!MULTI_DEVICE_GROUPS)(`refuses blocking for a whole group when one of its devices requires direct mappings${MULTI_DEVICE_GROUPS ? '' : ` (skipped: ${SKIP_MULTI})`}`, async () => {
    const sim = await startSim(switchTopology({}, { requireDirect: true }));
    const [a, , g] = groupPair(sim);
    await expectRejectsCode(sim.iommu.deviceClaimDmaOwner(a, {}), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachGroup(sim.iommu.domainAlloc('blocked'), g), 'EINVAL');
    expect(dn(sim.iommu.groupState(g).domain)).toBe(dn(sim.iommu.groupState(g).defaultDomain));
  });
});
