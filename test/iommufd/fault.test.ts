/**
 * The iommufd fault object (SEMANTICS.md §5.6, §3.4): I/O page faults of a fault-capable
 * HWPT read as whole groups with cookies and answered by cookie, the ESPIPE / EINVAL rules,
 * partial writes, the automatic INVALID answer on detach / replace and on destroying the
 * object, and the retried DMA after a SUCCESS — with the one-device variant (PRI, ATS).
 */
import { describe, expect, it } from 'vitest';
import { PAGE, RW, buffer, expectRejectsCode, expectThrowsCode, fixture, pa, startSim, until } from './fixtures.js';

async function faultSetup() {
  const f = await fixture('one-device');
  const { fd, ioasId, devs: [{ devId }] } = f;
  const { outFaultId: faultId } = fd.faultQueueAlloc();
  const { outHwptId: hwpt } = await fd.hwptAlloc({ devId, ptId: ioasId, flags: { pasid: true }, faultId });
  return { ...f, dev: f.devs[0].dev, devId, faultId, hwpt };
}

describe('fault object (one device)', () => {
  it('a page fault at a fault-capable HWPT is read as a record with a cookie; SUCCESS after mapping retries the DMA, which then reaches the page', async () => {
    const { sim, fd, ioasId, dev, devId, faultId, hwpt } = await faultSetup();
    await fd.attach({ devId, ptId: hwpt, pasid: 4 });
    const dma = sim.dma(dev, { addr: 0x40_0000n, access: 'write', pasid: 4 });
    await until(() => fd.faultPending(faultId) > 0);
    const recs = fd.faultRead(faultId, 4);
    expect(recs).toEqual([{
      flags: { pasidValid: true, lastPage: true }, devId, pasid: 4, grpid: recs[0].grpid,
      perm: { read: false, write: true, exec: false, priv: false }, addr: 0x40_0000n, length: 0, cookie: 1,
    }]);
    const va = buffer(fd, 1);
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x40_0000n });
    expect(await fd.faultWrite(faultId, [{ cookie: 1, code: 'success' }])).toBe(1);
    const r = await dma;
    expect(r.ok ? pa(r.paddr) : r.fault.reason).toBe(pa(fd.mm.physOf(va)));
    expect(fd.faultPending(faultId)).toBe(0);
  });

  it('read delivers whole groups only: a group larger than the room stays queued; its records share one cookie', async () => {
    const { sim, fd, dev, devId, faultId, hwpt } = await faultSetup();
    await fd.attach({ devId, ptId: hwpt, pasid: 4 });
    await sim.test.injectPageRequest(dev, { pasid: 4, grpid: 3, last: false, addr: 0x1000n, perm: { read: true } });
    await sim.test.injectPageRequest(dev, { pasid: 4, grpid: 3, last: true, addr: 0x2000n, perm: { read: true } });
    await until(() => fd.faultPending(faultId) === 1);
    expect(fd.faultRead(faultId, 1)).toEqual([]);
    const recs = fd.faultRead(faultId, 2);
    expect(recs.map((r) => [r.addr, r.grpid, r.cookie, r.flags.lastPage])).toEqual([[0x1000n, 3, 1, false], [0x2000n, 3, 1, true]]);
    expect(await fd.faultWrite(faultId, [{ cookie: 1, code: 'invalid' }])).toBe(1);
  });

  it('ESPIPE for a read size or write that is not whole records; EINVAL for a bad code, an unknown or used cookie; a partial write returns the count', async () => {
    const { sim, fd, dev, devId, faultId, hwpt } = await faultSetup();
    await fd.attach({ devId, ptId: hwpt, pasid: 4 });
    expectThrowsCode(() => fd.faultRead(faultId, 1.5), 'ESPIPE');
    await expectRejectsCode(fd.faultWrite(faultId, 'x' as never), 'ESPIPE');
    for (const grpid of [1, 2]) await sim.test.injectPageRequest(dev, { pasid: 4, grpid, last: true, addr: 0x1000n * BigInt(grpid), perm: { read: true } });
    await until(() => fd.faultPending(faultId) === 2);
    const [a, b] = fd.faultRead(faultId, 8);
    await expectRejectsCode(fd.faultWrite(faultId, [{ cookie: a.cookie, code: 'failure' as never }]), 'EINVAL');
    await expectRejectsCode(fd.faultWrite(faultId, [{ cookie: 99, code: 'success' }]), 'EINVAL');
    expect(await fd.faultWrite(faultId, [{ cookie: a.cookie, code: 'invalid' }, { cookie: a.cookie, code: 'invalid' }])).toBe(1);
    await expectRejectsCode(fd.faultWrite(faultId, [{ cookie: a.cookie, code: 'invalid' }]), 'EINVAL');
    expect(await fd.faultWrite(faultId, [{ cookie: b.cookie, code: 'invalid' }])).toBe(1);
  });

  it('detach answers pending faults INVALID: the DMA fails, the queue is empty and the cookie is gone', async () => {
    const { sim, fd, dev, devId, faultId, hwpt } = await faultSetup();
    await fd.attach({ devId, ptId: hwpt, pasid: 4 });
    const dma = sim.dma(dev, { addr: 0x40_0000n, access: 'read', pasid: 4 });
    await until(() => fd.faultPending(faultId) > 0);
    const [rec] = fd.faultRead(faultId, 1);
    await fd.detach({ devId, pasid: 4 });
    expect((await dma).ok).toBe(false);
    await expectRejectsCode(fd.faultWrite(faultId, [{ cookie: rec.cookie, code: 'success' }]), 'EINVAL');
  });

  it('replace answers pending faults INVALID too, before the new HWPT takes the PASID', async () => {
    const { sim, fd, ioasId, dev, devId, faultId, hwpt } = await faultSetup();
    await fd.attach({ devId, ptId: hwpt, pasid: 4 });
    const dma = sim.dma(dev, { addr: 0x40_0000n, access: 'read', pasid: 4 });
    await until(() => fd.faultPending(faultId) > 0);
    const other = (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { pasid: true } })).outHwptId;
    await fd.replace({ devId, ptId: other, pasid: 4 });
    expect((await dma).ok).toBe(false);
    expect(fd.faultPending(faultId)).toBe(0);
    expect(sim.test.pasidCheckHwpt(fd, devId, 4)).toBe(other);
  });

  it('the fault object is destroyed only after its fd is closed and its HWPT gone (EBUSY before); nothing it queued stays pending', async () => {
    const { sim, fd, dev, devId, faultId, hwpt } = await faultSetup();
    await fd.attach({ devId, ptId: hwpt, pasid: 4 });
    await sim.test.injectPageRequest(dev, { pasid: 4, grpid: 5, last: true, addr: 0x1000n, perm: { read: true } });
    await until(() => fd.faultPending(faultId) === 1);
    await expectRejectsCode(fd.destroy(faultId), 'EBUSY');
    fd.faultClose(faultId);
    expectThrowsCode(() => fd.faultRead(faultId, 1), 'EINVAL');
    await fd.detach({ devId, pasid: 4 });
    await fd.destroy(hwpt);
    await fd.destroy(faultId);
    // The group was answered INVALID (at detach): a late response finds nothing pending.
    await expectRejectsCode(sim.iommu.pageResponse(dev, { pasid: 4, grpid: 5, code: 'success' }), 'EINVAL');
  });

  it('a fault-capable HWPT cannot be attached to a VF with PRI (EINVAL)', async () => {
    const sim = await startSim({ iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }, { bdf: '0000:03:00.1', kind: 'vf', parent: '0000:03:00.0', pri: true }] });
    const fd = sim.iommufd.open();
    const ioasId = fd.ioasAlloc().outIoasId;
    const vf = (await fd.bindDevice(sim.topology.devices[1])).devId;
    const { outFaultId } = fd.faultQueueAlloc();
    const { outHwptId } = await fd.hwptAlloc({ devId: vf, ptId: ioasId, faultId: outFaultId });
    await expectRejectsCode(fd.attach({ devId: vf, ptId: outHwptId }), 'EINVAL');
    expect(sim.test.pasidCheckHwpt(fd, vf, 0)).toBe(0);
  });
});
