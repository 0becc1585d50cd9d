/**
 * Topology: the devices of the simulated machine, the PCI hierarchy they sit in, which
 * IOMMU each is behind, and their IOMMU groups. Immutable once built.
 *
 * Models: per IOMMU a root complex; PCI functions named by BDF (endpoints and bridges:
 * root ports, switch upstream/downstream ports, PCIe-to-PCI and conventional PCI
 * bridges), switches declared as a whole (`switches`, ports implicit), multi-function
 * slots, SR-IOV PFs and VFs, mediated devices (no requester id of their own: they DMA
 * with their parent's), platform devices (a synthetic requester id on a bus no PCI
 * device uses). Capabilities the IOMMU cares about: PASID width (max PASIDs =
 * min(device, IOMMU)), ATS, PRI, require_direct, untrusted (set on devices below an
 * external-facing port, as set_pcie_untrusted does), reserved regions (plus the IOMMU's
 * own: the x86 MSI window), the /dev/ioasid device type. IOMMU groups as Linux's
 * pci_device_group() derives them (iommu-groups.ts); DMA aliases and the requester id
 * the IOMMU sees as pci_for_each_dma_alias() walks them (pci-hierarchy.ts).
 * Devices behind one IOMMU have distinct requester ids, whatever their segment: the
 * IOMMU's tables are indexed by requester id.
 * Does not model: hot-plug, bus-number ranges of implicit switch ports, per-bit ACS
 * controls (one flag stands for Linux's four required ones: SV, RR, CR, UF), vendor ACS
 * quirks (give the flag instead), pci_real_dma_dev() (VMD), non-x86 MSI windows.
 */
import { simError } from '../shared/errors.js';
import { parseBdf } from '../shared/units.js';
import { checkTopologySpec } from './topology-spec-check.js';
import { buildPciHierarchy } from './pci-hierarchy.js';
import { computeIommuGroups } from './iommu-groups.js';

import {
  canonicalBdf, IOMMU_DEFAULT_RESERVED_REGIONS,
  type BridgeType, type DeviceKind, type IoasidDeviceType, type ReservedRegion, type SwitchKind, type TopologySpec,
} from './topology-spec.js';

export {
  canonicalBdf, IOMMU_DEFAULT_RESERVED_REGIONS,
} from './topology-spec.js';
export type {
  BridgeSpec, BridgeType, DeviceKind, DeviceSpec, IoasidDeviceType, ReservedRegion, ReservedRegionType, SwitchKind, SwitchSpec, TopologySpec,
} from './topology-spec.js';

export class Group {
  readonly devices: Device[] = [];
  constructor(readonly id: number) {}
}

/** What a Device carries beyond the original eight constructor fields. */
export interface DeviceDetails {
  kind: DeviceKind;
  parent: Device | undefined;
  segment: number;
  ownRid: number | undefined;
  dmaAliases: readonly number[];
  pasidBits: number;
  requireDirect: boolean;
  untrusted: boolean;
  reservedRegions: readonly ReservedRegion[];
  deviceType: IoasidDeviceType;
  bridgeType: BridgeType | undefined;
  multifunction: boolean;
  acsEnabled: boolean;
}

export class Device {
  readonly kind: DeviceKind;
  /** The unique name: the canonical BDF of a PCI function or VF, the given name otherwise (= bdf). */
  readonly name: string;
  /** The PF of a VF, the device an mdev is carved from. */
  readonly parent: Device | undefined;
  /** The bridge or switch it sits behind (a VF: its PF's); undefined below the root complex, and for mdevs and platform devices. */
  readonly upstream: Device | Switch | undefined = undefined;
  readonly segment: number;
  /** Its own bus/devfn (platform: the synthetic id); undefined for an mdev. `rid` is what the IOMMU sees. */
  readonly ownRid: number | undefined;
  /** Every requester id its DMA may carry, own first, in pci_for_each_dma_alias order; `rid` is the last bridge alias. */
  readonly dmaAliases: readonly number[];
  /** The PASID width it was given (maxPasids also counts the IOMMU's). */
  readonly pasidBits: number;
  readonly requireDirect: boolean;
  readonly untrusted: boolean;
  /** Its own reserved regions and the IOMMU's, sorted by start. */
  readonly reservedRegions: readonly ReservedRegion[];
  readonly deviceType: IoasidDeviceType;
  /** Set for bridge functions. */
  readonly bridgeType: BridgeType | undefined;
  /** Shares its slot with other (physical) functions. */
  readonly multifunction: boolean;
  /** Linux's pci_acs_enabled(dev, REQ_ACS_FLAGS) for it (false for mdevs and platform devices). */
  readonly acsEnabled: boolean;

  constructor(
    readonly bdf: string,
    readonly rid: number,
    readonly iommu: number,
    readonly maxPasids: number,
    readonly ats: boolean,
    readonly pri: boolean,
    readonly group: Group,
    readonly index: number,
    details?: DeviceDetails,
  ) {
    this.name = bdf;
    this.kind = details?.kind ?? 'pci';
    this.parent = details?.parent;
    this.segment = details?.segment ?? 0;
    this.ownRid = details ? details.ownRid : rid;
    this.dmaAliases = details?.dmaAliases ?? [rid];
    this.pasidBits = details?.pasidBits ?? (maxPasids > 0 ? Math.log2(maxPasids) : 0);
    this.requireDirect = details?.requireDirect ?? false;
    this.untrusted = details?.untrusted ?? false;
    this.reservedRegions = details?.reservedRegions ?? IOMMU_DEFAULT_RESERVED_REGIONS;
    this.deviceType = details?.deviceType ?? (maxPasids > 0 ? 3 : 0);
    this.bridgeType = details?.bridgeType;
    this.multifunction = details?.multifunction ?? false;
    this.acsEnabled = details?.acsEnabled ?? true;
  }

  toString(): string {
    return this.bdf;
  }
}

/** A switch declared in `TopologySpec.switches`. */
export class Switch {
  readonly upstream: Device | Switch | undefined = undefined;
  /** Devices directly below it (VFs included: they sit where their PF sits). */
  readonly devices: Device[] = [];
  /** Switches directly below it. */
  readonly switches: Switch[] = [];
  constructor(
    readonly id: string,
    readonly kind: SwitchKind,
    readonly acs: boolean,
    readonly iommu: number,
    readonly externalFacing: boolean,
    readonly index: number,
  ) {}

  toString(): string {
    return this.id;
  }
}

export class Topology {
  readonly devices: Device[] = [];
  readonly groups: Group[] = [];
  readonly switches: Switch[] = [];
  private readonly byName = new Map<string, Device>();
  private readonly byRid = new Map<number, Device>();
  private readonly switchById = new Map<string, Switch>();

  constructor(spec: TopologySpec, iommuCount: number, iommuPasidBits: (i: number) => number) {
    const checked = checkTopologySpec(spec, iommuCount);
    const pci = buildPciHierarchy(checked);
    const groupOf = computeIommuGroups(checked, pci);
    const n = checked.devices.length;
    let groupCount = 0;
    for (let i = 0; i < n; i++) groupCount = Math.max(groupCount, groupOf[i] + 1);
    for (let g = 0; g < groupCount; g++) this.groups.push(new Group(g));

    // Objects are made parents first (a switch or bridge before what sits behind it, a
    // PF before its VFs, a parent before its mdevs), so every reference is set once.
    const devices = new Array<Device>(n);
    const switches = new Array<Switch>(checked.switches.length);
    for (const node of pci.creationOrder) {
      if (node >= n) {
        const s = checked.switches[node - n];
        const sw = new Switch(s.id, s.kind, s.acs, s.iommu, s.externalFacing, s.index);
        switches[s.index] = sw;
        const up = s.upstream < 0 ? undefined : s.upstream >= n ? switches[s.upstream - n] : devices[s.upstream];
        if (up) link(sw, up);
        continue;
      }
      const d = checked.devices[node];
      const ib = iommuPasidBits(d.iommu);
      const bits = pci.pasidBits[node];
      const maxPasids = bits === 0 || ib === 0 ? 0 : 2 ** Math.min(bits, ib);
      const group = this.groups[groupOf[node]];
      const parent = d.parent < 0 ? undefined : devices[d.parent];
      const dev = new Device(d.name, pci.rid[node], d.iommu, maxPasids, pci.ats[node], pci.pri[node], group, node, {
        kind: d.kind,
        parent,
        segment: d.segment,
        ownRid: d.ownRid < 0 ? (d.kind === 'platform' ? pci.rid[node] : undefined) : d.ownRid,
        dmaAliases: pci.dmaAliases[node],
        pasidBits: bits,
        requireDirect: d.requireDirect,
        untrusted: pci.untrusted[node] === 1,
        reservedRegions: d.reservedRegions,
        deviceType: pci.deviceType[node] as IoasidDeviceType,
        bridgeType: d.bridge?.type,
        multifunction: pci.multifunction[node] === 1,
        acsEnabled: pci.acsEnabled[node] === 1,
      });
      devices[node] = dev;
      const upNode = pci.upstreamOf[node];
      if (upNode >= 0) link(dev, upNode >= n ? switches[upNode - n] : devices[upNode]);
    }
    for (let i = 0; i < n; i++) {
      const dev = devices[i];
      this.devices.push(dev);
      dev.group.devices.push(dev);
      this.byName.set(dev.name, dev);
    }
    for (const sw of switches) {
      this.switches.push(sw);
      this.switchById.set(sw.id, sw);
    }
    // Own requester ids first (they were checked unique per IOMMU), then the aliases
    // the IOMMU may see, each kept by the first device that uses it. mdevs have none.
    for (const dev of this.devices) if (dev.kind !== 'mdev') this.byRid.set(dev.iommu * 0x10000 + (dev.ownRid as number), dev);
    for (const dev of this.devices) {
      if (dev.kind === 'mdev') continue;
      for (const r of dev.dmaAliases) {
        const key = dev.iommu * 0x10000 + r;
        if (!this.byRid.has(key)) this.byRid.set(key, dev);
      }
    }
  }

  /** The device of that BDF (any accepted spelling) or name; ENODEV if none. */
  device(bdf: string): Device {
    let d = this.byName.get(bdf);
    if (!d) {
      const p = typeof bdf === 'string' ? parseBdf(bdf) : undefined;
      if (p) d = this.byName.get(canonicalBdf(p.segment, p.rid));
    }
    if (!d) throw simError('ENODEV', 'topology.device', 'no-such-device', String(bdf));
    return d;
  }

  /** The switch of that id; ENOENT if none. */
  switch(id: string): Switch {
    const s = this.switchById.get(id);
    if (!s) throw simError('ENOENT', 'topology.switch', 'no-such-switch', String(id));
    return s;
  }

  /** The device an IOMMU sees as requester `rid` (undefined if none): an mdev's parent, the owner of an alias. */
  byRequester(iommu: number, rid: number): Device | undefined {
    return this.byRid.get(iommu * 0x10000 + rid);
  }
}

function link(child: Device | Switch, up: Device | Switch): void {
  (child as { upstream: Device | Switch | undefined }).upstream = up;
  if (up instanceof Switch) {
    if (child instanceof Switch) up.switches.push(child);
    else up.devices.push(child);
  }
}
