/**
 * The scenario runner: builds the topology (generated, imported, or flat), starts the
 * simulator through the public API, runs the phases in order, collects the metrics
 * (collect.ts) and returns a results object (results-schema.ts).
 *
 * Does: stop cleanly on an AbortSignal (Ctrl-C) — the running phase stops at its next
 * step, metrics are read, the simulator is closed, and the results are marked partial;
 * turn simulator failures (SimError, e.g. EOPNOTSUPP for v5 semantics off the vtd profile)
 * into a SimulationError (exit code 1).
 * Does not: hold simulation logic (every effect comes from the simulator), print or write
 * files (cli/ does).
 */
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import {
  type DeviceSpec, type IommuOptions, Simulator, type SimulatorOptions, type TopologySpec,
  generateTopology, importTopology, isSimError, mulberry32,
} from 'iommu-sim';
import { Collector } from './collect.js';
import { SimulationError } from './errors.js';
import type { LoadedScenario } from './loader.js';
import * as ph from './phases.js';
import type { Results } from './results-schema.js';
import type { Phase, Scenario } from './schema.js';
import { PhaseRun, type RunCtx } from './workspace.js';

export interface ProgressEvent { phase: string; index: number; phases: number; done: number; total: number }

export interface RunOptions {
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** The --vary values of a sweep point (recorded in the results). */
  point?: Record<string, unknown>;
}

function flatTopology(s: Scenario, f: NonNullable<Scenario['topology']['flat']>): DeviceSpec[] {
  const n = s.hardware.iommus;
  return Array.from({ length: f.devices }, (_, i) => {
    const slot = i % (0xf0 * 8);
    const bus = 0x10 + Math.floor(slot / 8);
    const seg = Math.floor(i / (0xf0 * 8));
    const pri = f.priEvery > 0 && i % f.priEvery === 0;
    const d: DeviceSpec = {
      bdf: `${seg.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:${(slot % 8).toString(16).padStart(2, '0')}.0`,
      iommu: i % n,
      ats: pri || (f.atsEvery > 0 && i % f.atsEvery === 0),
      pri,
      pasidBits: f.pasidBits,
    };
    if (f.deviceType !== undefined) d.deviceType = f.deviceType as DeviceSpec['deviceType'];
    return d;
  });
}

export function buildTopology(loaded: LoadedScenario): TopologySpec {
  const s = loaded.scenario;
  const iommus = Array.from({ length: s.hardware.iommus }, () => structuredClone(s.hardware.iommu) as IommuOptions as Record<string, unknown>);
  const t = s.topology;
  if (t.generate) {
    const g = t.generate;
    const spec = generateTopology({
      iommus: s.hardware.iommus, devicesPerIommu: g.devicesPerIommu, vfsPerPf: g.vfsPerPf, mdevsPerParent: g.mdevsPerParent,
      noAcsShare: g.noAcsShare, pfsPerSwitch: g.pfsPerSwitch, seed: g.seed ?? s.seed,
    });
    return { ...spec, iommus };
  }
  if (t.import) {
    const l = loaded.listings!;
    const spec = importTopology({ iommuGroups: l.iommuGroups, ...(l.lspciTree ? { lspciTree: l.lspciTree } : {}), iommus });
    return { ...spec, iommus };
  }
  return { iommus, devices: flatTopology(s, t.flat!) };
}

export function simulatorOptions(loaded: LoadedScenario, threads?: number): SimulatorOptions {
  const s = loaded.scenario;
  const o: SimulatorOptions = {
    profile: s.hardware.profile, semantics: s.semantics, pasidPolicy: s.pasidPolicy, defaultDomain: s.defaultDomain,
    topology: buildTopology(loaded), seed: s.seed,
  };
  const th = threads ?? s.threads;
  if (th !== undefined) o.threads = th;
  return o;
}

function simFailure(e: unknown, where: string): SimulationError {
  if (e instanceof SimulationError) return e;
  if (isSimError(e)) return new SimulationError(`${where}: ${e.message || `${e.op}: ${e.code} (${e.reason})`}`, e.code);
  return new SimulationError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
}

async function runPhase(run: PhaseRun, p: Phase): Promise<void> {
  switch (p.type) {
    case 'dma': return ph.dmaPhase(run, p);
    case 'map-unmap': return ph.mapUnmapPhase(run, p);
    case 'unmap': return ph.unmapPhase(run, p);
    case 'sva-churn': return ph.svaChurnPhase(run, p);
    case 'munmap-storm': return ph.munmapStormPhase(run, p);
    case 'fault-storm': return ph.faultStormPhase(run, p);
    case 'pasid-alloc': return ph.pasidAllocPhase(run, p);
    case 'vms': return ph.vmsPhase(run, p);
    case 'cmdq-contention': return ph.cmdqPhase(run, p);
  }
}

let simVersion = '0.0.0';
try {
  simVersion = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version ?? simVersion;
} catch { /* not run from dist/: keep the placeholder */ }

export function machineInfo(): Results['machine'] {
  const c = cpus();
  return { node: process.version, platform: process.platform, arch: process.arch, cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', totalMemBytes: totalmem(), simVersion };
}

export async function runScenario(loaded: LoadedScenario, opts: RunOptions = {}): Promise<Results> {
  const s = loaded.scenario;
  const startMs = Date.now();
  const t0 = performance.now();
  let options: SimulatorOptions;
  try {
    options = simulatorOptions(loaded, opts.threads);
  } catch (e) {
    throw simFailure(e, 'topology');
  }
  let sim: Simulator;
  try {
    sim = await Simulator.start(options);
  } catch (e) {
    throw simFailure(e, 'starting the simulator');
  }
  const col = new Collector(sim, { samples: s.samples, metrics: s.metrics });
  const interrupted = () => opts.signal?.aborted ?? false;
  const hostPhases: { name: string; wallMs: number }[] = [];
  let current = { name: '', index: 0 };
  const ctx: RunCtx = {
    sim, col, rand: mulberry32(s.seed), interrupted, groups: new Map(), procs: new Map(),
    progress: (done, total) => opts.onProgress?.({ phase: current.name, index: current.index, phases: s.phases.length, done, total }),
  };
  let partial = false;
  let failure: SimulationError | undefined;
  let results: Awaited<ReturnType<Collector['finish']>> | undefined;
  try {
    for (const [i, p] of s.phases.entries()) {
      if (interrupted()) break;
      current = { name: p.name, index: i };
      const h0 = performance.now();
      const run = new PhaseRun(ctx, p);
      try {
        await runPhase(run, p);
      } finally {
        col.phases.push(run.finish());
        hostPhases.push({ name: p.name, wallMs: Math.round((performance.now() - h0) * 10) / 10 });
      }
      opts.onProgress?.({ phase: p.name, index: i, phases: s.phases.length, done: 1, total: 1 });
    }
    partial = interrupted();
  } catch (e) {
    failure = simFailure(e, `phase ${current.name}`);
  } finally {
    results = await col.finish();
    await sim.close();
  }
  if (failure) throw failure;
  const wallMs = performance.now() - t0;
  const dmaReq = results.modelled.dma?.requests ?? 0;
  const ops = results.modelled.phases.reduce((a, p) => a + p.ops, 0);
  const out: Results = {
    schema: 'iommu-sim/results@1',
    scenario: { name: s.name, ...(loaded.file ? { file: loaded.file } : {}), hash: loaded.hash },
    seed: s.seed,
    ...(partial ? { partial: true } : {}),
    ...(opts.point ? { point: opts.point } : {}),
    config: {
      profile: s.hardware.profile, iommus: s.hardware.iommus, semantics: s.semantics, pasidPolicy: s.pasidPolicy,
      defaultDomain: s.defaultDomain, ...(options.threads !== undefined ? { threads: options.threads } : {}),
    },
    modelled: results.modelled,
    host: {
      wallMs: Math.round(wallMs * 10) / 10, startMs, phases: hostPhases,
      dmaPerHostSecond: Math.round(dmaReq / (wallMs / 1000)), opsPerHostSecond: Math.round(ops / (wallMs / 1000)),
      peakRssBytes: process.resourceUsage().maxRSS * 1024, heapUsedBytes: process.memoryUsage().heapUsed,
      invalidationRttUs: results.host.invalidationRttUs,
    },
    machine: machineInfo(),
  };
  return out;
}
