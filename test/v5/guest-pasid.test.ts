/**
 * The v5 profile's guest SVA passdown (seed 002; SEMANTICS.md §4.2): binding a guest PASID
 * (its first-stage root over the host's nesting domain) and the generic cache_invalidate
 * call with its version, granularity × cache-type validity table and errors. DMA with the
 * host PASID shows what the guest's table says, and a stale entry stays until the guest's
 * invalidation is passed down.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type CacheInvalidateInfo, type Domain, GuestStage1, Simulator } from 'iommu-sim';
import { closeSim, expectRejectsCode } from '../e2e/helpers.js';

const sims: Simulator[] = [];
afterEach(async () => { for (const s of sims.splice(0)) await closeSim(s); });

const DATA_HPA = 0x2_0000_0000n; // host pages behind guest RAM data pages (numbers only)

/** A nesting domain with guest table pages (table memory) at GPA 0x100000.. and guest data at GPA 0x200000... */
async function setup(semantics: 'v5' | 'latest' = 'v5') {
  const sim = await Simulator.start({ testHooks: true, semantics, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', ats: true }] } });
  sims.push(sim);
  const [dev] = sim.topology.devices;
  const domain = sim.iommu.domainAlloc('paging', { dev, nestParent: true });
  const tablePages: bigint[] = [];
  for (let i = 0; i < 8; i++) {
    const gpa = 0x10_0000n + BigInt(i) * 0x1000n;
    await sim.iommu.map(domain, gpa, BigInt(sim.frames.alloc()) << 12n, 0x1000n, { read: true, write: true });
    tablePages.push(gpa);
  }
  await sim.iommu.map(domain, 0x20_0000n, DATA_HPA, 0x10_0000n, { read: true, write: true });
  const s1 = new GuestStage1(sim.frames.view, { hostFrameOf: (g) => { const p = sim.iommu.iovaToPhys(domain, g); return p === 0n ? undefined : Number(p >> 12n); } }, tablePages);
  const bind = (hpasid: number, extra: object = {}) =>
    sim.iommu.bindGuestPasidTable(domain, dev, { version: 1, format: 'intel-vtd', gpgd: s1.rootGpa, hpasid, addrWidth: 48, ...extra } as never);
  return { sim, dev, domain, s1, bind };
}

async function reach(sim: Simulator, dev: Simulator['topology']['devices'][number], addr: bigint, pasid: number): Promise<string> {
  const r = await sim.dma(dev, { addr, access: 'read', pasid });
  return r.ok ? `pa:0x${r.paddr.toString(16)}` : `fault:${r.fault.reason}`;
}

describe('v5 guest PASID bind', () => {
  it('binds (dev, hpasid) to the guest first stage over the nesting domain: DMA with that PASID follows the guest table', async () => {
    const { sim, dev, s1, bind } = await setup();
    s1.map(0x4000_0000n, 0x20_3000n, 0x1000n, { read: true });
    await bind(9);
    expect(sim.test.pasidEntry(dev, 9)?.pgtt).toBe(3);
    expect(await reach(sim, dev, 0x4000_0000n, 9)).toBe(`pa:0x${(DATA_HPA + 0x3000n).toString(16)}`);
    expect(await reach(sim, dev, 0x4000_0000n, 10)).toBe('fault:bad-pasid-entry');
  });

  it('rejects bad bind data with EINVAL, a non-nesting domain with EINVAL, a bound PASID with EBUSY', async () => {
    const { sim, dev, bind } = await setup();
    for (const bad of [{ version: 2 }, { format: 'arm-smmu' }, { gpgd: 0x10_0800n }, { addrWidth: 39 }, { gpasid: 5 }, { flags: { gpasidValid: true } }]) {
      await expectRejectsCode(bind(9, bad), 'EINVAL');
    }
    await expectRejectsCode(bind(0), 'EINVAL');
    await expectRejectsCode(bind(1 << 20), 'EINVAL');
    const plain = sim.iommu.domainAlloc('paging', { dev });
    await expectRejectsCode(sim.iommu.bindGuestPasidTable(plain, dev, { version: 1, format: 'intel-vtd', gpgd: 0x10_0000n, hpasid: 3, addrWidth: 48 }), 'EINVAL');
    expect(sim.test.pasidEntry(dev, 9)).toBeUndefined();
    await bind(9, { flags: { gpasidValid: true }, gpasid: 4 });
    await expectRejectsCode(bind(9), 'EBUSY');
  });

  it('unbind blocks the PASID again and is a no-op the second time', async () => {
    const { sim, dev, domain, s1, bind } = await setup();
    s1.map(0x1000n, 0x20_0000n, 0x1000n, { read: true });
    await bind(9);
    await sim.iommu.unbindGuestPasidTable(domain, dev, 9);
    expect(await reach(sim, dev, 0x1000n, 9)).toBe('fault:bad-pasid-entry');
    await sim.iommu.unbindGuestPasidTable(domain, dev, 9);
    await bind(9); // free again
  });

  it('does not exist in the latest profile (EOPNOTSUPP)', async () => {
    const { bind, sim, domain, dev } = await setup('latest');
    await expectRejectsCode(bind(9), 'EOPNOTSUPP');
    await expectRejectsCode(sim.iommu.cacheInvalidate(domain, dev, { version: 1, cache: { iotlb: true }, granularity: 'domain' }), 'EOPNOTSUPP');
  });
});

describe('v5 cache_invalidate passdown', () => {
  const info = (granularity: CacheInvalidateInfo['granularity'], cache: CacheInvalidateInfo['cache']): CacheInvalidateInfo => ({
    version: 1, cache, granularity,
    pasidInfo: { flags: { pasid: true }, pasid: 9 },
    addrInfo: { flags: { pasid: true }, pasid: 9, addr: 0x1000n, granuleSize: 0x1000n, nbGranules: 1n },
  });

  it('accepts exactly the valid granularity × cache-type combinations (every named type must support the granularity)', async () => {
    const { sim, dev, domain, bind } = await setup();
    await bind(9);
    const valid: Record<string, string[]> = { domain: ['iotlb', 'pasid'], pasid: ['iotlb', 'devIotlb', 'pasid'], addr: ['iotlb', 'devIotlb'] };
    for (const g of ['domain', 'pasid', 'addr'] as const) {
      for (let mask = 1; mask < 8; mask++) {
        const types = ['iotlb', 'devIotlb', 'pasid'].filter((_, i) => mask & (1 << i));
        const cache = Object.fromEntries(types.map((t) => [t, true]));
        const p = sim.iommu.cacheInvalidate(domain, dev, info(g, cache));
        if (types.every((t) => valid[g].includes(t))) await p;
        else await expectRejectsCode(p, 'EINVAL');
      }
    }
  });

  it('rejects a bad version, no cache type, an unknown granularity, no PASID/ARCHID flag, an unbound PASID, a bad granule or address (EINVAL)', async () => {
    const { sim, dev, domain, bind } = await setup();
    await bind(9);
    const inv = (i: object) => sim.iommu.cacheInvalidate(domain, dev, { ...info('addr', { iotlb: true }), ...i } as CacheInvalidateInfo);
    await expectRejectsCode(inv({ version: 2 }), 'EINVAL');
    await expectRejectsCode(inv({ cache: {} }), 'EINVAL');
    await expectRejectsCode(inv({ cache: { context: true } }), 'EINVAL');
    await expectRejectsCode(inv({ granularity: 'device' }), 'EINVAL');
    await expectRejectsCode(inv({ addrInfo: { flags: {}, addr: 0x1000n, granuleSize: 0x1000n, nbGranules: 1n } }), 'EINVAL');
    await expectRejectsCode(inv({ addrInfo: { flags: { pasid: true }, pasid: 10, addr: 0x1000n, granuleSize: 0x1000n, nbGranules: 1n } }), 'EINVAL');
    await expectRejectsCode(inv({ addrInfo: { flags: { pasid: true }, pasid: 9, addr: 0x1000n, granuleSize: 0x3000n, nbGranules: 1n } }), 'EINVAL');
    await expectRejectsCode(inv({ addrInfo: { flags: { pasid: true }, pasid: 9, addr: 0x1800n, granuleSize: 0x1000n, nbGranules: 1n } }), 'EINVAL');
    await expectRejectsCode(inv({ addrInfo: { flags: { pasid: true }, pasid: 9, addr: 0x1000n, granuleSize: 0x1000n, nbGranules: 0n } }), 'EINVAL');
  });

  it('a guest remap stays stale until its invalidation is passed down (ADDR × IOTLB + device TLB), then the device sees the new page', async () => {
    const { sim, dev, domain, s1, bind } = await setup();
    s1.map(0x1000n, 0x20_0000n, 0x1000n, { read: true });
    await bind(9);
    const first = await reach(sim, dev, 0x1000n, 9);
    s1.unmap(0x1000n, 0x1000n);
    s1.map(0x1000n, 0x20_5000n, 0x1000n, { read: true });
    expect(await reach(sim, dev, 0x1000n, 9)).toBe(first); // device TLB / IOTLB still hold it
    await sim.iommu.cacheInvalidate(domain, dev, info('addr', { iotlb: true, devIotlb: true }));
    expect(await reach(sim, dev, 0x1000n, 9)).toBe(`pa:0x${(DATA_HPA + 0x5000n).toString(16)}`);
  });

  it('DOMAIN × IOTLB drops the translations of every bound PASID of the domain', async () => {
    const { sim, dev, domain, s1, bind } = await setup();
    s1.map(0x1000n, 0x20_0000n, 0x1000n, { read: true });
    await bind(9);
    await bind(11);
    for (const p of [9, 11]) await reach(sim, dev, 0x1000n, p);
    s1.unmap(0x1000n, 0x1000n);
    await sim.iommu.cacheInvalidate(domain, dev, { version: 1, cache: { iotlb: true }, granularity: 'domain' });
    // The device TLB was not named: invalidate it too, PASID-selective, so only the IOTLB
    // part of the DOMAIN request is under test.
    for (const p of [9, 11]) {
      await sim.iommu.cacheInvalidate(domain, dev, { version: 1, cache: { devIotlb: true }, granularity: 'pasid', pasidInfo: { flags: { pasid: true }, pasid: p } });
      expect(await reach(sim, dev, 0x1000n, p)).toBe('fault:pte-fetch');
    }
  });
});
