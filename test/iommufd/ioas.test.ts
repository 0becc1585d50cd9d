/**
 * The iommufd object table and the IOAS (SEMANTICS.md §5.1–§5.3), by fixture variant as the
 * kernel selftests run them: ids, typed lookups, destroy while referenced, leaf-first
 * close, the uAPI argument rules, map/unmap/copy, IOVA placement and alignment,
 * iova_ranges, allow_iovas and reserved regions — state checked after each call, DMA where
 * a domain is attached.
 */
import { describe, expect, it } from 'vitest';
import { SimError } from 'iommu-sim';
import {
  PAGE, RO, RW, U64_MAX, buffer, expectRejectsCode, expectThrowsCode, fixture, pa, reach,
} from './fixtures.js';

describe('iommufd object table (no device)', () => {
  it('numbers objects from 1 in allocation order', async () => {
    const { fd, ioasId } = await fixture('no-device');
    expect(ioasId).toBe(1);
    expect(fd.ioasAlloc().outIoasId).toBe(2);
    expect(fd.faultQueueAlloc().outFaultId).toBe(3);
  });

  it('typed lookups fail with ENOENT for a missing id, id 0 and an object of another type', async () => {
    const { fd } = await fixture('no-device');
    const { outFaultId } = fd.faultQueueAlloc();
    const va = buffer(fd, 1);
    for (const id of [0, 99, outFaultId]) {
      await expectRejectsCode(fd.ioasMap({ ioasId: id, flags: RW, userVa: va, length: PAGE }), 'ENOENT');
      expectThrowsCode(() => fd.ioasIovaRanges({ ioasId: id, numIovas: 1 }), 'ENOENT');
    }
  });

  it('destroy removes an object (its id then ENOENT) and fails with ENOENT for an unknown id', async () => {
    const { fd, ioasId } = await fixture('no-device');
    await fd.destroy(ioasId);
    expectThrowsCode(() => fd.ioasIovaRanges({ ioasId, numIovas: 1 }), 'ENOENT');
    await expectRejectsCode(fd.destroy(ioasId), 'ENOENT');
    expect(fd.ioasAlloc().outIoasId).toBe(ioasId + 1); // ids are not reused
  });

  it('a fault object cannot be destroyed while its fd is open (EBUSY), and can after faultClose', async () => {
    const { fd } = await fixture('no-device');
    const { outFaultId } = fd.faultQueueAlloc();
    await expectRejectsCode(fd.destroy(outFaultId), 'EBUSY');
    fd.faultClose(outFaultId);
    await fd.destroy(outFaultId);
    expectThrowsCode(() => fd.faultRead(outFaultId, 1), 'ENOENT');
  });

  it('unknown flag keys and non-zero reserved fields are EOPNOTSUPP; unknown fields E2BIG unless zero; a missing argument EINVAL', async () => {
    const { fd, ioasId } = await fixture('no-device');
    expectThrowsCode(() => fd.ioasAlloc({ flags: { bogus: true } }), 'EOPNOTSUPP');
    expect(fd.ioasAlloc({ flags: { bogus: false } }).outIoasId).toBeGreaterThan(0); // a clear flag is no flag
    const va = buffer(fd, 1);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: { ...RW, huge: true } as never, userVa: va, length: PAGE }), 'EOPNOTSUPP');
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: va, length: PAGE, pad: 1 } as never), 'E2BIG');
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: va, length: PAGE, __reserved: 1 } as never), 'EOPNOTSUPP');
    await fd.ioasMap({ ioasId, flags: RW, userVa: va, length: PAGE, reserved: 0, pad: 0n } as never);
    expectThrowsCode(() => fd.ioasIovaRanges(undefined as never), 'EINVAL');
  });

  it('close destroys everything leaf first and ends every call (EINVAL)', async () => {
    const { fd, ioasId } = await fixture('no-device');
    const { outFaultId } = fd.faultQueueAlloc();
    await fd.ioasMap({ ioasId, flags: RW, userVa: buffer(fd, 2), length: 2n * PAGE });
    await fd.close();
    await fd.close(); // idempotent
    expectThrowsCode(() => fd.faultRead(outFaultId, 1), 'EINVAL');
    expectThrowsCode(() => fd.ioasAlloc(), 'EINVAL');
  });

  it('an iommufd still open when the simulator closes fails its calls with EIO and closes quietly', async () => {
    const { sim, fd } = await fixture('one-device');
    await sim.close();
    expectThrowsCode(() => fd.ioasAlloc(), 'EIO');
    await fd.close();
  });
});

describe('IOAS map / unmap / copy (no device)', () => {
  it('a fresh IOAS has one range [0, U64_MAX] and alignment 1', async () => {
    const { fd, ioasId } = await fixture('no-device');
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 4 })).toEqual({ numIovas: 1, allowedIovas: [{ start: 0n, last: U64_MAX }], outIovaAlignment: 1n });
  });

  it('fixed map: the IOVA asked for; over an existing area EEXIST; in a reserved range EINVAL', async () => {
    const { sim, fd, ioasId } = await fixture('no-device');
    const va = buffer(fd, 4);
    expect((await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: 2n * PAGE, iova: 0x10_0000n })).iova).toBe(0x10_0000n);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: 2n * PAGE, iova: 0x10_1000n }), 'EEXIST');
    sim.test.ioasAddReserved(fd, ioasId, 0x20_0000n, 0x1000n);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: 2n * PAGE, iova: 0x1f_f000n }), 'EINVAL');
    // The failed calls changed nothing: the area alone, the reserved page a hole.
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 4 }).allowedIovas).toEqual([{ start: 0n, last: 0x1f_ffffn }, { start: 0x20_1000n, last: U64_MAX }]);
    expect((await fd.ioasUnmap({ ioasId, iova: 0n, length: U64_MAX })).length).toBe(2n * PAGE);
  });

  it('map needs readable or writeable (EINVAL), readable user memory (EFAULT), writeable memory for a writeable map (EFAULT), no overflow (EOVERFLOW)', async () => {
    const { fd, ioasId } = await fixture('no-device');
    const va = buffer(fd, 1);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: {}, userVa: va, length: PAGE }), 'EINVAL');
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: 0x7000_0000_0000n, length: PAGE }), 'EFAULT');
    const ro = fd.mm.mmap({ length: PAGE, prot: { read: true } });
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: ro, length: PAGE }), 'EFAULT');
    expect((await fd.ioasMap({ ioasId, flags: RO, userVa: ro, length: PAGE })).iova).toBeGreaterThanOrEqual(0n);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: 2n * PAGE, iova: U64_MAX - PAGE + 1n }), 'EOVERFLOW');
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: va, length: 0n }), 'EINVAL');
  });

  it('automatic IOVAs: lowest fit aligned to min(roundup_pow_of_two(length), userVa alignment), around areas and reserved ranges; ENOSPC when nothing fits', async () => {
    const { sim, fd, ioasId } = await fixture('no-device');
    const va = buffer(fd, 8);
    sim.test.ioasAddReserved(fd, ioasId, 0n, 0x1000n);
    const a = (await fd.ioasMap({ ioasId, flags: RW, userVa: va, length: 3n * PAGE })).iova;
    const uAlign = va & -va;
    const want = uAlign < 4n * PAGE ? uAlign : 4n * PAGE;
    // Lowest aligned start above the reserved page [0, 0xfff].
    expect(a).toBe((0x1000n + want - 1n) / want * want);
    const b = (await fd.ioasMap({ ioasId, flags: RW, userVa: va, length: PAGE })).iova;
    expect(b).toBe(a === 0x1000n ? a + 3n * PAGE : 0x1000n);
    fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x100_0000n, last: 0x100_1fffn }] });
    expect((await fd.ioasMap({ ioasId, flags: RW, userVa: va, length: 2n * PAGE })).iova).toBe(0x100_0000n);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: va, length: PAGE }), 'ENOSPC');
  });

  it('unmap takes whole areas: a split or an empty range is ENOENT; a superset returns the bytes; unmap-all succeeds when empty', async () => {
    const { fd, ioasId } = await fixture('no-device');
    const va = buffer(fd, 4);
    const fixed = (iova: bigint) => fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: 2n * PAGE, iova });
    await fixed(0x10_0000n);
    await fixed(0x10_2000n);
    await expectRejectsCode(fd.ioasUnmap({ ioasId, iova: 0x10_0000n, length: PAGE }), 'ENOENT');
    await expectRejectsCode(fd.ioasUnmap({ ioasId, iova: 0x50_0000n, length: PAGE }), 'ENOENT');
    expect((await fd.ioasUnmap({ ioasId, iova: 0xf_0000n, length: 0x2_0000n })).length).toBe(4n * PAGE);
    expect((await fd.ioasUnmap({ ioasId, iova: 0n, length: U64_MAX })).length).toBe(0n);
    await expectRejectsCode(fd.ioasUnmap({ ioasId, iova: 0x10_0000n, length: 2n * PAGE }), 'ENOENT');
  });

  it('copy shares whole source areas into another IOAS; a partial source is ENOENT; a writeable copy of a read-only area EPERM', async () => {
    const { fd, ioasId } = await fixture('no-device');
    const dst = fd.ioasAlloc().outIoasId;
    const va = buffer(fd, 2);
    await fd.ioasMap({ ioasId, flags: { readable: true, fixedIova: true }, userVa: va, length: 2n * PAGE, iova: 0x1_0000n });
    await expectRejectsCode(fd.ioasCopy({ flags: RO, dstIoasId: dst, srcIoasId: ioasId, length: PAGE, srcIova: 0x1_0000n }), 'ENOENT');
    await expectRejectsCode(fd.ioasCopy({ flags: RW, dstIoasId: dst, srcIoasId: ioasId, length: 2n * PAGE, srcIova: 0x1_0000n }), 'EPERM');
    const { dstIova } = await fd.ioasCopy({ flags: { readable: true, fixedIova: true }, dstIoasId: dst, srcIoasId: ioasId, length: 2n * PAGE, srcIova: 0x1_0000n, dstIova: 0x9_0000n });
    expect(dstIova).toBe(0x9_0000n);
    expect((await fd.ioasUnmap({ ioasId: dst, iova: 0x9_0000n, length: 2n * PAGE })).length).toBe(2n * PAGE);
  });

  it('iova_ranges: the holes of the reserved ranges; EMSGSIZE with the needed count in err.out when the array is too small', async () => {
    const { sim, fd, ioasId } = await fixture('no-device');
    sim.test.ioasAddReserved(fd, ioasId, 0x2000n, 0x1000n);
    sim.test.ioasAddReserved(fd, ioasId, 0x8000n, 0x8000n);
    const e = expectThrowsCode(() => fd.ioasIovaRanges({ ioasId, numIovas: 2 }), 'EMSGSIZE') as SimError;
    expect(e.out?.numIovas).toBe(3);
    expect(e.out?.allowedIovas).toEqual([{ start: 0n, last: 0x1fffn }, { start: 0x3000n, last: 0x7fffn }]);
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 3 }).allowedIovas).toEqual([{ start: 0n, last: 0x1fffn }, { start: 0x3000n, last: 0x7fffn }, { start: 0x10000n, last: U64_MAX }]);
    // Allowed ranges steer automatic placement only: they are not reported.
    fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x4000n, last: 0x4fffn }] });
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 3 }).numIovas).toBe(3);
  });

  it('automatic placement never picks IOVA 0 and keeps the user page offset; fixed IOVAs ignore the allowed ranges', async () => {
    const { fd, ioasId } = await fixture('no-device');
    const va = buffer(fd, 2);
    expect((await fd.ioasMap({ ioasId, flags: RW, userVa: va + 0x10n, length: 0x100n })).iova).toBe(0x1010n);
    fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x10_0000n, last: 0x10_ffffn }] });
    expect((await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x9000_0000n })).iova).toBe(0x9000_0000n);
  });

  it('allow_iovas: overlapping or empty ranges EINVAL, a range over a reserved one EADDRINUSE; a reserved range over an allowed one EADDRINUSE', async () => {
    const { sim, fd, ioasId } = await fixture('no-device');
    expectThrowsCode(() => fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x1000n, last: 0x2fffn }, { start: 0x2000n, last: 0x3fffn }] }), 'EINVAL');
    expectThrowsCode(() => fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x2000n, last: 0x1000n }] }), 'EINVAL');
    sim.test.ioasAddReserved(fd, ioasId, 0x8000n, 0x1000n);
    expectThrowsCode(() => fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x7000n, last: 0x8fffn }] }), 'EADDRINUSE');
    fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0x10000n, last: 0x1ffffn }] });
    expectThrowsCode(() => sim.test.ioasAddReserved(fd, ioasId, 0x1f000n, 0x2000n), 'EADDRINUSE');
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 2 }).allowedIovas).toEqual([{ start: 0n, last: 0x7fffn }, { start: 0x9000n, last: U64_MAX }]);
  });
});

describe('IOAS with a device attached (one device)', () => {
  it('an attached domain narrows the ranges (aperture, MSI window) and raises the alignment to 4 KiB', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    await fd.attach({ devId, ptId: ioasId });
    const r = fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    expect(r.outIovaAlignment).toBe(0x1000n);
    expect(r.allowedIovas).toEqual([{ start: 0n, last: 0xfedf_ffffn }, { start: 0xfef0_0000n, last: (1n << 48n) - 1n }]);
    await fd.detach({ devId });
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 4 })).toMatchObject({ numIovas: 1, outIovaAlignment: 1n });
  });

  it('maps reach the device through the automatic domain; unmap stops them', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    await fd.attach({ devId, ptId: ioasId });
    const va = buffer(fd, 2);
    const { iova } = await fd.ioasMap({ ioasId, flags: RW, userVa: va, length: 2n * PAGE });
    expect(await reach(sim, dev, iova + PAGE + 0x10n)).toBe(pa(fd.mm.physOf(va + PAGE + 0x10n)));
    await fd.ioasUnmap({ ioasId, iova, length: 2n * PAGE });
    expect(await reach(sim, dev, iova)).toBe('fault:pte-fetch');
  });

  it('with a domain, an unaligned fixed IOVA or length is EINVAL', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    await fd.attach({ devId, ptId: ioasId });
    const va = buffer(fd, 2);
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x10_0800n }), 'EINVAL');
    await expectRejectsCode(fd.ioasMap({ ioasId, flags: RW, userVa: va, length: 0x800n }), 'EINVAL');
  });

  it('attaching a device whose reserved region holds a mapping fails with EADDRINUSE and changes nothing', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: buffer(fd, 1), length: PAGE, iova: 0xfee0_0000n });
    await expectRejectsCode(fd.attach({ devId, ptId: ioasId }), 'EADDRINUSE');
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(0);
    expect(sim.iommu.getDomainForDev(dev).type).toBe('blocked');
    expect(fd.ioasIovaRanges({ ioasId, numIovas: 2 }).numIovas).toBe(1); // no auto HWPT left behind
  });

  it('a device whose reserved region meets an allowed range cannot be attached (EADDRINUSE); nothing changes', async () => {
    const { sim, fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 0xf000_0000n, last: 0xffff_ffffn }] });
    await expectRejectsCode(fd.attach({ devId, ptId: ioasId }), 'EADDRINUSE');
    expect(sim.test.pasidCheckHwpt(fd, devId, 0)).toBe(0);
    fd.ioasAllowIovas({ ioasId, allowedIovas: [] });
    await fd.attach({ devId, ptId: ioasId });
  });

  it('a copy into an IOAS with a device attached reaches the same host pages as the source', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const src = fd.ioasAlloc().outIoasId;
    const va = buffer(fd, 2);
    await fd.ioasMap({ ioasId: src, flags: { ...RW, fixedIova: true }, userVa: va, length: 2n * PAGE, iova: 0x5_0000n });
    await fd.attach({ devId, ptId: ioasId });
    const { dstIova } = await fd.ioasCopy({ flags: RO, dstIoasId: ioasId, srcIoasId: src, length: 2n * PAGE, srcIova: 0x5_0000n });
    expect(await reach(sim, dev, dstIova + PAGE)).toBe(pa(fd.mm.physOf(va + PAGE)));
    expect(await reach(sim, dev, dstIova, undefined, 'write')).toBe('fault:permission'); // copied read-only
  });

  it('an IOAS cannot be destroyed while a HWPT uses it (EBUSY)', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    const { outHwptId } = await fd.hwptAlloc({ devId, ptId: ioasId });
    await expectRejectsCode(fd.destroy(ioasId), 'EBUSY');
    await fd.destroy(outHwptId);
    await fd.destroy(ioasId);
  });

  it('linking a domain to an IOAS with an area not at 4 KiB granularity fails with EADDRINUSE', async () => {
    const { fd, ioasId, devs: [{ devId }] } = await fixture('one-device');
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: buffer(fd, 1), length: 0x800n, iova: 0x1_0000n });
    await expectRejectsCode(fd.hwptAlloc({ devId, ptId: ioasId }), 'EADDRINUSE');
    await expectRejectsCode(fd.attach({ devId, ptId: ioasId }), 'EADDRINUSE');
  });
});
