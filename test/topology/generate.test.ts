/**
 * The topology generator: deterministic by seed, exact device counts, the share of
 * devices behind switches without ACS, the groups that follows from it, and a machine
 * of 100 000 devices built in a few seconds.
 */
import { describe, expect, it } from 'vitest';
import { generateTopology } from '../../coordinator/topology-generate.js';
import type { TopologySpec } from '../../coordinator/topology.js';
import { build, expectSimError } from './helpers.js';

/** Groups the rules must give: one per device behind ACS, one per ACS-less switch, one per mdev. */
function expectedGroups(spec: TopologySpec): number {
  const acs = new Map((spec.switches ?? []).map((s) => [s.id, s.acs]));
  const pfSwitch = new Map<string, string>();
  const usedNoAcs = new Set<string>();
  let groups = 0;
  for (const d of spec.devices) {
    if (d.kind === 'mdev') { groups++; continue; }
    const sw = d.kind === 'vf' ? pfSwitch.get(d.parent!)! : d.behind!;
    if (d.kind !== 'vf') pfSwitch.set(d.bdf, sw);
    if (acs.get(sw)) groups++;
    else if (!usedNoAcs.has(sw)) { usedNoAcs.add(sw); groups++; }
  }
  return groups;
}

describe('generateTopology', () => {
  const opts = { iommus: 3, devicesPerIommu: 200, vfsPerPf: 3, mdevsPerParent: 2, noAcsShare: 0.3, seed: 42 };

  it('gives the same machine for the same seed and another for another seed', () => {
    expect(generateTopology(opts)).toEqual(generateTopology(opts));
    expect(generateTopology({ ...opts, seed: 43 })).not.toEqual(generateTopology(opts));
  });

  it('builds exactly iommus × devicesPerIommu devices of the asked mix, every IOMMU its own segment', () => {
    const spec = generateTopology(opts);
    const t = build(spec);
    expect(t.devices.length).toBe(600);
    const count = (k: string) => t.devices.filter((d) => d.kind === k).length;
    // 200 = 33 units of (PF + 3 VFs + 2 mdevs) + 2 plain PFs, per IOMMU
    expect([count('pci'), count('vf'), count('mdev')]).toEqual([3 * 35, 3 * 99, 3 * 66]);
    for (let i = 0; i < 3; i++) expect(t.devices.filter((d) => d.iommu === i).length).toBe(200);
    expect(t.devices.every((d) => d.kind === 'mdev' || d.segment === d.iommu)).toBe(true);
    expect(t.devices.filter((d) => d.kind === 'vf').every((d) => d.parent?.kind === 'pci' && d.rid > d.parent.rid)).toBe(true);
    expect(t.switches.length).toBe(3 * Math.ceil(35 / 8));
  });

  it('puts about noAcsShare of the devices behind switches without ACS, each such switch one group', () => {
    const spec = generateTopology(opts);
    const t = build(spec);
    const behindNoAcs = t.devices.filter((d) => {
      const pf = d.kind === 'pci' ? d : d.parent?.kind === 'pci' ? d.parent : d.parent?.parent;
      return pf?.upstream !== undefined && !(pf.upstream as { acs: boolean }).acs;
    }).length;
    expect(Math.abs(behindNoAcs / 600 - 0.3)).toBeLessThan(48 / 600 / 2 + 1e-9); // within half a switch
    expect(t.groups.length).toBe(expectedGroups(spec));
    expect(t.groups.some((g) => g.devices.length === 32)).toBe(true); // 8 PFs × (1 + 3 VFs)
  });

  it('gives no shared groups with noAcsShare 0, and mdevs always their own', () => {
    const t = build(generateTopology({ ...opts, noAcsShare: 0 }));
    expect(t.groups.length).toBe(600);
  });

  it('rejects bad options and machines that overflow the requester-id space', () => {
    expectSimError(() => generateTopology({ iommus: 0, devicesPerIommu: 1 }), 'EINVAL', 'bad-option', 'iommus');
    expectSimError(() => generateTopology({ iommus: 1, devicesPerIommu: 1, noAcsShare: 2 }), 'EINVAL', 'bad-option', 'noAcsShare');
    expectSimError(() => generateTopology({ iommus: 1, devicesPerIommu: 10, vfsPerPf: 256 }), 'EINVAL', 'bad-option', 'vfsPerPf');
    expectSimError(() => generateTopology({ iommus: 1, devicesPerIommu: 9000 }), 'ENOSPC', 'rid-space-exhausted');
  });

  it('builds 100 000 devices in a few seconds', () => {
    const big = { iommus: 10, devicesPerIommu: 10_000, vfsPerPf: 3, mdevsPerParent: 2, noAcsShare: 0.25, seed: 1 };
    const t0 = performance.now();
    const spec = generateTopology(big);
    const t1 = performance.now();
    const t = build(spec);
    const t2 = performance.now();
    console.log(`topology 100k: generate ${(t1 - t0).toFixed(0)} ms, build ${(t2 - t1).toFixed(0)} ms, ${t.groups.length} groups`);
    expect(t.devices.length).toBe(100_000);
    expect(t.groups.length).toBe(expectedGroups(spec));
  });
});
