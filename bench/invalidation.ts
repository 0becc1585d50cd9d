/**
 * Question: how long does a strict invalidation take on the host — queue the descriptors
 * and a wait, until the coordinator sees the wait's status write — for 1, 2, 4, 8 and 64
 * IOMMUs (one worker thread each), and how does the one-IOMMU round trip with an awake
 * worker compare with a postMessage round trip measured in the same run?
 *
 * Method: one paging domain attached to one device behind each IOMMU; repeated
 * map (coordinator only) + strict unmap of one page, which fans a PASID-based IOTLB
 * invalidation and a wait out to every IOMMU and resolves when all have completed.
 * Host times: `inval_rtt_*` is the submit → status-seen time of one IOMMU's queue (from
 * the invalidation-complete events); `unmap_*` is the whole unmap call across all IOMMUs.
 * With more IOMMUs than cores the workers do not spin (spinUs 0) and every fan-out wakes
 * sleeping threads.
 */
import { Simulator, type SimEvent } from '../coordinator/index.js';
import { measurePostMessageRtt } from './ring-throughput.js';
import { type Metric, percentile } from './metric.js';

const BENCH = 'invalidation';

async function measure(iommus: number, samples: number) {
  const devices = Array.from({ length: iommus }, (_, i) => ({ bdf: `0000:${(i + 1).toString(16).padStart(2, '0')}:00.0`, iommu: i }));
  const sim = await Simulator.start({ topology: { iommus, devices } });
  try {
    const rtt: number[] = [];
    sim.events$.subscribe((e: SimEvent) => { if (e.type === 'invalidation-complete') rtt.push(e.hostNs / 1000); });
    const d = sim.iommu.domainAlloc('paging');
    for (const dev of sim.topology.devices) await sim.iommu.attachDevice(d, dev);
    const unmap: number[] = [];
    for (let i = 0; i < samples + 20; i++) {
      await sim.iommu.map(d, 0x10000n, 0x200000n, 4096n, { read: true, write: true });
      const t0 = performance.now();
      await sim.iommu.unmap(d, 0x10000n, 4096n);
      if (i >= 20) unmap.push((performance.now() - t0) * 1000);
    }
    return { rtt: rtt.slice(20 * iommus), unmap };
  } finally {
    await sim.close();
  }
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const out: Metric[] = [];
  const pm = await measurePostMessageRtt(opts.quick ? 2000 : 10000);
  out.push({ bench: BENCH, metric: 'postmessage_rtt_p50_us', value: pm.p50Us, unit: 'µs' });
  let oneP50 = NaN;
  for (const n of [1, 2, 4, 8, 64]) {
    const samples = opts.quick ? (n >= 64 ? 100 : 400) : (n >= 64 ? 500 : 3000);
    const r = await measure(n, samples);
    const p50 = percentile(r.rtt, 50);
    if (n === 1) oneP50 = p50;
    out.push(
      { bench: BENCH, metric: `inval_rtt_n${n}_p50_us`, value: p50, unit: 'µs' },
      { bench: BENCH, metric: `inval_rtt_n${n}_p99_us`, value: percentile(r.rtt, 99), unit: 'µs' },
      { bench: BENCH, metric: `unmap_n${n}_p50_us`, value: percentile(r.unmap, 50), unit: 'µs' },
      { bench: BENCH, metric: `unmap_n${n}_p99_us`, value: percentile(r.unmap, 99), unit: 'µs' },
    );
    if (n === 64) out.push({ bench: BENCH, metric: 'inval_fanout64_p50_ms', value: percentile(r.unmap, 50) / 1000, unit: 'ms' });
  }
  out.push({ bench: BENCH, metric: 'inval_rtt_vs_postmessage_ratio', value: oneP50 / pm.p50Us, unit: 'x' });
  return out;
}
