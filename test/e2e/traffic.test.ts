/**
 * Device traffic bursts (sim.dmaTraffic): the worker-side fast path for workloads —
 * sequential, random and Zipf patterns, results the same for the same seed, faults
 * recorded, exact modelled latencies (also in the metrics), the functional mode, and
 * bad input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type FaultRecord, Simulator, SZ_4K, VTD_DEFAULTS } from 'iommu-sim';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function setup(pages = 32) {
  sim = await Simulator.start({ topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0' }] } });
  const dev = sim.topology.devices[0];
  const dom = sim.iommu.domainAlloc('paging');
  await sim.iommu.attachDevice(dom, dev);
  await sim.iommu.map(dom, 0x100_0000n, 0x8000_0000n, BigInt(pages) * SZ_4K, { read: true, write: true });
  return { sim, dev };
}

describe('traffic bursts', () => {
  it('serves a sequential burst: one walk per page of the footprint, hits after, and modelled time that adds up', async () => {
    const { sim, dev } = await setup(32);
    await sim.dma(dev, { addr: 0x100_0000n, access: 'read' }); // context and PASID caches warm, page 0 in the IOTLB
    const r = await sim.dmaTraffic(dev, { base: 0x100_0000n, count: 3200, footprint: 32, pattern: 'sequential' });
    expect(r).toMatchObject({ count: 3200, translated: 3200, faults: 0, cached: 3200 - 31 });
    const c = VTD_DEFAULTS.costs;
    expect(new Map(r.latencies)).toEqual(new Map([[c.iotlbHitNs + 4 * c.walkReadNs, 31], [c.iotlbHitNs, 3200 - 31]]));
    expect(r.endNs - r.startNs).toBe(r.latencySumNs);
    expect(r.latenciesApproximated).toBe(0);
    const m = await sim.metrics();
    expect(m.latency['dma-translation'].count).toBe(3201);
  });

  it('gives the same results for the same seed and different ones for another, with random and Zipf patterns', async () => {
    const run = async (pattern: 'random' | 'zipf', seed: number) => {
      const { sim, dev } = await setup(256);
      const r = await sim.dmaTraffic(dev, { base: 0x100_0000n, count: 5000, footprint: 256, pattern, seed, zipfS: 1.2 });
      await sim.close();
      return r;
    };
    const a = await run('random', 7);
    expect(await run('random', 7)).toEqual(a);
    expect((await run('random', 8)).cached).not.toBe(a.cached);
    // A skewed pattern concentrates on a few pages: more IOTLB hits than uniform over 256 pages.
    const z = await run('zipf', 7);
    expect(z.translated).toBe(5000);
    expect(z.cached).toBeGreaterThan(a.cached);
  });

  it('records the faults of the unmapped part of a footprint on the event queue', async () => {
    const { sim, dev } = await setup(8);
    const faults: FaultRecord[] = [];
    const sub = sim.faults$.subscribe((f) => faults.push(f));
    const r = await sim.dmaTraffic(dev, { base: 0x100_0000n, count: 16, footprint: 16, pattern: 'sequential', access: 'write' });
    await sim.settle();
    sub.unsubscribe();
    expect(r).toMatchObject({ translated: 8, faults: 8 });
    expect(faults.map((f) => f.addr)).toEqual(Array.from({ length: 8 }, (_, k) => 0x100_0000n + BigInt(8 + k) * SZ_4K));
  });

  it('in functional mode translates without modelled time or latencies', async () => {
    const { sim, dev } = await setup(32);
    const r = await sim.dmaTraffic(dev, { base: 0x100_0000n, count: 1000, footprint: 32, pattern: 'random', timing: false });
    expect(r.translated).toBe(1000);
    expect(r.endNs).toBe(r.startNs);
    expect(r.latencies).toEqual([]);
  });

  it('rejects bad bursts with EINVAL and names the field', async () => {
    const { sim, dev } = await setup(1);
    const bad = [
      [{ base: 0x100_0001n, count: 1 }, 'unaligned-base'],
      [{ base: 0n, count: 0 }, 'bad-count'],
      [{ base: 0n, count: 1.5 }, 'bad-count'],
      [{ base: 0n, count: 1, footprint: 0 }, 'bad-footprint'],
      [{ base: 0n, count: 1, pattern: 'zipF' }, 'bad-pattern'],
      [{ base: 0n, count: 1, zipfS: -1 }, 'bad-zipf-s'],
      [{ base: 0n, count: 1, access: 'rw' }, 'bad-access'],
    ] as const;
    for (const [spec, reason] of bad) {
      await expect(sim.dmaTraffic(dev, spec as never), reason).rejects.toMatchObject({ code: 'EINVAL', reason });
    }
    await expect(sim.dmaTraffic(dev, { base: -1n, count: 1 })).rejects.toMatchObject({ code: 'EOVERFLOW' });
  });
});
