/**
 * Question: how many I/O page faults per second does the simulator serve end to end —
 * device DMA to a page the process never touched → page request → SVA handler (the
 * process's fault path) → page group response → retried DMA — with 1, 2 and 8 IOMMUs,
 * and what does a burst larger than the page request queue do?
 *
 * Method: one PRI device per IOMMU, each bound to its own process with an unpopulated
 * buffer; every DMA touches a fresh page, so every one is a page fault. Host time is
 * measured over the whole storm. Burst: a 16-deep page request queue and 512 faulting DMAs
 * issued at once; requests that find the queue full (or arrive while its overflow is not
 * yet cleared) are dropped and answered SUCCESS by the IOMMU, and the device retries them
 * once software has cleared the overflow. Reported: DMAs served, overflows, requests lost.
 */
import { Simulator } from '../coordinator/index.js';
import type { Metric } from './metric.js';

const BENCH = 'fault-storm';

async function storm(iommus: number, faultsEach: number): Promise<number> {
  const devices = Array.from({ length: iommus }, (_, i) => ({ bdf: `0000:${(i + 1).toString(16).padStart(2, '0')}:00.0`, iommu: i, pri: true }));
  const sim = await Simulator.start({ topology: { iommus, devices } });
  try {
    const jobs = await Promise.all(sim.topology.devices.map(async (dev) => {
      const mm = sim.mm.create();
      const va = mm.mmap({ length: BigInt(faultsEach) * 4096n, prot: { read: true, write: true } });
      const pasid = sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(dev, mm));
      return { dev, va, pasid };
    }));
    const t0 = performance.now();
    const results = await Promise.all(jobs.map(async ({ dev, va, pasid }) => {
      let ok = 0;
      for (let i = 0; i < faultsEach; i += 64) {
        const batch = Array.from({ length: Math.min(64, faultsEach - i) }, (_, k) => ({ addr: va + BigInt(i + k) * 4096n, access: 'write' as const, pasid }));
        ok += (await sim.dmaBatch(dev, batch)).filter((r) => r.ok).length;
      }
      return ok;
    }));
    const secs = (performance.now() - t0) / 1000;
    const served = results.reduce((a, b) => a + b, 0);
    if (served !== iommus * faultsEach) throw new Error(`fault storm: ${served} of ${iommus * faultsEach} served`);
    return served / secs;
  } finally {
    await sim.close();
  }
}

async function burst(): Promise<{ served: number; overflows: number; lost: number; requests: number }> {
  const sim = await Simulator.start({ topology: { iommus: [{ queues: { pageRequest: 16 } }], devices: [{ bdf: '0000:01:00.0', pri: true }] } });
  try {
    const dev = sim.topology.devices[0];
    const mm = sim.mm.create();
    const va = mm.mmap({ length: 512n * 4096n, prot: { read: true, write: true } });
    const pasid = sim.iommu.svaGetPasid(await sim.iommu.svaBindDevice(dev, mm));
    const res = await sim.dmaBatch(dev, Array.from({ length: 512 }, (_, k) => ({ addr: va + BigInt(k) * 4096n, access: 'read' as const, pasid })));
    const st = await sim.stats();
    return { served: res.filter((r) => r.ok).length, overflows: st.iopf.prqOverflows, lost: st.iopf.prqLost, requests: st.iopf.requests };
  } finally {
    await sim.close();
  }
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const n = opts.quick ? 512 : 4096;
  const out: Metric[] = [];
  for (const iommus of [1, 2, 8]) {
    out.push({ bench: BENCH, metric: `page_faults_per_s_n${iommus}`, value: await storm(iommus, iommus === 8 ? n / 4 : n), unit: 'faults/s' });
  }
  const b = await burst();
  out.push(
    { bench: BENCH, metric: 'burst512_prq16_served', value: b.served, unit: 'DMAs' },
    { bench: BENCH, metric: 'burst512_prq16_requests_queued', value: b.requests, unit: 'requests' },
    { bench: BENCH, metric: 'burst512_prq16_overflows', value: b.overflows, unit: 'overflows' },
    { bench: BENCH, metric: 'burst512_prq16_requests_lost', value: b.lost, unit: 'requests (auto-answered, retried)' },
  );
  return out;
}
