/**
 * HWPT allocation (paging, nest parent, PASID-compatible, nested 'vtd-s1'), HWPT
 * invalidation argument rules with partial progress, get_hw_info (with the seed-001
 * vPASID report) and vIOMMU / vDEVICE / vEVENTQ objects (SEMANTICS.md §4.4, §5.4, §5.7,
 * §5.8), with the one-device and device-without-PASID variants.
 */
import { describe, expect, it } from 'vitest';
import { SimError } from 'iommu-sim';
import { PAGE, RW, U64_MAX, buffer, expectRejectsCode, expectThrowsCode, fixture, startSim } from './fixtures.js';

const S1 = { pgtblAddr: 0x10000n, addrWidth: 48 };

async function nestParent(fd: Awaited<ReturnType<typeof fixture>>['fd'], devId: number, ioasId: number): Promise<number> {
  return (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true } })).outHwptId;
}

describe('HWPT_PAGING allocation (one device)', () => {
  it('allocates a paging HWPT on an IOAS holding a reference on it; the domain has the IOAS mappings', async () => {
    const { sim, fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const va = buffer(fd, 1);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x4000n });
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioasId });
    await fd.attach({ devId, ptId: outHwptId });
    expect(sim.iommu.iovaToPhys(sim.iommu.getDomainForDev(sim.topology.devices[0]), 0x4000n)).toBe(fd.mm.physOf(va));
    await expectRejectsCode(fd.destroy(ioasId), 'EBUSY');
  });

  it('rejects unknown flags and dirty tracking (EOPNOTSUPP), data without a type and a type without data (EINVAL), a bad device (ENOENT), a bad ptId (EINVAL)', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, flags: { bogus: true } as never }), 'EOPNOTSUPP');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, flags: { dirtyTracking: true } }), 'EOPNOTSUPP');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, data: S1 }), 'EINVAL');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, dataType: 'vtd-s1' }), 'EINVAL');
    await expectRejectsCode(fd.hwptAlloc({ devId: 99, ptId: ioasId }), 'ENOENT');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: 99 }), 'EINVAL');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: devId }), 'EINVAL');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, dataType: 'vtd-s1', data: S1 }), 'EOPNOTSUPP'); // paging takes no data
  });

  it('a nest parent cannot take a fault object (EOPNOTSUPP); an unknown fault id is ENOENT', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { outFaultId } = fd.faultQueueAlloc();
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true }, faultId: outFaultId }), 'EOPNOTSUPP');
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, faultId: 99 }), 'ENOENT');
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioasId, faultId: outFaultId });
    fd.faultClose(outFaultId);
    await expectRejectsCode(fd.destroy(outFaultId), 'EBUSY'); // the HWPT holds it
    await fd.destroy(outHwptId);
    await fd.destroy(outFaultId);
  });
});

describe('HWPT_PAGING allocation behind an IOMMU without PASID support', () => {
  it('refuses flags.pasid (EOPNOTSUPP) and allocates the plain HWPT', async () => {
    const sim = await startSim({ iommus: [{ pasidBits: 0 }], devices: [{ bdf: '0000:03:00.0' }] });
    const fd = sim.iommufd.open();
    const ioasId = fd.ioasAlloc().outIoasId;
    const { devId } = await fd.bindDevice(sim.topology.devices[0]);
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId, flags: { pasid: true } }), 'EOPNOTSUPP');
    expect(fd.getHwInfo({ devId }).outMaxPasidLog2).toBe(0);
    await fd.attach({ devId, ptId: (await fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId });
  });
});

describe('HWPT_NESTED allocation (one device)', () => {
  it('allocates a nested HWPT over a nest parent, which then cannot be destroyed (EBUSY)', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const parent = await nestParent(fd, devId, ioasId);
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: parent, dataType: 'vtd-s1', data: S1 });
    await expectRejectsCode(fd.destroy(parent), 'EBUSY');
    await fd.destroy(outHwptId);
    await fd.destroy(parent);
  });

  it('refuses a parent that is not a nest parent, an automatic HWPT or a nested HWPT (EINVAL)', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const plain = (await fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId;
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: plain, dataType: 'vtd-s1', data: S1 }), 'EINVAL');
    const { ptId: auto } = await fd.attach({ devId, ptId: ioasId });
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: auto, dataType: 'vtd-s1', data: S1 }), 'EINVAL');
    const parent = await nestParent(fd, devId, ioasId);
    const nested = (await fd.hwptAlloc({ devId, ptId: parent, dataType: 'vtd-s1', data: S1 })).outHwptId;
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: nested, dataType: 'vtd-s1', data: S1 }), 'EINVAL');
  });

  it('nested flags other than pasid, an unknown data type and bad stage-1 data are refused with their codes', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const parent = await nestParent(fd, devId, ioasId);
    const alloc = (o: object) => fd.hwptAlloc({ devId, ptId: parent, dataType: 'vtd-s1', data: S1, ...o });
    await expectRejectsCode(alloc({ flags: { nestParent: true } }), 'EOPNOTSUPP');
    await expectRejectsCode(alloc({ dataType: 'arm-smmuv3' }), 'EOPNOTSUPP');
    await expectRejectsCode(alloc({ data: { ...S1, addrWidth: 39 } }), 'EINVAL');
    await expectRejectsCode(alloc({ data: { ...S1, pgtblAddr: 0x10800n } }), 'EINVAL');
    await expectRejectsCode(alloc({ data: { ...S1, flags: { nx: true } } }), 'EOPNOTSUPP');
    await expectRejectsCode(alloc({ data: { ...S1, extra: 5 } }), 'E2BIG');
    expect((await alloc({ flags: { pasid: true } })).outHwptId).toBeGreaterThan(parent);
  });
});

describe('HWPT invalidate (one device)', () => {
  async function nested(fd: Awaited<ReturnType<typeof fixture>>['fd'], devId: number, ioasId: number) {
    const parent = await nestParent(fd, devId, ioasId);
    return { parent, nested: (await fd.hwptAlloc({ devId, ptId: parent, dataType: 'vtd-s1', data: S1 })).outHwptId };
  }

  it('needs a nested HWPT: unknown id ENOENT, a paging HWPT EINVAL; an unknown data type EINVAL; __reserved EOPNOTSUPP; no entries is fine', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { parent, nested: n } = await nested(fd, devId, ioasId);
    await expectRejectsCode(fd.hwptInvalidate({ hwptId: 99, dataType: 'vtd-s1', entries: [] }), 'ENOENT');
    await expectRejectsCode(fd.hwptInvalidate({ hwptId: parent, dataType: 'vtd-s1', entries: [] }), 'EINVAL');
    await expectRejectsCode(fd.hwptInvalidate({ hwptId: n, dataType: 'arm-smmuv3', entries: [] }), 'EINVAL');
    await expectRejectsCode(fd.hwptInvalidate({ hwptId: n, dataType: 'vtd-s1', entries: [], __reserved: 1 } as never), 'EOPNOTSUPP');
    expect(await fd.hwptInvalidate({ hwptId: n, dataType: 'vtd-s1', entries: [] })).toEqual({ entryNum: 0 });
  });

  it('processes entries in order and reports how many were handled when one fails (err.out.entryNum)', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { nested: n } = await nested(fd, devId, ioasId);
    const ok = { addr: 0x1000n, npages: 1n };
    const cases: [unknown, string][] = [
      [{ addr: 0x1800n, npages: 1n }, 'EINVAL'],
      [{ addr: 0x1000n, npages: U64_MAX }, 'EINVAL'],
      [{ ...ok, flags: { bogus: true } }, 'EOPNOTSUPP'],
      [{ ...ok, cacheId: 3 }, 'E2BIG'],
    ];
    for (const [bad, code] of cases) {
      const e = (await expectRejectsCode(fd.hwptInvalidate({ hwptId: n, dataType: 'vtd-s1', entries: [ok, ok, bad, ok] }), code)) as SimError;
      expect(e.out?.entryNum).toBe(2);
    }
    expect(await fd.hwptInvalidate({ hwptId: n, dataType: 'vtd-s1', entries: [ok, { addr: 0n, npages: U64_MAX }, { ...ok, flags: { leaf: true } }] })).toEqual({ entryNum: 3 });
  });
});

describe('get_hw_info', () => {
  it('reports the data type, max PASID log2 and PASID capabilities; ENOENT for a bad device; EOPNOTSUPP for another data type', async () => {
    const { fd, devs: [{ devId }] } = await fixture('one-device');
    const info = fd.getHwInfo({ devId });
    expect(info).toMatchObject({ outDataType: 'intel-vtd', outMaxPasidLog2: 20, outCapabilities: { dirtyTracking: false, pciPasidExec: true, pciPasidPriv: true } });
    expectThrowsCode(() => fd.getHwInfo({ devId: 99 }), 'ENOENT');
    expectThrowsCode(() => fd.getHwInfo({ devId, dataType: 'arm-smmuv3' }), 'EOPNOTSUPP');
    expectThrowsCode(() => fd.getHwInfo({ devId, flags: { inputType: true } }), 'EOPNOTSUPP');
  });

  it('a device without PASID reports 0 and no PASID capabilities', async () => {
    const { fd, devs: [{ devId }] } = await fixture('no-pasid');
    expect(fd.getHwInfo({ devId })).toMatchObject({ outMaxPasidLog2: 0, outCapabilities: { pciPasidExec: false, pciPasidPriv: false } });
  });

  it('seed 001: tells whether the device consumes guest PASIDs and who translates them, by device type', async () => {
    const sim = await startSim({
      iommus: 1,
      devices: [
        { bdf: '0000:10:00.0', pasidBits: 0, deviceType: 0 },
        { bdf: '0000:11:00.0', deviceType: 3 },
        { bdf: '0000:12:00.0', deviceType: 4 },
        { bdf: 'adi-0', kind: 'mdev', parent: '0000:12:00.0', deviceType: 2 },
        { bdf: 'dsa-wq-0', kind: 'mdev', parent: '0000:12:00.0', deviceType: 5 },
      ],
    });
    const fd = sim.iommufd.open();
    const got: Record<number, unknown> = {};
    for (const dev of sim.topology.devices) got[dev.deviceType] = fd.getHwInfo({ devId: (await fd.bindDevice(dev)).devId }).outVpasid;
    expect(got[0]).toMatchObject({ usesVpasid: false, translation: 'none' });
    expect(got[2]).toMatchObject({ usesVpasid: false, fixedPasid: true });
    expect(got[3]).toMatchObject({ usesVpasid: true, translation: 'identity', requiresGlobalPpasid: false });
    expect(got[4]).toMatchObject({ usesVpasid: true, translation: 'device' });
    expect(got[5]).toMatchObject({ usesVpasid: true, translation: 'cpu', requiresGlobalPpasid: true });
  });
});

describe('vIOMMU, vDEVICE, vEVENTQ (one device)', () => {
  it('a vIOMMU needs a nest parent (ENOENT missing, EINVAL otherwise), a supported type (EOPNOTSUPP), and holds the parent', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const plain = (await fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId;
    const parent = await nestParent(fd, devId, ioasId);
    expectThrowsCode(() => fd.viommuAlloc({ type: 'default', devId, hwptId: 99 }), 'ENOENT');
    expectThrowsCode(() => fd.viommuAlloc({ type: 'default', devId, hwptId: plain }), 'EINVAL');
    expectThrowsCode(() => fd.viommuAlloc({ type: 'arm-smmuv3', devId, hwptId: parent }), 'EOPNOTSUPP');
    expectThrowsCode(() => fd.viommuAlloc({ type: 'default', devId, hwptId: parent, flags: { x: true } }), 'EOPNOTSUPP');
    const { outViommuId } = fd.viommuAlloc({ type: 'default', devId, hwptId: parent });
    await expectRejectsCode(fd.destroy(parent), 'EBUSY');
    // A nested HWPT can be allocated through the vIOMMU; invalidation through the vIOMMU has no ops here.
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: outViommuId, dataType: 'vtd-s1', data: S1 });
    await expectRejectsCode(fd.hwptInvalidate({ hwptId: outViommuId, dataType: 'vtd-s1', entries: [] }), 'EOPNOTSUPP');
    await expectRejectsCode(fd.destroy(outViommuId), 'EBUSY');
    await fd.destroy(outHwptId);
    await fd.destroy(outViommuId);
    await fd.destroy(parent);
  });

  it('vDEVICE: one per device and one per virtual id (EEXIST); bad ids ENOENT; unbind tombstones it', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { outViommuId } = fd.viommuAlloc({ type: 'default', devId, hwptId: await nestParent(fd, devId, ioasId) });
    expectThrowsCode(() => fd.vdeviceAlloc({ viommuId: 99, devId, virtId: 1n }), 'ENOENT');
    expectThrowsCode(() => fd.vdeviceAlloc({ viommuId: outViommuId, devId: 99, virtId: 1n }), 'ENOENT');
    const { outVdeviceId } = fd.vdeviceAlloc({ viommuId: outViommuId, devId, virtId: 0x100n });
    expectThrowsCode(() => fd.vdeviceAlloc({ viommuId: outViommuId, devId, virtId: 0x200n }), 'EEXIST');
    await expectRejectsCode(fd.destroy(outViommuId), 'EBUSY');
    await fd.unbindDevice(devId);
    await expectRejectsCode(fd.destroy(outVdeviceId), 'ENOENT');
    await fd.destroy(outViommuId);
  });

  it('vEVENTQ: type default EOPNOTSUPP, depth 0 EINVAL, one per type (EEXIST); faults of the vDEVICE arrive in sequence; overflow queues one lost-events header', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const { outViommuId: viommuId } = fd.viommuAlloc({ type: 'default', devId, hwptId: await nestParent(fd, devId, ioasId) });
    expectThrowsCode(() => fd.veventqAlloc({ viommuId, type: 'default', depth: 4 }), 'EOPNOTSUPP');
    expectThrowsCode(() => fd.veventqAlloc({ viommuId, type: 'arm-smmuv3', depth: 0 }), 'EINVAL');
    const { outVeventqId } = fd.veventqAlloc({ viommuId, type: 'arm-smmuv3', depth: 2 });
    expectThrowsCode(() => fd.veventqAlloc({ viommuId, type: 'arm-smmuv3', depth: 2 }), 'EEXIST');
    fd.vdeviceAlloc({ viommuId, devId, virtId: 7n });
    for (const addr of [0x1000n, 0x2000n, 0x3000n, 0x4000n]) await sim.test.injectFault(dev, { type: 'dma-unrecov', reason: 'permission', addr, perm: { read: true } });
    const first = fd.veventqRead(outVeventqId, 8);
    expect(first.map((e) => [e.sequence, e.data?.virtId, e.data?.addr, !!e.lostEvents])).toEqual([[0, 7n, 0x1000n, false], [1, 7n, 0x2000n, false], [2, undefined, undefined, true]]);
    await sim.test.injectFault(dev, { type: 'dma-unrecov', reason: 'permission', addr: 0x5000n, perm: { read: true } });
    const next = fd.veventqRead(outVeventqId, 8);
    expect(next.map((e) => [e.sequence, e.data?.addr, !!e.lostEvents])).toEqual([[4, 0x5000n, false]]);
  });
});
