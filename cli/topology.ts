/**
 * `iommu-sim topology show|groups|import` and `iommu-sim study pasid`.
 * show / groups take a scenario file (its topology) or an iommu_groups listing; they start
 * a simulator on it (the groups are the simulator's, by Linux's rules) and print a
 * summary per IOMMU or every group with its devices. import turns a listing (and an
 * optional `lspci -tv` tree) into a TopologySpec (JSON) and checks it reproduces the
 * listing's groups. study pasid runs the global-vs-per-device PASID study (study/).
 * Does not: edit topologies.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Device, Simulator, type TopologySpec, importTopology, isSimError } from 'iommu-sim';
import { InputError, SimulationError } from '../scenario/errors.js';
import { loadScenario } from '../scenario/loader.js';
import { buildTopology } from '../scenario/runner.js';
import { table } from './output.js';
import { PASID_MIXES } from '../study/pasid-mixes.js';
import { formatStudy, runStudy } from '../study/pasid-study.js';

function readListing(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new InputError(`${what} ${file}: no such file`);
  }
}

function wrapSim<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (isSimError(e)) throw new SimulationError(e.message || `${e.op}: ${e.code} (${e.reason})`, e.code);
    throw e;
  }
}

function specFrom(input: string, f: { lspci?: string; iommus?: number }): TopologySpec {
  if (/\.ya?ml$/i.test(input)) return wrapSim(() => buildTopology(loadScenario(input)));
  const iommuGroups = readListing(input, 'listing');
  const lspciTree = f.lspci ? readListing(f.lspci, '--lspci') : undefined;
  return wrapSim(() => importTopology({ iommuGroups, ...(lspciTree ? { lspciTree } : {}), ...(f.iommus ? { iommus: f.iommus } : {}) }));
}

async function withSim<T>(spec: TopologySpec, f: (sim: Simulator) => T): Promise<T> {
  let sim: Simulator;
  try {
    sim = await Simulator.start({ topology: spec });
  } catch (e) {
    if (isSimError(e)) throw new SimulationError(e.message || `${e.op}: ${e.code} (${e.reason})`, e.code);
    throw e;
  }
  try {
    return f(sim);
  } finally {
    await sim.close();
  }
}

const caps = (d: Device) => [d.maxPasids > 0 ? `pasid${Math.log2(d.maxPasids)}` : '', d.ats ? 'ats' : '', d.pri ? 'pri' : ''].filter(Boolean).join(',') || '-';

export async function topologyShow(input: string, f: { lspci?: string; iommus?: number; json?: boolean }): Promise<number> {
  const spec = specFrom(input, f);
  const rows = await withSim(spec, (sim) => {
    const per = new Map<number, Device[]>();
    for (const d of sim.topology.devices) per.set(d.iommu, [...(per.get(d.iommu) ?? []), d]);
    return [...per.entries()].sort(([a], [b]) => a - b).map(([i, ds]) => ({
      iommu: i, devices: ds.length, pf: ds.filter((d) => d.kind === 'pci' && d.bridgeType === undefined).length,
      vf: ds.filter((d) => d.kind === 'vf').length, mdev: ds.filter((d) => d.kind === 'mdev').length,
      bridges: ds.filter((d) => d.bridgeType !== undefined).length, pasid: ds.filter((d) => d.maxPasids > 0).length,
      ats: ds.filter((d) => d.ats).length, pri: ds.filter((d) => d.pri).length, groups: new Set(ds.map((d) => d.group)).size,
    }));
  });
  if (f.json) process.stdout.write(JSON.stringify(rows) + '\n');
  else {
    const keys = ['iommu', 'devices', 'pf', 'vf', 'mdev', 'bridges', 'pasid', 'ats', 'pri', 'groups'] as const;
    const shown = rows.length > 40 ? [...rows.slice(0, 20), ...rows.slice(-20)] : rows;
    process.stdout.write(table(shown.map((r) => keys.map((k) => String(r[k]))), [...keys]) + '\n');
    const tot = (k: (typeof keys)[number]) => rows.reduce((a, r) => a + r[k], 0);
    process.stdout.write(`total: ${rows.length} IOMMUs, ${tot('devices')} devices (${tot('vf')} VFs, ${tot('mdev')} mdevs), ${tot('groups')} groups\n`);
  }
  return 0;
}

export async function topologyGroups(input: string, f: { lspci?: string; iommus?: number; json?: boolean }): Promise<number> {
  const spec = specFrom(input, f);
  const groups = await withSim(spec, (sim) => sim.topology.groups.map((g) => ({ id: g.id, devices: g.devices.map((d) => ({ bdf: d.bdf, kind: d.kind, iommu: d.iommu, caps: caps(d) })) })));
  if (f.json) process.stdout.write(JSON.stringify(groups) + '\n');
  else for (const g of groups) process.stdout.write(`group ${g.id}: ${g.devices.map((d) => `${d.bdf}${d.kind !== 'pci' ? ` (${d.kind})` : ''} [${d.caps}]`).join(', ')}\n`);
  return 0;
}

export function topologyImport(listing: string, f: { lspci?: string; iommus?: number; out?: string }): number {
  const spec = specFrom(listing, f);
  const text = JSON.stringify(spec, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2) + '\n';
  if (f.out) {
    writeFileSync(f.out, text);
    process.stderr.write(`wrote ${f.out}: ${spec.devices.length} devices\n`);
  } else process.stdout.write(text);
  return 0;
}

export async function studyPasid(mixes: string[], f: { out?: string; json?: boolean }): Promise<number> {
  const all = PASID_MIXES.map((m) => m());
  for (const n of mixes) if (!all.some((m) => m.name === n)) throw new InputError(`study pasid: unknown mix "${n}" (bundled: ${all.map((m) => m.name).join(', ')})`);
  const chosen = mixes.length ? all.filter((m) => mixes.includes(m.name)) : all;
  const results = await runStudy(chosen);
  const doc = { schema: 'iommu-sim/pasid-study@1', node: process.version, results };
  if (f.out) writeFileSync(f.out, JSON.stringify(doc, null, 2) + '\n');
  if (f.json) process.stdout.write(JSON.stringify(doc) + '\n');
  else process.stdout.write(`PASID policy study: ${chosen.length} mix(es)\n${formatStudy(results)}\n`);
  return 0;
}
