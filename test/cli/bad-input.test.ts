/**
 * Bad input: malformed scenarios and flags each end with exit code 2 and a message that
 * names the field or flag and what was expected, never a stack trace. A profile the
 * simulator lacks (smmuv3, amd) is valid input but a simulation error: exit code 1,
 * EOPNOTSUPP.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasStack, runCli, scenario } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-bad-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const ok = 'name: t\ntopology: { flat: { devices: 2 } }\n';

const scenarios: [string, string, RegExp][] = [
  ['bad YAML', 'name: t\n  phases: [\n', /bad\.yaml:\d+:\d+: bad YAML/],
  ['an empty file', '', /expected a mapping at the top level/],
  ['a misspelt pattern', `${ok}phases:\n  - { name: a, type: dma }\n  - { name: b, type: dma }\n  - { name: c, type: dma, pattern: zipF }\n`, /phases\[2\]\.pattern: expected one of sequential\|random\|zipf, got "zipF"/],
  ['an unknown phase type', `${ok}phases:\n  - { name: a, type: dmaa }\n`, /phases\[0\]\.type: expected one of dma\|map-unmap\|.*got "dmaa"/],
  ['an unknown field', `${ok}phases:\n  - { name: a, type: dma, requestz: 5 }\n`, /phases\[0\]: unknown field "requestz"/],
  ['a negative count', `${ok}phases:\n  - { name: a, type: map-unmap, iterations: -3 }\n`, /phases\[0\]\.iterations: expected >= 1, got -3/],
  ['a string for a number', `${ok}hardware: { iommus: four }\nphases:\n  - { name: a, type: dma }\n`, /hardware\.iommus: expected number, got "four"/],
  ['an unknown profile', `${ok}hardware: { profile: arm }\nphases:\n  - { name: a, type: dma }\n`, /hardware\.profile: expected one of vtd\|smmuv3\|amd, got "arm"/],
  ['no phases', `${ok}phases: []\n`, /phases: expected entries >= 1/],
  ['two topologies', 'name: t\ntopology: { flat: { devices: 2 }, generate: { devicesPerIommu: 2 } }\nphases:\n  - { name: a, type: dma }\n', /topology: expected exactly one of generate\|import\|flat/],
  ['duplicate phase names', `${ok}phases:\n  - { name: a, type: dma }\n  - { name: a, type: dma }\n`, /phases: phase names must be unique/],
  ['a missing listing file', 'name: t\ntopology: { import: { iommuGroups: nowhere.txt } }\nphases:\n  - { name: a, type: dma }\n', /topology\.import\.iommuGroups: .*nowhere\.txt: no such file/],
  ['a bad cache geometry type', `${ok}hardware: { iommu: { iotlb: { entries: 64 } } }\nphases:\n  - { name: a, type: dma }\n`, /hardware\.iommu\.iotlb\.ways: expected number, got nothing/],
];

function expectBadInput(r: { code: number | null; stderr: string; stdout: string }, msg: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(msg);
  expect(hasStack(r.stderr)).toBe(false);
  expect(r.stdout).toBe('');
}

describe.concurrent('malformed scenarios give exit code 2 and name the field', () => {
  it.each(scenarios)('%s', async (name, text, msg) => {
    const p = file(`${name === 'bad YAML' ? 'bad' : name.replace(/\W+/g, '-')}.yaml`, text);
    expectBadInput(await runCli(['run', p, '--quiet']), msg);
  });
});

describe.concurrent('malformed flags give exit code 2 and name the flag', () => {
  const qs = scenario('quickstart.yaml');
  const cases: [string, string[], RegExp][] = [
    ['a missing scenario file', ['run', join(dir, 'none.yaml')], /scenario file .*none\.yaml: no such file/],
    ['an unknown flag', ['run', qs, '--bogus'], /unknown option '--bogus'/],
    ['a non-numeric --threads', ['run', qs, '--threads', 'two'], /--threads <n>.*'two' is invalid/],
    ['a negative --seed', ['run', qs, '--seed', '-1'], /--seed/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['--vary without =', ['sweep', qs, '--vary', 'hardware.iommus'], /--vary "hardware\.iommus": expected path=value1,value2/],
    ['--vary with an empty value', ['sweep', qs, '--vary', 'hardware.iommus=1,,4'], /--vary .*empty value/],
    ['--vary of an unknown phase', ['sweep', qs, '--vary', 'phases.nope.requests=1,2'], /--vary phases\.nope\.requests: no phase named "nope"/],
    ['--vary to an invalid value', ['sweep', qs, '--vary', 'hardware.iommus=1,0'], /hardware\.iommus: expected >= 1, got 0/],
    ['a bad --shard', ['sweep', qs, '--vary', 'seed=1,2', '--shard', '2/2'], /--shard "2\/2": expected i\/n/],
    ['sweep without --vary or a sweep block', ['sweep', qs], /sweep: give --vary/],
    ['merge of a missing file', ['merge', join(dir, 'p.json'), '--out', dir], /merge: .*p\.json: no such file/],
    ['merge without --out', ['merge', join(dir, 'p.json')], /required option '--out <dir>'/],
    ['compare of a non-results file', ['compare', qs, qs], /compare: .*quickstart\.yaml: not JSON/],
    ['an unknown study', ['study', 'pasid', 'no-such-mix'], /unknown mix "no-such-mix"/],
    ['a missing listing', ['topology', 'show', join(dir, 'none.txt')], /listing .*none\.txt: no such file/],
  ];
  it.each(cases)('%s', async (_name, args, msg) => {
    expectBadInput(await runCli(args), msg);
  });
});

describe('a combination the simulator lacks is a simulation error', () => {
  it.each(['smmuv3', 'amd'])('v5 semantics on %s: exit code 1, EOPNOTSUPP', async (profile) => {
    const p = file(`${profile}.yaml`, `${ok}semantics: v5\nhardware: { profile: ${profile} }\nphases:\n  - { name: a, type: dma, requests: 4 }\n`);
    const r = await runCli(['run', p, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EOPNOTSUPP.*v5/);
    expect(hasStack(r.stderr)).toBe(false);
  });
});
