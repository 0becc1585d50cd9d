/**
 * Importing real machines: the bundled z97 listings (topologies/) come back with the
 * same IOMMU groups — and the kernel's group numbers — with or without the lspci tree;
 * bad listings and trees fail with EINVAL naming the line.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importTopology } from '../../coordinator/topology-import.js';
import { parseIommuGroupsListing } from '../../coordinator/pci-listing.js';
import { parseLspciTree } from '../../coordinator/pci-lspci-tree.js';
import { build, expectSimError, groupOf } from './helpers.js';

const file = (name: string) => readFileSync(new URL(`../../topologies/${name}`, import.meta.url), 'utf8');
const GOOD = file('z97-desktop-good.txt');
const LTS = file('z97-desktop-lts-4.14.txt');
const TREE = file('z97-desktop.lspci-tv.txt');

/** The listing's own groups: group number → BDFs. */
function listedGroups(text: string): Map<number, string[]> {
  const m = new Map<number, string[]>();
  for (const f of parseIommuGroupsListing(text)) m.set(f.group, [...(m.get(f.group) ?? []), f.bdf].sort());
  return m;
}

describe.each([
  ['z97-desktop-good.txt', GOOD],
  ['z97-desktop-lts-4.14.txt', LTS],
])('importing %s', (_name, text) => {
  it.each([['without', undefined], ['with', TREE]])('reproduces every group and its number %s the lspci tree', (_w, tree) => {
    const t = build(importTopology({ iommuGroups: text, lspciTree: tree }));
    const want = listedGroups(text);
    expect(t.groups.length).toBe(want.size);
    for (const g of t.groups) expect(g.devices.map((d) => d.name).sort()).toEqual(want.get(g.id));
  });

  it('recovers the same hierarchy from bus numbers alone as from the tree', () => {
    expect(importTopology({ iommuGroups: text })).toEqual(importTopology({ iommuGroups: text, lspciTree: TREE }));
  });
});

describe('what the z97 imports say', () => {
  it('puts the GPU, both CPU root ports and the Wi-Fi card in group 1 on the 4.14 kernel', () => {
    const t = build(importTopology({ iommuGroups: LTS, lspciTree: TREE }));
    expect(groupOf(t, '01:00.0')).toEqual(['00:01.0', '00:01.1', '01:00.0', '01:00.1', '02:00.0']);
    expect(t.device('01:00.0').group.id).toBe(1);
    expect(t.device('02:00.0').upstream).toBe(t.device('00:01.1'));
    expect(t.device('00:01.1').bridgeType).toBe('root-port');
    expect(t.device('00:01.1').acsEnabled).toBe(false);
    // The ASMedia switch: ports without ACS take only their own subtree.
    expect(groupOf(t, '08:00.0')).toEqual(['06:03.0', '08:00.0']);
    expect(t.device('05:00.0').bridgeType).toBe('upstream-port');
    expect(t.device('06:03.0').bridgeType).toBe('downstream-port');
  });

  it('gives the GPU’s two functions a group of their own on the good kernel', () => {
    const t = build(importTopology({ iommuGroups: GOOD }));
    expect(groupOf(t, '01:00.1')).toEqual(['01:00.0', '01:00.1']);
    expect(groupOf(t, '00:1f.2')).toEqual(['00:1f.0', '00:1f.2', '00:1f.3']);
    expect(groupOf(t, '02:00.0')).toEqual(['02:00.0']);
  });

  it('spreads segments over several IOMMUs when asked', () => {
    const spec = importTopology({ iommuGroups: 'IOMMU Group 0 0000:00:00.0 Host bridge [0600]: A B [8086:0001]\nIOMMU Group 1 0001:00:00.0 Host bridge [0600]: A B [8086:0001]\n', iommus: 2 });
    expect(build(spec).devices.map((d) => d.iommu)).toEqual([0, 1]);
  });
});

describe('listing formats', () => {
  it('accepts the header-per-group variant, domains, prog-if notes and comments', () => {
    const text = [
      '# from a VFIO write-up',
      'IOMMU Group 0:',
      '\t0000:00:00.0 Host bridge [0600]: Intel Corporation Device [8086:3e30] (rev 0d)',
      'IOMMU Group 1:',
      '\t0000:00:17.0 SATA controller [0106]: Intel Corporation Device [8086:a352] (rev 10) (prog-if 01 [AHCI 1.0])',
      '\t0000:00:17.1 SATA controller [0106]: Intel Corporation Device [8086:a353] (rev 10)',
      '',
    ].join('\n');
    const listed = parseIommuGroupsListing(text);
    expect(listed.map((f) => [f.line, f.group, f.bdf, f.classCode, f.vendorId, f.deviceId])).toEqual([
      [3, 0, '0000:00:00.0', 0x0600, 0x8086, 0x3e30], [5, 1, '0000:00:17.0', 0x0106, 0x8086, 0xa352], [6, 1, '0000:00:17.1', 0x0106, 0x8086, 0xa353],
    ]);
    expect(groupOf(build(importTopology({ iommuGroups: text })), '00:17.1')).toEqual(['00:17.0', '00:17.1']);
  });

  it('joins functions no PCI rule explains with a DMA alias so the groups still come back', () => {
    const text = 'IOMMU Group 0 00:02.0 VGA compatible controller [0300]: A B [8086:0002]\nIOMMU Group 0 00:03.0 Audio device [0403]: A C [8086:0003]\nIOMMU Group 1 00:04.0 Audio device [0403]: A D [8086:0004]\n';
    const spec = importTopology({ iommuGroups: text });
    expect(spec.devices[1].aliases).toEqual(['0000:00:02.0']);
    expect(build(spec).groups.map((g) => g.devices.length)).toEqual([2, 1]);
  });

  it('parses a tree with several root buses', () => {
    const tree = ['-+-[0000:80]-+-00.0  Intel Corporation Device', ' |           \\-01.0-[81]----00.0  NVMe', ' \\-[0000:00]---00.0  Host bridge'].join('\n');
    expect(parseLspciTree(tree).map((f) => [f.line, f.bus, f.rid, f.secondary])).toEqual([[1, 0x80, 0x8000, -1], [2, 0x80, 0x8008, 0x81], [2, 0x81, 0x8100, -1], [3, 0, 0, -1]]);
  });
});

describe('bad listings and trees', () => {
  const line1 = 'IOMMU Group 0 00:00.0 Host bridge [0600]: Intel Corporation DRAM Controller [8086:0c00] (rev 06)';
  it.each([
    ['a line that is no listing line', `${line1}\nIOMMU Group 1 00:01.0 PCI bridge: Intel\n`, 'iommuGroups line 2: expected'],
    ['a device number beyond 1f', `${line1}\n\nIOMMU Group 1 00:20.0 PCI bridge [0604]: Intel X [8086:0c01]\n`, "iommuGroups line 3: '00:20.0' is not a PCI bus:device.function"],
    ['a function listed twice', `${line1}\nIOMMU Group 1 00:01.0 PCI bridge [0604]: I X [8086:0c01]\nIOMMU Group 2 0000:00:01.0 PCI bridge [0604]: I X [8086:0c01]\n`, 'iommuGroups line 3: 0000:00:01.0 is already listed on line 2'],
    ['an mdev in the listing', `${line1}\nIOMMU Group 21 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\n`, "iommuGroups line 2: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001' is not a PCI bus:device.function"],
    ['a function before any group header', '\t00:00.0 Host bridge [0600]: Intel X [8086:0c00]\n', "iommuGroups line 1: a function before any 'IOMMU Group <n>:' header"],
    ['an empty listing', '\n\n', 'iommuGroups: no PCI function listed'],
  ])('rejects %s, naming the line', (_what, text, mentions) => {
    expectSimError(() => importTopology({ iommuGroups: text }), 'EINVAL', 'bad-listing', mentions);
  });

  it.each([
    ['a connector under no open list', `${TREE.split('\n').slice(0, 1).join('\n')}\n                  +-02.0  X\n`, 'lspciTree line 2: column 19'],
    ['garbage where a function belongs', '-[0000:00]-+-zz.0  X\n', 'lspciTree line 1: column 14: expected a device.function'],
    ['a function the listing lacks', `${TREE.replace('\\-1f.3', '+-1f.3')}           \\-1f.6  Intel Corporation Ethernet\n`, 'lspciTree line 23: 0000:00:1f.6 is not in the iommuGroups listing'],
    ['a sibling after the list was closed', `${TREE}           \\-1f.6  Intel Corporation Ethernet\n`, "lspciTree line 23: column 12: '\\-' continues no open list"],
  ])('rejects a tree with %s, naming the line', (_what, tree, mentions) => {
    expectSimError(() => importTopology({ iommuGroups: GOOD, lspciTree: tree }), 'EINVAL', 'bad-listing', mentions);
  });

  it('names the listing line of a function the tree lacks', () => {
    const tree = TREE.split('\n').filter((l) => !l.includes('1d.0')).join('\n');
    expectSimError(() => importTopology({ iommuGroups: GOOD, lspciTree: tree }), 'EINVAL', 'bad-listing', 'iommuGroups line 6: 0000:00:1d.0 does not appear in lspciTree');
  });

  it('names both lines when the hierarchy forces together functions the listing separates', () => {
    // The Wi-Fi card moved out of group 1, but its root port still shares group 1 with
    // its slot sibling: without ACS on that port, Linux's rules keep the card in group 1.
    const text = LTS.replace('IOMMU Group 1 02:00.0', 'IOMMU Group 30 02:00.0');
    const err = expectSimError(() => importTopology({ iommuGroups: text, lspciTree: TREE }), 'EINVAL', 'groups-not-reproducible', '(0000:02:00.0, group 30)');
    expect(err.message).toContain('line 15 (0000:00:01.0, group 1)');
  });
});
