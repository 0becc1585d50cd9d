/**
 * Every iommufd call that programs hardware either completes or leaves nothing changed
 * (SEMANTICS.md §5; the kernel's iommufd_fail_nth): each call of a VMM-like sequence is run
 * with the n-th programming step failing, for every n until it succeeds; after each failure
 * the state the user can observe — attachments as the core sees them, IOVA ranges, what
 * the device's DMA reaches, and whether the same call then succeeds — is what it was.
 */
import { describe, expect, it } from 'vitest';
import { SimError } from 'iommu-sim';
import { PAGE, RW, fixture, reach } from './fixtures.js';

describe('fail-nth over an iommufd sequence (one device)', () => {
  it('rolls back every failed step of attach, replace, HWPT allocation, map and nested PASID attach', async () => {
    const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
    const va = buffer(fd);
    function buffer(f: typeof fd) { return f.mm.mmap({ length: 4n * PAGE, prot: { read: true, write: true }, populate: true }); }
    const snapshot = async () => JSON.stringify({
      rid: sim.test.pasidCheckHwpt(fd, devId, 0),
      p5: sim.test.pasidCheckHwpt(fd, devId, 5),
      ranges: fd.ioasIovaRanges({ ioasId, numIovas: 8 }).allowedIovas.map((r) => [r.start.toString(16), r.last.toString(16)]),
      dma: [await reach(sim, dev, 0x10_0000n), await reach(sim, dev, 0x10_1000n), await reach(sim, dev, 0x1000n, 5)],
    });
    let parent = 0;
    let nested = 0;
    let compat = 0;
    const calls: [string, () => Promise<unknown>][] = [
      ['map before any domain', () => fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va, length: PAGE, iova: 0x10_0000n })],
      ['RID attach to the IOAS (automatic HWPT)', () => fd.attach({ devId, ptId: ioasId })],
      ['PASID-compatible HWPT alloc over mapped areas', async () => { compat = (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { pasid: true } })).outHwptId; }],
      ['RID replace to it', () => fd.replace({ devId, ptId: compat })],
      ['nest parent alloc over mapped areas', async () => { parent = (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true } })).outHwptId; }],
      ['map with two domains linked', () => fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va + PAGE, length: PAGE, iova: 0x10_1000n })],
      ['nested alloc', async () => { nested = (await fd.hwptAlloc({ devId, ptId: parent, flags: { pasid: true }, dataType: 'vtd-s1', data: { pgtblAddr: 0x10_0000n, addrWidth: 48 } })).outHwptId; }],
      ['PASID attach of the nested HWPT', () => fd.attach({ devId, ptId: nested, pasid: 5 })],
    ];
    let failures = 0;
    for (const [what, call] of calls) {
      for (let n = 1; ; n++) {
        const before = await snapshot();
        sim.test.failNth(n);
        let err: unknown;
        try {
          await call();
        } catch (e) {
          err = e;
        }
        sim.test.failNth(0);
        if (err === undefined) break;
        expect(err, what).toBeInstanceOf(SimError);
        // Only the injected failure (ENOMEM; EFAULT when a page could not be pinned).
        expect(['ENOMEM', 'EFAULT'], `${what}: ${String(err)}`).toContain((err as SimError).code);
        expect(await snapshot(), `${what}, step ${n}`).toBe(before);
        failures++;
        expect(n, `${what} never succeeds`).toBeLessThan(50);
      }
    }
    expect(failures).toBeGreaterThan(calls.length); // the sweep did hit programming steps
    expect(sim.test.pasidCheckHwpt(fd, devId, 5)).toBe(nested);
  });
});
