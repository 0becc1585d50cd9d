/**
 * Every bundled scenario runs through the CLI (`run … --short --json`) and its results
 * validate against the published results schema; modelled results are identical on
 * repeated runs of the same scenario and seed (and with --threads equal to the IOMMU
 * count), differ with another seed, and --out writes the promised files.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultsSchema, type Results } from '../../scenario/results-schema.js';
import { ROOT, hasStack, runCli, scenario } from './helpers.js';

const bundled = readdirSync(join(ROOT, 'scenarios')).filter((f) => f.endsWith('.yaml')).sort();

async function runJson(args: string[]): Promise<Results> {
  const r = await runCli(['run', ...args, '--json', '--quiet']);
  expect(r.code, r.stderr).toBe(0);
  expect(hasStack(r.stderr)).toBe(false);
  const parsed = ResultsSchema.safeParse(JSON.parse(r.stdout));
  expect(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3))).toBe(true);
  return parsed.data!;
}

describe('bundled scenarios', () => {
  it('the promised scenarios are bundled', () => {
    for (const f of ['quickstart.yaml', 'invalidation-scaling.yaml', 'pasid-global-vs-per-device.yaml', 'fault-storm.yaml', 'cmdq-contention.yaml', 'scale-100k.yaml']) expect(bundled).toContain(f);
  });

  it.each(bundled)('%s (short) runs from the CLI and validates against the results schema', async (file) => {
    const r = await runJson([scenario(file), '--short']);
    expect(r.partial).toBeUndefined();
    expect(r.modelled.phases.length).toBeGreaterThan(0);
    expect(r.modelled.phases.every((p) => p.ops > 0)).toBe(true);
    // The command-queue model keeps its own modelled clock; every other scenario moves the simulator's.
    if (!r.modelled.cmdq) expect(r.modelled.modelledNs).toBeGreaterThan(0);
  });

  it('the same scenario and seed give identical modelled results, also on fewer threads (--threads 2 for 4 IOMMUs)', async () => {
    const a = await runJson([scenario('quickstart.yaml'), '--short']);
    const b = await runJson([scenario('quickstart.yaml'), '--short']);
    const c = await runJson([scenario('quickstart.yaml'), '--short', '--threads', '2']);
    expect(b.modelled).toEqual(a.modelled);
    expect(c.modelled).toEqual(a.modelled);
    expect(b.scenario.hash).toBe(a.scenario.hash);
    const d = await runJson([scenario('quickstart.yaml'), '--short', '--seed', '2']);
    expect(d.seed).toBe(2);
    expect(d.modelled).not.toEqual(a.modelled);
    expect(d.scenario.hash).not.toBe(a.scenario.hash);
  });

  it('the fault storm answers every page request, records every unrecoverable fault, the same on every run', async () => {
    const r = await runJson([scenario('fault-storm.yaml'), '--short']);
    const again = await runJson([scenario('fault-storm.yaml'), '--short', '--threads', '1']);
    expect(again.modelled).toEqual(r.modelled);
    const pr = r.modelled.pageRequests!;
    expect(pr.groups).toBeGreaterThan(0);
    expect(pr.responses.success + pr.responses.invalid + pr.responses.failure).toBe(pr.groups);
    expect(r.modelled.dma!.faultsByReason['pte-fetch']).toBe(r.modelled.dma!.faultRecords);
    for (const l of Object.values(r.modelled.invalidation ?? {})) expect(l.decades.reduce((a, b) => a + b, 0)).toBe(l.count);
  });

  it('the hardware-profiles workload runs on each profile, the same on one thread as on one per IOMMU', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-profiles-'));
    const src = readFileSync(scenario('hardware-profiles.yaml'), 'utf8');
    const seen = new Map<string, number>();
    for (const profile of ['vtd', 'smmuv3', 'amd']) {
      const file = join(dir, `${profile}.yaml`);
      writeFileSync(file, src.replace('profile: smmuv3', `profile: ${profile}`));
      const a = await runJson([file, '--short']);
      const b = await runJson([file, '--short', '--threads', '1']);
      expect(a.config.profile).toBe(profile);
      expect(b.modelled).toEqual(a.modelled);
      const pr = a.modelled.pageRequests!;
      expect(pr.responses.success).toBe(pr.groups);
      seen.set(profile, a.modelled.modelledNs);
    }
    // Different commands and records: the profiles do not all cost the same.
    expect(new Set(seen.values()).size).toBeGreaterThan(1);
  });

  it('a modelled-time budget stops a phase, and metrics: picks the reported groups', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-budget-'));
    const file = join(dir, 'budget.yaml');
    writeFileSync(file, 'name: budget\ntopology: { flat: { devices: 2 } }\nmetrics: [dma, pasids]\nphases:\n'
      + '  - { name: capped, type: dma, requests: 100000, modelledUs: 50 }\n  - { name: churn, type: sva-churn, processes: 3, devicesPerProcess: 1 }\n');
    const r = await runJson([file]);
    const [capped, churn] = r.modelled.phases;
    expect(capped.stoppedBy).toBe('modelled-time');
    expect(capped.endNs - capped.startNs).toBeGreaterThanOrEqual(50_000);
    expect(r.modelled.dma!.requests).toBeLessThan(200_000);
    expect(churn.ops).toBeGreaterThan(0);
    expect(r.modelled.pasids!.peak).toBe(1);
    expect(r.modelled.invalidation).toBeUndefined();
    expect(r.modelled.hitRates).toBeUndefined();
  });

  it('v5 semantics: SVA binds enable the IOPF and SVA features first, as a v5 driver does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-v5-'));
    writeFileSync(join(dir, 'v5.yaml'), 'name: v5\nsemantics: v5\ntopology: { flat: { devices: 4, priEvery: 2 } }\nphases:\n'
      + '  - { name: churn, type: sva-churn, processes: 4, devicesPerProcess: 2 }\n  - { name: storm, type: fault-storm, faultsPerDevice: 16 }\n');
    const r = await runJson([join(dir, 'v5.yaml')]);
    expect(r.config.semantics).toBe('v5');
    for (const p of r.modelled.phases) expect(p.errors, p.name).toEqual({});
    expect(r.modelled.roundTrips!['sva-bind'].count).toBe(8 + 2);
    expect(r.modelled.pageRequests!.responses.success).toBe(32);
  });

  it('an imported topology (listings relative to the scenario file) runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-import-'));
    copyFileSync(join(ROOT, 'topologies', 'z97-desktop-lts-4.14.txt'), join(dir, 'groups.txt'));
    writeFileSync(join(dir, 'z97.yaml'), 'name: z97\ntopology: { import: { iommuGroups: groups.txt } }\nphases:\n  - { name: churn, type: map-unmap, iterations: 4 }\n');
    const r = await runJson([join(dir, 'z97.yaml')]);
    expect(r.modelled.devices).toBe(30);
    expect(r.modelled.groups).toBe(22);
    expect(r.modelled.roundTrips!.unmap.count).toBeGreaterThan(0);
  });

  it('--out writes results.json, CSV tables and report.html', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-out-'));
    const r = await runCli(['run', scenario('quickstart.yaml'), '--short', '--out', dir, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['results.json', 'phases.csv', 'latency.csv', 'hit-rates.csv', 'pasids.csv', 'report.html']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(ResultsSchema.safeParse(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'))).success).toBe(true);
    const lat = readFileSync(join(dir, 'latency.csv'), 'utf8').split('\n');
    expect(lat[0]).toContain('<0.1us,0.1us-1us,1us-10us,10us-100us,100us-1ms,1ms-10ms,>=10ms'); // intel/perf.h's labels
    expect(lat.some((l) => l.startsWith('round-trip,unmap,64,'))).toBe(true);
  });
});

describe('the command-queue contention scenario', () => {
  it('falls monotonically from 8 to 64 CPUs on the shared lock-free queue, and per-CPU queues hold up better', async () => {
    const r = await runJson([scenario('cmdq-contention.yaml'), '--short']);
    const pts = (r.modelled.cmdq ?? []) as { phase: string; cpus: number; algorithm: string; mode: string; opsPerCpuPerSec: number }[];
    const at = (algorithm: string, cpus: number) => pts.find((p) => p.phase === 'strict' && p.algorithm === algorithm && p.cpus === cpus)!.opsPerCpuPerSec;
    expect(at('lockfree', 8)).toBeGreaterThan(5 * at('lockfree', 64));
    expect(at('lockfree', 8)).toBeGreaterThan(at('locked', 8));
    expect(at('percpu', 64)).toBeGreaterThan(at('lockfree', 64));
    expect(pts.some((p) => p.mode === 'deferred')).toBe(true);
  });
});
