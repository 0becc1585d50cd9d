/**
 * Nested translation through iommufd (SEMANTICS.md §4.1, §4.4, §5.4; HARDWARE.md §1.1.2):
 * a guest's VT-d first stage (table pointers are guest-physical) over the host's second
 * stage (a nest-parent HWPT replicating an IOAS of guest RAM). The device reaches what the
 * guest stage 1 over the host stage 2 says; nesting costs a second-stage walk per guest
 * table read; a stale stage-1 entry stays cached until the user's HWPT invalidation; a
 * stage-2 unmap invalidates the nested domains above it by itself. One-device variant.
 */
import { describe, expect, it } from 'vitest';
import type { GuestStage1, IommufdContext, Simulator } from 'iommu-sim';
import { RW, expectRejectsCode, fixture, pa, reach, until } from './fixtures.js';

const GUEST_RAM = 0x40_0000n; // 4 MiB of guest-physical memory at GPA 0
const TABLE_PAGES = Array.from({ length: 16 }, (_, i) => 0x10_0000n + BigInt(i) * 0x1000n); // guest pages for its page tables

/** A VMM's setup: guest RAM in an IOAS, a nest parent over it, a guest stage 1, a nested HWPT. */
async function guest(o: { pasid?: boolean; fault?: boolean } = {}) {
  const f = await fixture('one-device');
  const { fd, ioasId, devs: [{ devId }] } = f;
  const ram = fd.mm.mmap({ length: GUEST_RAM, prot: { read: true, write: true } });
  await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: ram, length: GUEST_RAM, iova: 0n });
  const { outHwptId: parent } = await fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true } });
  const s1 = fd.guestStage1({ parentId: parent, tablePages: TABLE_PAGES });
  const faultId = o.fault ? fd.faultQueueAlloc().outFaultId : undefined;
  const { outHwptId: nested } = await fd.hwptAlloc({
    devId, ptId: parent, flags: { pasid: !!o.pasid }, faultId, dataType: 'vtd-s1', data: { pgtblAddr: s1.rootGpa, addrWidth: 48 },
  });
  /** The host-physical address behind a guest-physical one. */
  const hpa = (gpa: bigint) => fd.mm.physOf(ram + gpa);
  return { ...f, dev: f.devs[0].dev, devId, parent, nested, s1, hpa, faultId, ram };
}

async function walkReads(sim: Simulator): Promise<number> {
  return (await sim.stats()).iommus[0].walkReads;
}

describe('nested translation (one device)', () => {
  it('RID attach: the device reaches guest IOVA → GPA (stage 1) → HPA (stage 2)', async () => {
    const { sim, fd, dev, devId, nested, s1, hpa } = await guest();
    s1.map(0x8000_0000n, 0x20_0000n, 0x2000n, { read: true, write: true });
    await fd.attach({ devId, ptId: nested });
    expect(sim.test.pasidEntry(dev, 0)?.pgtt).toBe(3); // PGTT nested
    expect(await reach(sim, dev, 0x8000_1234n)).toBe(pa(hpa(0x20_1234n)));
    expect(await reach(sim, dev, 0x8000_2000n)).toBe('fault:pte-fetch'); // not in the guest's table
  });

  it('PASID attach of a PASID-compatible nested HWPT: only that PASID sees the guest translation', async () => {
    const { sim, fd, dev, devId, nested, s1, hpa } = await guest({ pasid: true });
    s1.map(0x1000n, 0x30_0000n, 0x1000n, { read: true });
    await fd.attach({ devId, ptId: nested, pasid: 12 });
    expect(sim.test.pasidCheckHwpt(fd, devId, 12)).toBe(nested);
    expect(await reach(sim, dev, 0x1000n, 12)).toBe(pa(hpa(0x30_0000n)));
    expect(await reach(sim, dev, 0x1000n, 13)).toBe('fault:bad-pasid-entry');
    expect(await reach(sim, dev, 0x1000n, 12, 'write')).toBe('fault:permission'); // the guest mapped it read-only
  });

  it('a nested HWPT without flags.pasid cannot go to a PASID (EINVAL)', async () => {
    const { fd, devId, nested } = await guest();
    await expectRejectsCode(fd.attach({ devId, ptId: nested, pasid: 12 }), 'EINVAL');
  });

  it('a miss walks both dimensions: every guest table read costs a stage-2 walk, (n+1)(m+1)−1 reads in all', async () => {
    const { sim, fd, ioasId, dev, devId, nested, s1 } = await guest({ pasid: true });
    s1.map(0x5000n, 0x20_0000n, 0x1000n, { read: true });
    await fd.attach({ devId, ptId: nested, pasid: 1 });
    // A plain first-stage HWPT for comparison, at PASID 2.
    const plain = (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { pasid: true } })).outHwptId;
    await fd.attach({ devId, ptId: plain, pasid: 2 });
    let r0 = await walkReads(sim);
    await reach(sim, dev, 0x5000n, 2); // 0x5000 is guest RAM in the IOAS too
    const flat = (await walkReads(sim)) - r0;
    r0 = await walkReads(sim);
    await reach(sim, dev, 0x5000n, 1);
    const twoD = (await walkReads(sim)) - r0;
    expect(flat).toBe(4);
    // 4 guest levels; each guest table and the final GPA through a 4-level (4 KiB leaves)
    // or 3-level (2 MiB leaves) host walk: 24 or 19 reads.
    expect([19, 24]).toContain(twoD);
    r0 = await walkReads(sim);
    await reach(sim, dev, 0x5000n, 1); // now an IOTLB hit: no walk
    expect((await walkReads(sim)) - r0).toBe(0);
  });

  it('a stage-1 change is the user\'s to invalidate: the stale translation stays until hwptInvalidate, then it is gone', async () => {
    const { sim, fd, dev, devId, nested, s1, hpa } = await guest();
    s1.map(0x9000n, 0x20_0000n, 0x1000n, { read: true });
    await fd.attach({ devId, ptId: nested });
    expect(await reach(sim, dev, 0x9000n)).toBe(pa(hpa(0x20_0000n)));
    s1.unmap(0x9000n, 0x1000n);
    s1.map(0x9000n, 0x21_0000n, 0x1000n, { read: true });
    expect(await reach(sim, dev, 0x9000n)).toBe(pa(hpa(0x20_0000n))); // stale, still cached
    expect(await fd.hwptInvalidate({ hwptId: nested, dataType: 'vtd-s1', entries: [{ addr: 0x9000n, npages: 1n }] })).toEqual({ entryNum: 1 });
    expect(await reach(sim, dev, 0x9000n)).toBe(pa(hpa(0x21_0000n)));
  });

  it('hwptInvalidate queues a PASID-based IOTLB and, for an ATS device, a PASID-based device-TLB invalidation per attachment', async () => {
    const { sim, fd, devId, nested } = await guest({ pasid: true });
    await fd.attach({ devId, ptId: nested, pasid: 5 });
    await fd.attach({ devId, ptId: nested, pasid: 6 });
    const before = (await sim.stats()).iommus[0].descriptors;
    await fd.hwptInvalidate({ hwptId: nested, dataType: 'vtd-s1', entries: [{ addr: 0x4000n, npages: 2n }] });
    const after = (await sim.stats()).iommus[0].descriptors;
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect([delta('pasid-iotlb'), delta('pasid-device-tlb'), delta('iotlb')]).toEqual([2, 2, 0]);
  });

  it('a stage-2 unmap queues a domain-selective IOTLB invalidation of the nested DID', async () => {
    const { sim, fd, ioasId, dev, devId, nested } = await guest();
    await fd.attach({ devId, ptId: nested });
    const before = (await sim.stats()).iommus[0].descriptors;
    await fd.ioasUnmap({ ioasId, iova: 0n, length: GUEST_RAM });
    const after = (await sim.stats()).iommus[0].descriptors;
    expect((after.iotlb ?? 0) - (before.iotlb ?? 0)).toBeGreaterThanOrEqual(1);
    expect(sim.test.pasidEntry(dev, 0)?.did).toBeGreaterThan(0);
  });

  it('closing the iommufd tears everything down leaf first: the RID is back on its default domain, the nested entry gone', async () => {
    const { sim, fd, dev, devId, nested } = await guest();
    await fd.attach({ devId, ptId: nested });
    await fd.close();
    expect(sim.iommu.dmaOwner(dev)).toBeUndefined();
    expect(sim.iommu.getDomainForDev(dev).type).toBe('dma');
    expect(sim.test.pasidEntry(dev, 0)?.pgtt).not.toBe(3);
  });

  it('invalidate-all (addr 0, npages U64_MAX) drops every cached translation of the nested HWPT', async () => {
    const { sim, fd, dev, devId, nested, s1, hpa } = await guest();
    s1.map(0x1000n, 0x20_0000n, 0x3000n, { read: true });
    await fd.attach({ devId, ptId: nested });
    for (const a of [0x1000n, 0x2000n, 0x3000n]) await reach(sim, dev, a);
    s1.unmap(0x1000n, 0x3000n);
    s1.map(0x1000n, 0x30_0000n, 0x3000n, { read: true });
    await fd.hwptInvalidate({ hwptId: nested, dataType: 'vtd-s1', entries: [{ addr: 0n, npages: (1n << 64n) - 1n }] });
    for (const [a, g] of [[0x1000n, 0x30_0000n], [0x3000n, 0x30_2000n]] as const) expect(await reach(sim, dev, a)).toBe(pa(hpa(g)));
  });

  it('a stage-2 unmap invalidates the nested domains above the parent without any user call', async () => {
    const { sim, fd, ioasId, dev, devId, nested, s1 } = await guest();
    s1.map(0x7000n, 0x30_0000n, 0x1000n, { read: true });
    await fd.attach({ devId, ptId: nested });
    expect((await reach(sim, dev, 0x7000n)).startsWith('pa:')).toBe(true);
    await fd.ioasUnmap({ ioasId, iova: 0n, length: GUEST_RAM });
    expect(await reach(sim, dev, 0x7000n)).toBe('fault:pte-fetch'); // second stage: GPA not mapped
    const rec = (await sim.dma(dev, { addr: 0x7000n, access: 'read' }));
    expect(rec.ok ? 0 : rec.fault.code).toBe(0x79); // SS_PTE_NOT_PRESENT, not a stale hit
  });

  it('a guest page fault goes to the nested HWPT\'s fault object; SUCCESS after the guest maps the page retries the DMA', async () => {
    const { sim, fd, dev, devId, nested, s1, hpa, faultId } = await guest({ pasid: true, fault: true });
    await fd.attach({ devId, ptId: nested, pasid: 3 });
    const dma = sim.dma(dev, { addr: 0xa000n, access: 'write', pasid: 3 });
    await until(() => fd.faultPending(faultId!) > 0);
    const [rec] = fd.faultRead(faultId!, 1);
    expect(rec).toMatchObject({ devId, pasid: 3, addr: 0xa000n, perm: { write: true } });
    s1.map(0xa000n, 0x22_0000n, 0x1000n, { read: true, write: true });
    await fd.faultWrite(faultId!, [{ cookie: rec.cookie, code: 'success' }]);
    const r = await dma;
    expect(r.ok ? pa(r.paddr) : r.fault.reason).toBe(pa(hpa(0x22_0000n)));
  });

  it('the guest table must live in memory the IOMMU can read: a process without table-memory RAM gets walk aborts', async () => {
    const f = await fixture('one-device');
    const sim = f.sim;
    const fd: IommufdContext = sim.iommufd.open({ mm: sim.mm.create() });
    const dev = f.devs[0].dev;
    await f.fd.close(); // release the device to the second iommufd
    const { devId } = await fd.bindDevice(dev);
    const ioasId = fd.ioasAlloc().outIoasId;
    const ram = fd.mm.mmap({ length: GUEST_RAM, prot: { read: true, write: true } });
    await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: ram, length: GUEST_RAM, iova: 0n });
    const parent = (await fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true } })).outHwptId;
    let s1: GuestStage1 | undefined;
    expect(() => { s1 = fd.guestStage1({ parentId: parent, tablePages: TABLE_PAGES }); }).toThrow(/guest-page-not-readable/);
    expect(s1).toBeUndefined();
    const nested = (await fd.hwptAlloc({ devId, ptId: parent, dataType: 'vtd-s1', data: { pgtblAddr: 0x10_0000n, addrWidth: 48 } })).outHwptId;
    await fd.attach({ devId, ptId: nested });
    expect(await reach(sim, dev, 0x1000n)).toBe('fault:walk-abort');
  });
});
