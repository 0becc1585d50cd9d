/**
 * One body per behaviour, run against every fixture variant as the kernel selftests'
 * FIXTURE_VARIANTs do (no device, one device, two devices, a device without PASID).
 * Variants a behaviour does not apply to are skipped with the reason, never passed
 * silently.
 */
import { describe, expect, it } from 'vitest';
import { PAGE, RW, U64_MAX, VARIANTS, buffer, expectRejectsCode, fixture, pa, reach } from './fixtures.js';

describe.each(VARIANTS)('variant %s', (variant) => {
  it('maps, reports the valid ranges and unmaps; attached devices reach the mapping and lose it at unmap', async () => {
    const { sim, fd, ioasId, devs } = await fixture(variant);
    for (const { devId } of devs) await fd.attach({ devId, ptId: ioasId });
    const ranges = fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    if (devs.length === 0) expect(ranges).toEqual({ numIovas: 1, allowedIovas: [{ start: 0n, last: U64_MAX }], outIovaAlignment: 1n });
    else expect(ranges).toEqual({ numIovas: 2, allowedIovas: [{ start: 0n, last: 0xfedf_ffffn }, { start: 0xfef0_0000n, last: (1n << 48n) - 1n }], outIovaAlignment: PAGE });
    const va = buffer(fd, 2);
    const { iova } = await fd.ioasMap({ ioasId, flags: RW, userVa: va, length: 2n * PAGE });
    for (const { dev } of devs) expect(await reach(sim, dev, iova + PAGE)).toBe(pa(fd.mm.physOf(va + PAGE)));
    expect((await fd.ioasUnmap({ ioasId, iova, length: 2n * PAGE })).length).toBe(2n * PAGE);
    for (const { dev } of devs) expect(await reach(sim, dev, iova + PAGE)).toBe('fault:pte-fetch');
  });

  it('attaches a PASID of each device to a PASID-compatible HWPT (EINVAL for a device without PASID)', async (ctx) => {
    const { sim, fd, ioasId, devs } = await fixture(variant);
    if (devs.length === 0) ctx.skip(true, 'no device to attach in this variant');
    const va = buffer(fd, 1);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x8000n });
    const h = (await fd.hwptAlloc({ devId: devs[0].devId, ptId: ioasId, flags: { pasid: true } })).outHwptId;
    for (const { dev, devId } of devs) {
      if (dev.maxPasids === 0) {
        await expectRejectsCode(fd.attach({ devId, ptId: h, pasid: 2 }), 'EINVAL');
        expect(sim.test.pasidCheckHwpt(fd, devId, 2)).toBe(0);
        continue;
      }
      await fd.attach({ devId, ptId: h, pasid: 2 });
      expect(sim.test.pasidCheckHwpt(fd, devId, 2)).toBe(h);
      expect(await reach(sim, dev, 0x8000n, 2)).toBe(pa(fd.mm.physOf(va)));
    }
  });

  it('close hands every device back to its default domain and kernel ownership', async () => {
    const { sim, fd, ioasId, devs } = await fixture(variant);
    for (const { devId } of devs) await fd.attach({ devId, ptId: ioasId });
    await fd.close();
    for (const { dev } of sim.topology.devices.map((dev) => ({ dev }))) {
      expect(sim.iommu.dmaOwner(dev)).toBeUndefined();
      expect(sim.iommu.getDomainForDev(dev).type).toBe('dma');
    }
  });
});
