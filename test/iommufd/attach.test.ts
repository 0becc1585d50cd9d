/**
 * iommufd devices: bind with DMA ownership, and attach / replace / detach of a RID or a
 * PASID (SEMANTICS.md §5.5, §1.2, §1.6), by fixture variant — one device, two devices
 * (two groups), a two-device group, a device without PASID. Each test checks the core's
 * view (pasidCheckHwpt, the group's domain, ownership) and DMA where it matters.
 */
import { describe, expect, it } from 'vitest';
import {
  PAGE, RW, SHARED_GROUP, buffer, expectRejectsCode, fixture, pa, reach, startSim,
} from './fixtures.js';

describe('bind and DMA ownership', () => {
  it('binding claims the group for the iommufd (blocking domain); unbinding gives it back to the default domain', async () => {
    const sim = await startSim({ iommus: 1, devices: [{ bdf: '0000:03:00.0' }] });
    const [A] = sim.topology.devices;
    const def = sim.iommu.getDomainForDev(A);
    const fd = sim.iommufd.open();
    const { devId } = await fd.bindDevice(A);
    expect(sim.iommu.dmaOwner(A)).toBe(fd);
    expect(sim.iommu.getDomainForDev(A).type).toBe('blocked');
    await expectRejectsCode(fd.bindDevice(A), 'EBUSY');
    await expectRejectsCode(fd.destroy(devId), 'EBUSY'); // a device goes with unbind
    await fd.unbindDevice(devId);
    expect(sim.iommu.dmaOwner(A)).toBeUndefined();
    expect(sim.iommu.getDomainForDev(A)).toBe(def);
  });

  it('a second iommufd cannot bind a device of a group the first owns (EPERM); the same iommufd can bind its group mates', async () => {
    const sim = await startSim(SHARED_GROUP);
    const [A, B] = sim.topology.devices;
    expect(A.group).toBe(B.group);
    const fd1 = sim.iommufd.open();
    const fd2 = sim.iommufd.open();
    await fd1.bindDevice(A);
    await expectRejectsCode(fd2.bindDevice(B), 'EPERM');
    await fd1.bindDevice(B);
    await fd1.close();
    expect(sim.iommu.dmaOwner(A)).toBeUndefined();
    await fd2.bindDevice(B);
  });
});

describe('RID attach (one device)', () => {
  it('attaching an IOAS makes an automatic HWPT (ptId rewritten to it) that the core has at the RID', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const { ptId } = await fd.attach({ devId, ptId: ioasId });
    expect(ptId).not.toBe(ioasId);
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(ptId);
    expect(sim.iommu.getDomainForDev(dev).type).toBe('paging');
  });

  it('attaching an attached RID is EBUSY, for another HWPT and for the same one', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioasId });
    const { ptId } = await fd.attach({ devId, ptId: ioasId });
    await expectRejectsCode(fd.attach({ devId, ptId: outHwptId }), 'EBUSY');
    await expectRejectsCode(fd.attach({ devId, ptId }), 'EBUSY');
  });

  it('attach to an unknown id is ENOENT, to an object of another type EINVAL; nothing changes', async () => {
    const { sim, fd, devs: [{ devId }] } = await fixture('one-device');
    const { outFaultId } = fd.faultQueueAlloc();
    await expectRejectsCode(fd.attach({ devId, ptId: 99 }), 'ENOENT');
    await expectRejectsCode(fd.attach({ devId, ptId: outFaultId }), 'EINVAL');
    await expectRejectsCode(fd.attach({ devId, ptId: devId }), 'EINVAL');
    await expectRejectsCode(fd.attach({ devId: 99, ptId: 1 }), 'ENOENT');
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(0);
  });

  it('an automatic HWPT is destroyed when its last device detaches; a HWPT the user allocated stays', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { ptId: auto } = await fd.attach({ devId, ptId: ioasId });
    await expectRejectsCode(fd.destroy(auto), 'EBUSY'); // the device holds it
    await fd.detach({ devId });
    await expectRejectsCode(fd.destroy(auto), 'ENOENT');
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioasId });
    await fd.attach({ devId, ptId: outHwptId });
    await fd.detach({ devId });
    await fd.destroy(outHwptId);
  });

  it('automatic domain selection never picks a HWPT the user allocated', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioasId });
    const { ptId } = await fd.attach({ devId, ptId: ioasId });
    expect(ptId).not.toBe(outHwptId);
  });

  it('detach of something not attached is a no-op', async () => {
    const { sim, fd, devs: [{ devId }] } = await fixture('one-device');
    await fd.detach({ devId });
    await fd.detach({ devId, pasid: 3 });
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(0);
  });

  it('replace: EINVAL when not attached; the same HWPT a no-op; another moves the RID and its DMA, the old automatic HWPT goes', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const ioas2 = fd.ioasAlloc().outIoasId;
    const va = buffer(fd, 2);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x10_0000n });
    await fd.ioasMap({ ioasId: ioas2, flags: { ...RW, fixedIova: true }, userVa: va + PAGE, length: PAGE, iova: 0x10_0000n });
    await expectRejectsCode(fd.replace({ devId, ptId: ioasId }), 'EINVAL');
    const { ptId: auto } = await fd.attach({ devId, ptId: ioasId });
    expect((await fd.replace({ devId, ptId: auto })).ptId).toBe(auto);
    expect(await reach(sim, dev, 0x10_0000n)).toBe(pa(fd.mm.physOf(va)));
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioas2 });
    expect((await fd.replace({ devId, ptId: outHwptId })).ptId).toBe(outHwptId);
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(outHwptId);
    expect(await reach(sim, dev, 0x10_0000n)).toBe(pa(fd.mm.physOf(va + PAGE)));
    await expectRejectsCode(fd.destroy(auto), 'ENOENT');
  });
});

describe('groups (two devices, a two-device group)', () => {
  it('two devices attached to one IOAS share its automatic HWPT; it goes with the last detach', async () => {
    const { fd, ioasId, devs: [a, b] } = await fixture('two-devices');
    const { ptId: p1 } = await fd.attach({ devId: a.devId, ptId: ioasId });
    const { ptId: p2 } = await fd.attach({ devId: b.devId, ptId: ioasId });
    expect(p2).toBe(p1);
    await fd.detach({ devId: a.devId });
    await expectRejectsCode(fd.destroy(p1), 'EBUSY');
    await fd.detach({ devId: b.devId });
    await expectRejectsCode(fd.destroy(p1), 'ENOENT');
  });

  it('devices of one group must attach the same HWPT (EINVAL otherwise); each holds a reference', async () => {
    const sim = await startSim(SHARED_GROUP);
    const [A, B] = sim.topology.devices;
    const fd = sim.iommufd.open();
    const ioasId = fd.ioasAlloc().outIoasId;
    const a = (await fd.bindDevice(A)).devId;
    const b = (await fd.bindDevice(B)).devId;
    const h1 = (await fd.hwptAlloc({ devId: a, ptId: ioasId })).outHwptId;
    const h2 = (await fd.hwptAlloc({ devId: a, ptId: ioasId })).outHwptId;
    await fd.attach({ devId: a, ptId: h1 });
    await expectRejectsCode(fd.attach({ devId: b, ptId: h2 }), 'EINVAL');
    expect(sim.test.pasidCheckHwpt(fd, b, 0)).toBe(h1); // the group's domain is shared anyway
    await fd.attach({ devId: b, ptId: h1 });
    await fd.detach({ devId: a });
    expect(sim.iommu.getDomainForDev(B).type).toBe('paging'); // b still holds the group on h1
    await expectRejectsCode(fd.destroy(h1), 'EBUSY');
    await fd.detach({ devId: b });
    expect(sim.iommu.getDomainForDev(B).type).toBe('blocked');
    await fd.destroy(h1);
  });
});

describe('PASID attach and the PASID-compat rules', () => {
  async function pasidHwpt(fd: Awaited<ReturnType<typeof fixture>>['fd'], devId: number, ioasId: number, pasid = true) {
    return (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { pasid } })).outHwptId;
  }

  it('a PASID attaches a PASID-compatible HWPT; DMA with that PASID uses it, the RID stays blocked', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const va = buffer(fd, 1);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x20_0000n });
    const h = await pasidHwpt(fd, devId, ioasId);
    expect(await fd.attach({ devId, ptId: h, pasid: 7 })).toEqual({ ptId: h, pasid: 7 });
    expect(sim.test.pasidCheckHwpt(fd, devId, 7)).toBe(h);
    expect(await reach(sim, dev, 0x20_0000n, 7)).toBe(pa(fd.mm.physOf(va)));
    expect(await reach(sim, dev, 0x20_0000n)).toBe('fault:bad-pasid-entry');
    await fd.detach({ devId, pasid: 7 });
    expect(sim.test.pasidCheckHwpt(fd, devId, 7)).toBe(0);
    expect(await reach(sim, dev, 0x20_0000n, 7)).toBe('fault:bad-pasid-entry');
  });

  it('an IOAS id or a HWPT without flags.pasid cannot go to a PASID (EINVAL)', async () => {
    const { sim, fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    await expectRejectsCode(fd.attach({ devId, ptId: ioasId, pasid: 7 }), 'EINVAL');
    const plain = await pasidHwpt(fd, devId, ioasId, false);
    await expectRejectsCode(fd.attach({ devId, ptId: plain, pasid: 7 }), 'EINVAL');
    expect(sim.test.pasidCheckHwpt(fd, devId, 7)).toBe(0);
  });

  it('a RID on a non-compatible HWPT blocks PASID attach; attached PASIDs block a non-compatible RID attach or replace', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const plain = await pasidHwpt(fd, devId, ioasId, false);
    const compat = await pasidHwpt(fd, devId, ioasId);
    await fd.attach({ devId, ptId: plain });
    await expectRejectsCode(fd.attach({ devId, ptId: compat, pasid: 3 }), 'EINVAL');
    await fd.replace({ devId, ptId: compat });
    await fd.attach({ devId, ptId: compat, pasid: 3 });
    await expectRejectsCode(fd.replace({ devId, ptId: plain }), 'EINVAL');
    await expectRejectsCode(fd.replace({ devId, ptId: ioasId }), 'EINVAL');
    await fd.detach({ devId });
    await expectRejectsCode(fd.attach({ devId, ptId: plain }), 'EINVAL');
    await fd.attach({ devId, ptId: compat });
  });

  it('an attached PASID is EBUSY for attach (same or other HWPT); replace moves it and its DMA', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const ioas2 = fd.ioasAlloc().outIoasId;
    const va = buffer(fd, 2);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x1000n });
    await fd.ioasMap({ ioasId: ioas2, flags: { ...RW, fixedIova: true }, userVa: va + PAGE, length: PAGE, iova: 0x1000n });
    const h1 = await pasidHwpt(fd, devId, ioasId);
    const h2 = await pasidHwpt(fd, devId, ioas2);
    await expectRejectsCode(fd.replace({ devId, ptId: h1, pasid: 9 }), 'EINVAL');
    await fd.attach({ devId, ptId: h1, pasid: 9 });
    await expectRejectsCode(fd.attach({ devId, ptId: h1, pasid: 9 }), 'EBUSY');
    await expectRejectsCode(fd.attach({ devId, ptId: h2, pasid: 9 }), 'EBUSY');
    expect(await reach(sim, dev, 0x1000n, 9)).toBe(pa(fd.mm.physOf(va)));
    await fd.replace({ devId, ptId: h2, pasid: 9 });
    expect(sim.test.pasidCheckHwpt(fd, devId, 9)).toBe(h2);
    expect(await reach(sim, dev, 0x1000n, 9)).toBe(pa(fd.mm.physOf(va + PAGE)));
  });

  it('PASID attach does not reserve the device regions in the IOAS', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    await fd.attach({ devId, ptId: await pasidHwpt(fd, devId, ioasId), pasid: 2 });
    const r = fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    expect(r.allowedIovas).toEqual([{ start: 0n, last: (1n << 48n) - 1n }]); // the aperture only
  });

  it("pasid 'alloc' (seed 001) attaches at the lowest free global PASID and frees it at detach", async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const h = await pasidHwpt(fd, devId, ioasId);
    const r = await fd.attach({ devId, ptId: h, pasid: 'alloc' });
    expect(r.pasid).toBe(1);
    expect(sim.test.pasidCheckHwpt(fd, devId, 1)).toBe(h);
    expect(sim.iommu.allocGlobalPasid(dev)).toBe(2); // 1 is taken
    sim.iommu.freeGlobalPasid(2);
    await fd.detach({ devId, pasid: 1 });
    expect(sim.iommu.allocGlobalPasid(dev)).toBe(1);
  });

  it("pasid 'alloc' for a type-5 device (CPU-translated PASIDs) needs the global policy: EINVAL under per-device", async () => {
    const topo = { iommus: 1, devices: [{ bdf: '0000:06:00.0', deviceType: 4 as const }, { bdf: 'dsa-wq-0', kind: 'mdev' as const, parent: '0000:06:00.0', deviceType: 5 as const }] };
    for (const policy of ['per-device', 'global'] as const) {
      const sim = await startSim(topo, 'latest', policy);
      const fd = sim.iommufd.open();
      const ioasId = fd.ioasAlloc().outIoasId;
      const wq = (await fd.bindDevice(sim.topology.devices[1])).devId;
      const h = (await fd.hwptAlloc({ devId: wq, ptId: ioasId, flags: { pasid: true } })).outHwptId;
      if (policy === 'per-device') {
        await expectRejectsCode(fd.attach({ devId: wq, ptId: h, pasid: 'alloc' }), 'EINVAL');
        expect(sim.test.pasidCheckHwpt(fd, wq, 1)).toBe(0);
      } else {
        expect((await fd.attach({ devId: wq, ptId: h, pasid: 'alloc' })).pasid).toBe(1);
      }
    }
  });

  it('a device without PASID cannot attach a PASID (EINVAL), whatever the HWPT; its RID can use a compatible one', async () => {
    const { sim, fd, ioasId, devs: [{ devId }] } = await fixture('no-pasid');
    const h = await pasidHwpt(fd, devId, ioasId);
    await expectRejectsCode(fd.attach({ devId, ptId: h, pasid: 1 }), 'EINVAL');
    await expectRejectsCode(fd.attach({ devId, ptId: h, pasid: 'alloc' }), 'ENOSPC');
    await fd.attach({ devId, ptId: h });
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(h);
  });

  it('a PASID beyond the device width, or 0, is EINVAL', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const h = await pasidHwpt(fd, devId, ioasId);
    await expectRejectsCode(fd.attach({ devId, ptId: h, pasid: 1 << 20 }), 'EINVAL');
    await expectRejectsCode(fd.attach({ devId, ptId: h, pasid: 0 }), 'EINVAL');
  });
});

describe('two IOMMUs', () => {
  async function twoIommus() {
    const sim = await startSim({ iommus: 2, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:83:00.0', iommu: 1 }] });
    const [A, B] = sim.topology.devices;
    const fd = sim.iommufd.open();
    const ioasId = fd.ioasAlloc().outIoasId;
    return { sim, fd, ioasId, A, B, a: (await fd.bindDevice(A)).devId, b: (await fd.bindDevice(B)).devId };
  }

  it('devices behind different IOMMUs attached to one IOAS get one automatic HWPT per IOMMU, both with the mappings', async () => {
    const { sim, fd, ioasId, A, B, a, b } = await twoIommus();
    const va = buffer(fd, 1);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x3000n });
    const { ptId: pa1 } = await fd.attach({ devId: a, ptId: ioasId });
    const { ptId: pb1 } = await fd.attach({ devId: b, ptId: ioasId });
    expect(pb1).not.toBe(pa1);
    expect(await reach(sim, A, 0x3000n)).toBe(pa(fd.mm.physOf(va)));
    expect(await reach(sim, B, 0x3000n)).toBe(pa(fd.mm.physOf(va)));
  });

  it('a HWPT made for one IOMMU cannot be attached behind the other (EINVAL); nor a vIOMMU or vDEVICE cross IOMMUs', async () => {
    const { sim, fd, ioasId, a, b } = await twoIommus();
    const h = (await fd.hwptAlloc({ devId: a, ptId: ioasId, flags: { nestParent: true } })).outHwptId;
    await expectRejectsCode(fd.attach({ devId: b, ptId: h }), 'EINVAL');
    expect(sim.test.pasidCheckHwpt(fd, b, 0)).toBe(0);
    const { outViommuId } = fd.viommuAlloc({ type: 'default', devId: a, hwptId: h });
    expect(() => fd.viommuAlloc({ type: 'default', devId: b, hwptId: h })).toThrow(/EINVAL/);
    await expectRejectsCode(fd.hwptAlloc({ devId: b, ptId: outViommuId, dataType: 'vtd-s1', data: { pgtblAddr: 0x1000n, addrWidth: 48 } }), 'EINVAL');
    expect(() => fd.vdeviceAlloc({ viommuId: outViommuId, devId: b, virtId: 1n })).toThrow(/EINVAL/);
  });
});
