/**
 * Demand paging through PRI (issue 5's slice): a PRI device's page-table fault becomes a
 * page request, the handler of the domain at (device, PASID) answers it once, and the
 * device retries (SUCCESS) or gives up (INVALID / FAILURE).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator, type SimEvent } from 'iommu-sim';
import { filter, firstValueFrom } from 'rxjs';
import { expectRejectsCode, within } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start() {
  sim = await Simulator.start({ topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true, ats: true }, { bdf: '0000:04:00.0' }] } });
  const [pri, plain] = sim.topology.devices;
  return { sim, pri, plain };
}

describe('SVA demand paging', () => {
  it('populates a page the process never touched when the device faults on it, and the retried DMA completes', async () => {
    const { sim, pri } = await start();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x2000n, prot: RW });
    expect(mm.physOf(va)).toBeUndefined();
    const h = await sim.iommu.svaBindDevice(pri, mm);
    const groups: SimEvent[] = [];
    const sub = sim.events$.subscribe((e) => { if (e.type === 'page-request') groups.push(e); });
    const r = await sim.dma(pri, { addr: va + 0x10n, access: 'write', pasid: sim.iommu.svaGetPasid(h) });
    sub.unsubscribe();
    expect(r.ok).toBe(true);
    expect(mm.physOf(va)).toBeDefined();
    expect(r.ok && r.paddr).toBe(mm.physOf(va + 0x10n));
    expect(groups).toHaveLength(1);
    const g = (groups[0] as Extract<SimEvent, { type: 'page-request' }>).group;
    expect(g.dev).toBe(pri);
    expect(g.pasid).toBe(1);
    expect(g.faults[0]).toMatchObject({ addr: va, perm: { write: true }, last: true });
    // The second page is still untouched; the first one now translates without a request.
    expect(mm.physOf(va + 0x1000n)).toBeUndefined();
    expect((await sim.dma(pri, { addr: va, access: 'read', pasid: 1 })).ok).toBe(true);
  });

  it('answers INVALID for a write to a read-only VMA and for an address outside any VMA: the DMA fails as recoverable', async () => {
    const { sim, pri } = await start();
    const mm = sim.mm.create();
    const ro = mm.mmap({ length: 0x1000n, prot: { read: true } });
    await sim.iommu.svaBindDevice(pri, mm);
    for (const addr of [ro, 0x10_0000_0000n]) {
      const r = await sim.dma(pri, { addr, access: 'write', pasid: 1 });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.fault.recoverable).toBe(true);
      expect(!r.ok && r.fault.recorded).toBe(false);
    }
    expect(mm.physOf(ro)).toBeUndefined();
  });

  it('answers INVALID to a page request that arrives after the process exited', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW });
    const pasid = sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(dev, mm));
    await mm.exit();
    const answered = firstValueFrom(sim.events$.pipe(filter((e) => e.type === 'page-response')));
    await sim.test.injectPageRequest(dev, { pasid, grpid: 4, last: true, addr: va, perm: { write: true } });
    expect(await within(answered, 10_000, 'the response')).toMatchObject({ dev, pasid, grpid: 4, code: 'invalid' });
  });

  it('takes an ordinary fault on a device without PRI: no page request, a recorded fault', async () => {
    const { sim, plain } = await start();
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 0x1000n, prot: RW });
    await sim.iommu.svaBindDevice(plain, mm);
    let requests = 0;
    const sub = sim.pageRequests$.subscribe(() => requests++);
    const r = await sim.dma(plain, { addr: va, access: 'read', pasid: 1 });
    sub.unsubscribe();
    expect(r.ok).toBe(false);
    expect(!r.ok && r.fault).toMatchObject({ recoverable: false, recorded: true, reason: 'pte-fetch' });
    expect(requests).toBe(0);
  });
});

describe('page requests to other domains', () => {
  it('calls a paging domain\'s own iopf handler, which may map the page before answering SUCCESS', async () => {
    const { sim, pri } = await start();
    const d = sim.iommu.domainAlloc('paging', {
      iopfHandler: async (g) => {
        await sim!.iommu.map(d, g.faults[0].addr, 0x7_0000_0000n, 0x1000n, RW);
        return 'success';
      },
    });
    await sim.iommu.attachDevice(d, pri);
    const r = await sim.dma(pri, { addr: 0x5000n, access: 'read' });
    expect(r.ok && r.paddr).toBe(0x7_0000_0000n);
  });

  it('answers INVALID when the domain has no handler', async () => {
    const { sim, pri } = await start();
    const r = await sim.dma(pri, { addr: 0x5000n, access: 'read' }); // its default domain
    expect(!r.ok && r.fault.recoverable).toBe(true);
  });

  it('stops the function\'s page requests after a FAILURE response (PRI disabled): later faults are recorded', async () => {
    const { sim, pri } = await start();
    const d = sim.iommu.domainAlloc('paging', { iopfHandler: () => 'failure' });
    await sim.iommu.attachDevice(d, pri);
    const first = await sim.dma(pri, { addr: 0x5000n, access: 'read' });
    expect(!first.ok && first.fault.recoverable).toBe(true);
    const second = await sim.dma(pri, { addr: 0x6000n, access: 'read' });
    expect(!second.ok && second.fault).toMatchObject({ recoverable: false, recorded: true });
  });

  it('rejects a response to a group that is not pending (EINVAL)', async () => {
    const { sim, pri } = await start();
    await expectRejectsCode(sim.iommu.pageResponse(pri, { grpid: 3, code: 'success' }), 'EINVAL');
  });
});

describe('pending page requests and domain changes', () => {
  it('answers INVALID for a pending group when its domain is detached; the handler\'s late answer is dropped', async () => {
    const { sim, pri } = await start();
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let called!: () => void;
    const reached = new Promise<void>((r) => { called = r; });
    const d = sim.iommu.domainAlloc('paging', { iopfHandler: async () => { called(); await held; return 'success'; } });
    await sim.iommu.attachDevicePasid(d, pri, 4);
    const dma = sim.dma(pri, { addr: 0x5000n, access: 'read', pasid: 4 });
    await reached; // the group is pending in the handler
    await sim.iommu.detachDevicePasid(d, pri, 4);
    const r = await dma;
    expect(!r.ok && r.fault.recoverable).toBe(true);
    release();
    await new Promise((res) => setTimeout(res, 20));
    await expect(sim.iommu.pageResponse(pri, { pasid: 4, grpid: 0, code: 'success' })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('answers INVALID for a pending RID group when the group\'s domain is replaced', async () => {
    const { sim, pri } = await start();
    let called!: () => void;
    const reached = new Promise<void>((r) => { called = r; });
    const d1 = sim.iommu.domainAlloc('paging', { iopfHandler: () => { called(); return new Promise<'success'>(() => {}); } });
    const d2 = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevice(d1, pri);
    const dma = sim.dma(pri, { addr: 0x5000n, access: 'read' });
    await reached;
    await sim.iommu.replaceGroupDomain(pri.group, d2);
    const r = await dma;
    expect(!r.ok && r.fault.recoverable).toBe(true);
  });
});

describe('per-device fault handlers', () => {
  it('receive the device\'s page requests and unrecoverable faults; a group is answered with pageResponse', async () => {
    const { sim, pri, plain } = await start();
    const got: { type: string }[] = [];
    const d = sim.iommu.domainAlloc('paging');
    await sim.iommu.attachDevice(d, pri);
    sim.iommu.registerDeviceFaultHandler(pri, (f, data) => {
      got.push(f);
      expect(data).toBe('cookie');
      if (f.type === 'page-request') {
        void sim!.iommu.map(d, f.group.faults[0].addr, 0x9_0000_0000n, 0x1000n, RW)
          .then(() => sim!.iommu.pageResponse(pri, { pasid: f.group.pasid, grpid: f.group.grpid, code: 'success' }));
      }
    }, 'cookie');
    expect(() => sim.iommu.registerDeviceFaultHandler(pri, () => {})).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    const r = await sim.dma(pri, { addr: 0x5000n, access: 'read' });
    expect(r.ok && r.paddr).toBe(0x9_0000_0000n);
    expect(got.map((f) => f.type)).toEqual(['page-request']);
    // An unrecoverable fault of the device (a supervisor request its PASID entry refuses) reaches it too.
    sim.iommu.registerDeviceFaultHandler(plain, (f) => got.push(f));
    await sim.dma(plain, { addr: 0x5000n, access: 'read' });
    await sim.stats();
    expect(got.map((f) => f.type)).toEqual(['page-request', 'fault']);
  });

  it('answer INVALID to the still-pending groups when unregistered (iopf_queue_remove_device)', async () => {
    const { sim, pri } = await start();
    let seen!: () => void;
    const reached = new Promise<void>((r) => { seen = r; });
    sim.iommu.registerDeviceFaultHandler(pri, () => seen()); // never answers
    const dma = sim.dma(pri, { addr: 0x5000n, access: 'read' });
    await reached;
    await sim.iommu.unregisterDeviceFaultHandler(pri);
    const r = await dma;
    expect(!r.ok && r.fault.recoverable).toBe(true);
    await sim.iommu.unregisterDeviceFaultHandler(pri); // never fails
  });
});
