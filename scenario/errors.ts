/**
 * Errors of the scenario layer and the CLI, with their exit codes: bad input (2) names
 * the field or flag and what was expected; a simulation error (1) carries the simulator's
 * errno code. Also turns zod issues into one line each
 * (`phases[2].pattern: expected one of sequential|random|zipf, got "zipF"`).
 * Does not: print anything or exit (cli/main.ts does).
 */
import type { z } from 'zod';
import { PhaseSchema } from './schema.js';

const PHASE_TYPES = PhaseSchema.options.map((o) => o.shape.type.value);

/** Bad input: YAML, schema, flags, --vary syntax, missing files. Exit code 2. */
export class InputError extends Error {
  readonly exitCode = 2;
}

/** The simulation failed (a SimError, or a profile the simulator lacks). Exit code 1. */
export class SimulationError extends Error {
  readonly exitCode = 1;
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** `phases[2].pattern` from ['phases', 2, 'pattern']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) {
    if (typeof k === 'number') s += `[${k}]`;
    else s += s ? `.${String(k)}` : String(k);
  }
  return s || '(top level)';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

type Issue = z.core.$ZodIssue;

function describe(issue: Issue, root: unknown): string {
  const got = show(valueAt(root, issue.path));
  switch (issue.code) {
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => String(v)).join('|')}, got ${got}`;
    case 'invalid_type':
      return `expected ${issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : issue.expected}, got ${got}`;
    case 'too_small':
    case 'too_big': {
      const op = issue.code === 'too_small' ? (issue.inclusive === false ? '>' : '>=') : (issue.inclusive === false ? '<' : '<=');
      const what = issue.origin === 'array' ? 'entries' : issue.origin === 'string' ? 'characters' : '';
      return `expected ${what ? `${what} ` : ''}${op} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)}, got ${got}`;
    }
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_union': {
      const d = (issue as { discriminator?: string }).discriminator;
      if (d) {
        const at = issue.path[issue.path.length - 1] === d ? issue.path : [...issue.path, d];
        return `expected one of ${PHASE_TYPES.join('|')}, got ${show(valueAt(root, at))}`;
      }
      return `${issue.message}, got ${got}`;
    }
    default:
      return `${issue.message}, got ${got}`;
  }
}

/** One line per issue: `path: expected …, got …`. */
export function formatIssues(issues: readonly Issue[], root: unknown, prefix = ''): string {
  return issues.map((i) => {
    const p = formatPath(i.path);
    const path = prefix ? (i.path.length ? `${prefix}.${p}` : prefix) : p;
    // A discriminated union that finds no kind reports at the list element; name the field.
    const d = i.code === 'invalid_union' ? (i as { discriminator?: string }).discriminator : undefined;
    const named = d && i.path[i.path.length - 1] !== d ? `${path}.${d}` : path;
    return `${named}: ${describe(i, root)}`;
  }).join('\n');
}
