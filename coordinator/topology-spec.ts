/**
 * Topology spec: the plain-object description of a machine (TopologySpec and its parts)
 * that Simulator.start, generateTopology and importTopology speak, and the constants
 * every built topology shares.
 *
 * Models: the shapes of API.md's Topology section, refined: bridges as devices
 * (`bridge`), switch kinds, explicit DMA aliases; the IOMMU's default reserved region
 * (x86 MSI window). Does not model: validation (topology-spec-check.ts), building
 * (topology.ts).
 */

export type DeviceKind = 'pci' | 'vf' | 'mdev' | 'platform';
/** PCIe port / bridge type of a bridge function (the PCIe capability's port type). */
export type BridgeType = 'root-port' | 'upstream-port' | 'downstream-port' | 'pcie-to-pci' | 'pci-bridge';
export type SwitchKind = 'switch' | 'root-port' | 'pcie-to-pci';
export type ReservedRegionType = 'msi' | 'reserved' | 'direct';
/** A range of IOVA the device must not have mapped (`last` inclusive). */
export interface ReservedRegion {
  start: bigint;
  last: bigint;
  type: ReservedRegionType;
}
/** The device taxonomy of the /dev/ioasid discussion (SEMANTICS.md §2.4). */
export type IoasidDeviceType = 0 | 1 | 2 | 3 | 4 | 5;

/** A PCI bridge function: devices on its secondary bus sit behind it. */
export interface BridgeSpec {
  type: BridgeType;
  /** ACS with the flags Linux requires enabled. Default true; PCIe-to-PCI and PCI bridges have none. */
  acs?: boolean;
  /** Its secondary bus: PCI functions on that bus (same segment) sit behind it unless they name another `behind`. */
  secondaryBus?: number;
  /** A port facing the outside (Thunderbolt, hot-plug slot): everything below is untrusted. */
  externalFacing?: boolean;
}

export interface DeviceSpec {
  /** 'dddd:bb:dd.f' or 'bb:dd.f'; mdevs and platform devices use any unique name. */
  bdf: string;
  /** IOMMU index; default: the one of its switch/bridge or parent, else 0. */
  iommu?: number;
  /** A switch id or a bridge device's BDF; a switch without ACS puts its devices in one group. */
  behind?: string;
  /** Default 'pci'. */
  kind?: DeviceKind;
  /** The PF of a VF; the device an mdev is carved from. */
  parent?: string;
  /** 0 = cannot issue PASID-tagged DMA. Default 20 (0 for bridges and conventional PCI; an mdev's parent's). */
  pasidBits?: number;
  pri?: boolean;
  ats?: boolean;
  /**
   * ACS on this function of a multi-function slot. false: the functions without ACS
   * share a group. Default: the value another function of the slot gives, else true.
   */
  multifunctionAcs?: boolean;
  requireDirect?: boolean;
  untrusted?: boolean;
  reservedRegions?: ReservedRegion[];
  /** Default: 0 or 3 (PASID-capable) for RID devices, 1 or 2 for mdevs. */
  deviceType?: IoasidDeviceType;
  /** Other requester ids this function DMAs with ('dd.f' on its own bus, or a BDF), as DMA alias quirks add. */
  aliases?: string[];
  /** Makes this function a bridge. */
  bridge?: BridgeSpec;
}

/** A switch (or root port, or PCIe-to-PCI bridge) whose ports are not listed as devices. */
export interface SwitchSpec {
  id: string;
  /**
   * false: no port of it isolates, so it and everything below it form one group (as a
   * switch whose upstream port shares its slot with a function and has no ACS). To get
   * Linux's per-port result for a switch whose downstream ports alone lack ACS (each
   * port with its own subtree), declare the ports as bridge devices.
   */
  acs: boolean;
  iommu?: number;
  /** Default 'switch'. */
  kind?: SwitchKind;
  /** Another switch id or a bridge device's BDF; default: directly below the root complex. */
  behind?: string;
  externalFacing?: boolean;
}

export interface TopologySpec {
  iommus: number | Record<string, unknown>[];
  devices: DeviceSpec[];
  switches?: SwitchSpec[];
}

/** Every device behind an IOMMU also has these (x86: the interrupt-remapping MSI window). */
export const IOMMU_DEFAULT_RESERVED_REGIONS: readonly ReservedRegion[] = Object.freeze([
  Object.freeze({ start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' as const }),
]);

/** 'dddd:bb:dd.f' in lower-case hex. */
export function canonicalBdf(segment: number, rid: number): string {
  const h = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${h(segment, 4)}:${h(rid >> 8, 2)}:${h((rid >> 3) & 31, 2)}.${rid & 7}`;
}
