/**
 * End to end through the built package: DMA requests from devices translated by the IOMMU
 * workers, for both VT-d page-table formats, and the errors of the public API.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Simulator, type Device, type DmaResult, type FaultRecord } from 'iommu-sim';
import { FR, faultReasonName } from '../../shared/layout/fault-record.js';
import { GiB, MiB, closeSim, expectRejectsCode, expectThrowsCode, liveMessagePorts, messagePortsBackTo, nextMatching, settledMessagePorts, within } from './helpers.js';

const DEVICES = [
  { bdf: '0000:03:00.0' }, //                A: plain
  { bdf: '0000:03:00.1', ats: true }, //     B: ATS (device TLB in play)
  { bdf: '0000:03:01.0', pasidBits: 0 }, //  N: cannot issue PASID-tagged DMA
  { bdf: '0000:03:02.0' }, //                U: never attached, bus 3 has a context table
  { bdf: '0000:05:00.0' }, //                V: never attached, nothing on bus 5
  { bdf: '0000:03:03.0', pasidBits: 8 }, //  S: 256 PASIDs
];

const RW = { read: true, write: true };

let sim: Simulator | undefined;
let A: Device, B: Device, N: Device, U: Device, V: Device, S: Device;

beforeEach(async () => {
  sim = await Simulator.start({ topology: { iommus: 1, devices: DEVICES }, testHooks: true });
  [A, B, N, U, V, S] = sim.topology.devices;
});

afterEach(async () => {
  await closeSim(sim);
  sim = undefined;
});

function s(): Simulator {
  if (!sim) throw new Error('no simulator');
  return sim;
}

function ok(r: DmaResult, what: string): { paddr: bigint; cached: boolean } {
  if (!r.ok) throw new Error(`${what}: expected a translation, got fault ${r.fault.reason} (FR 0x${r.fault.code.toString(16)})`);
  return r;
}

function fault(r: DmaResult, what: string) {
  if (r.ok) throw new Error(`${what}: expected a fault, translated to 0x${r.paddr.toString(16)}`);
  return r.fault;
}

const dma = (dev: Device, addr: bigint, access: 'read' | 'write' | 'exec' = 'read', pasid?: number) =>
  within(s().dma(dev, pasid === undefined ? { addr, access } : { addr, access, pasid }), 10_000, `dma ${dev.bdf} 0x${addr.toString(16)}`);

describe.each([
  { stage: 'first' as const, notPresent: FR.FS_PTE_NOT_PRESENT },
  { stage: 'second' as const, notPresent: FR.SS_PTE_NOT_PRESENT },
])('$stage-stage page table', ({ stage, notPresent }) => {
  // Naturally aligned mappings of each size (iova, paddr and size aligned to the size).
  const MAPS = [
    { size: 4096n, iova: 0x4000_1000n, paddr: 0x1_2345_6000n, sizeShift: 12, offsets: [0n, 0x123n, 0xfffn] },
    { size: 2n * MiB, iova: 0x0060_0000n, paddr: 0x2_0040_0000n, sizeShift: 21, offsets: [0n, 0x1000n, 0x12345n, 2n * MiB - 1n] },
    { size: GiB, iova: 0x1_4000_0000n, paddr: 0x40_0000_0000n, sizeShift: 30, offsets: [0n, 0x1000n, 0x20_0000n, 0x1234_5678n, GiB - 1n] },
  ];

  it('translates 4 KiB, 2 MiB and 1 GiB mappings to paddr + offset, from the IOTLB and the device TLB', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging', { stage });
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.attachDevice(dom, B);
    for (const m of MAPS) await sim.iommu.map(dom, m.iova, m.paddr, m.size, RW);
    for (const m of MAPS) {
      for (const off of m.offsets) {
        for (const dev of [A, B]) {
          for (const access of ['read', 'write'] as const) {
            const r = ok(await dma(dev, m.iova + off, access), `${dev.bdf} ${access} +0x${off.toString(16)} of ${m.size}`);
            expect(r.paddr).toBe(m.paddr + off);
          }
        }
        expect(sim.iommu.iovaToPhys(dom, m.iova + off)).toBe(m.paddr + off);
      }
      // Just outside the mapping: nothing there.
      expect(fault(await dma(A, m.iova + m.size), 'past the end').code).toBe(notPresent);
      expect(fault(await dma(A, m.iova - 1n), 'before the start').code).toBe(notPresent);
    }
    // The IOTLB holds one entry of the mapping's size for each (naturally aligned ⇒ a large leaf).
    const entries = await within(sim.test.iotlbEntries(0), 5000, 'iotlbEntries');
    for (const m of MAPS) {
      const e = entries.find((x) => x.vpn === Number(m.iova >> 12n));
      expect(e, `IOTLB entry for 0x${m.iova.toString(16)}`).toBeDefined();
      expect(e!.sizeShift).toBe(m.sizeShift);
      expect(e!.pfn).toBe(Number(m.paddr >> 12n));
    }
  });

  it('faults a non-present address with pte-fetch and the stage\'s FR code, recorded', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging', { stage });
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.map(dom, 0x10000n, 0x900000n, 0x1000n, RW);
    for (const addr of [0x0n, 0x11000n, 0x1234_5678n, 0x7fff_ffff_f000n]) {
      const f = fault(await dma(A, addr), `0x${addr.toString(16)}`);
      expect(f.reason).toBe('pte-fetch');
      expect(f.code).toBe(notPresent);
      expect(f.addr).toBe(addr);
      expect(f.recorded).toBe(true);
      expect(f.recoverable).toBe(false);
    }
  });

  it('denies a write to a read-only mapping with a permission fault, reads still translate', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging', { stage });
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.attachDevice(dom, B);
    await sim.iommu.map(dom, 0x20000n, 0x700000n, 0x2000n, { read: true });
    for (const dev of [A, B]) {
      // Warm the caches with a read first: a cached read-only entry must not allow a write.
      expect(ok(await dma(dev, 0x20010n, 'read'), 'read').paddr).toBe(0x700010n);
      const f = fault(await dma(dev, 0x20010n, 'write'), 'write to read-only');
      expect(f.reason).toBe(faultReasonName(FR.WRITE_DENIED));
      expect(f.reason).toBe('permission');
      expect(f.code).toBe(FR.WRITE_DENIED);
      expect(ok(await dma(dev, 0x21ff8n, 'read'), 'read again').paddr).toBe(0x701ff8n);
    }
  });

  it('denies exec on a mapping without exec, allows it on one with exec', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging', { stage });
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.map(dom, 0x30000n, 0x800000n, 0x1000n, RW);
    await sim.iommu.map(dom, 0x31000n, 0x801000n, 0x1000n, { read: true, exec: true });
    expect(ok(await dma(A, 0x30004n, 'read'), 'read').paddr).toBe(0x800004n);
    const f = fault(await dma(A, 0x30004n, 'exec'), 'exec on no-exec');
    expect(f.reason).toBe('permission');
    expect(f.code).toBe(FR.EXEC_DENIED);
    expect(ok(await dma(A, 0x31004n, 'exec'), 'exec on exec').paddr).toBe(0x801004n);
  });

  it('hits the IOTLB (cached: true) on the second DMA to a page, for a plain and an ATS device', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging', { stage });
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.attachDevice(dom, B);
    await sim.iommu.map(dom, 0x50000n, 0xa00000n, 0x1000n, RW);
    await sim.iommu.map(dom, 0x51000n, 0xb00000n, 0x1000n, RW);
    for (const [dev, addr] of [[A, 0x50000n], [B, 0x51000n]] as const) {
      const first = ok(await dma(dev, addr + 8n), 'first');
      const second = ok(await dma(dev, addr + 16n, 'write'), 'second');
      expect(first.cached).toBe(false);
      expect(second.cached).toBe(true);
      expect(second.paddr).toBe(first.paddr + 8n);
    }
  });

  it('delivers the fault on faults$ and faultsOf$(dev) with dev, reason, addr and pasid', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging', { stage });
    const pdom = sim.iommu.domainAlloc('paging', { stage });
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.attachDevicePasid(pdom, B, 7);
    const seen: FaultRecord[] = [];
    const sub = sim.faults$.subscribe((f) => seen.push(f));
    try {
      // Without PASID: the record has no pasid; the address is the faulting page (FRCD.FI).
      const ofA = nextMatching(sim.faultsOf$(A), () => true);
      const rA = fault(await dma(A, 0x6_0123n, 'write'), 'A');
      const recA = await ofA;
      expect(recA.dev).toBe(A);
      expect(recA.iommu).toBe(A.iommu);
      expect(recA.reason).toBe('pte-fetch');
      expect(recA.code).toBe(notPresent);
      expect(recA.code).toBe(rA.code);
      expect(recA.addr).toBe(0x6_0000n);
      expect(recA.perm).toEqual({ write: true });
      expect(recA.pasid).toBeUndefined();
      expect(recA.modelledNs).toBeGreaterThan(0);

      // With PASID: the record carries it, and only B's stream sees it.
      const onA: FaultRecord[] = [];
      const subA = sim.faultsOf$(A).subscribe((f) => onA.push(f));
      const ofB = nextMatching(sim.faultsOf$(B), () => true);
      const rB = fault(await dma(B, 0x7_0abcn, 'read', 7), 'B pasid 7');
      expect(rB.pasid).toBe(7);
      const recB = await ofB;
      subA.unsubscribe();
      expect(recB.dev).toBe(B);
      expect(recB.reason).toBe('pte-fetch');
      expect(recB.code).toBe(notPresent);
      expect(recB.addr).toBe(0x7_0000n);
      expect(recB.pasid).toBe(7);
      expect(recB.perm).toEqual({ read: true });
      expect(onA).toEqual([]);
      expect(seen).toContain(recA);
      expect(seen).toContain(recB);
      expect(seen.length).toBe(2);
    } finally {
      sub.unsubscribe();
    }
  });
});

describe('devices, PASIDs and identity', () => {
  it('leaves a device nobody attached on its default DMA domain: DMA faults at the page table until the default domain maps it', async () => {
    const sim = s();
    const def = sim.iommu.getDomainForDev(U);
    expect(def.type).toBe('dma');
    const f = fault(await dma(U, 0x1000n), 'U on an empty default domain');
    expect(f.code).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(f.reason).toBe('pte-fetch');
    await sim.iommu.map(def, 0x1000n, 0x9000n, 0x1000n, RW);
    expect(ok(await dma(U, 0x1000n), 'U through its default domain').paddr).toBe(0x9000n);
  });

  it('blocks DMA of a DMA-owned group (blocking domain: PASID entry not present) and restores the default on release', async () => {
    const sim = s();
    const owner = {};
    const def = sim.iommu.getDomainForDev(V);
    await sim.iommu.map(def, 0x1000n, 0x9000n, 0x1000n, RW);
    expect(ok(await dma(V, 0x1000n), 'V default').paddr).toBe(0x9000n);
    await sim.iommu.deviceClaimDmaOwner(V, owner);
    expect(sim.iommu.getDomainForDev(V).type).toBe('blocked');
    const f = fault(await dma(V, 0x1000n), 'V owned');
    expect(f.code).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(f.reason).toBe('bad-pasid-entry');
    await sim.iommu.deviceReleaseDmaOwner(V);
    expect(sim.iommu.getDomainForDev(V)).toBe(def);
    expect(ok(await dma(V, 0x1000n), 'V released').paddr).toBe(0x9000n);
  });

  it('returns a detached device to its default domain: the old domain is no longer reachable', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging');
    const def = sim.iommu.getDomainForDev(B);
    await sim.iommu.attachDevice(dom, B);
    await sim.iommu.map(dom, 0x1000n, 0x5000n, 0x1000n, RW);
    expect(ok(await dma(B, 0x1000n), 'warm').paddr).toBe(0x5000n);
    expect(ok(await dma(B, 0x1000n), 'cached').cached).toBe(true);
    await sim.iommu.detachDevice(dom, B);
    expect(sim.iommu.getDomainForDev(B)).toBe(def);
    const f = fault(await dma(B, 0x1000n), 'after detach');
    expect(f.code).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(f.reason).toBe('pte-fetch');
  });

  it.each(['first', 'second'] as const)('routes PASID-tagged DMA to the (device, PASID) domain (%s stage), not the RID\'s', async (stage) => {
    const sim = s();
    const ridDom = sim.iommu.domainAlloc('paging');
    const pasidDom = sim.iommu.domainAlloc('paging', { stage });
    for (const dev of [A, B]) {
      await sim.iommu.attachDevice(ridDom, dev);
      await sim.iommu.attachDevicePasid(pasidDom, dev, 5);
      expect(sim.iommu.getDomainForDev(dev)).toBe(ridDom);
      expect(sim.iommu.getDomainForDevPasid(dev, 5)).toBe(pasidDom);
    }
    await sim.iommu.map(ridDom, 0x10000n, 0x100000n, 0x1000n, RW);
    await sim.iommu.map(pasidDom, 0x10000n, 0x200000n, 0x1000n, RW);
    await sim.iommu.map(pasidDom, 0x20000n, 0x300000n, 0x1000n, RW);
    for (const dev of [A, B]) {
      // Twice each, interleaved, so cached entries (IOTLB, device TLB) are used too.
      for (let round = 0; round < 2; round++) {
        expect(ok(await dma(dev, 0x10040n), `${dev.bdf} RID`).paddr).toBe(0x100040n);
        expect(ok(await dma(dev, 0x10040n, 'read', 5), `${dev.bdf} pasid 5`).paddr).toBe(0x200040n);
        expect(ok(await dma(dev, 0x20008n, 'write', 5), `${dev.bdf} pasid 5 only`).paddr).toBe(0x300008n);
        expect(fault(await dma(dev, 0x20008n), `${dev.bdf} RID has no 0x20000`).reason).toBe('pte-fetch');
      }
    }
  });

  it('faults DMA with a PASID the device has no attachment for', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevice(dom, A);
    await sim.iommu.attachDevice(dom, N);
    await sim.iommu.attachDevicePasid(dom, A, 5);
    await sim.iommu.map(dom, 0x1000n, 0x5000n, 0x1000n, RW);
    expect(ok(await dma(A, 0x1000n, 'read', 5), 'attached pasid').paddr).toBe(0x5000n);
    // Same PASID table as 5, entry not present.
    const f6 = fault(await dma(A, 0x1000n, 'read', 6), 'pasid 6');
    expect(f6.code).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(f6.reason).toBe('bad-pasid-entry');
    expect(f6.pasid).toBe(6);
    // Another PASID directory slot, no table there.
    const f1000 = fault(await dma(A, 0x1000n, 'read', 1000), 'pasid 1000');
    expect(f1000.code).toBe(FR.PASID_DIR_ENTRY_NOT_PRESENT);
    expect(f1000.reason).toBe('pasid-invalid');
    // A device that cannot issue PASIDs: PASID disabled in its context entry.
    expect(ok(await dma(N, 0x1000n), 'N without pasid').paddr).toBe(0x5000n);
    const fN = fault(await dma(N, 0x1000n, 'read', 1), 'N with pasid');
    expect(fN.code).toBe(FR.PASID_DISABLED);
    expect(fN.reason).toBe('pasid-invalid');
  });

  it('translates iova == paddr through an identity domain', async () => {
    const sim = s();
    const id = sim.iommu.domainAlloc('identity');
    await sim.iommu.attachDevice(id, A);
    await sim.iommu.attachDevice(id, B);
    for (const addr of [0x0n, 0x1234n, 0xfee0_0000n - 0x1000n, 0x1_2345_6789n, 0xffff_ffff_fff0n]) {
      for (const dev of [A, B]) {
        for (const access of ['read', 'write'] as const) {
          expect(ok(await dma(dev, addr, access), `${dev.bdf} 0x${addr.toString(16)}`).paddr).toBe(addr);
        }
      }
      expect(sim.iommu.iovaToPhys(id, addr)).toBe(addr);
    }
    await expectRejectsCode(sim.iommu.map(id, 0x1000n, 0x1000n, 0x1000n, RW), 'EINVAL');
  });
});

describe('errors', () => {
  it('rejects an unaligned map with EINVAL and an overlapping one with EEXIST, changing nothing', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevice(dom, A);
    await expectRejectsCode(sim.iommu.map(dom, 0x1001n, 0x5000n, 0x1000n, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(dom, 0x1000n, 0x5800n, 0x1000n, RW), 'EINVAL');
    await expectRejectsCode(sim.iommu.map(dom, 0x1000n, 0x5000n, 0x1800n, RW), 'EINVAL');
    expect(fault(await dma(A, 0x1000n), 'after failed unaligned map').reason).toBe('pte-fetch');

    await sim.iommu.map(dom, 0x2000n, 0x9000n, 0x2000n, RW); // [0x2000, 0x4000)
    await expectRejectsCode(sim.iommu.map(dom, 0x2000n, 0xa000n, 0x2000n, RW), 'EEXIST'); // same range
    await expectRejectsCode(sim.iommu.map(dom, 0x0n, 0xa000n, 0x3000n, RW), 'EEXIST'); // overlaps the start
    await expectRejectsCode(sim.iommu.map(dom, 0x3000n, 0xa000n, 0x4000n, RW), 'EEXIST'); // overlaps the end
    await expectRejectsCode(sim.iommu.map(dom, 0x0n, 0x0n, 2n * MiB, RW), 'EEXIST'); // a 2 MiB page over it
    // No partial state: the free parts of the failed ranges are still unmapped...
    for (const addr of [0x0n, 0x1000n, 0x4000n, 0x6000n, 0x10_0000n]) {
      expect(fault(await dma(A, addr), `0x${addr.toString(16)}`).reason).toBe('pte-fetch');
      expect(sim.iommu.iovaToPhys(dom, addr)).toBe(0n);
    }
    // ...and the existing mapping is unchanged.
    expect(ok(await dma(A, 0x2000n), '0x2000').paddr).toBe(0x9000n);
    expect(ok(await dma(A, 0x3ff0n), '0x3ff0').paddr).toBe(0xaff0n);
  });

  it('rejects attachDevicePasid with PASID 0, beyond the width, on a no-PASID device (EINVAL) and on a used PASID (EBUSY)', async () => {
    const sim = s();
    const dom = sim.iommu.domainAlloc('paging');
    const other = sim.iommu.domainAlloc('paging', { stage: 'second' });
    await expectRejectsCode(sim.iommu.attachDevicePasid(dom, A, 0), 'EINVAL');
    expect(S.maxPasids).toBe(256);
    await expectRejectsCode(sim.iommu.attachDevicePasid(dom, S, 256), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachDevicePasid(dom, A, 1 << 20), 'EINVAL');
    await expectRejectsCode(sim.iommu.attachDevicePasid(dom, A, -1), 'EINVAL');
    await sim.iommu.attachDevicePasid(dom, S, 255); // the last valid one
    expect(sim.iommu.getDomainForDevPasid(S, 255)).toBe(dom);
    expect(N.maxPasids).toBe(0);
    await expectRejectsCode(sim.iommu.attachDevicePasid(dom, N, 1), 'EINVAL');
    await sim.iommu.attachDevicePasid(dom, A, 9);
    await expectRejectsCode(sim.iommu.attachDevicePasid(other, A, 9), 'EBUSY');
    await expectRejectsCode(sim.iommu.attachDevicePasid(dom, A, 9), 'EBUSY'); // even the same domain
    expect(sim.iommu.getDomainForDevPasid(A, 9)).toBe(dom);
    expect(sim.iommu.getDomainForDevPasid(A, 0)).toBeUndefined();
  });

  it('allocates a DMA-FQ domain and rejects an unknown type with EINVAL', () => {
    const sim = s();
    expect(sim.iommu.domainAlloc('dma-fq').type).toBe('dma-fq');
    expectThrowsCode(() => sim.iommu.domainAlloc('bogus' as 'paging'), 'EINVAL');
  });

  it('rejects bad DMA input with EINVAL', async () => {
    const sim = s();
    await expectRejectsCode(sim.dma(A, { addr: 0x1000n, access: 'bogus' as 'read' }), 'EINVAL');
    await expectRejectsCode(sim.dma(A, { addr: 0x1000 as unknown as bigint, access: 'read' }), 'EINVAL');
    await expectRejectsCode(sim.dma(A, { addr: 0x1000n, access: 'read', pasid: 1 << 20 }), 'EINVAL');
    await expectRejectsCode(sim.dma(A, { addr: 0x1000n, access: 'read', pasid: 1.5 }), 'EINVAL');
    await expectRejectsCode(sim.dmaBatch(A, [{ addr: 0x1000n, access: 'read' }, { addr: 1n, access: 'write!' as 'write' }]), 'EINVAL');
    await expectRejectsCode(sim.dmaBatch(A, 'x' as unknown as []), 'EINVAL');
    // The simulator still works afterwards.
    expect(fault(await dma(A, 0x1000n), 'still alive (A on its empty default domain)').code).toBe(FR.FS_PTE_NOT_PRESENT);
  });
});

describe('Simulator.start with bad options', () => {
  const dev = { bdf: '0000:03:00.0' };
  it.each([
    ['a bad BDF', { topology: { iommus: 1, devices: [{ bdf: '03:00' }] } }, 'EINVAL'],
    ['a BDF with device 32', { topology: { iommus: 1, devices: [{ bdf: '0000:03:20.0' }] } }, 'EINVAL'],
    ['an IOMMU index out of range', { topology: { iommus: 2, devices: [{ bdf: '0000:03:00.0', iommu: 2 }] } }, 'EINVAL'],
    ['a negative IOMMU index', { topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', iommu: -1 }] } }, 'EINVAL'],
    ['a duplicate BDF', { topology: { iommus: 1, devices: [dev, { bdf: '03:00.0' }] } }, 'EEXIST'],
    ['two devices with one requester id behind one IOMMU', { topology: { iommus: 1, devices: [dev, { bdf: '0001:03:00.0' }] } }, 'EEXIST'],
    ['zero IOMMUs', { topology: { iommus: 0, devices: [] } }, 'EINVAL'],
    ['a queue depth that is not a power of two', { topology: { iommus: [{ queues: { dma: 3 } }], devices: [dev] } }, 'EINVAL'],
    ['pasidBits beyond 20', { topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pasidBits: 21 }] } }, 'EINVAL'],
    ['an unknown profile', { profile: 'riscv', topology: { iommus: 1, devices: [dev] } }, 'EINVAL'],
    ['v5 semantics off VT-d', { profile: 'smmuv3', semantics: 'v5', topology: { iommus: 1, devices: [dev] } }, 'EOPNOTSUPP'],
    ['a negative spinUs', { spinUs: -1, topology: { iommus: 1, devices: [dev] } }, 'EINVAL'],
    ['a negative hostTimeoutMs', { hostTimeoutMs: -1, topology: { iommus: 1, devices: [dev] } }, 'EINVAL'],
    ['a NaN hostTimeoutMs', { hostTimeoutMs: NaN, topology: { iommus: 1, devices: [dev] } }, 'EINVAL'],
    ['a zero arenaBytes', { arenaBytes: 0, topology: { iommus: 1, devices: [dev] } }, 'EINVAL'],
    ['no topology', {}, 'EINVAL'],
  ] as const)('rejects %s and leaves no worker', async (_what, options, code) => {
    const before = await settledMessagePorts();
    await expectRejectsCode(Simulator.start(options as unknown as Parameters<typeof Simulator.start>[0]), code);
    expect(liveMessagePorts()).toBe(before);
    expect(await settledMessagePorts()).toBe(before);
  });

  it('accepts one requester id behind two IOMMUs, and keeps the two devices apart', async () => {
    const two = await Simulator.start({ topology: { iommus: 2, devices: [dev, { bdf: '0001:03:00.0', iommu: 1 }] } });
    try {
      const [x, y] = two.topology.devices;
      const dom = two.iommu.domainAlloc('paging');
      await two.iommu.attachDevice(dom, x);
      await two.iommu.map(dom, 0x1000n, 0x5000n, 0x1000n, RW);
      expect(ok(await within(two.dma(x, { addr: 0x1000n, access: 'read' }), 5000, 'x'), 'x').paddr).toBe(0x5000n);
      expect(fault(await within(two.dma(y, { addr: 0x1000n, access: 'read' }), 5000, 'y'), 'y, on its default domain').code).toBe(FR.FS_PTE_NOT_PRESENT);
      expect(two.iommu.getDomainForDev(y)).not.toBe(dom);
    } finally {
      await closeSim(two);
    }
  });

  it('a good start does show up in the worker count (the check above can fail)', async () => {
    // beforeEach started one simulator with one IOMMU: one worker.
    const before = await settledMessagePorts();
    const extra = await Simulator.start({ topology: { iommus: 2, devices: [dev] } });
    try {
      expect(liveMessagePorts()).toBe(before + 2);
    } finally {
      await closeSim(extra);
    }
    expect(await messagePortsBackTo(before)).toBe(before);
  });
});
