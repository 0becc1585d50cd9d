/**
 * Per-device capabilities a topology records: reserved regions (with the IOMMU's MSI
 * window), require_direct, untrusted (inherited below external-facing ports), the
 * /dev/ioasid device type, PASID width against the IOMMU's.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_DEFAULT_RESERVED_REGIONS } from '../../coordinator/topology.js';
import { build } from './helpers.js';

const MSI = { start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' };

describe('reserved regions', () => {
  it('gives every device behind an IOMMU the x86 MSI window', () => {
    const t = build({
      iommus: 1,
      devices: [{ bdf: '03:00.0' }, { bdf: '03:00.1', kind: 'vf', parent: '03:00.0' }, { bdf: 'm', kind: 'mdev', parent: '03:00.0' }, { bdf: 'p', kind: 'platform' }],
    });
    for (const d of t.devices) expect(d.reservedRegions).toEqual([MSI]);
    expect(IOMMU_DEFAULT_RESERVED_REGIONS).toEqual([MSI]);
  });

  it('merges a device’s own regions in start order, and a direct region makes it require direct mappings', () => {
    const rmrr = { start: 0xfff00000n, last: 0xffffffffn, type: 'direct' as const };
    const low = { start: 0x1000n, last: 0x1fffn, type: 'reserved' as const };
    const t = build({ iommus: 1, devices: [{ bdf: '00:14.0', reservedRegions: [rmrr, low] }, { bdf: '00:02.0', requireDirect: true }, { bdf: '00:03.0' }] });
    const [usb, gfx, audio] = t.devices;
    expect(usb.reservedRegions).toEqual([low, MSI, rmrr]);
    expect([usb.requireDirect, gfx.requireDirect, audio.requireDirect]).toEqual([true, true, false]);
  });
});

describe('untrusted devices', () => {
  it('marks everything below an external-facing port untrusted, VFs and mdevs included', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'tbt', kind: 'root-port', acs: true, externalFacing: true }, { id: 'dock', acs: true, behind: 'tbt' }],
      devices: [
        { bdf: '00:07.0', bridge: { type: 'root-port', secondaryBus: 0x20, externalFacing: true } },
        { bdf: '20:00.0' }, { bdf: '30:00.0', behind: 'dock' }, { bdf: '30:00.1', kind: 'vf', parent: '30:00.0' },
        { bdf: 'm', kind: 'mdev', parent: '30:00.0' }, { bdf: '40:00.0' }, { bdf: '41:00.0', untrusted: true },
      ],
    });
    const u = Object.fromEntries(t.devices.map((d) => [d.name.replace(/^0000:/, ''), d.untrusted]));
    expect(u).toEqual({ '00:07.0': false, '20:00.0': true, '30:00.0': true, '30:00.1': true, m: true, '40:00.0': false, '41:00.0': true });
  });
});

describe('device types and PASID width', () => {
  it('defaults the /dev/ioasid device type from kind and PASID support, and keeps a given one', () => {
    const t = build({
      iommus: 1,
      devices: [
        { bdf: '03:00.0' }, { bdf: '04:00.0', pasidBits: 0 }, { bdf: '05:00.0', deviceType: 4 },
        { bdf: 'a', kind: 'mdev', parent: '03:00.0' }, { bdf: 'b', kind: 'mdev', parent: '04:00.0' }, { bdf: 'c', kind: 'mdev', parent: '03:00.0', deviceType: 5 },
      ],
    });
    expect(t.devices.map((d) => d.deviceType)).toEqual([3, 0, 4, 2, 1, 5]);
  });

  it('caps max PASIDs at the IOMMU’s width and keeps the device’s own width', () => {
    const t = build({ iommus: 1, devices: [{ bdf: '03:00.0' }, { bdf: '04:00.0', pasidBits: 5 }] }, 10);
    expect(t.devices.map((d) => [d.pasidBits, d.maxPasids])).toEqual([[20, 1024], [5, 32]]);
  });
});
