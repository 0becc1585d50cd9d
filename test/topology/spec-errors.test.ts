/**
 * Bad topology specs: each fails with its errno (EINVAL bad value, ENOENT unknown name,
 * EEXIST duplicate), a reason, and a message naming the field path.
 */
import { describe, expect, it } from 'vitest';
import type { TopologySpec } from '../../coordinator/topology.js';
import { build, expectSimError } from './helpers.js';

type Case = [what: string, spec: TopologySpec, code: string, reason: string, path: string];
const pf = { bdf: '03:00.0' };

const CASES: Case[] = [
  ['an unknown parent', { iommus: 1, devices: [pf, { bdf: '03:00.1', kind: 'vf', parent: '09:00.0' }] }, 'ENOENT', 'unknown-parent', 'topology.devices[1].parent'],
  ['a VF whose parent is a VF', { iommus: 1, devices: [pf, { bdf: '03:00.1', kind: 'vf', parent: '03:00.0' }, { bdf: '03:00.2', kind: 'vf', parent: '03:00.1' }] }, 'EINVAL', 'vf-parent-not-pf', 'topology.devices[2].parent'],
  ['a VF whose parent is an mdev', { iommus: 1, devices: [pf, { bdf: 'm', kind: 'mdev', parent: '03:00.0' }, { bdf: '03:00.2', kind: 'vf', parent: 'm' }] }, 'EINVAL', 'vf-parent-not-pf', 'topology.devices[2].parent'],
  ['a VF whose parent is a bridge', { iommus: 1, devices: [{ bdf: '00:01.0', bridge: { type: 'root-port' } }, { bdf: '00:01.1', kind: 'vf', parent: '00:01.0' }] }, 'EINVAL', 'vf-parent-not-pf', 'topology.devices[1].parent'],
  ['an mdev of an mdev', { iommus: 1, devices: [pf, { bdf: 'm1', kind: 'mdev', parent: '03:00.0' }, { bdf: 'm2', kind: 'mdev', parent: 'm1' }] }, 'EINVAL', 'mdev-of-mdev', 'topology.devices[2].parent'],
  ['a VF without a parent', { iommus: 1, devices: [{ bdf: '03:00.1', kind: 'vf' }] }, 'EINVAL', 'missing-parent', 'topology.devices[0].parent'],
  ['a parent on a PCI function', { iommus: 1, devices: [pf, { bdf: '04:00.0', parent: '03:00.0' }] }, 'EINVAL', 'unexpected-parent', 'topology.devices[1].parent'],
  ['duplicate mdev names', { iommus: 1, devices: [pf, { bdf: 'gpu-slice', kind: 'mdev', parent: '03:00.0' }, { bdf: 'gpu-slice', kind: 'mdev', parent: '03:00.0' }] }, 'EEXIST', 'duplicate-name', 'topology.devices[2].bdf'],
  ['a platform name that is an mdev’s', { iommus: 1, devices: [pf, { bdf: 'x', kind: 'mdev', parent: '03:00.0' }, { bdf: 'x', kind: 'platform' }] }, 'EEXIST', 'duplicate-name', 'topology.devices[2].bdf'],
  ['a platform name that spells a PCI function’s BDF', { iommus: 1, devices: [pf, { bdf: '0000:03:00.0', kind: 'platform' }] }, 'EEXIST', 'duplicate-name', 'topology.devices[1].bdf'],
  ['a duplicate BDF', { iommus: 1, devices: [pf, { bdf: '0000:03:00.0' }] }, 'EEXIST', 'duplicate-bdf', 'topology.devices[1].bdf'],
  ['duplicate switch ids', { iommus: 1, switches: [{ id: 's', acs: true }, { id: 's', acs: false }], devices: [] }, 'EEXIST', 'duplicate-switch', 'topology.switches[1].id'],
  ['a switch id that is a device name', { iommus: 1, switches: [{ id: 'p', acs: true }], devices: [{ bdf: 'p', kind: 'platform' }] }, 'EEXIST', 'duplicate-name', 'topology.switches[0].id'],
  ['a device behind an unknown switch', { iommus: 1, switches: [{ id: 'sw0', acs: true }], devices: [{ bdf: '03:00.0', behind: 'sw1' }] }, 'ENOENT', 'unknown-switch', 'topology.devices[0].behind'],
  ['a switch behind an unknown switch', { iommus: 1, switches: [{ id: 'sw0', acs: true, behind: 'nope' }], devices: [] }, 'ENOENT', 'unknown-switch', 'topology.switches[0].behind'],
  ['a device behind a function that is no bridge', { iommus: 1, devices: [pf, { bdf: '04:00.0', behind: '03:00.0' }] }, 'EINVAL', 'not-a-bridge', 'topology.devices[1].behind'],
  ['a VF placed behind a switch', { iommus: 1, switches: [{ id: 's', acs: true }], devices: [pf, { bdf: '03:00.1', kind: 'vf', parent: '03:00.0', behind: 's' }] }, 'EINVAL', 'unexpected-behind', 'topology.devices[1].behind'],
  ['a platform device behind a switch', { iommus: 1, switches: [{ id: 's', acs: true }], devices: [{ bdf: 'p', kind: 'platform', behind: 's' }] }, 'EINVAL', 'unexpected-behind', 'topology.devices[0].behind'],
  ['switches behind each other', { iommus: 1, switches: [{ id: 'a', acs: true, behind: 'b' }, { id: 'b', acs: true, behind: 'a' }], devices: [] }, 'EINVAL', 'cycle', 'topology.switches[0].behind'],
  ['a device on another IOMMU than its switch', { iommus: 2, switches: [{ id: 's', acs: true, iommu: 1 }], devices: [{ bdf: '03:00.0', behind: 's', iommu: 0 }] }, 'EINVAL', 'iommu-mismatch', 'topology.devices[0].iommu'],
  ['a VF on another IOMMU than its PF', { iommus: 2, devices: [pf, { bdf: '03:00.1', kind: 'vf', parent: '03:00.0', iommu: 1 }] }, 'EINVAL', 'iommu-mismatch', 'topology.devices[1].iommu'],
  ['an unknown kind', { iommus: 1, devices: [{ bdf: '03:00.0', kind: 'usb' as 'pci' }] }, 'EINVAL', 'bad-kind', 'topology.devices[0].kind'],
  ['a device type out of range', { iommus: 1, devices: [{ bdf: '03:00.0', deviceType: 7 as 0 }] }, 'EINVAL', 'bad-device-type', 'topology.devices[0].deviceType'],
  ['an mdev device type on a PCI function', { iommus: 1, devices: [{ bdf: '03:00.0', deviceType: 5 }] }, 'EINVAL', 'bad-device-type', 'topology.devices[0].deviceType'],
  ['a reserved region that ends before it starts', { iommus: 1, devices: [{ bdf: '03:00.0', reservedRegions: [{ start: 0x2000n, last: 0x1fffn, type: 'reserved' }] }] }, 'EINVAL', 'bad-reserved-region', 'topology.devices[0].reservedRegions[0].last'],
  ['a reserved region of an unknown type', { iommus: 1, devices: [{ bdf: '03:00.0', reservedRegions: [{ start: 0n, last: 1n, type: 'mmio' as 'msi' }] }] }, 'EINVAL', 'bad-reserved-region', 'topology.devices[0].reservedRegions[0].type'],
  ['an alias in another segment', { iommus: 1, devices: [{ bdf: '03:00.0', aliases: ['0001:03:00.1'] }] }, 'EINVAL', 'bad-alias', 'topology.devices[0].aliases[0]'],
  ['a switch without an acs flag', { iommus: 1, switches: [{ id: 's' } as { id: string; acs: boolean }], devices: [] }, 'EINVAL', 'bad-switch', 'topology.switches[0].acs'],
  ['PASIDs on a conventional PCI function', { iommus: 1, devices: [{ bdf: '00:1e.0', bridge: { type: 'pcie-to-pci', secondaryBus: 5 } }, { bdf: '05:00.0', pasidBits: 20 }] }, 'EINVAL', 'conventional-pci', 'topology.devices[1].pasidBits'],
  ['functions of one PCIe-to-PCI bridge on two buses', { iommus: 1, switches: [{ id: 'b', kind: 'pcie-to-pci', acs: false }], devices: [{ bdf: '05:00.0', behind: 'b' }, { bdf: '06:00.0', behind: 'b' }] }, 'EINVAL', 'bus-mismatch', 'topology.devices[1].bdf'],
  ['a function off its bridge’s secondary bus', { iommus: 1, devices: [{ bdf: '00:01.0', bridge: { type: 'root-port', secondaryBus: 1 } }, { bdf: '02:00.0', behind: '00:01.0' }] }, 'EINVAL', 'bus-mismatch', 'topology.devices[1].bdf'],
  ['a root port behind a switch', { iommus: 1, switches: [{ id: 's', acs: true }, { id: 'rp', kind: 'root-port', acs: true, behind: 's' }], devices: [] }, 'EINVAL', 'bad-placement', 'topology.switches[1].behind'],
  ['two functions with one requester id behind one IOMMU', { iommus: 1, devices: [pf, { bdf: '0001:03:00.0' }] }, 'EEXIST', 'duplicate-requester-id', 'topology.devices[1].bdf'],
  ['a non-boolean flag', { iommus: 1, devices: [{ bdf: '03:00.0', ats: 'yes' as unknown as boolean }] }, 'EINVAL', 'bad-flag', 'topology.devices[0].ats'],
];

describe('bad topology specs', () => {
  it.each(CASES)('rejects %s', (_what, spec, code, reason, path) => {
    const err = expectSimError(() => build(spec), code, reason, path);
    expect(err.op).toBe('topology');
  });
});
