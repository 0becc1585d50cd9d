/**
 * `iommu-sim compare a.json b.json`: the `modelled` figures of two results side by side,
 * with the ratio b/a, changed rows marked. Host and machine figures are left out on
 * purpose: two runs are compared on what the simulated machine did.
 * Does not: compare sweeps point by point (merge them and compare points' results).
 */
import { readFileSync } from 'node:fs';
import { InputError, formatIssues } from '../scenario/errors.js';
import { type Results, ResultsSchema } from '../scenario/results-schema.js';
import { table } from './output.js';

function readResults(file: string): Results {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new InputError(`compare: ${file}: no such file`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new InputError(`compare: ${file}: not JSON (${(e as Error).message})`);
  }
  const r = ResultsSchema.safeParse(data);
  if (!r.success) throw new InputError(`compare: ${file}: not an iommu-sim/results@1 object\n${formatIssues(r.error.issues, data)}`);
  return r.data;
}

/** Numeric leaves of `modelled`: phases by name, latency stats without their bins/CDF. */
export function flatten(m: Results['modelled']): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'number') out.set(path, v);
    else if (Array.isArray(v)) return;
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
  };
  const { phases, ...rest } = m;
  walk(rest, '');
  for (const p of phases) {
    out.set(`phases.${p.name}.ops`, p.ops);
    out.set(`phases.${p.name}.modelledNs`, p.endNs - p.startNs);
    for (const [k, v] of Object.entries(p.errors)) out.set(`phases.${p.name}.errors.${k}`, v);
  }
  return out;
}

export function compareResults(a: Results, b: Results): { metric: string; a?: number; b?: number; ratio?: number }[] {
  const fa = flatten(a.modelled);
  const fb = flatten(b.modelled);
  const keys = [...new Set([...fa.keys(), ...fb.keys()])];
  return keys.map((metric) => {
    const x = fa.get(metric);
    const y = fb.get(metric);
    return { metric, a: x, b: y, ratio: x !== undefined && y !== undefined && x !== 0 ? y / x : undefined };
  });
}

export function compareCommand(fileA: string, fileB: string, f: { json?: boolean; changed?: boolean }): number {
  const a = readResults(fileA);
  const b = readResults(fileB);
  let rows = compareResults(a, b);
  if (f.changed) rows = rows.filter((r) => r.a !== r.b);
  if (f.json) {
    process.stdout.write(JSON.stringify({ a: { file: fileA, scenario: a.scenario, seed: a.seed }, b: { file: fileB, scenario: b.scenario, seed: b.seed }, rows }) + '\n');
    return 0;
  }
  const fmt = (v: number | undefined) => (v === undefined ? '—' : Number.isInteger(v) ? String(v) : v.toPrecision(6));
  process.stdout.write(`a: ${fileA} (${a.scenario.name}, seed ${a.seed}${a.partial ? ', partial' : ''})\nb: ${fileB} (${b.scenario.name}, seed ${b.seed}${b.partial ? ', partial' : ''})\n`);
  const same = rows.filter((r) => r.a === r.b).length;
  process.stdout.write(table(rows.map((r) => [r.metric, fmt(r.a), fmt(r.b), r.ratio === undefined ? (r.a === r.b ? '' : 'n/a') : `${r.ratio.toFixed(3)}×`, r.a === r.b ? '' : '*']),
    ['modelled metric', 'a', 'b', 'b/a', '']) + `\n${rows.length - same} of ${rows.length} metrics differ\n`);
  return 0;
}
