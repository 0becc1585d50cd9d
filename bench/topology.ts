/**
 * Question: how long does it take to build a machine of 100 000 devices — the generated
 * spec and the Topology (validation, PCI hierarchy, IOMMU groups, device objects)?
 *
 * Method: generateTopology with 10 IOMMUs × 10 000 devices (3 VFs per PF, 2 mdevs per
 * PF, a quarter of the devices behind switches without ACS, seed 1), then
 * new Topology(spec) as Simulator.start does; host wall-clock time, the best of 5 runs
 * (1 with --quick) after one warm-up build.
 */
import { generateTopology } from '../coordinator/topology-generate.js';
import { Topology } from '../coordinator/topology.js';
import type { Metric } from './metric.js';

const BENCH = 'topology';
const OPTS = { iommus: 10, devicesPerIommu: 10_000, vfsPerPf: 3, mdevsPerParent: 2, noAcsShare: 0.25, seed: 1 };

function once(): { generateMs: number; buildMs: number } {
  const t0 = performance.now();
  const spec = generateTopology(OPTS);
  const t1 = performance.now();
  const topo = new Topology(spec, OPTS.iommus, () => 20);
  const t2 = performance.now();
  if (topo.devices.length !== OPTS.iommus * OPTS.devicesPerIommu) throw new Error(`built ${topo.devices.length} devices`);
  return { generateMs: t1 - t0, buildMs: t2 - t1 };
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  if (!opts.quick) once(); // warm-up: JIT, not the figure
  const runs = Array.from({ length: opts.quick ? 1 : 5 }, once);
  const best = (f: (r: ReturnType<typeof once>) => number) => Math.min(...runs.map(f));
  return [
    { bench: BENCH, metric: 'topology_100k_build_ms', value: best((r) => r.generateMs + r.buildMs), unit: 'ms' },
    { bench: BENCH, metric: 'topology_100k_generate_ms', value: best((r) => r.generateMs), unit: 'ms' },
    { bench: BENCH, metric: 'topology_100k_construct_ms', value: best((r) => r.buildMs), unit: 'ms' },
  ];
}
