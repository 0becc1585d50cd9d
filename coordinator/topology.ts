/**
 * Topology: the devices the simulated machine has, which IOMMU each sits behind, and
 * their IOMMU groups.
 *
 * Models: PCI functions named by BDF (their requester id is what the IOMMU sees),
 * placed behind an IOMMU by index, with the capabilities the IOMMU cares about: PASID
 * width (max PASIDs = min(device, IOMMU)), ATS, PRI. Every device is its own group.
 * Devices behind one IOMMU have distinct requester ids (bus/device/function), whatever
 * their segment: the IOMMU's tables are indexed by requester id.
 * Does not model (yet — the kernel-API issue adds them): PCI hierarchy, ACS-derived
 * groups, aliases, VFs and mdevs, reserved regions, platform devices.
 */
import { simError } from '../shared/errors.js';
import { parseBdf } from '../shared/units.js';

export interface DeviceSpec {
  bdf: string;
  /** IOMMU index; default 0. */
  iommu?: number;
  /** 0 = cannot issue PASID-tagged DMA. Default 20. */
  pasidBits?: number;
  ats?: boolean;
  pri?: boolean;
}

export interface TopologySpec {
  iommus: number | Record<string, unknown>[];
  devices: DeviceSpec[];
}

export class Group {
  readonly devices: Device[] = [];
  constructor(readonly id: number) {}
}

export class Device {
  constructor(
    readonly bdf: string,
    readonly rid: number,
    readonly iommu: number,
    readonly maxPasids: number,
    readonly ats: boolean,
    readonly pri: boolean,
    readonly group: Group,
    readonly index: number,
  ) {}

  toString(): string {
    return this.bdf;
  }
}

export class Topology {
  readonly devices: Device[] = [];
  readonly groups: Group[] = [];
  private readonly byBdf = new Map<string, Device>();
  private readonly byRid = new Map<number, Device>();

  constructor(spec: TopologySpec, iommuCount: number, iommuPasidBits: (i: number) => number) {
    const op = 'topology';
    if (!Array.isArray(spec.devices)) throw simError('EINVAL', op, 'bad-devices', 'topology.devices must be an array');
    spec.devices.forEach((d, i) => {
      const where = `topology.devices[${i}]`;
      if (typeof d !== 'object' || d === null || typeof d.bdf !== 'string') throw simError('EINVAL', op, 'bad-device', `${where}.bdf: expected a string`);
      const parsed = parseBdf(d.bdf);
      if (!parsed) throw simError('EINVAL', op, 'bad-bdf', `${where}.bdf: '${d.bdf}' is not dddd:bb:dd.f`);
      const iommu = d.iommu ?? 0;
      if (!Number.isInteger(iommu) || iommu < 0 || iommu >= iommuCount) {
        throw simError('EINVAL', op, 'bad-iommu', `${where}.iommu: expected 0..${iommuCount - 1}, got ${String(d.iommu)}`);
      }
      const bits = d.pasidBits ?? 20;
      if (!Number.isInteger(bits) || bits < 0 || bits > 20) throw simError('EINVAL', op, 'bad-pasid-bits', `${where}.pasidBits: expected 0..20, got ${String(d.pasidBits)}`);
      const key = `${parsed.segment}:${parsed.rid}`;
      if (this.byBdf.has(key)) throw simError('EEXIST', op, 'duplicate-bdf', `${where}.bdf: '${d.bdf}' appears twice`);
      // An IOMMU tells its devices apart by requester id alone (its tables are indexed by it).
      const other = this.byRid.get(iommu * 0x10000 + parsed.rid);
      if (other) throw simError('EEXIST', op, 'duplicate-requester-id', `${where}.bdf: '${d.bdf}' has the requester id of ${other.bdf} behind IOMMU ${iommu}`);
      const ib = iommuPasidBits(iommu);
      const maxPasids = bits === 0 || ib === 0 ? 0 : 2 ** Math.min(bits, ib);
      const group = new Group(this.groups.length);
      const dev = new Device(d.bdf.length === 7 ? `0000:${d.bdf}` : d.bdf, parsed.rid, iommu, maxPasids, !!d.ats, !!d.pri, group, i);
      group.devices.push(dev);
      this.groups.push(group);
      this.devices.push(dev);
      this.byBdf.set(key, dev);
      this.byRid.set(iommu * 0x10000 + parsed.rid, dev);
    });
  }

  device(bdf: string): Device {
    const p = parseBdf(bdf);
    const d = p && this.byBdf.get(`${p.segment}:${p.rid}`);
    if (!d) throw simError('ENODEV', 'topology.device', 'no-such-device', bdf);
    return d;
  }

  /** The device an IOMMU sees as requester `rid` (undefined if none). */
  byRequester(iommu: number, rid: number): Device | undefined {
    return this.byRid.get(iommu * 0x10000 + rid);
  }
}
