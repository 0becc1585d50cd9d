/**
 * Scenario loader: reads a YAML scenario file, merges its `short:` block (--short) and
 * any path overrides (--vary points, --seed), validates against the schema, reads the
 * listing files a topology imports (relative to the scenario file) and hashes the result.
 * Does not: start a simulator. Every failure is an InputError (exit code 2) naming the file,
 * line or field.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { YAMLParseError, parse as parseYaml } from 'yaml';
import { InputError, formatIssues } from './errors.js';
import { type Scenario, ScenarioSchema } from './schema.js';

export interface LoadedScenario {
  scenario: Scenario;
  /** The scenario file, as given. */
  file?: string;
  /** sha256 (16 hex digits) of the effective scenario and of the listings it imports. */
  hash: string;
  /** Listing texts of an imported topology. */
  listings?: { iommuGroups: string; lspciTree?: string };
}

export interface Override { path: string; value: unknown }

export interface LoadOptions {
  short?: boolean;
  overrides?: readonly Override[];
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`);
  }
}

export function parseScenarioText(text: string, where: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const pos = e.linePos?.[0];
      const first = e.message.split('\n')[0];
      throw new InputError(`${where}${pos ? `:${pos.line}:${pos.col}` : ''}: bad YAML: ${first}`);
    }
    throw e;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: mappings merge, lists of named mappings merge by name, anything else replaces. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isObj(base) && isObj(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
    return out;
  }
  if (Array.isArray(base) && Array.isArray(over) && over.every((o) => isObj(o) && typeof o.name === 'string')) {
    const out = base.map((b) => {
      const o = isObj(b) ? over.find((x) => (x as Record<string, unknown>).name === b.name) : undefined;
      return o ? deepMerge(b, o) : b;
    });
    for (const o of over) if (!base.some((b) => isObj(b) && b.name === (o as Record<string, unknown>).name)) out.push(o);
    return out;
  }
  return over;
}

/**
 * Splits `phases[1].iterations` or `phases.churn.iterations` (by phase name) into keys.
 * Throws InputError on an empty segment.
 */
export function splitPath(path: string, root: unknown): (string | number)[] {
  const keys: (string | number)[] = [];
  for (const seg of path.split('.')) {
    const m = /^([A-Za-z_][\w-]*)?((?:\[\d+\])*)$/.exec(seg);
    if (!seg || !m) throw new InputError(`--vary ${path}: bad path segment "${seg}" (expected name, name[index] or a phase name)`);
    if (m[1]) keys.push(m[1]);
    for (const ix of m[2].matchAll(/\[(\d+)\]/g)) keys.push(Number(ix[1]));
  }
  // phases.<name> selects the phase of that name.
  if (keys[0] === 'phases' && typeof keys[1] === 'string' && isObj(root) && Array.isArray(root.phases)) {
    const i = root.phases.findIndex((p) => isObj(p) && p.name === keys[1]);
    if (i < 0) throw new InputError(`--vary ${path}: no phase named "${keys[1]}"`);
    keys[1] = i;
  }
  return keys;
}

export function setPath(root: unknown, path: string, value: unknown): unknown {
  const keys = splitPath(path, root);
  const out = structuredClone(root) as Record<string | number, unknown>;
  let cur: Record<string | number, unknown> = out;
  keys.forEach((k, i) => {
    if (i === keys.length - 1) {
      cur[k] = value;
      return;
    }
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = typeof keys[i + 1] === 'number' ? [] : {};
    cur = cur[k] as Record<string | number, unknown>;
  });
  return out;
}

/** A --vary value: YAML scalars (numbers, booleans, strings). */
export function parseScalar(s: string): unknown {
  try {
    const v = parseYaml(s);
    return v === null ? s : v;
  } catch {
    return s;
  }
}

function hashOf(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Validates a parsed document (with --short and overrides applied). */
export function validateScenario(raw: unknown, where: string, opts: LoadOptions = {}, dir = '.'): LoadedScenario & { file?: string } {
  let doc = raw;
  if (!isObj(doc)) throw new InputError(`${where}: expected a mapping at the top level, got ${doc === null || doc === undefined ? 'an empty file' : typeof doc}`);
  if (opts.short && doc.short !== undefined) {
    if (!isObj(doc.short)) throw new InputError(`${where}: short: expected a mapping`);
    doc = deepMerge(doc, doc.short);
  }
  for (const o of opts.overrides ?? []) doc = setPath(doc, o.path, o.value);
  const r = ScenarioSchema.safeParse(doc);
  if (!r.success) throw new InputError(`${where}: invalid scenario\n${formatIssues(r.error.issues, doc)}`);
  const scenario = r.data;
  let listings: LoadedScenario['listings'];
  const imp = scenario.topology.import;
  if (imp) {
    listings = { iommuGroups: readText(resolve(dir, imp.iommuGroups), 'topology.import.iommuGroups:') };
    if (imp.lspciTree) listings.lspciTree = readText(resolve(dir, imp.lspciTree), 'topology.import.lspciTree:');
  }
  const { short: _s, sweep: _w, ...effective } = scenario;
  const hash = hashOf(JSON.stringify(effective), listings?.iommuGroups ?? '', listings?.lspciTree ?? '');
  return { scenario, hash, listings };
}

export function loadScenario(file: string, opts: LoadOptions = {}): LoadedScenario {
  const text = readText(file, 'scenario file');
  const raw = parseScenarioText(text, basename(file));
  const loaded = validateScenario(raw, basename(file), opts, dirname(resolve(file)));
  return { ...loaded, file };
}
