/**
 * The benchmark harness (`npm run bench [-- --quick] [--json] [name…]`): runs each bench
 * script's run(), prints the machine first and every figure as a line, or as one JSON
 * object per line with --json ({"bench","metric","value","unit"}; the first line is the
 * machine record).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { type Metric, formatMetric } from './metric.js';

type Bench = { run(opts: { quick: boolean }): Promise<Metric[]> };

const BENCHES: Record<string, () => Promise<Bench>> = {
  ring: () => import('./ring-throughput.js'),
  translate: () => import('./translate.js'),
  invalidation: () => import('./invalidation.js'),
  memory: () => import('./memory.js'),
  'fault-storm': () => import('./fault-storm.js'),
  topology: () => import('./topology.js'),
  'pasid-alloc': () => import('./pasid-alloc.js'),
  metrics: () => import('./metrics.js'),
  'cmdq-contention': () => import('./cmdq-contention.js'),
  'dma-throughput': () => import('./dma-throughput.js'),
};

function usage(msg: string): never {
  console.error(`bench: ${msg}\nusage: npm run bench -- [--quick] [--json] [${Object.keys(BENCHES).join('|')} ...]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const json = args.includes('--json');
const names = args.filter((a) => !a.startsWith('--'));
for (const a of args) if (a.startsWith('--') && a !== '--quick' && a !== '--json') usage(`unknown flag ${a}`);
for (const n of names) if (!(n in BENCHES)) usage(`unknown benchmark '${n}'`);

const machine = {
  bench: 'machine', node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length,
  memGiB: Math.round(totalmem() / 2 ** 30), load1: loadavg()[0], date: new Date().toISOString(), quick,
};
if (json) console.log(JSON.stringify(machine));
else console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, Node ${machine.node}, load ${machine.load1.toFixed(2)}${quick ? ', quick run' : ''}`);

let failed = false;
for (const name of names.length ? names : Object.keys(BENCHES)) {
  try {
    const metrics = await (await BENCHES[name]()).run({ quick });
    for (const m of metrics) console.log(json ? JSON.stringify(m) : formatMetric(m));
  } catch (e) {
    failed = true;
    console.error(`bench ${name} failed: ${(e as Error).stack ?? e}`);
  }
}
process.exitCode = failed ? 1 : 0;
