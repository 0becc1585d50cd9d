/**
 * Modelled results do not depend on the host (DESIGN.md §5, issue 7): the same workload and
 * seed give the same modelled results — every DMA's outcome and modelled time, every event
 * in the order it was handed over, the final counters — over repeated runs, with one
 * worker thread per IOMMU, with `threads: 1` and with `threads: 2`. The workload runs
 * several asynchronous jobs at once (their order of resumption is what host timing would
 * change without the conservative synchronisation): DMA loops on paging domains with
 * unmaps between them, SVA demand paging through small page request queues (overflows
 * included), faults into a small event queue.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator, SZ_4K } from 'iommu-sim';
import { Rng } from './helpers.js';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const RW = { read: true, write: true } as const;

async function run(seed: number, threads: number | undefined, profile: 'vtd' | 'smmuv3' | 'amd' = 'vtd'): Promise<unknown> {
  const rng = new Rng(seed);
  const s = await Simulator.start({
    profile,
    threads,
    topology: {
      iommus: [
        { queues: { pageRequest: 8, event: 8 } },
        { queues: { pageRequest: 8, event: 8 } },
        { queues: { pageRequest: 8, event: 8 } },
      ],
      devices: [
        { bdf: '0000:01:00.0', iommu: 0, ats: true }, { bdf: '0000:02:00.0', iommu: 1 },
        { bdf: '0000:03:00.0', iommu: 2, pri: true }, { bdf: '0000:04:00.0', iommu: 0, pri: true, ats: true },
        { bdf: '0000:05:00.0', iommu: 1 },
      ],
    },
  });
  sim = s;
  const log: unknown[] = [];
  const sub = s.events$.subscribe((e) => {
    if (e.type === 'fault') log.push(['fault', e.record.dev?.bdf, e.record.reason, e.record.addr, e.record.modelledNs]);
    else if (e.type === 'page-request') log.push(['page-request', e.group.dev.bdf, e.group.grpid, e.group.faults.length]);
    else if (e.type === 'page-response') log.push(['page-response', e.dev.bdf, e.grpid, e.code]);
    else if (e.type === 'overflow') log.push(['overflow', e.iommu, e.queue, e.lost]);
    else log.push(['inval', e.iommu, e.kind, e.modelledNs]);
  });
  const [d0, d1, d2, d3, d4] = s.topology.devices;
  const pagingJob = async (name: string, dev: typeof d0, rounds: number) => {
    const dom = s.iommu.domainAlloc('paging');
    await s.iommu.attachDevice(dom, dev);
    for (let r = 0; r < rounds; r++) {
      const pages = 1 + rng.int(8);
      const iova = BigInt(rng.int(64)) * 0x10_0000n;
      await s.iommu.map(dom, iova, 0x4000_0000n + BigInt(r) * 0x10_0000n, BigInt(pages) * SZ_4K, { read: true, write: true });
      const res = await s.dmaBatch(dev, Array.from({ length: 4 + rng.int(12) }, () => ({ addr: iova + BigInt(rng.int(pages + 2)) * SZ_4K, access: rng.chance(0.5) ? 'read' as const : 'write' as const })));
      log.push([name, r, res.map((x) => [x.ok, x.modelledNs])]);
      const one = await s.dma(dev, { addr: iova, access: 'read' });
      log.push([name, r, 'one', one.ok, one.modelledNs]);
      await s.iommu.unmap(dom, iova, BigInt(pages) * SZ_4K);
    }
  };
  const svaJob = async (name: string, dev: typeof d0, rounds: number) => {
    const mm = s.mm.create();
    const va = mm.mmap({ length: 64n * SZ_4K, prot: RW });
    const pasid = s.iommu.svaGetPasid(await s.iommu.svaBindDevice(dev, mm));
    for (let r = 0; r < rounds; r++) {
      const res = await s.dmaBatch(dev, Array.from({ length: 8 + rng.int(24) }, () => ({ addr: va + BigInt(rng.int(64)) * SZ_4K, access: 'write' as const, pasid })));
      log.push([name, r, res.map((x) => [x.ok, x.modelledNs])]);
      if (rng.chance(0.5)) await mm.munmap(va + BigInt(rng.int(60)) * SZ_4K, 4n * SZ_4K);
    }
  };
  const faultJob = async (name: string, dev: typeof d0, rounds: number) => {
    for (let r = 0; r < rounds; r++) {
      const res = await s.dmaBatch(dev, Array.from({ length: 4 + rng.int(20) }, (_, k) => ({ addr: BigInt(k) * SZ_4K, access: 'read' as const })));
      log.push([name, r, res.map((x) => [x.ok, x.modelledNs, !x.ok && x.fault.recorded])]);
    }
  };
  await Promise.all([pagingJob('p0', d0, 6), pagingJob('p1', d1, 6), svaJob('s2', d2, 5), svaJob('s3', d3, 5), faultJob('f4', d4, 5)]);
  const st = await s.stats();
  sub.unsubscribe();
  await s.close();
  sim = undefined;
  // Host-time fields left out: sleeps (a worker thread's), nothing else is host time.
  const modelled = { ...st, iommus: st.iommus.map(({ sleeps: _sleeps, ...w }) => w) };
  return JSON.parse(JSON.stringify({ log, modelled }, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
}

describe('modelled results do not depend on the host', () => {
  it.each(['vtd', 'smmuv3', 'amd'] as const)('%s: repeats the same results over runs and with threads: 3 (one per IOMMU), 1 and 2', async (profile) => {
    const first = await run(7, undefined, profile);
    expect(await run(7, undefined, profile)).toEqual(first);
    expect(await run(7, 1, profile)).toEqual(first);
    expect(await run(7, 2, profile)).toEqual(first);
    const f = first as { modelled: { iopf: { prqOverflows: number }; eventsLost: number } };
    expect(f.modelled.eventsLost + f.modelled.iopf.prqOverflows, 'the workload must overflow a queue for this test to cover it').toBeGreaterThan(0);
  });

  it('gives different results for a different seed (the comparison above can fail)', async () => {
    expect(await run(8, undefined)).not.toEqual(await run(7, undefined));
  });

  it('gives different results on different profiles (their commands and records differ)', async () => {
    const vtd = await run(7, undefined, 'vtd');
    expect(await run(7, undefined, 'smmuv3')).not.toEqual(vtd);
    expect(await run(7, undefined, 'amd')).not.toEqual(vtd);
  });

  it('rejects a threads option outside 1..IOMMUs with EINVAL', async () => {
    const topology = { iommus: 2, devices: [{ bdf: '0000:01:00.0' }] };
    for (const threads of [0, 3, 1.5, -1]) {
      await expect(Simulator.start({ threads, topology })).rejects.toMatchObject({ code: 'EINVAL', reason: 'bad-threads' });
    }
  });
});
