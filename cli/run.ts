/**
 * `iommu-sim run`, `sweep` and `merge`: load and validate the scenario, run it (or its
 * sweep points on a piscina pool), show progress, stop cleanly on Ctrl-C with partial
 * results, and print the table or the JSON / write the output directory.
 * Does not: parse argv (main.ts) or compute anything itself (scenario/).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { InputError } from '../scenario/errors.js';
import { type Override, loadScenario } from '../scenario/loader.js';
import { ResultsSchema, type SweepFile } from '../scenario/results-schema.js';
import { runScenario } from '../scenario/runner.js';
import { mergeSweeps, parseShard, parseVary, runSweep } from '../scenario/sweep.js';
import { fmtNs, summary, table, writeRunDir, writeSweepDir } from './output.js';
import { makeProgress } from './progress.js';

export interface RunFlags { json?: boolean; out?: string; threads?: number; seed?: number; quiet?: boolean; short?: boolean }
export interface SweepFlags extends RunFlags { vary?: string[]; shard?: string; parallel?: number }

/** Exit code when Ctrl-C cut a run short (results were still written, marked partial). */
export const EXIT_INTERRUPTED = 130;

function interruptible(): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const onInt = () => {
    if (ac.signal.aborted) process.exit(EXIT_INTERRUPTED); // second Ctrl-C: give up at once
    process.stderr.write('\ninterrupt: stopping after the current step (Ctrl-C again to abort)…\n');
    ac.abort();
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onInt);
  return { signal: ac.signal, done: () => { process.off('SIGINT', onInt); process.off('SIGTERM', onInt); } };
}

const seedOverride = (f: RunFlags): Override[] => (f.seed === undefined ? [] : [{ path: 'seed', value: f.seed }]);

export async function runCommand(file: string, f: RunFlags): Promise<number> {
  const loaded = loadScenario(file, { short: f.short, overrides: seedOverride(f) });
  const progress = makeProgress(loaded.scenario.name, !!f.quiet);
  const int = interruptible();
  let results;
  try {
    results = await runScenario(loaded, { ...(f.threads ? { threads: f.threads } : {}), signal: int.signal, onProgress: (e) => progress.update(e) });
  } finally {
    progress.stop();
    int.done();
  }
  const check = ResultsSchema.safeParse(results);
  if (!check.success) throw new Error(`results do not match iommu-sim/results@1: ${check.error.issues[0]?.message}`);
  if (f.out) writeRunDir(f.out, results);
  if (f.json) process.stdout.write(JSON.stringify(results) + '\n');
  else if (!f.quiet || !f.out) process.stdout.write(summary(results) + '\n');
  if (f.out && !f.quiet) process.stderr.write(`wrote ${join(f.out, 'results.json')}, CSV tables and ${join(f.out, 'report.html')}\n`);
  if (results.partial) {
    process.stderr.write('interrupted: partial results (marked "partial": true)\n');
    return EXIT_INTERRUPTED;
  }
  return 0;
}

function sweepTable(s: SweepFile): string {
  const keys = Object.keys(s.vary);
  const kinds = [...new Set(s.results.flatMap((p) => Object.keys(p.results.modelled.roundTrips ?? {})))].sort().slice(0, 3);
  const rows = s.results.map(({ index, results: r }) => [String(index), ...keys.map((k) => String(r.point?.[k])), fmtNs(r.modelled.modelledNs),
    ...kinds.map((k) => (r.modelled.roundTrips?.[k] ? `${fmtNs(r.modelled.roundTrips[k].p50Ns)} / ${fmtNs(r.modelled.roundTrips[k].p99Ns)}` : '-')),
    `${(r.host.wallMs / 1000).toFixed(2)} s`, r.partial ? 'partial' : '']);
  for (const e of s.errors) rows.push([String(e.index), ...keys.map((k) => String(e.point[k])), 'error', ...kinds.map(() => ''), '', e.message]);
  rows.sort((a, b) => Number(a[0]) - Number(b[0]));
  return `sweep ${s.scenario.name}: ${s.results.length} of ${s.points} points${s.shard ? ` (shard ${s.shard.index}/${s.shard.of})` : ''}${s.partial ? ' — PARTIAL' : ''}\n`
    + table(rows, ['#', ...keys, 'modelled', ...kinds.map((k) => `${k} p50/p99`), 'host', ''] );
}

export async function sweepCommand(file: string, f: SweepFlags): Promise<number> {
  const load = { short: f.short, overrides: seedOverride(f) };
  let vary = parseVary(f.vary ?? []);
  if (!Object.keys(vary).length) {
    const v = loadScenario(file, load).scenario.sweep?.vary;
    if (!v) throw new InputError('sweep: give --vary path=a,b,c (the scenario has no sweep: block)');
    vary = v;
  }
  const shard = f.shard === undefined ? undefined : parseShard(f.shard);
  const parallel = f.parallel ?? Math.max(1, Math.min(4, availableParallelism()));
  const progress = makeProgress(`sweep`, !!f.quiet);
  const int = interruptible();
  let s: SweepFile;
  try {
    s = await runSweep({ file, vary, load, parallel, signal: int.signal, onProgress: (e) => progress.update(e), ...(shard ? { shard } : {}), ...(f.threads ? { threads: f.threads } : {}) });
  } finally {
    progress.stop();
    int.done();
  }
  if (f.out) writeSweepDir(f.out, s, shard ? `partial-${shard.index}-of-${shard.of}.json` : 'sweep.json');
  if (f.json) process.stdout.write(JSON.stringify(s) + '\n');
  else process.stdout.write(sweepTable(s) + '\n');
  if (s.partial) {
    process.stderr.write('interrupted: partial sweep (marked "partial": true; points not started are left out)\n');
    return EXIT_INTERRUPTED;
  }
  return s.errors.length ? 1 : 0;
}

export function mergeCommand(files: string[], f: { out: string; json?: boolean }): number {
  const data = files.map((name) => {
    let text: string;
    try {
      text = readFileSync(name, 'utf8');
    } catch {
      throw new InputError(`merge: ${name}: no such file`);
    }
    try {
      return { name, data: JSON.parse(text) as unknown };
    } catch (e) {
      throw new InputError(`merge: ${name}: not JSON (${(e as Error).message})`);
    }
  });
  const s = mergeSweeps(data);
  writeSweepDir(f.out, s);
  if (f.json) process.stdout.write(JSON.stringify(s) + '\n');
  else process.stdout.write(sweepTable(s) + '\n');
  return 0;
}
