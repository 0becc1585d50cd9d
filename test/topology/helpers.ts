/**
 * Helpers for the topology suites: build a Topology from a spec the way Simulator.start
 * does, show groups as lists of short names, and expect a SimError with its code,
 * reason and the field path its message names.
 */
import { expect } from 'vitest';
import { isSimError, type SimError } from '../../shared/errors.js';
import { Topology, type TopologySpec } from '../../coordinator/topology.js';

export function build(spec: TopologySpec, pasidBits = 20): Topology {
  const count = typeof spec.iommus === 'number' ? spec.iommus : spec.iommus.length;
  return new Topology(spec, count, () => pasidBits);
}

/** Groups as sorted lists of names without the '0000:' segment prefix. */
export function groups(t: Topology): string[][] {
  return t.groups.map((g) => g.devices.map((d) => d.name.replace(/^0000:/, '')));
}

/** The group (short names) a device is in. */
export function groupOf(t: Topology, name: string): string[] {
  return t.device(name).group.devices.map((d) => d.name.replace(/^0000:/, ''));
}

export function expectSimError(fn: () => unknown, code: string, reason?: string, mentions?: string): SimError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isSimError(thrown), `expected a SimError, got ${String(thrown)}`).toBe(true);
  const err = thrown as SimError;
  expect(err.code, err.message).toBe(code);
  if (reason !== undefined) expect(err.reason, err.message).toBe(reason);
  if (mentions !== undefined) expect(err.message).toContain(mentions);
  return err;
}
