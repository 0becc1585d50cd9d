/**
 * SVA (SEMANTICS.md §2.3, §3.2–3.3): bind/unbind, one PASID per mm on every device,
 * munmap invalidation fan-out, mm exit, and the errno cases — each checked by DMA.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator, type SimEvent } from 'iommu-sim';
import { expectRejectsCode, expectThrowsCode } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function machine(extra: Partial<Parameters<typeof Simulator.start>[0]> = {}) {
  sim = await Simulator.start({
    testHooks: true,
    topology: {
      iommus: 2,
      devices: [
        { bdf: '0000:03:00.0', iommu: 0, ats: true },
        { bdf: '0000:81:00.0', iommu: 1 },
        { bdf: '0000:04:00.0', iommu: 0, pasidBits: 4 },
      ],
    },
    ...extra,
  });
  const [a, b, narrow] = sim.topology.devices;
  return { sim, a, b, narrow };
}

describe('SVA bind', () => {
  it('lets a bound device reach the process\'s pages through the mm\'s PASID, the same PASID on every device', async () => {
    const { sim, a, b } = await machine();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x2000n, prot: RW, populate: true });
    const ha = await sim.iommu.svaBindDevice(a, mm);
    const hb = await sim.iommu.svaBindDevice(b, mm);
    const pasid = sim.iommu.svaGetPasid(ha);
    expect(pasid).toBe(1);
    expect(sim.iommu.svaGetPasid(hb)).toBe(pasid);
    expect(mm.pasid).toBe(pasid);
    for (const dev of [a, b]) {
      const r = await sim.dma(dev, { addr: va + 0x1234n, access: 'write', pasid });
      expect(r.ok && r.paddr).toBe(mm.physOf(va + 0x1234n));
    }
    // Without the PASID the device uses its RID's (default) domain.
    expect((await sim.dma(a, { addr: va, access: 'read' })).ok).toBe(false);
    expect(sim.iommu.getDomainForDevPasid(a, pasid)?.type).toBe('sva');
  });

  it('returns the same handle to a second bind and keeps the bond until the last unbind', async () => {
    const { sim, a } = await machine();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW, populate: true });
    const h1 = await sim.iommu.svaBindDevice(a, mm);
    const h2 = await sim.iommu.svaBindDevice(a, mm);
    expect(h2).toBe(h1);
    await sim.iommu.svaUnbindDevice(h1);
    expect((await sim.dma(a, { addr: va, access: 'read', pasid: 1 })).ok).toBe(true);
    await sim.iommu.svaUnbindDevice(h2);
    expect((await sim.dma(a, { addr: va, access: 'read', pasid: 1 })).ok).toBe(false);
    expect(sim.iommu.getDomainForDevPasid(a, 1)).toBeUndefined();
    await sim.iommu.svaUnbindDevice(h2); // never fails
  });

  it('keeps the PASID with the mm after unbind, until the mm is freed', async () => {
    const { sim, a } = await machine();
    const m1 = sim.mm.create();
    await sim.iommu.svaUnbindDevice(await sim.iommu.svaBindDevice(a, m1));
    const m2 = sim.mm.create();
    expect(sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(a, m2))).toBe(2);
    expect(sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(a, m1))).toBe(1);
    await sim.iommu.svaUnbindDevice(await sim.iommu.svaBindDevice(a, m1));
    await sim.iommu.svaUnbindDevice(await sim.iommu.svaBindDevice(a, m1));
    expect(m1.pasid).toBe(1);
  });

  it('refuses to free an mm that still has bonds (EBUSY), and frees its PASID for reuse afterwards', async () => {
    const { sim, a } = await machine();
    const m1 = sim.mm.create();
    const h = await sim.iommu.svaBindDevice(a, m1);
    await m1.exit();
    expectThrowsCode(() => m1.free(), 'EBUSY');
    await sim.iommu.svaUnbindDevice(h);
    m1.free();
    expect(m1.pasid).toBeUndefined();
    const m2 = sim.mm.create();
    expect(sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(a, m2))).toBe(1);
  });

  it('fails with EOVERFLOW when the mm\'s PASID is beyond a narrower device, and ENOSPC when no PASID fits', async () => {
    const { sim, a, narrow } = await machine();
    for (let i = 1; i <= 15; i++) expect(sim.iommu.allocGlobalPasid(narrow)).toBe(i);
    const wide = sim.mm.create();
    await sim.iommu.svaBindDevice(a, wide);
    expect(wide.pasid).toBe(16);
    await expectRejectsCode(sim.iommu.svaBindDevice(narrow, wide), 'EOVERFLOW');
    await expectRejectsCode(sim.iommu.svaBindDevice(narrow, sim.mm.create()), 'ENOSPC');
  });

  it('fails with EBUSY when a non-SVA domain holds the PASID', async () => {
    const { sim, a } = await machine();
    await sim.iommu.attachDevicePasid(sim.iommu.domainAlloc('paging'), a, 1);
    await expectRejectsCode(sim.iommu.svaBindDevice(a, sim.mm.create()), 'EBUSY');
  });
});

describe('SVA and the process\'s address-space changes', () => {
  it('munmap resolves only after every IOMMU with a bond invalidated the PASID: no DMA translates afterwards', async () => {
    const { sim, a, b } = await machine();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x4000n, prot: RW, populate: true });
    for (const dev of [a, b]) await sim.iommu.svaBindDevice(dev, mm);
    for (const dev of [a, b]) for (let p = 0n; p < 4n; p++) expect((await sim.dma(dev, { addr: va + p * 0x1000n, access: 'read', pasid: 1 })).ok).toBe(true);
    const events: SimEvent[] = [];
    const sub = sim.events$.subscribe((e) => events.push(e));
    await mm.munmap(va + 0x1000n, 0x2000n);
    sub.unsubscribe();
    expect(events.filter((e) => e.type === 'invalidation-complete').map((e) => (e as { iommu: number }).iommu).sort()).toEqual([0, 1]);
    for (const dev of [a, b]) {
      expect((await sim.dma(dev, { addr: va + 0x1000n, access: 'read', pasid: 1 })).ok).toBe(false);
      expect((await sim.dma(dev, { addr: va + 0x2000n, access: 'read', pasid: 1 })).ok).toBe(false);
      expect((await sim.dma(dev, { addr: va + 0x3000n, access: 'read', pasid: 1 })).ok).toBe(true);
    }
    for (const i of [0, 1]) {
      const stale = (await sim.test.iotlbEntries(i)).filter((e) => e.pasidTag === 1 && e.vpn >= Number((va + 0x1000n) >> 12n) && e.vpn < Number((va + 0x3000n) >> 12n));
      expect(stale).toEqual([]);
    }
  });

  it('mprotect to read-only makes a device\'s write fault at once (after mprotect resolves)', async () => {
    const { sim, a } = await machine();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW, populate: true });
    await sim.iommu.svaBindDevice(a, mm);
    expect((await sim.dma(a, { addr: va, access: 'write', pasid: 1 })).ok).toBe(true);
    await mm.mprotect(va, 0x1000n, { read: true });
    const w = await sim.dma(a, { addr: va, access: 'write', pasid: 1 });
    expect(w.ok).toBe(false);
    expect(!w.ok && w.fault.reason).toBe('permission');
    expect((await sim.dma(a, { addr: va, access: 'read', pasid: 1 })).ok).toBe(true);
  });

  it('blocks the PASID at mm exit without reporting a fault, until unbind', async () => {
    const { sim, a } = await machine();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW, populate: true });
    const h = await sim.iommu.svaBindDevice(a, mm);
    expect((await sim.dma(a, { addr: va, access: 'read', pasid: 1 })).ok).toBe(true);
    const faults: unknown[] = [];
    const sub = sim.faults$.subscribe((f) => faults.push(f));
    await mm.exit();
    const r = await sim.dma(a, { addr: va, access: 'read', pasid: 1 });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.fault.recorded).toBe(false);
    await sim.stats(); // a round trip to the worker: any record would have arrived
    sub.unsubscribe();
    expect(faults).toEqual([]);
    await expectRejectsCode(sim.iommu.svaBindDevice(a, mm), 'EINVAL');
    await sim.iommu.svaUnbindDevice(h);
    const after = await sim.dma(a, { addr: va, access: 'read', pasid: 1 });
    expect(!after.ok && after.fault.recorded).toBe(true);
  });
});

describe('SVA in the v5 profile (2018 API)', () => {
  it('needs the SVA feature (ENODEV) and a singleton group (EINVAL)', async () => {
    sim = await Simulator.start({
      semantics: 'v5',
      topology: { iommus: 1, devices: [{ bdf: '0000:05:00.0', multifunctionAcs: false }, { bdf: '0000:05:00.1', multifunctionAcs: false }, { bdf: '0000:06:00.0' }] },
    });
    const [f0, , solo] = sim.topology.devices;
    expect(f0.group.devices.length).toBe(2);
    const mm = sim.mm.create();
    await expectRejectsCode(sim.iommu.svaBindDevice(solo, mm), 'ENODEV');
    sim.iommu.devEnableFeature(solo, 'sva');
    sim.iommu.devEnableFeature(f0, 'sva');
    await expectRejectsCode(sim.iommu.svaBindDevice(f0, mm), 'EINVAL');
    const h = await sim.iommu.svaBindDevice(solo, mm);
    expectThrowsCode(() => sim!.iommu.devDisableFeature(solo, 'sva'), 'EBUSY');
    await sim.iommu.svaUnbindDevice(h);
    sim.iommu.devDisableFeature(solo, 'sva');
  });
});

describe('SVA under pasidPolicy', () => {
  it('global: an mm\'s PASID is unique system-wide, so a second process never collides', async () => {
    const { sim, a, b } = await machine({ pasidPolicy: 'global' });
    expect(sim.iommu.allocGlobalPasid(b)).toBe(1); // a kernel user of PASID 1 on device b
    const mm = sim.mm.create();
    await sim.iommu.svaBindDevice(a, mm);
    expect(mm.pasid).toBe(2);
    await sim.iommu.svaBindDevice(b, mm);
  });

  it('per-device: the mm\'s PASID must be free in each device\'s own space, else EBUSY (pasid-conflict)', async () => {
    const { sim, a, b } = await machine({ pasidPolicy: 'per-device' });
    expect(sim.iommu.allocGlobalPasid(b)).toBe(1); // device b numbers its own PASIDs
    expect(sim.iommu.allocGlobalPasid(a)).toBe(1); // … and so does device a
    sim.iommu.freeGlobalPasid(1, a);
    const mm = sim.mm.create();
    await sim.iommu.svaBindDevice(a, mm);
    expect(mm.pasid).toBe(1);
    const e = await expectRejectsCode(sim.iommu.svaBindDevice(b, mm), 'EBUSY');
    expect(e.reason).toBe('pasid-conflict');
    sim.iommu.freeGlobalPasid(1, b);
    await sim.iommu.svaBindDevice(b, mm);
    expect(sim.iommu.allocGlobalPasid(b)).toBe(2);
    expectThrowsCode(() => sim!.iommu.freeGlobalPasid(2), 'EINVAL');
  });
});
