/**
 * Page request queue overflow end to end (SEMANTICS.md §3.4 rules 10 and 12, HARDWARE.md
 * §1.1.4): a burst larger than the queue, the IOMMU's SUCCESS answer to lost last-in-group
 * requests and the device's retry, discarded partials, Stop Markers, and a randomized
 * check over many fault storms that every page request is answered exactly once or
 * counted as lost to a modelled overflow.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type PageRequestGroup, Simulator, type SimEvent, type WorkerStats } from 'iommu-sim';
import { filter, firstValueFrom } from 'rxjs';
import { Rng, within } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function workerStats(s: Simulator): Promise<WorkerStats[]> {
  return (await s.stats()).iommus;
}

describe('a burst larger than the page request queue', () => {
  it('serves every faulting DMA: lost requests are answered SUCCESS by the IOMMU and the device retries after the overflow clears', async () => {
    sim = await Simulator.start({ topology: { iommus: [{ queues: { pageRequest: 16 } }], devices: [{ bdf: '0000:01:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 256n * 4096n, prot: RW });
    const pasid = sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(dev, mm));
    const overflows: SimEvent[] = [];
    const sub = sim.events$.subscribe((e) => { if (e.type === 'overflow') overflows.push(e); });
    const res = await sim.dmaBatch(dev, Array.from({ length: 256 }, (_, k) => ({ addr: va + BigInt(k) * 4096n, access: 'write' as const, pasid })));
    sub.unsubscribe();
    expect(res.filter((r) => r.ok)).toHaveLength(256);
    for (let k = 0; k < 256; k++) expect(mm.physOf(va + BigInt(k) * 4096n)).toBeDefined();
    const st = await sim.stats();
    const [w] = st.iommus;
    expect(w.prq.lost).toBeGreaterThan(0);
    expect(w.prq.autoResponses).toBe(w.prq.lost); // every lost request was a device's single-page group
    expect(st.iopf.prqOverflows).toBeGreaterThan(0);
    expect(st.iopf.prqLost).toBe(w.prq.lost);
    expect(overflows.every((e) => e.type === 'overflow' && e.queue === 'page-request' && e.iommu === 0)).toBe(true);
    expect(overflows.reduce((n, e) => n + (e.type === 'overflow' ? e.lost : 0), 0)).toBe(w.prq.lost);
    // Each request that reached the queue formed a group that software answered once.
    expect(st.iopf.requests).toBe(w.prq.requests);
    expect(st.iopf.groups).toBe(w.prq.requests);
    expect(st.iopf.responses).toBe(st.iopf.groups);
    expect(w.descriptors['page-group-response']).toBe(st.iopf.responses);
  });
});

describe('overflow accounting with injected groups', () => {
  it('discards the partial groups of the IOMMU on overflow, before clearing it; a lost last request gets no software response', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: [{ queues: { pageRequest: 4 } }], devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    const groups: PageRequestGroup[] = [];
    sim.iommu.registerDeviceFaultHandler(dev, (f) => { if (f.type === 'page-request') groups.push(f.group); });
    const r = (grpid: number, last: boolean, page: number) => ({ pasid: 2, grpid, last, addr: BigInt(page) * 4096n, perm: { read: true } });
    const out = await sim.test.injectPageRequests(dev, [
      r(7, false, 1), r(1, true, 2), r(2, true, 3), r(3, true, 4), // fill the 4-deep queue
      r(7, false, 5), r(7, true, 6), r(8, true, 7), // lost to the overflow
    ]);
    expect(out.map((o) => o.dropped)).toEqual([false, false, false, false, true, true, true]);
    expect(groups.map((g) => g.grpid)).toEqual([1, 2, 3]);
    const st = await sim.stats();
    expect(st.iopf).toMatchObject({ requests: 4, groups: 3, prqOverflows: 1, prqLost: 3, partialsDiscarded: 1 });
    expect(st.iommus[0].prq).toMatchObject({ requests: 4, lost: 3, autoResponses: 2 });
    // Group 7's first page was discarded: its next last page forms a group of one.
    expect((await sim.test.injectPageRequest(dev, r(7, true, 9))).dropped).toBe(false);
    expect(groups.at(-1)!.faults.map((f) => f.addr)).toEqual([9n * 4096n]);
    for (const g of groups) await sim.iommu.pageResponse(dev, { pasid: 2, grpid: g.grpid, code: 'success' });
    expect((await sim.stats()).iopf.responses).toBe(4);
  });

  it('drops Stop Markers without a response and without a group', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    const groups: PageRequestGroup[] = [];
    const sub = sim.pageRequestsOf$(dev).subscribe((g) => groups.push(g));
    const answered = firstValueFrom(sim.events$.pipe(filter((e) => e.type === 'page-response')));
    expect((await sim.test.injectPageRequest(dev, { pasid: 5, stopMarker: true })).dropped).toBe(false);
    await sim.test.injectPageRequest(dev, { pasid: 5, grpid: 1, last: true, addr: 0x1000n, perm: { read: true } });
    sub.unsubscribe();
    expect(groups.map((g) => g.grpid)).toEqual([1]); // the stop marker formed no group
    expect(await within(answered, 10_000, 'page response')).toMatchObject({ type: 'page-response', dev, pasid: 5, grpid: 1, code: 'invalid' });
    const st2 = await sim.stats();
    expect(st2.iopf).toMatchObject({ requests: 2, groups: 1, responses: 1, stopMarkers: 1 }); // only the group was answered (INVALID: no domain)
    expect(st2.iommus[0].prq.stopMarkers).toBe(1);
    expect(st2.iommus[0].descriptors['page-group-response']).toBe(1);
  });

  it('treats R=W=0 with LPIG but without a PASID as a page request, not a Stop Marker', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    const answered = firstValueFrom(sim.events$.pipe(filter((e) => e.type === 'page-response')));
    await sim.test.injectPageRequest(dev, { grpid: 3, last: true, addr: 0x1000n, perm: {} });
    expect(await within(answered, 10_000, 'page response')).toMatchObject({ grpid: 3, code: 'invalid' });
    expect((await within(answered, 10_000, 'page response')) as object).not.toHaveProperty('pasid');
    expect((await sim.stats()).iopf).toMatchObject({ groups: 1, stopMarkers: 0, responses: 1 }); // no domain handler: INVALID
  });

  it('rejects a Stop Marker without a PASID and a bad group index with EINVAL', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }] } });
    const dev = sim.topology.devices[0];
    await expect(sim.test.injectPageRequest(dev, { stopMarker: true })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(sim.test.injectPageRequest(dev, { grpid: 512, last: true })).rejects.toMatchObject({ code: 'EINVAL' });
    expect((await sim.stats()).iopf.requests).toBe(0);
  });
});

describe('randomized fault storms', () => {
  it('answers every page request exactly once or counts it as lost to a modelled overflow; every DMA completes with the right outcome', async () => {
    let overflowsSeen = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const rng = new Rng(seed);
      const prqDepth = [4, 8, 16][rng.int(3)];
      const s = await Simulator.start({
        testHooks: true,
        topology: {
          iommus: [{ queues: { pageRequest: prqDepth } }, { queues: { pageRequest: prqDepth } }],
          devices: [
            { bdf: '0000:01:00.0', iommu: 0, pri: true }, { bdf: '0000:02:00.0', iommu: 0, pri: true },
            { bdf: '0000:03:00.0', iommu: 1, pri: true }, { bdf: '0000:04:00.0', iommu: 1, pri: true },
          ],
        },
      });
      sim = s;
      const [d0, d1, d2, d3] = s.topology.devices;
      // d0..d2 are SVA-bound; d3 sends injected multi-page groups to a handler that answers later.
      const mm = s.mm.create();
      const pages = 64;
      const rw = mm.mmap({ length: BigInt(pages) * 4096n, prot: RW });
      const ro = mm.mmap({ length: BigInt(pages) * 4096n, prot: { read: true } });
      const pasid = s.iommu.svaGetPasid(await s.iommu.svaBindDevice(d0, mm));
      await s.iommu.svaBindDevice(d1, mm);
      await s.iommu.svaBindDevice(d2, mm);
      const held: PageRequestGroup[] = [];
      s.iommu.registerDeviceFaultHandler(d3, (f) => { if (f.type === 'page-request') held.push(f.group); });
      const expected = new Map<string, boolean>();
      const dmaJobs: Promise<void>[] = [];
      let injectedLastLost = 0;
      let injectedLast = 0;
      for (let round = 0; round < 6; round++) {
        for (const dev of [d0, d1, d2]) {
          const n = 1 + rng.int(40);
          const reqs = Array.from({ length: n }, () => {
            const inRo = rng.chance(0.3);
            const page = BigInt(rng.int(pages));
            const write = rng.chance(0.5);
            const outside = rng.chance(0.05);
            const addr = outside ? 0x7000_0000_0000n + page * 4096n : (inRo ? ro : rw) + page * 4096n;
            return { addr, access: (write ? 'write' : 'read') as 'write' | 'read', pasid, ok: !outside && !(inRo && write) };
          });
          dmaJobs.push(s.dmaBatch(dev, reqs).then((res) => {
            res.forEach((r, i) => {
              const k = `${dev.bdf}:${round}:${i}`;
              expected.set(k, r.ok === reqs[i].ok);
            });
          }));
        }
        const grp = rng.int(512);
        const len = 1 + rng.int(4);
        const out = await s.test.injectPageRequests(d3, Array.from({ length: len }, (_, i) => ({
          pasid: 9, grpid: grp, last: i === len - 1, addr: BigInt(i) * 4096n, perm: { read: true },
        })));
        injectedLast++;
        if (out.at(-1)!.dropped) injectedLastLost++;
        if (rng.chance(0.5)) for (const g of held.splice(0)) await s.iommu.pageResponse(d3, { pasid: 9, grpid: g.grpid, code: 'success' });
      }
      await Promise.all(dmaJobs);
      for (const g of held.splice(0)) await s.iommu.pageResponse(d3, { pasid: 9, grpid: g.grpid, code: 'success' });
      expect([...expected.values()].every(Boolean), `seed ${seed}: a DMA ended with the wrong outcome`).toBe(true);
      const st = await s.stats();
      const ws = await workerStats(s);
      const sum = (f: (w: WorkerStats) => number) => ws.reduce((a, w) => a + f(w), 0);
      // Nothing lost silently: what the IOMMUs wrote is what software took in; what they dropped was reported.
      expect(st.iopf.requests, `seed ${seed}`).toBe(sum((w) => w.prq.requests));
      expect(st.iopf.prqLost, `seed ${seed}`).toBe(sum((w) => w.prq.lost));
      // Exactly one answer per group: software answered each group once, the hardware answered each lost last request.
      expect(st.iopf.responses, `seed ${seed}`).toBe(st.iopf.groups);
      expect(sum((w) => w.descriptors['page-group-response'] ?? 0), `seed ${seed}`).toBe(st.iopf.responses);
      expect(sum((w) => w.prq.autoResponses)).toBeLessThanOrEqual(st.iopf.prqLost);
      expect(injectedLast - injectedLastLost).toBeLessThanOrEqual(st.iopf.groups);
      overflowsSeen += st.iopf.prqOverflows;
      await s.close();
      sim = undefined;
    }
    expect(overflowsSeen, 'the storms must overflow the queues for this test to mean anything').toBeGreaterThan(0);
  });
});
