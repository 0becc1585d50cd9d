/**
 * The topology API through the built package ('iommu-sim'): the exports, and simulators
 * started on an imported real machine and on a generated one — a shared group refuses a
 * single-device attach and takes a group attach, after which its devices translate.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  IOMMU_DEFAULT_RESERVED_REGIONS, Simulator, SimError, Switch, generateTopology, importTopology,
  parseIommuGroupsListing, parseLspciTree,
} from 'iommu-sim';

const RW = { read: true, write: true } as const;
const file = (name: string) => readFileSync(new URL(`../../topologies/${name}`, import.meta.url), 'utf8');
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('the topology API in the package', () => {
  it('exports the generator, the importer and the parsers', () => {
    expect([generateTopology, importTopology, parseIommuGroupsListing, parseLspciTree].every((f) => typeof f === 'function')).toBe(true);
    expect(IOMMU_DEFAULT_RESERVED_REGIONS[0].type).toBe('msi');
  });

  it('starts on the imported z97 (4.14) machine: the GPU attaches only with its whole group', async () => {
    sim = await Simulator.start({ topology: importTopology({ iommuGroups: file('z97-desktop-lts-4.14.txt'), lspciTree: file('z97-desktop.lspci-tv.txt') }) });
    const gpu = sim.topology.device('01:00.0');
    expect(gpu.group.devices.map((d) => d.name)).toEqual(['0000:00:01.0', '0000:00:01.1', '0000:01:00.0', '0000:01:00.1', '0000:02:00.0']);
    const dom = sim.iommu.domainAlloc('paging');
    await expect(sim.iommu.attachDevice(dom, gpu)).rejects.toMatchObject({ code: 'EINVAL' });
    await sim.iommu.attachGroup(dom, gpu.group);
    await sim.iommu.map(dom, 0x10000n, 0x80000n, 0x1000n, RW);
    const wifi = sim.topology.device('02:00.0');
    for (const d of [gpu, wifi]) {
      const r = await sim.dma(d, { addr: 0x10000n, access: 'read' });
      expect(r.ok && r.paddr).toBe(0x80000n);
    }
  });

  it('starts on a generated machine with switches, VFs and mdevs', async () => {
    sim = await Simulator.start({ topology: generateTopology({ iommus: 2, devicesPerIommu: 24, vfsPerPf: 2, mdevsPerParent: 1, noAcsShare: 0.5, seed: 3 }) });
    const t = sim.topology;
    expect(t.devices.length).toBe(48);
    expect(t.switches.every((s) => s instanceof Switch)).toBe(true);
    const shared = t.groups.find((g) => g.devices.length > 1)!;
    const lone = t.devices.find((d) => d.kind === 'vf' && d.group.devices.length === 1)!;
    expect(shared).toBeDefined();
    expect(lone).toBeDefined();
    const dom = sim.iommu.domainAlloc('paging', { dev: lone });
    await sim.iommu.attachDevice(dom, lone);
    await sim.iommu.map(dom, 0x2000n, 0x9000n, 0x1000n, RW);
    const r = await sim.dma(lone, { addr: 0x2000n, access: 'write' });
    expect(r.ok && r.paddr).toBe(0x9000n);
    const err = await sim.iommu.attachDevice(sim.iommu.domainAlloc('paging', { dev: shared.devices[0] }), shared.devices[0]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimError);
    expect((err as SimError).code).toBe('EINVAL');
  });
});
