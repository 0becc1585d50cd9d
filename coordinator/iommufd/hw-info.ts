/**
 * IOMMU_GET_HW_INFO (SEMANTICS.md §5.8, §1.4) and the seed-001 capability report: what a
 * user learns about a bound device and its IOMMU before building HWPTs.
 *
 * Models: the data type of the profile ('intel-vtd', 'arm-smmuv3', 'amd'; asking for
 * another is EOPNOTSUPP), out_max_pasid_log2
 * = log2(max_pasids) (0 without PASID), capabilities (dirty tracking: none here; PCI PASID
 * Execute and Privileged modes: reported for PASID-capable devices, whose PASID
 * capability this model gives both), the driver data reduced to what this model has
 * (nesting — VT-d only here —, 1 GiB leaves, PASID width of the IOMMU), and — the seed-001 proposal, an extension of the uAPI — how the
 * device uses guest PASIDs by its /dev/ioasid type (SEMANTICS.md §2.4): no vPASID (types
 * 0–2), vPASID == pPASID (3), device-internal translation (4), CPU/KVM translation with a
 * global pPASID (5).
 * Does not model: the raw register values (VT-d CAP/ECAP, SMMUv3 IDR0–5/IIDR/AIDR, AMD EFR).
 */
import { simError } from '../../shared/errors.js';
import type { Device } from '../topology.js';

export type VpasidTranslation = 'none' | 'identity' | 'device' | 'cpu';

export type HwInfoType = 'intel-vtd' | 'arm-smmuv3' | 'amd';
const TYPE_OF_PROFILE: Record<string, HwInfoType> = { vtd: 'intel-vtd', smmuv3: 'arm-smmuv3', amd: 'amd' };

export interface HwInfo {
  outDataType: HwInfoType;
  outMaxPasidLog2: number;
  outCapabilities: { dirtyTracking: boolean; pciPasidExec: boolean; pciPasidPriv: boolean };
  data: { nesting: boolean; fs1gp: boolean; iommuPasidBits: number };
  /** seed 001: does the device consume guest PASIDs, and who translates them. */
  outVpasid: { deviceType: number; usesVpasid: boolean; translation: VpasidTranslation; requiresGlobalPpasid: boolean; fixedPasid: boolean };
}

const TRANSLATION: Record<number, VpasidTranslation> = { 0: 'none', 1: 'none', 2: 'none', 3: 'identity', 4: 'device', 5: 'cpu' };

export function hwInfo(dev: Device, iommuPasidBits: number, dataType: unknown, op: string, profile = 'vtd'): HwInfo {
  const type = TYPE_OF_PROFILE[profile];
  if (dataType !== undefined && dataType !== 0 && dataType !== type) throw simError('EOPNOTSUPP', op, 'unsupported-data-type', String(dataType));
  const t = dev.deviceType;
  return {
    outDataType: type,
    outMaxPasidLog2: dev.maxPasids > 0 ? Math.log2(dev.maxPasids) : 0,
    outCapabilities: { dirtyTracking: false, pciPasidExec: dev.maxPasids > 0, pciPasidPriv: dev.maxPasids > 0 },
    data: { nesting: profile === 'vtd', fs1gp: true, iommuPasidBits },
    outVpasid: { deviceType: t, usesVpasid: t >= 3, translation: TRANSLATION[t] ?? 'none', requiresGlobalPpasid: t === 5, fixedPasid: t === 2 },
  };
}
