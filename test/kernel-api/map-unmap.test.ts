/**
 * SEMANTICS.md §1.3 (map / unmap / iova_to_phys on domain types) and §4.3 (iotlb_gather
 * and the flush queue): map EINVAL on non-paging domains and for addresses not aligned to
 * the smallest page of the domain's bitmap, unmap returning the bytes unmapped (0n at a
 * hole and where a large page would split), strict unmap (nothing translates once it
 * resolves), a failed map changing nothing, DMA-FQ (lazy) unmap leaving a warmed IOTLB
 * entry translating until the queue is flushed — at 256 entries, after 10 ms of modelled
 * time, or by flush_iotlb_all — untrusted devices kept strict, and gather-and-sync
 * batching (one invalidation per IOMMU for several ranges).
 */
import { describe, expect, it } from 'vitest';
import { IotlbGather, type Device, type Domain, type Simulator, SZ_1G, SZ_2M, type TopologySpec } from 'iommu-sim';
import {
  BLOCKED, PAGE, RW, SKIP_UNTRUSTED, UNMAPPED, UNTRUSTED_FIELD, caught, expectRejectsCode, expectThrowsCode,
  invalidationsDuring, pa, reach, startSim,
} from './kapi-helpers.js';

const TWO = { iommus: 2, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:83:00.0', iommu: 1 }] } satisfies TopologySpec;

async function attached(sim: Simulator, type: 'paging' | 'dma' | 'dma-fq', devs: Device[], opts = {}): Promise<Domain> {
  const d = sim.iommu.domainAlloc(type, opts);
  for (const dev of devs) await sim.iommu.attachDevice(d, dev);
  return d;
}

/** Two DMAs to addr: the second comes from the IOTLB. */
async function warm(sim: Simulator, dev: Device, addr: bigint): Promise<void> {
  await sim.dma(dev, { addr, access: 'read' });
  const r = await sim.dma(dev, { addr, access: 'read' });
  expect(r.ok && r.cached, `warm ${dev.bdf} 0x${addr.toString(16)}`).toBe(true);
}

describe('map and iova_to_phys (§1.3)', () => {
  it('rejects map on a blocked or identity domain with EINVAL; iova_to_phys is 0 / iova there', async () => {
    const sim = await startSim(TWO);
    const blocked = sim.iommu.domainAlloc('blocked');
    const identity = sim.iommu.domainAlloc('identity');
    await expectRejectsCode(sim.iommu.map(blocked, 0x1000n, 0x5000n, PAGE, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(identity, 0x1000n, 0x5000n, PAGE, RW), 'EINVAL');
    expect(sim.iommu.iovaToPhys(blocked, 0x1000n)).toBe(0n);
    expect(sim.iommu.iovaToPhys(identity, 0x1234_5678n)).toBe(0x1234_5678n);
    const [a] = sim.topology.devices;
    await sim.iommu.attachDevice(identity, a);
    expect(await reach(sim, a, 0x1000n)).toBe(pa(0x1000n)); // the failed map did not make it translate elsewhere
  });

  it('translates a mapping at paddr + offset and reports it through iova_to_phys', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a]);
    await sim.iommu.map(d, 0x40_0000n, 0x8000_0000n, SZ_2M + PAGE, RW);
    expect(sim.iommu.iovaToPhys(d, 0x40_0123n)).toBe(0x8000_0123n);
    expect(sim.iommu.iovaToPhys(d, 0x60_0fffn)).toBe(0x8020_0fffn);
    expect(sim.iommu.iovaToPhys(d, 0x60_1000n)).toBe(0n);
    expect(await reach(sim, a, 0x5f_fff8n)).toBe(pa(0x801f_fff8n));
    expect(await reach(sim, a, 0x60_1000n)).toBe(UNMAPPED);
  });

  it('rejects iova, paddr or size not aligned to the smallest page of the bitmap with EINVAL, mapping nothing', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a]);
    await expectRejectsCode(sim.iommu.map(d, 0x1800n, 0x5000n, PAGE, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(d, 0x1000n, 0x5800n, PAGE, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(d, 0x1000n, 0x5000n, 0x800n, RW), 'EINVAL');
    expect(sim.iommu.iovaToPhys(d, 0x1000n)).toBe(0n);
    // A domain whose smallest page is 2 MiB.
    const big = sim.iommu.domainAlloc('paging', { pgsizeBitmap: SZ_2M | SZ_1G });
    await expectRejectsCode(sim.iommu.map(big, 0x20_0000n, 0x8000_0000n, PAGE, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(big, 0x20_1000n, 0x8000_0000n, SZ_2M, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(big, 0x20_0000n, 0x8000_1000n, SZ_2M, RW), 'EINVAL');
    expect(sim.iommu.iovaToPhys(big, 0x20_0000n)).toBe(0n);
    await sim.iommu.map(big, 0x20_0000n, 0x8000_0000n, SZ_2M, RW);
    const [, c] = sim.topology.devices;
    await sim.iommu.attachDevice(big, c);
    expect(await reach(sim, c, 0x3f_f000n)).toBe(pa(0x801f_f000n));
  });

  it('leaves nothing mapped when a map fails part-way (every failing step)', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a]);
    // Two pages on either side of a 1 GiB boundary: new tables at two levels for the second page.
    const iova = SZ_1G - PAGE;
    let failures = 0;
    for (let n = 1; ; n++) {
      sim.test.failNth(n);
      const err = await caught(() => sim.iommu.map(d, iova, 0x8000_0000n, 2n * PAGE, RW));
      const steps = sim.test.failNthSteps();
      sim.test.failNth(0);
      if (!err) {
        expect(steps).toBeLessThan(n);
        break;
      }
      failures++;
      expect((err as { code?: string }).code).toBe('ENOMEM');
      expect([sim.iommu.iovaToPhys(d, iova), sim.iommu.iovaToPhys(d, SZ_1G)], `after failing step ${n}`).toEqual([0n, 0n]);
      expect(await reach(sim, a, iova)).toBe(UNMAPPED);
    }
    expect(failures).toBeGreaterThan(0);
    expect(await reach(sim, a, iova)).toBe(pa(0x8000_0000n));
    expect(await reach(sim, a, SZ_1G)).toBe(pa(0x8000_1000n));
  });
});

describe('unmap (§1.3)', () => {
  it('returns the bytes unmapped, stopping at the first hole, and 0n at a hole', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a]);
    await sim.iommu.map(d, 0x1000n, 0x5000n, 0x2000n, RW);
    await sim.iommu.map(d, 0x4000n, 0x9000n, PAGE, RW);
    expect(await sim.iommu.unmap(d, 0x1000n, 0x4000n)).toBe(0x2000n);
    expect(await reach(sim, a, 0x1000n)).toBe(UNMAPPED);
    expect(await reach(sim, a, 0x4000n)).toBe(pa(0x9000n)); // beyond the hole: still mapped
    expect(await sim.iommu.unmap(d, 0x3000n, PAGE)).toBe(0n);
    expect(await invalidationsDuring(sim, () => sim.iommu.unmap(d, 0x10_0000n, PAGE))).toEqual([]);
  });

  it('returns 0n instead of splitting a large mapping, which keeps translating', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a]);
    await sim.iommu.map(d, SZ_2M, 0x8000_0000n, SZ_2M, RW);
    expect(await sim.iommu.unmap(d, SZ_2M, PAGE)).toBe(0n);
    expect(await sim.iommu.unmap(d, SZ_2M + PAGE, PAGE)).toBe(0n);
    expect(sim.iommu.iovaToPhys(d, SZ_2M + PAGE)).toBe(0x8000_1000n);
    expect(await reach(sim, a, SZ_2M + PAGE)).toBe(pa(0x8000_1000n));
    expect(await sim.iommu.unmap(d, SZ_2M, SZ_2M)).toBe(SZ_2M);
    expect(await reach(sim, a, SZ_2M + PAGE)).toBe(UNMAPPED);
  });

  it('is strict on paging and DMA domains: nothing translates once unmap resolves, even from the IOTLB', async () => {
    for (const type of ['paging', 'dma'] as const) {
      const sim = await startSim(TWO);
      const [a, c] = sim.topology.devices;
      const d = await attached(sim, type, [a, c]);
      await sim.iommu.map(d, 0x1000n, 0x5000n, PAGE, RW);
      await warm(sim, a, 0x1000n);
      await warm(sim, c, 0x1000n);
      const inv = await invalidationsDuring(sim, async () => expect(await sim.iommu.unmap(d, 0x1000n, PAGE)).toBe(PAGE));
      expect(inv.map((e) => e.iommu).sort()).toEqual([0, 1]);
      expect(await reach(sim, a, 0x1000n)).toBe(UNMAPPED);
      expect(await reach(sim, c, 0x1000n)).toBe(UNMAPPED);
      await sim.close();
    }
  });
});

describe('DMA-FQ flush queue (§4.3)', () => {
  it('resolves unmap without invalidating: a warmed IOTLB entry still translates until flush_iotlb_all', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'dma-fq', [a]);
    await sim.iommu.map(d, 0x1000n, 0x5000n, PAGE, RW);
    await warm(sim, a, 0x1000n);
    const inv = await invalidationsDuring(sim, async () => expect(await sim.iommu.unmap(d, 0x1000n, PAGE)).toBe(PAGE));
    expect(inv).toEqual([]);
    expect(sim.iommu.iovaToPhys(d, 0x1000n)).toBe(0n); // the PTE is gone...
    const stale = await sim.dma(a, { addr: 0x1000n, access: 'read' });
    expect(stale.ok && stale.cached && stale.paddr).toBe(0x5000n); // ...the IOTLB entry is not
    expect(await invalidationsDuring(sim, () => sim.iommu.flushIotlbAll(d))).toEqual([{ iommu: 0, kind: 'flush-all' }]);
    expect(await reach(sim, a, 0x1000n)).toBe(UNMAPPED);
  });

  it("applies to the default domain with defaultDomain: 'dma-fq'", async () => {
    const sim = await startSim(TWO, { defaultDomain: 'dma-fq' });
    const [a] = sim.topology.devices;
    const d = sim.iommu.getDomainForDev(a);
    await sim.iommu.map(d, 0x1000n, 0x5000n, PAGE, RW);
    await warm(sim, a, 0x1000n);
    expect(await invalidationsDuring(sim, () => sim.iommu.unmap(d, 0x1000n, PAGE))).toEqual([]);
    expect(await reach(sim, a, 0x1000n)).toBe(pa(0x5000n));
    await sim.iommu.flushIotlbAll(d);
    expect(await reach(sim, a, 0x1000n)).toBe(UNMAPPED);
  });

  it('flushes the queue when its 256th entry arrives, once per IOMMU', async () => {
    const sim = await startSim(TWO);
    const [a, c] = sim.topology.devices;
    const d = await attached(sim, 'dma-fq', [a, c]);
    await sim.iommu.map(d, SZ_2M, 0x8000_0000n, 256n * PAGE, RW); // 256 4-KiB pages
    await warm(sim, a, SZ_2M);
    await warm(sim, c, SZ_2M);
    const first = await invalidationsDuring(sim, async () => {
      for (let i = 0n; i < 255n; i++) expect(await sim.iommu.unmap(d, SZ_2M + i * PAGE, PAGE)).toBe(PAGE);
    });
    expect(first).toEqual([]);
    expect(await reach(sim, a, SZ_2M)).toBe(pa(0x8000_0000n)); // stale, 255 queued
    expect(await reach(sim, c, SZ_2M)).toBe(pa(0x8000_0000n));
    const last = await invalidationsDuring(sim, () => sim.iommu.unmap(d, SZ_2M + 255n * PAGE, PAGE));
    expect(last.map((e) => `${e.iommu}:${e.kind}`).sort()).toEqual(['0:flush-queue', '1:flush-queue']);
    expect(await reach(sim, a, SZ_2M)).toBe(UNMAPPED);
    expect(await reach(sim, c, SZ_2M)).toBe(UNMAPPED);
  });

  it('flushes the queue once 10 ms of modelled time have passed since its first entry', async () => {
    // Device Z's faults cost 4 ms of modelled time each: its DMA moves the clock on.
    const sim = await startSim({ iommus: [{}, { costs: { faultNs: 4_000_000 } }], devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:83:00.0', iommu: 1 }] });
    const [a, z] = sim.topology.devices;
    const d = await attached(sim, 'dma-fq', [a]);
    await sim.iommu.map(d, 0x1000n, 0x5000n, PAGE, RW);
    await warm(sim, a, 0x1000n);
    const t0 = sim.clock.now;
    expect(await invalidationsDuring(sim, () => sim.iommu.unmap(d, 0x1000n, PAGE))).toEqual([]);
    const inv = await invalidationsDuring(sim, async () => {
      for (let i = 0; i < 2; i++) expect(await reach(sim, z, 0x1000n)).toBe(UNMAPPED);
      expect(sim.clock.now - t0).toBeGreaterThan(8_000_000);
      expect(sim.clock.now - t0).toBeLessThan(10_000_000);
      expect(await reach(sim, a, 0x1000n)).toBe(pa(0x5000n)); // < 10 ms: still queued
    });
    expect(inv).toEqual([]);
    const later = await invalidationsDuring(sim, async () => {
      expect(await reach(sim, z, 0x1000n)).toBe(UNMAPPED);
      expect(sim.clock.now - t0).toBeGreaterThan(10_000_000);
      expect(await reach(sim, a, 0x1000n)).toBe(UNMAPPED); // the queue was flushed before this DMA
    });
    expect(later).toEqual([{ iommu: 0, kind: 'flush-queue' }]);
  });

  it.skipIf(!UNTRUSTED_FIELD)(`stays strict for a DMA-FQ domain attached to an untrusted device${UNTRUSTED_FIELD ? '' : ` (skipped: ${SKIP_UNTRUSTED})`}`, async () => {
    const sim = await startSim({ iommus: 1, devices: [{ bdf: '0000:03:00.0', untrusted: true }] } satisfies TopologySpec);
    const [u] = sim.topology.devices;
    const d = await attached(sim, 'dma-fq', [u]);
    await sim.iommu.map(d, 0x1000n, 0x5000n, PAGE, RW);
    await warm(sim, u, 0x1000n);
    const inv = await invalidationsDuring(sim, () => sim.iommu.unmap(d, 0x1000n, PAGE));
    expect(inv).toEqual([{ iommu: 0, kind: 'unmap' }]);
    expect(await reach(sim, u, 0x1000n)).toBe(UNMAPPED);
  });
});

describe('gather and sync (§4.3)', () => {
  it('batches several unmapFast ranges into one invalidation per IOMMU at iotlbSync', async () => {
    const sim = await startSim(TWO);
    const [a, c] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a, c]);
    const ranges = [0x1000n, 0x8000n, 0x40_0000n];
    for (const [i, iova] of ranges.entries()) await sim.iommu.map(d, iova, 0x10_0000n * BigInt(i + 1), PAGE, RW);
    for (const iova of ranges) for (const dev of [a, c]) await warm(sim, dev, iova);
    const gather = new IotlbGather();
    const before = await invalidationsDuring(sim, async () => {
      for (const iova of ranges) expect(sim.iommu.unmapFast(d, iova, PAGE, gather)).toBe(PAGE);
      expect(sim.iommu.unmapFast(d, 0x2000n, PAGE, gather)).toBe(0n); // a hole adds nothing
    });
    expect(before).toEqual([]);
    expect(gather.empty).toBe(false);
    // Not synced yet: the IOTLB may still translate.
    expect(await reach(sim, a, 0x8000n)).toBe(pa(0x20_0000n));
    const sync = await invalidationsDuring(sim, () => sim.iommu.iotlbSync(d, gather));
    expect(sync.map((e) => `${e.iommu}:${e.kind}`).sort()).toEqual(['0:unmap', '1:unmap']);
    expect(gather.empty).toBe(true);
    for (const iova of ranges) for (const dev of [a, c]) expect(await reach(sim, dev, iova)).toBe(UNMAPPED);
    expect(await invalidationsDuring(sim, () => sim.iommu.iotlbSync(d, gather))).toEqual([]); // nothing gathered
  });

  it('rejects unmapFast with something that is not a gather (EINVAL) and on a non-paging domain', async () => {
    const sim = await startSim(TWO);
    const d = sim.iommu.domainAlloc('paging');
    expectThrowsCode(() => sim.iommu.unmapFast(d, 0x1000n, PAGE, {} as IotlbGather), 'EINVAL');
    expectThrowsCode(() => sim.iommu.unmapFast(sim.iommu.domainAlloc('identity'), 0x1000n, PAGE, new IotlbGather()), 'EINVAL');
  });
});

describe('domains in use', () => {
  it('refuses to free an attached domain (EBUSY), frees it after detach', async () => {
    const sim = await startSim(TWO);
    const [a] = sim.topology.devices;
    const d = await attached(sim, 'paging', [a]);
    expectThrowsCode(() => sim.iommu.domainFree(d), 'EBUSY');
    await sim.iommu.attachDevicePasid(sim.iommu.domainAlloc('paging'), a, 3);
    await sim.iommu.detachDevice(d, a);
    sim.iommu.domainFree(d);
    await expectRejectsCode(sim.iommu.attachDevice(d, a), 'EINVAL');
    expect(await reach(sim, a, 0x1000n, 3)).toBe(UNMAPPED);
    expect(await reach(sim, a, 0x1000n, 4)).toBe(BLOCKED);
  });
});
