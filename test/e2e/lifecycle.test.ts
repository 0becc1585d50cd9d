/**
 * End to end: the simulator's life cycle and its queues under stress — a worker that
 * crashes or hangs with work pending, close() (idempotent, completes the streams, no
 * worker left, later calls fail with EIO), the 'invalidation-complete' events of a strict
 * unmap, and back-pressure on a short DMA ring and a short command ring.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { Simulator, SimError, type Device, type DmaRequestSpec, type DmaResult, type SimEvent, type SimulatorOptions } from 'iommu-sim';
import { FR } from '../../shared/layout/fault-record.js';
import { closeSim, expectRejectsCode, expectThrowsCode, liveMessagePorts, messagePortsBackTo, settledMessagePorts, within } from './helpers.js';

const RW = { read: true, write: true };

let sim: Simulator | undefined;

afterEach(async () => {
  await closeSim(sim);
  sim = undefined;
});

async function start(o: Partial<SimulatorOptions> & Pick<SimulatorOptions, 'topology'>): Promise<Simulator> {
  sim = await Simulator.start({ testHooks: true, ...o });
  return sim;
}

/** Resolves with the exit code once the worker thread has exited. */
function exited(w: Worker): Promise<number> {
  return new Promise((res) => w.once('exit', res));
}

function workers(s: Simulator): Worker[] {
  return Array.from({ length: s.configs.length }, (_, i) => s.handle(i).host.worker);
}

/** Settles every promise within `ms` (a hang fails the test) and returns their outcomes. */
function settleAll(ps: Promise<unknown>[], ms: number, what: string) {
  return within(Promise.allSettled(ps), ms, what);
}

function expectAllRejected(outcomes: PromiseSettledResult<unknown>[], code: string): SimError[] {
  return outcomes.map((o, i) => {
    expect(o.status, `pending call #${i} settled as ${o.status}`).toBe('rejected');
    const e = (o as PromiseRejectedResult).reason;
    expect(e, `pending call #${i}`).toBeInstanceOf(SimError);
    expect((e as SimError).code, `pending call #${i}: ${(e as Error).message}`).toBe(code);
    return e as SimError;
  });
}

const reqs = (n: number, base: bigint): DmaRequestSpec[] =>
  Array.from({ length: n }, (_, i) => ({ addr: base + BigInt(i % 512) * 0x1000n, access: 'read' as const }));

/** A domain with many PASID attachments of one ATS device: each unmap needs 2 descriptors per attachment. */
async function manyPasids(s: Simulator, dev: Device, n: number) {
  const dom = s.iommu.domainAlloc('paging');
  await s.iommu.attachDevice(dom, dev);
  for (let p = 1; p <= n; p++) await s.iommu.attachDevicePasid(dom, dev, p);
  return dom;
}

describe('a worker that crashes', () => {
  it('rejects every pending DMA and unmap with EIO, fails later calls, closes and leaves no worker', async () => {
    const s = await start({
      topology: {
        iommus: [{ queues: { dma: 64, command: 8 } }, { queues: { dma: 64 } }],
        devices: [{ bdf: '0000:03:00.0', iommu: 0, ats: true }, { bdf: '0000:83:00.0', iommu: 1 }],
      },
    });
    const [d0, d1] = s.topology.devices;
    const dom = await manyPasids(s, d0, 40); // an unmap needs ~80 descriptors on IOMMU 0's 8-deep queue
    await s.iommu.attachDevice(dom, d1);
    await s.iommu.map(dom, 0x10_0000n, 0x4000_0000n, 0x20_0000n, RW);
    expect((await s.dma(d0, { addr: 0x10_0000n, access: 'read' })).ok).toBe(true);
    const exits = workers(s).map(exited);
    const completed: string[] = [];
    const sub = s.events$.subscribe({ complete: () => completed.push('events$') });
    const subF = s.faults$.subscribe({ complete: () => completed.push('faults$') });

    // Work that cannot finish before the crash: batches far deeper than the 64-entry rings
    // on both IOMMUs (the coordinator must refill them many times) and an unmap whose flush
    // needs ten refills of IOMMU 0's 8-deep command queue.
    const pending: Promise<unknown>[] = [
      s.dmaBatch(d0, reqs(20_000, 0x10_0000n)),
      s.dmaBatch(d1, reqs(100_000, 0x10_0000n)),
      s.iommu.unmap(dom, 0x10_0000n, 0x20_0000n),
    ];
    // A single DMA issued just before the crash may or may not be served first; it must
    // settle either way: translated correctly, or rejected with EIO.
    const racing = s.dma(d0, { addr: 0x10_0008n, access: 'write' });
    s.test.crashWorker(0);
    const errs = expectAllRejected(await settleAll(pending, 10_000, 'pending calls after a crash'), 'EIO');
    for (const e of errs) expect(e.reason).toBe('worker-crashed');
    const [single] = await settleAll([racing], 10_000, 'a DMA racing the crash');
    if (single.status === 'fulfilled') expect(single.value).toMatchObject({ ok: true, paddr: 0x4000_0008n });
    else expect(single.reason).toMatchObject({ code: 'EIO' });

    // Later calls fail with a clear error instead of hanging.
    expect((await expectRejectsCode(s.dma(d1, { addr: 0x10_0000n, access: 'read' }), 'EIO')).reason).toBe('worker-crashed');
    await expectRejectsCode(s.iommu.map(dom, 0x8000_0000n, 0x1000n, 0x1000n, RW), 'EIO');
    await expectRejectsCode(s.iommu.unmap(dom, 0x10_0000n, 0x1000n), 'EIO');
    expectThrowsCode(() => s.iommu.domainAlloc('paging'), 'EIO');
    await expectRejectsCode(s.stats(), 'EIO');

    await within(s.close(), 10_000, 'close after a crash');
    const codes = await within(Promise.all(exits), 5000, 'worker exit events');
    expect(codes[0]).not.toBe(0); // the crashed worker died with an error
    for (const w of workers(s)) expect(w.threadId).toBe(-1);
    expect(completed.sort()).toEqual(['events$', 'faults$']);
    sub.unsubscribe();
    subF.unsubscribe();
  });

  it('shuts itself down when the crash happens while idle (close() is still safe to call)', async () => {
    const before = await settledMessagePorts();
    const s = await start({ topology: { iommus: 2, devices: [{ bdf: '0000:03:00.0' }] } });
    expect(liveMessagePorts()).toBe(before + 2);
    const exits = workers(s).map(exited);
    s.test.crashWorker(1);
    await within(Promise.all(exits), 5000, 'both workers exit after one crashed');
    await expectRejectsCode(s.dma(s.topology.devices[0], { addr: 0n, access: 'read' }), 'EIO');
    await within(s.close(), 5000, 'close');
    expect(await messagePortsBackTo(before)).toBe(before);
  });
});

describe('a worker that hangs', () => {
  it('rejects pending calls with ETIMEDOUT after hostTimeoutMs, and close() completes', async () => {
    const s = await start({
      hostTimeoutMs: 500,
      topology: {
        iommus: [{ queues: { dma: 64, command: 8 } }, {}],
        devices: [{ bdf: '0000:03:00.0', iommu: 0, ats: true }, { bdf: '0000:83:00.0', iommu: 1 }],
      },
    });
    const [d0, d1] = s.topology.devices;
    const dom = await manyPasids(s, d0, 40);
    await s.iommu.attachDevice(dom, d1);
    await s.iommu.map(dom, 0x10_0000n, 0x4000_0000n, 0x20_0000n, RW);
    const exits = workers(s).map(exited);
    s.test.hangWorker(0);
    const t0 = performance.now();
    // Posted after the hang: a batch deeper than the ring, a DMA queued behind it and an
    // unmap whose flush needs more than the 8-deep command queue. None can complete.
    const pending: Promise<unknown>[] = [
      s.dmaBatch(d0, reqs(5_000, 0x10_0000n)),
      s.dma(d0, { addr: 0x10_0000n, access: 'read' }),
      s.iommu.unmap(dom, 0x10_0000n, 0x20_0000n),
    ];
    const errs = expectAllRejected(await settleAll(pending, 10_000, 'pending calls on a hung worker'), 'ETIMEDOUT');
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(5_000);
    for (const e of errs) expect(e.reason).toBe('worker-not-answering');
    expect((await expectRejectsCode(s.dma(d1, { addr: 0x10_0000n, access: 'read' }), 'ETIMEDOUT')).reason).toBe('worker-not-answering');
    await within(s.close(), 10_000, 'close with a hung worker');
    await within(Promise.all(exits), 5000, 'worker exit events');
    for (const w of workers(s)) expect(w.threadId).toBe(-1);
  });

  it('does not time out a worker that was idle longer than hostTimeoutMs when work arrives', async () => {
    // IOMMU 0 is kept busy, so the coordinator's watchdog looks at IOMMU 1 right after each
    // request; IOMMU 1 idles past hostTimeoutMs between its requests. Its clock must start
    // when a request arrives, not at the last completion.
    const s = await start({ hostTimeoutMs: 150, topology: { iommus: 2, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:83:00.0', iommu: 1 }] } });
    const [d0, d1] = s.topology.devices;
    const dom = s.iommu.domainAlloc('paging');
    await s.iommu.attachDevice(dom, d0);
    await s.iommu.attachDevice(dom, d1);
    await s.iommu.map(dom, 0x1000n, 0x2000n, 0x1000n, RW);
    let stop = false;
    let busyBatches = 0;
    const busy = (async () => {
      while (!stop) {
        await s.dmaBatch(d0, Array.from({ length: 256 }, () => ({ addr: 0x1000n, access: 'read' as const })));
        busyBatches++;
      }
    })();
    try {
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const r = await within(s.dma(d1, { addr: 0x1008n, access: 'read' }), 5000, `dma #${i} after idling`);
        expect(r.ok && r.paddr, `dma #${i} after idling`).toBe(0x2008n);
      }
    } finally {
      stop = true;
      await within(busy, 5000, 'background DMA');
    }
    expect(busyBatches).toBeGreaterThan(0);
  });
});

describe('close()', () => {
  it('is idempotent, completes faults$ and events$, and later API calls fail with EIO', async () => {
    const before = await settledMessagePorts();
    const s = await start({ topology: { iommus: 2, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:83:00.0', iommu: 1 }] } });
    const [d0] = s.topology.devices;
    const dom = s.iommu.domainAlloc('paging');
    await s.iommu.attachDevice(dom, d0);
    await s.iommu.map(dom, 0x1000n, 0x2000n, 0x1000n, RW);
    const exits = workers(s).map(exited);
    const done = { faults: 0, events: 0, devFaults: 0 };
    const errors: unknown[] = [];
    s.faults$.subscribe({ complete: () => done.faults++, error: (e) => errors.push(e) });
    s.events$.subscribe({ complete: () => done.events++, error: (e) => errors.push(e) });
    s.faultsOf$(d0).subscribe({ complete: () => done.devFaults++, error: (e) => errors.push(e) });

    const c1 = s.close();
    const c2 = s.close();
    await within(Promise.all([c1, c2]), 10_000, 'close twice');
    await within(s.close(), 5000, 'close a third time, after the first completed');
    expect(done).toEqual({ faults: 1, events: 1, devFaults: 1 });
    expect(errors).toEqual([]);
    await within(Promise.all(exits), 5000, 'worker exit events');
    for (const w of workers(s)) expect(w.threadId).toBe(-1);
    expect(await messagePortsBackTo(before)).toBe(before);

    expect((await expectRejectsCode(s.dma(d0, { addr: 0x1000n, access: 'read' }), 'EIO')).reason).toBe('simulator-closed');
    await expectRejectsCode(s.dmaBatch(d0, [{ addr: 0x1000n, access: 'read' }]), 'EIO');
    await expectRejectsCode(s.iommu.map(dom, 0x5000n, 0x2000n, 0x1000n, RW), 'EIO');
    await expectRejectsCode(s.iommu.unmap(dom, 0x1000n, 0x1000n), 'EIO');
    await expectRejectsCode(s.iommu.attachDevice(dom, s.topology.devices[1]), 'EIO');
    await expectRejectsCode(s.iommu.attachDevicePasid(dom, d0, 3), 'EIO');
    await expectRejectsCode(s.stats(), 'EIO');
    await expectRejectsCode(s.test.iotlbEntries(0), 'EIO');
    expectThrowsCode(() => s.iommu.domainAlloc('paging'), 'EIO');
  });

  it('rejects DMA still in flight with EIO rather than leaving it pending', async () => {
    const s = await start({ topology: { iommus: [{ queues: { dma: 64 } }], devices: [{ bdf: '0000:03:00.0' }] } });
    const [d0] = s.topology.devices;
    const dom = s.iommu.domainAlloc('paging');
    await s.iommu.attachDevice(dom, d0);
    await s.iommu.map(dom, 0x10_0000n, 0x4000_0000n, 0x20_0000n, RW);
    const big = s.dmaBatch(d0, reqs(50_000, 0x10_0000n));
    const closing = s.close();
    expectAllRejected(await settleAll([big], 10_000, 'DMA batch pending at close'), 'EIO');
    await within(closing, 10_000, 'close');
  });
});

describe('invalidation-complete events', () => {
  it('emits one per IOMMU an unmap flushed, with a positive modelledNs, before unmap resolves', async () => {
    const s = await start({
      topology: {
        iommus: 2,
        devices: [{ bdf: '0000:03:00.0', iommu: 0, ats: true }, { bdf: '0000:83:00.0', iommu: 1 }, { bdf: '0000:84:00.0', iommu: 1 }],
      },
    });
    const [d0, d1, d2] = s.topology.devices;
    const both = s.iommu.domainAlloc('paging');
    const only1 = s.iommu.domainAlloc('paging', { stage: 'second' });
    await s.iommu.attachDevice(both, d0);
    await s.iommu.attachDevice(both, d1);
    await s.iommu.attachDevice(only1, d2);
    await s.iommu.map(both, 0x1000n, 0x9000n, 0x4000n, RW);
    await s.iommu.map(only1, 0x1000n, 0x9000n, 0x4000n, RW);
    const events: SimEvent[] = [];
    const sub = s.events$.subscribe((e) => events.push(e));
    const inv = () => events.filter((e): e is Extract<SimEvent, { type: 'invalidation-complete' }> => e.type === 'invalidation-complete');
    try {
      expect(await s.iommu.unmap(both, 0x1000n, 0x2000n)).toBe(0x2000n);
      const a = inv();
      expect(a.map((e) => e.iommu).sort()).toEqual([0, 1]);
      for (const e of a) {
        expect(e.kind).toBe('unmap');
        expect(e.modelledNs).toBeGreaterThan(0);
        expect(e.hostNs).toBeGreaterThan(0);
      }
      // IOMMU 0 also flushed the ATS device's TLB, which costs more modelled time.
      expect(a.find((e) => e.iommu === 0)!.modelledNs).toBeGreaterThan(a.find((e) => e.iommu === 1)!.modelledNs);

      events.length = 0;
      expect(await s.iommu.unmap(only1, 0x1000n, 0x1000n)).toBe(0x1000n);
      expect(inv().map((e) => [e.iommu, e.kind])).toEqual([[1, 'unmap']]);
      expect(inv()[0].modelledNs).toBeGreaterThan(0);

      events.length = 0;
      expect(await s.iommu.unmap(both, 0x100_0000n, 0x1000n)).toBe(0n); // nothing there: nothing to flush
      expect(inv()).toEqual([]);
    } finally {
      sub.unsubscribe();
    }
  });
});

describe('back-pressure', () => {
  it('completes 5000 DMAs through a 64-deep DMA ring in order, nothing lost', async () => {
    const s = await start({
      topology: {
        iommus: [{ queues: { dma: 64 } }, { queues: { dma: 64 } }],
        devices: [{ bdf: '0000:03:00.0', iommu: 0 }, { bdf: '0000:03:00.1', iommu: 0, ats: true }, { bdf: '0000:83:00.0', iommu: 1 }],
      },
    });
    const devs = s.topology.devices;
    const dom = s.iommu.domainAlloc('paging');
    for (const d of devs) await s.iommu.attachDevice(dom, d);
    // 4 MiB mapped as 4 KiB pages with scattered paddrs; every 7th request hits a hole.
    const pa = (page: number) => 0x10_0000_0000n + BigInt((page * 7919) % 4096) * 0x1000n;
    for (let p = 0; p < 1024; p++) await s.iommu.map(dom, BigInt(p) * 0x1000n, pa(p), 0x1000n, RW);
    const N = 5000;
    const batch = (salt: number): DmaRequestSpec[] => Array.from({ length: N }, (_, i) => {
      const page = (i * 31 + salt) % 1024;
      const hole = i % 7 === 3;
      return { addr: (hole ? 0x100_0000n : 0n) + BigInt(page) * 0x1000n + BigInt(i % 4096), access: i % 2 ? 'write' : 'read' };
    });
    const batches = devs.map((_, k) => batch(k * 13));
    // Two batches share IOMMU 0's ring, one runs on IOMMU 1, plus single DMAs in between.
    const singles = Array.from({ length: 20 }, (_, i) => s.dma(devs[i % 3], { addr: BigInt(i) * 0x1000n + 5n, access: 'read' }));
    // A few hundred ms here; a producer or consumer that only wakes on its 1 s sleep timeout
    // (a lost wake-up) would take tens of seconds.
    const results = await within(Promise.all(devs.map((d, k) => s.dmaBatch(d, batches[k]))), 8_000, 'three 5000-request batches');
    const singleResults = await within(Promise.all(singles), 10_000, 'single DMAs');
    results.forEach((res: DmaResult[], k) => {
      expect(res.length).toBe(N);
      res.forEach((r, i) => {
        const { addr } = batches[k][i];
        if (i % 7 === 3) {
          expect(r.ok ? `ok 0x${r.paddr.toString(16)}` : r.fault.code, `batch ${k} #${i}`).toBe(FR.FS_PTE_NOT_PRESENT);
          if (!r.ok) expect(r.fault.addr).toBe(addr);
        } else {
          const want = pa(Number(addr >> 12n)) + (addr & 0xfffn);
          expect(r.ok ? `0x${r.paddr.toString(16)}` : `fault ${r.fault.code}`, `batch ${k} #${i}`).toBe(`0x${want.toString(16)}`);
        }
      });
    });
    singleResults.forEach((r, i) => expect(r.ok && r.paddr, `single ${i}`).toBe(pa(i) + 5n));
    const st = await s.stats();
    // Every request reached an IOMMU exactly once: two batches + 14 singles on IOMMU 0, one + 6 on IOMMU 1.
    expect(st.iommus[0].dma).toBe(2 * N + 14);
    expect(st.iommus[1].dma).toBe(N + 6);
  });

  it('completes an unmap whose flush needs more descriptors than an 8-deep command queue holds', async () => {
    const s = await start({
      topology: {
        iommus: [{ queues: { command: 8 } }, { queues: { command: 8 } }],
        devices: [{ bdf: '0000:03:00.0', iommu: 0, ats: true }, { bdf: '0000:83:00.0', iommu: 1, ats: true }],
      },
    });
    const [d0, d1] = s.topology.devices;
    const P = 24;
    const dom = await manyPasids(s, d0, P);
    await s.iommu.attachDevice(dom, d1);
    for (let p = 1; p <= P; p++) await s.iommu.attachDevicePasid(dom, d1, p);
    await s.iommu.map(dom, 0x40_0000n, 0x8000_0000n, 0x4000n, RW);
    await s.iommu.map(dom, 0x80_0000n, 0x9000_0000n, 0x20_0000n, RW);
    const everyone = (addr: bigint) => [d0, d1].map((d) => s.dmaBatch(d, [
      { addr, access: 'read' }, ...Array.from({ length: P }, (_, i) => ({ addr, access: 'read' as const, pasid: i + 1 })),
    ]));
    for (const addr of [0x40_1000n, 0x80_0000n]) {
      for (const res of await Promise.all(everyone(addr))) for (const r of res) expect(r.ok).toBe(true); // warm
    }
    const before = await s.stats();
    // Two unmaps at once on each IOMMU: 2 × (25 IOTLB + 25 device-TLB descriptors + a wait) through 8 slots.
    const [a, b] = await within(Promise.all([s.iommu.unmap(dom, 0x40_0000n, 0x4000n), s.iommu.unmap(dom, 0x80_0000n, 0x20_0000n)]), 20_000, 'unmaps through an 8-deep command queue');
    expect(a).toBe(0x4000n);
    expect(b).toBe(0x20_0000n);
    const after = await s.stats();
    for (const i of [0, 1]) {
      const n = (st: typeof before, k: string) => st.iommus[i].descriptors[k] ?? 0;
      expect(n(after, 'pasid-iotlb') - n(before, 'pasid-iotlb'), `IOMMU ${i} PASID-IOTLB descriptors`).toBe(2 * (P + 1));
      expect(n(after, 'pasid-device-tlb') + n(after, 'device-tlb') - n(before, 'pasid-device-tlb') - n(before, 'device-tlb')).toBe(2 * (P + 1));
      expect(after.iommus[i].waits - before.iommus[i].waits).toBe(2);
    }
    for (const addr of [0x40_1000n, 0x80_0000n, 0x81_f000n]) {
      for (const res of await Promise.all(everyone(addr))) {
        for (const r of res) expect(r.ok ? 'translated' : r.fault.code).toBe(FR.FS_PTE_NOT_PRESENT);
      }
    }
  });
});
