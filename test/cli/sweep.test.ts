/**
 * Sweeps, shards and merge, compare, Ctrl-C, topology and the PASID study through the
 * CLI: a sharded sweep merged gives the same modelled results as the whole sweep; compare
 * shows ratios of modelled metrics only; SIGINT stops a run cleanly with partial results
 * that still validate; topology show/groups/import read real listings.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultsSchema, SweepSchema, type SweepFile } from '../../scenario/results-schema.js';
import { ROOT, hasStack, runCli, scenario } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-sweep-'));
const qs = scenario('quickstart.yaml');
const vary = ['--vary', 'hardware.iommus=1,2', '--vary', 'phases.traffic.pattern=sequential,zipf'];

describe('sweep, shards and merge', () => {
  it('two shards merged equal the whole sweep (modelled), and compare reads the points', async () => {
    const [whole, s0, s1] = await Promise.all([
      runCli(['sweep', qs, '--short', ...vary, '--json', '--quiet', '--parallel', '2']),
      runCli(['sweep', qs, '--short', ...vary, '--shard', '0/2', '--out', join(dir, 'a'), '--quiet', '--parallel', '1']),
      runCli(['sweep', qs, '--short', ...vary, '--shard', '1/2', '--out', join(dir, 'b'), '--quiet', '--parallel', '1']),
    ]);
    for (const r of [whole, s0, s1]) expect(r.code, r.stderr).toBe(0);
    const all = SweepSchema.parse(JSON.parse(whole.stdout)) as SweepFile;
    expect(all.points).toBe(4);
    expect(all.results.map((r) => r.results.point)).toEqual([
      { 'hardware.iommus': 1, 'phases.traffic.pattern': 'sequential' }, { 'hardware.iommus': 1, 'phases.traffic.pattern': 'zipf' },
      { 'hardware.iommus': 2, 'phases.traffic.pattern': 'sequential' }, { 'hardware.iommus': 2, 'phases.traffic.pattern': 'zipf' },
    ]);
    const part0 = SweepSchema.parse(JSON.parse(readFileSync(join(dir, 'a', 'partial-0-of-2.json'), 'utf8')));
    expect(part0.shard).toEqual({ index: 0, of: 2 });
    expect(part0.results.map((r) => r.index)).toEqual([0, 2]);

    const onlyOne = await runCli(['merge', join(dir, 'a', 'partial-0-of-2.json'), '--out', join(dir, 'half'), '--json']);
    expect(onlyOne.code).toBe(0);
    expect(JSON.parse(onlyOne.stdout).partial).toBe(true);

    const m = await runCli(['merge', join(dir, 'a', 'partial-0-of-2.json'), join(dir, 'b', 'partial-1-of-2.json'), '--out', join(dir, 'm'), '--json']);
    expect(m.code, m.stderr).toBe(0);
    const merged = SweepSchema.parse(JSON.parse(m.stdout));
    expect(merged.partial).toBeUndefined();
    expect(merged.results.map((r) => r.results.modelled)).toEqual(all.results.map((r) => r.results.modelled));
    for (const r of merged.results) expect(ResultsSchema.safeParse(r.results).success).toBe(true);
    expect(readFileSync(join(dir, 'm', 'sweep.csv'), 'utf8').split('\n')[0]).toMatch(/^index,hardware\.iommus,phases\.traffic\.pattern,modelled_ns/);

    writeFileSync(join(dir, 'p0.json'), JSON.stringify(merged.results[0].results));
    writeFileSync(join(dir, 'p1.json'), JSON.stringify(merged.results[1].results));
    const c = await runCli(['compare', join(dir, 'p0.json'), join(dir, 'p1.json'), '--json']);
    expect(c.code, c.stderr).toBe(0);
    const rows = JSON.parse(c.stdout).rows as { metric: string; a?: number; b?: number; ratio?: number }[];
    expect(rows.every((r) => !/^host|machine|wallMs/.test(r.metric))).toBe(true);
    const mt = rows.find((r) => r.metric === 'modelledNs')!;
    expect(mt.ratio).toBeCloseTo(mt.b! / mt.a!, 9);
    const same = await runCli(['compare', join(dir, 'p0.json'), join(dir, 'p0.json')]);
    expect(same.stdout).toMatch(/\b0 of \d+ metrics differ/);
  });

  it('a sweep with a shard that would otherwise be a different sweep refuses to merge', async () => {
    const other = await runCli(['sweep', qs, '--short', '--vary', 'seed=1', '--out', join(dir, 'o'), '--quiet']);
    expect(other.code, other.stderr).toBe(0);
    const r = await runCli(['merge', join(dir, 'o', 'sweep.json'), join(dir, 'a', 'partial-0-of-2.json'), '--out', join(dir, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a different sweep/);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT stops the run cleanly and writes partial results', async () => {
    const file = join(dir, 'long.yaml');
    writeFileSync(file, 'name: long\nhardware: { iommus: 2 }\ntopology: { flat: { devices: 4 } }\nphases:\n'
      + '  - { name: forever, type: dma, requests: 10000000, batch: 256 }\n  - { name: never, type: dma, requests: 8 }\n');
    const out = join(dir, 'int');
    let sent = false;
    const r = await runCli(['run', file, '--out', out], {
      onSpawn: (kill, err) => {
        const t = setInterval(() => {
          if (!sent && /forever: \d+%/.test(err())) {
            sent = true;
            setTimeout(() => kill('SIGINT'), 300);
            clearInterval(t);
          }
        }, 50);
      },
    });
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    expect(hasStack(r.stderr)).toBe(false);
    expect(r.stderr).toMatch(/partial results/);
    const res = ResultsSchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    expect(res.partial).toBe(true);
    expect(res.modelled.phases.map((p) => p.name)).toEqual(['forever']);
    expect(res.modelled.phases[0].stoppedBy).toBe('interrupt');
    expect(res.modelled.dma!.requests).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/PARTIAL RESULTS/);
  });
});

describe('Ctrl-C in a sweep', () => {
  it('SIGINT stops the running point cleanly and leaves the rest out, marked partial', async () => {
    const file = join(dir, 'long-sweep.yaml');
    writeFileSync(file, 'name: long-sweep\ntopology: { flat: { devices: 2 } }\nphases:\n  - { name: forever, type: dma, requests: 10000000, batch: 256 }\n');
    let sent = false;
    const r = await runCli(['sweep', file, '--vary', 'seed=1,2,3', '--parallel', '1', '--json'], {
      onSpawn: (kill, err) => {
        const t = setInterval(() => {
          if (!sent && /points done/.test(err())) {
            sent = true;
            setTimeout(() => kill('SIGINT'), 500);
            clearInterval(t);
          }
        }, 50);
      },
    });
    expect(r.code, r.stderr).toBe(130);
    expect(hasStack(r.stderr)).toBe(false);
    const s = SweepSchema.parse(JSON.parse(r.stdout));
    expect(s.partial).toBe(true);
    expect(s.results.length).toBeLessThan(3);
    expect(s.results.every((p) => p.results.partial)).toBe(true);
  });
});

describe('topology and study', () => {
  it('topology show, groups and import read a real listing', async () => {
    const listing = join(ROOT, 'topologies', 'z97-desktop-lts-4.14.txt');
    const show = await runCli(['topology', 'show', listing, '--json']);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)[0]).toMatchObject({ iommu: 0, devices: 30 });
    const groups = await runCli(['topology', 'groups', listing, '--json']);
    const g = JSON.parse(groups.stdout) as { devices: { bdf: string }[] }[];
    // On 4.14 the GPU, both CPU root ports and the Wi-Fi card share one group.
    expect(g.some((x) => ['0000:01:00.0', '0000:00:01.0', '0000:02:00.0'].every((b) => x.devices.some((d) => d.bdf === b)))).toBe(true);
    const imp = await runCli(['topology', 'import', listing]);
    expect(JSON.parse(imp.stdout).devices).toHaveLength(30);
  });

  it('study pasid runs one bundled mix', async () => {
    const r = await runCli(['study', 'pasid', 'narrow-width-mix', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.results[0].mix).toBe('narrow-width-mix');
    expect(doc.results[0].results.map((p: { policy: string }) => p.policy)).toEqual(['global', 'per-device']);
  });
});
