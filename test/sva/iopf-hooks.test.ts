/**
 * I/O page-fault groups and the test hooks that raise hardware events (SEMANTICS.md §3.4):
 * partial requests, one response per group, sticky errors in the SVA handler, the iopf
 * queue's discard-partial and remove-device, injected unrecoverable faults.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PageRequestGroup, Simulator, type FaultRecord } from 'iommu-sim';
import { filter, firstValueFrom } from 'rxjs';
import { expectRejectsCode, within } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start() {
  sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
  return { sim, dev: sim.topology.devices[0] };
}

describe('page-request groups', () => {
  it('keep requests without LAST_PAGE as partials and deliver the whole group at its last page, answered once', async () => {
    const { sim, dev } = await start();
    const groups: PageRequestGroup[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => { if (f.type === 'page-request') groups.push(f.group); });
    await sim.test.injectPageRequest(dev, { pasid: 3, grpid: 5, last: false, addr: 0x1000n, perm: { read: true } });
    await sim.test.injectPageRequest(dev, { pasid: 3, grpid: 5, last: false, addr: 0x2000n, perm: { read: true } });
    expect(groups).toHaveLength(0);
    await sim.test.injectPageRequest(dev, { pasid: 3, grpid: 5, last: true, addr: 0x3000n, perm: { write: true } });
    expect(groups).toHaveLength(1);
    expect(groups[0].faults.map((f) => f.addr)).toEqual([0x1000n, 0x2000n, 0x3000n]);
    expect(groups[0]).toMatchObject({ dev, pasid: 3, grpid: 5 });
    await sim.iommu.pageResponse(dev, { pasid: 3, grpid: 5, code: 'success' });
    await expectRejectsCode(sim.iommu.pageResponse(dev, { pasid: 3, grpid: 5, code: 'success' }), 'EINVAL');
  });

  it('stop at the first fault the SVA handler cannot serve (sticky errors) and answer INVALID', async () => {
    const { sim, dev } = await start();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x2000n, prot: RW });
    await sim.iommu.svaBindDevice(dev, mm);
    const answers: string[] = [];
    const sub = sim.events$.subscribe((e) => { if (e.type === 'page-request') answers.push('request'); });
    await sim.test.injectPageRequest(dev, { pasid: 1, grpid: 9, last: false, addr: va, perm: { write: true } });
    await sim.test.injectPageRequest(dev, { pasid: 1, grpid: 9, last: false, addr: 0x10_0000_0000n, perm: { read: true } });
    await sim.test.injectPageRequest(dev, { pasid: 1, grpid: 9, last: true, addr: va + 0x1000n, perm: { read: true } });
    sub.unsubscribe();
    expect(answers).toEqual(['request']);
    expect(mm.physOf(va)).toBeDefined(); // served before the error
    expect(mm.physOf(va + 0x1000n)).toBeUndefined(); // not served after it
    await new Promise((r) => setTimeout(r, 10));
    await expectRejectsCode(sim.iommu.pageResponse(dev, { pasid: 1, grpid: 9, code: 'success' }), 'EINVAL'); // already answered
  });
});

describe('the iopf queue hooks', () => {
  it('discard partial groups without answering (iopf_queue_discard_partial)', async () => {
    const { sim, dev } = await start();
    const groups: PageRequestGroup[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => { if (f.type === 'page-request') groups.push(f.group); });
    await sim.test.injectPageRequest(dev, { grpid: 2, last: false, addr: 0x1000n, perm: { read: true } });
    expect(sim.test.iopfQueueDiscardPartial(0)).toBe(1);
    await sim.test.injectPageRequest(dev, { grpid: 2, last: true, addr: 0x2000n, perm: { read: true } });
    expect(groups[0].faults.map((f) => f.addr)).toEqual([0x2000n]);
  });

  it('answer INVALID to every pending group of a removed device (iopf_queue_remove_device)', async () => {
    const { sim, dev } = await start();
    sim.iommu.registerDeviceFaultHandler(dev, () => {}); // holds every group
    await sim.test.injectPageRequest(dev, { grpid: 4, last: true, addr: 0x1000n, perm: { read: true } });
    await sim.test.iopfQueueRemoveDevice(dev);
    await expectRejectsCode(sim.iommu.pageResponse(dev, { grpid: 4, code: 'success' }), 'EINVAL');
  });

  it('answer INVALID without a handler while a device is out of its queue, and deliver again once it is added back (iopf_queue_add_device)', async () => {
    const { sim, dev } = await start();
    const groups: PageRequestGroup[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => { if (f.type === 'page-request') groups.push(f.group); });
    expect(() => sim.test.iopfQueueAddDevice(dev)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    await sim.test.iopfQueueRemoveDevice(dev);
    const answered = firstValueFrom(sim.events$.pipe(filter((e) => e.type === 'page-response')));
    await sim.test.injectPageRequest(dev, { grpid: 1, last: false, addr: 0x1000n, perm: { read: true } });
    await sim.test.injectPageRequest(dev, { grpid: 3, last: true, addr: 0x2000n, perm: { read: true } });
    expect(await within(answered, 10_000, 'the INVALID response')).toMatchObject({ grpid: 3, code: 'invalid' });
    expect(groups).toHaveLength(0);
    sim.test.iopfQueueAddDevice(dev);
    await sim.test.injectPageRequest(dev, { grpid: 1, last: true, addr: 0x3000n, perm: { read: true } });
    expect(groups.map((g) => g.faults.map((f) => f.addr))).toEqual([[0x3000n]]); // the earlier partial was dropped
  });

  it('refuse to add a device without PRI to an iopf queue (ENODEV)', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0' }] } });
    expect(() => sim!.test.iopfQueueAddDevice(sim!.topology.devices[0])).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });

  it('inject an unrecoverable fault that reaches faults$ and the device handler', async () => {
    const { sim, dev } = await start();
    const seen: FaultRecord[] = [];
    const got: string[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => got.push(f.type));
    const sub = sim.faults$.subscribe((f) => seen.push(f));
    await sim.test.injectFault(dev, { type: 'dma-unrecov', reason: 'permission', pasid: 7, addr: 0x4000n, perm: { write: true } });
    sub.unsubscribe();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ dev, reason: 'permission', pasid: 7, addr: 0x4000n, perm: { write: true } });
    expect(got).toEqual(['fault']);
  });
});

describe('PASID teardown', () => {
  it('drops the partials and answers the pending groups of a PASID whose domain is detached, so its next owner sees none', async () => {
    const { sim, dev } = await start();
    const d = sim.iommu.domainAlloc('paging', { iopfHandler: () => new Promise(() => {}) }); // never answers
    await sim.iommu.attachDevicePasid(d, dev, 4);
    await sim.test.injectPageRequest(dev, { pasid: 4, grpid: 1, last: true, addr: 0x1000n, perm: { read: true } });
    await sim.test.injectPageRequest(dev, { pasid: 4, grpid: 2, last: false, addr: 0x2000n, perm: { read: true } });
    await sim.iommu.detachDevicePasid(d, dev, 4);
    await expectRejectsCode(sim.iommu.pageResponse(dev, { pasid: 4, grpid: 1, code: 'success' }), 'EINVAL');
    // The next owner of PASID 4 gets only its own requests: the old partial of group 2 is gone.
    const groups: PageRequestGroup[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => { if (f.type === 'page-request') groups.push(f.group); });
    await sim.iommu.attachDevicePasid(sim.iommu.domainAlloc('paging'), dev, 4);
    await sim.test.injectPageRequest(dev, { pasid: 4, grpid: 2, last: true, addr: 0x3000n, perm: { read: true } });
    expect(groups.map((g) => g.faults.map((f) => f.addr))).toEqual([[0x3000n]]);
  });
});

describe('the page-response timeout (seed 002, an option)', () => {
  it('fails a group nobody answers in time, and refuses and counts the late answer', async () => {
    sim = await Simulator.start({ testHooks: true, iopfResponseTimeoutMs: 50, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    sim.iommu.registerDeviceFaultHandler(dev, () => {}); // a guest that never answers
    const dma = sim.dma(dev, { addr: 0x5000n, access: 'read' });
    const r = await dma;
    expect(!r.ok && r.fault.recoverable).toBe(true);
    expect((await sim.stats()).iopf.timedOut).toBe(1);
    await expectRejectsCode(sim.iommu.pageResponse(dev, { grpid: 0, code: 'success' }), 'EINVAL');
    expect((await sim.stats()).iopf).toMatchObject({ timedOut: 1, lateResponses: 1, prqOverflows: 0, prqLost: 0 });
  });

  it('lets a handler hold its answer longer than hostTimeoutMs without tripping the worker watchdog', async () => {
    sim = await Simulator.start({ hostTimeoutMs: 200, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW });
    const pasid = sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(dev, mm));
    const held: PageRequestGroup[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => { if (f.type === 'page-request') held.push(f.group); });
    const dma = sim.dma(dev, { addr: va, access: 'write', pasid });
    await new Promise((res) => setTimeout(res, 600)); // three watchdog periods
    expect(held).toHaveLength(1);
    expect(mm.handleFault(va, 'write')).toBe('success');
    await sim.iommu.pageResponse(dev, { pasid, grpid: held[0].grpid, code: 'success' });
    expect((await dma).ok).toBe(true);
  });

  it('is off by default: an unanswered group stays pending', async () => {
    const { sim, dev } = await start();
    sim.iommu.registerDeviceFaultHandler(dev, () => {});
    await sim.test.injectPageRequest(dev, { grpid: 6, last: true, addr: 0x1000n, perm: { read: true } });
    await new Promise((res) => setTimeout(res, 100));
    await sim.iommu.pageResponse(dev, { grpid: 6, code: 'success' }); // still pending
    expect((await sim.stats()).iopf.timedOut).toBe(0);
  });
});
