/**
 * A VMM-style iommufd flow (run it with `node dist/examples/iommufd-vmm.js`; a test runs it
 * too): a guest's device is given to the VM with nested translation.
 *
 * 1. open /dev/iommu, bind the device (the group becomes user-owned, DMA blocked);
 * 2. an IOAS with the guest's RAM at GPA 0 (the VMM process's memory);
 * 3. a nest-parent HWPT — the host's second stage, GPA → HPA;
 * 4. the guest kernel builds its first-stage table in guest RAM (IOVA → GPA);
 * 5. a fault object and a nested HWPT ('vtd-s1' data: the guest's table root), attached
 *    at a PASID of the device;
 * 6. the device does DMA: guest IOVA → GPA → HPA;
 * 7. it touches a page the guest has not mapped: the page fault arrives through the fault
 *    object, the "guest" maps the page and answers SUCCESS, the device retries;
 * 8. the guest changes a mapping: the stale translation stays cached until the VMM passes
 *    the guest's invalidation down (hwptInvalidate); then the device sees the new page.
 * Prints each step and returns a summary.
 */
import { Simulator } from 'iommu-sim';

export interface VmmExampleResult {
  /** Host-physical addresses the device reached at each DMA step (or the fault reason). */
  steps: { step: string; got: string; want: string }[];
  faultsRead: number;
  invalidatedEntries: number;
}

const hex = (v: bigint | undefined) => (v === undefined ? '-' : `0x${v.toString(16)}`);

export async function runVmmExample(log: (s: string) => void = () => {}): Promise<VmmExampleResult> {
  const sim = await Simulator.start({
    topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true, ats: true }] },
    seed: 1,
  });
  const steps: VmmExampleResult['steps'] = [];
  try {
    const [dev] = sim.topology.devices;
    const fd = sim.iommufd.open(); // a VMM process whose RAM the IOMMU can read
    const { devId } = await fd.bindDevice(dev);
    log(`bound ${dev.bdf} as device ${devId}; DMA owner: the iommufd`);

    const GUEST_RAM = 0x80_0000n; // 8 MiB
    const ram = fd.mm.mmap({ length: GUEST_RAM, prot: { read: true, write: true } });
    const { outIoasId: ioasId } = fd.ioasAlloc();
    await fd.ioasMap({ ioasId, flags: { fixedIova: true, readable: true, writeable: true }, userVa: ram, length: GUEST_RAM, iova: 0n });
    const { outHwptId: parent } = await fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true } });
    log(`IOAS ${ioasId}: guest RAM ${hex(GUEST_RAM)} bytes at GPA 0; nest parent HWPT ${parent}`);

    const tablePages = Array.from({ length: 8 }, (_, i) => 0x70_0000n + BigInt(i) * 0x1000n);
    const s1 = fd.guestStage1({ parentId: parent, tablePages });
    s1.map(0x1000_0000n, 0x20_0000n, 0x1000n, { read: true, write: true });
    log(`guest stage 1 at GPA ${hex(s1.rootGpa)}: IOVA 0x10000000 → GPA 0x200000`);

    const info = fd.getHwInfo({ devId });
    const { outFaultId: faultId } = fd.faultQueueAlloc();
    const { outHwptId: nested } = await fd.hwptAlloc({
      devId, ptId: parent, flags: { pasid: true }, faultId, dataType: 'vtd-s1', data: { pgtblAddr: s1.rootGpa, addrWidth: 48 },
    });
    const { pasid } = await fd.attach({ devId, ptId: nested, pasid: 'alloc' });
    log(`nested HWPT ${nested} attached at PASID ${pasid} (device PASID width 2^${info.outMaxPasidLog2}, vPASID use: ${info.outVpasid.translation})`);
    const hpa = (gpa: bigint) => fd.mm.physOf(ram + gpa);
    const dma = async (step: string, iova: bigint, want: bigint | undefined, access: 'read' | 'write' = 'read') => {
      const r = await sim.dma(dev, { addr: iova, access, pasid });
      const got = r.ok ? hex(r.paddr) : `fault:${r.fault.reason}`;
      steps.push({ step, got, want: hex(want) });
      log(`  ${step}: ${access} ${hex(iova)} → ${got}`);
    };

    await dma('nested DMA', 0x1000_0010n, (hpa(0x20_0000n) ?? 0n) + 0x10n);

    // A page fault through the fault object.
    const pending = dma('after page fault', 0x1000_1000n, hpa(0x20_1000n), 'write');
    while (fd.faultPending(faultId) === 0) await new Promise((r) => setTimeout(r, 2));
    const faults = fd.faultRead(faultId, 16);
    log(`fault object: ${faults.length} record(s), cookie ${faults[0].cookie}, addr ${hex(faults[0].addr)}, write=${!!faults[0].perm.write}`);
    s1.map(0x1000_1000n, 0x20_1000n, 0x1000n, { read: true, write: true });
    await fd.faultWrite(faultId, faults.map((f) => ({ cookie: f.cookie, code: 'success' as const })));
    await pending;

    // The guest remaps a page: stale until its invalidation is passed down.
    s1.unmap(0x1000_0000n, 0x1000n);
    s1.map(0x1000_0000n, 0x30_0000n, 0x1000n, { read: true, write: true });
    await dma('stale before invalidate', 0x1000_0000n, hpa(0x20_0000n));
    const { entryNum } = await fd.hwptInvalidate({ hwptId: nested, dataType: 'vtd-s1', entries: [{ addr: 0x1000_0000n, npages: 1n }] });
    await dma('after hwptInvalidate', 0x1000_0000n, hpa(0x30_0000n));

    await fd.close();
    log('iommufd closed: device unbound, objects destroyed, group back to its default domain');
    return { steps, faultsRead: faults.length, invalidatedEntries: entryNum };
  } finally {
    await sim.close();
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const r = await runVmmExample(console.log);
  const bad = r.steps.filter((s) => s.got !== s.want);
  console.log(bad.length === 0 ? 'all DMA steps reached the expected host pages' : `MISMATCH: ${JSON.stringify(bad)}`);
}
