/**
 * Sweeps: `--vary path=a,b,c` parsing, the cartesian product of the varied paths (the
 * points), shards (`--shard i/n`: point k belongs to shard k mod n, so every shard gets a
 * similar mix), running points in parallel on a piscina pool whose worker is the compiled
 * dist/scenario/sweep-worker.js, and merging shard files.
 * Ctrl-C: an interrupt flag in shared memory tells every running point to stop cleanly
 * (its simulator closes, its results are marked partial); points not started are left out
 * and the sweep is marked partial.
 * Does not: validate scenarios itself (loader.ts, before any point runs) or print.
 */
import { Piscina } from 'piscina';
import { InputError } from './errors.js';
import { type LoadOptions, type Override, loadScenario, parseScalar, splitPath } from './loader.js';
import type { ProgressEvent } from './runner.js';
import { type Results, type SweepFile, SweepSchema } from './results-schema.js';
import { formatIssues } from './errors.js';

export type Vary = Record<string, unknown[]>;

export function parseVary(flags: readonly string[]): Vary {
  const out: Vary = {};
  for (const f of flags) {
    const m = /^([^=\s]+)=(.+)$/.exec(f);
    if (!m) throw new InputError(`--vary "${f}": expected path=value1,value2,… (e.g. hardware.iommus=1,2,4)`);
    const values = m[2].split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) throw new InputError(`--vary "${f}": empty value in the list`);
    splitPath(m[1], {});
    if (m[1] in out) throw new InputError(`--vary ${m[1]}: given twice`);
    out[m[1]] = values.map(parseScalar);
  }
  return out;
}

export function sweepPoints(vary: Vary): Record<string, unknown>[] {
  let pts: Record<string, unknown>[] = [{}];
  for (const [k, vs] of Object.entries(vary)) pts = pts.flatMap((p) => vs.map((v) => ({ ...p, [k]: v })));
  return pts;
}

export function parseShard(s: string): { index: number; of: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const index = m ? Number(m[1]) : NaN;
  const of = m ? Number(m[2]) : NaN;
  if (!m || of < 1 || index >= of) throw new InputError(`--shard "${s}": expected i/n with 0 <= i < n (e.g. 0/4; Slurm: $SLURM_ARRAY_TASK_ID/4)`);
  return { index, of };
}

export interface SweepTask {
  file: string;
  short: boolean;
  overrides: Override[];
  point: Record<string, unknown>;
  threads?: number;
  /** Int32Array view flag: non-zero = interrupt. */
  stop: SharedArrayBuffer;
  /** Progress: [done, total, phase index] of this point. */
  progress: SharedArrayBuffer;
}

export interface SweepOptions {
  file: string;
  vary: Vary;
  load: LoadOptions;
  shard?: { index: number; of: number };
  parallel: number;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

const overridesOf = (base: readonly Override[], point: Record<string, unknown>): Override[] => [...base, ...Object.entries(point).map(([path, value]) => ({ path, value }))];

export async function runSweep(o: SweepOptions): Promise<SweepFile> {
  const all = sweepPoints(o.vary);
  const mine = all.map((point, index) => ({ point, index })).filter(({ index }) => !o.shard || index % o.shard.of === o.shard.index);
  // Validate every point first: bad input is exit code 2 before anything runs.
  let name = '';
  for (const point of all) name = loadScenario(o.file, { ...o.load, overrides: overridesOf(o.load.overrides ?? [], point) }).scenario.name;
  const stop = new SharedArrayBuffer(4);
  const flag = new Int32Array(stop);
  const onAbort = () => Atomics.store(flag, 0, 1);
  o.signal?.addEventListener('abort', onAbort);
  const pool = new Piscina({ filename: new URL('./sweep-worker.js', import.meta.url).href, maxThreads: Math.max(1, o.parallel), minThreads: 1, idleTimeout: 100 });
  const results: SweepFile['results'] = [];
  const errors: SweepFile['errors'] = [];
  let finished = 0;
  const progs = mine.map(() => new SharedArrayBuffer(12));
  const over = mine.map(() => false);
  const timer = setInterval(() => {
    let frac = finished;
    for (const [k, p] of progs.entries()) {
      if (over[k]) continue;
      const v = new Int32Array(p);
      if (v[1] > 0) frac += Math.min(1, v[0] / v[1]);
    }
    o.onProgress?.({ phase: `${finished}/${mine.length} points done`, index: 0, phases: 1, done: Math.floor(frac * 100), total: mine.length * 100 });
  }, 200);
  try {
    await Promise.all(mine.map(async ({ point, index }, k) => {
      if (Atomics.load(flag, 0)) return;
      const task: SweepTask = { file: o.file, short: !!o.load.short, overrides: overridesOf(o.load.overrides ?? [], point), point, stop, progress: progs[k], ...(o.threads ? { threads: o.threads } : {}) };
      try {
        const r = (await pool.run(task)) as Results | null;
        if (r) results.push({ index, results: r });
      } catch (e) {
        errors.push({ index, point, message: e instanceof Error ? e.message.split('\n')[0] : String(e) });
      } finally {
        over[k] = true;
        finished++;
      }
    }));
  } finally {
    clearInterval(timer);
    o.signal?.removeEventListener('abort', onAbort);
    await pool.destroy();
  }
  results.sort((a, b) => a.index - b.index);
  errors.sort((a, b) => a.index - b.index);
  const interrupted = Atomics.load(flag, 0) !== 0;
  const partial = interrupted || results.some((r) => r.results.partial) || results.length + errors.length < mine.length;
  return {
    schema: 'iommu-sim/sweep@1', scenario: { name, file: o.file }, vary: o.vary, points: all.length,
    ...(o.shard ? { shard: o.shard } : {}), ...(partial ? { partial: true } : {}), results, errors,
  };
}

/** Combines shard files of one sweep; missing points make the result partial. */
export function mergeSweeps(files: { name: string; data: unknown }[]): SweepFile {
  const parsed = files.map(({ name, data }) => {
    const r = SweepSchema.safeParse(data);
    if (!r.success) throw new InputError(`${name}: not a sweep file\n${formatIssues(r.error.issues, data)}`);
    return { name, s: r.data };
  });
  if (!parsed.length) throw new InputError('merge: no partial files given');
  const first = parsed[0].s;
  const key = (s: SweepFile) => JSON.stringify([s.scenario.name, s.vary, s.points]);
  for (const { name, s } of parsed) {
    if (key(s) !== key(first)) throw new InputError(`${name}: a different sweep (scenario, --vary or point count differ from ${parsed[0].name})`);
  }
  const byIndex = new Map<number, SweepFile['results'][number]>();
  const errors = new Map<number, SweepFile['errors'][number]>();
  for (const { s } of parsed) {
    for (const r of s.results) byIndex.set(r.index, r);
    for (const e of s.errors) if (!byIndex.has(e.index)) errors.set(e.index, e);
  }
  const results = [...byIndex.values()].sort((a, b) => a.index - b.index);
  const partial = results.length + errors.size < first.points || parsed.some(({ s }) => s.partial) || results.some((r) => r.results.partial);
  return {
    schema: 'iommu-sim/sweep@1', scenario: first.scenario, vary: first.vary, points: first.points,
    ...(partial ? { partial: true } : {}), results, errors: [...errors.values()].sort((a, b) => a.index - b.index),
  };
}
