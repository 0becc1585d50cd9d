/**
 * Question: how many modelled DMA translations does the simulator serve per host second
 * with 1 and with 2 worker threads (issue 7's goal: ≥ 20 M/s with 2), and what does the
 * cost model (timing) cost against the functional mode?
 *
 * Method: 2 IOMMUs, one device each, a paging domain mapping a 64 MiB footprint with 4 KiB
 * pages (IOVA and physical address differ mod 2 MiB, so no large page fits); each device issues traffic bursts (sim.dmaTraffic, served whole by its worker) of
 * random addresses over a footprint: 48 pages (IOTLB-resident: hits) or 16384 (walk-bound). Host time over all
 * bursts of both devices, issued concurrently; `threads: 1` runs both IOMMUs on one worker
 * thread, `threads: 2` on two. The same with `timing: false` gives the functional mode.
 * Also the modelled figures, which must not change with the thread count; and the walk-bound
 * rate with 2 threads on the SMMUv3 and AMD profiles (AArch64 and x86-64 walks through their
 * own STE/CD and DTE/GCR3 lookups).
 */
import { Simulator, SZ_4K } from '../coordinator/index.js';
import type { Metric } from './metric.js';

const BENCH = 'dma-throughput';
const FOOTPRINT = 16384; // pages: 64 MiB
const BASE = 0x4000_1000n;

async function measure(threads: number, timing: boolean, perDevice: number, footprint: number, profile: 'vtd' | 'smmuv3' | 'amd' = 'vtd'): Promise<{ rate: number; modelledEnd: number; cached: number }> {
  const sim = await Simulator.start({
    profile, threads, topology: { iommus: 2, devices: [{ bdf: '0000:01:00.0', iommu: 0 }, { bdf: '0000:02:00.0', iommu: 1 }] },
  });
  try {
    const devs = sim.topology.devices;
    for (const d of devs) {
      const dom = sim.iommu.domainAlloc('paging');
      await sim.iommu.attachDevice(dom, d);
      // IOVA and physical address differ mod 2 MiB, so no large page fits: 4 KiB mappings, an IOTLB reach of 64 pages.
      await sim.iommu.map(dom, BASE, 0x1_0000_2000n, BigInt(FOOTPRINT) * SZ_4K, { read: true, write: true });
    }
    const burst = 1 << 20;
    // Warm-up: JIT and caches.
    await Promise.all(devs.map((d) => sim.dmaTraffic(d, { base: BASE, count: 200_000, footprint, pattern: 'random', timing })));
    const t0 = performance.now();
    const rs = await Promise.all(devs.map(async (d, k) => {
      let cached = 0;
      for (let done = 0; done < perDevice; done += burst) {
        const r = await sim.dmaTraffic(d, { base: BASE, count: Math.min(burst, perDevice - done), footprint, pattern: 'random', seed: k + done, timing });
        cached += r.cached;
      }
      return cached;
    }));
    const secs = (performance.now() - t0) / 1000;
    return { rate: (2 * perDevice) / secs, modelledEnd: sim.clock.now, cached: rs[0] + rs[1] };
  } finally {
    await sim.close();
  }
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const n = opts.quick ? 2_000_000 : 10_000_000;
  const out: Metric[] = [];
  // IOTLB-resident: 48 pages (hits after the first touch); walk-bound: 16384 pages (≈ 0.4 % hits).
  for (const [name, footprint] of [['resident', 48], ['walk', FOOTPRINT]] as const) {
    const t1 = await measure(1, true, n, footprint);
    const t2 = await measure(2, true, n, footprint);
    const f2 = await measure(2, false, n, footprint);
    out.push(
      { bench: BENCH, metric: `${name}_translations_per_s_threads1`, value: t1.rate / 1e6, unit: 'M/s' },
      { bench: BENCH, metric: `${name}_translations_per_s_threads2`, value: t2.rate / 1e6, unit: 'M/s' },
      { bench: BENCH, metric: `${name}_functional_per_s_threads2`, value: f2.rate / 1e6, unit: 'M/s' },
      { bench: BENCH, metric: `${name}_timing_cost_ratio`, value: f2.rate / t2.rate, unit: 'x (functional / timed)' },
      { bench: BENCH, metric: `${name}_modelled_same_threads1_2`, value: t1.modelledEnd === t2.modelledEnd && t1.cached === t2.cached ? 1 : 0, unit: '(1 = identical)' },
      { bench: BENCH, metric: `${name}_iotlb_hit_rate`, value: t2.cached / (2 * n), unit: '' },
    );
  }
  for (const profile of ['smmuv3', 'amd'] as const) {
    const p = await measure(2, true, n, FOOTPRINT, profile);
    out.push({ bench: BENCH, metric: `walk_translations_per_s_threads2_${profile}`, value: p.rate / 1e6, unit: 'M/s' });
  }
  return out;
}
