/**
 * Per-profile widths and queue geometry: PASID/SSID widths, the 16-bit tag spaces
 * (VT-d DID, SMMUv3 ASID and VMID, AMD DomainID), queue entry sizes and default depths.
 *
 * Models: one small table per hardware profile, each value with its source. Architectural
 * maxima are kept apart from the defaults the simulator starts with (which follow what
 * Linux programs or what shipping hardware reports).
 * Does not model: the per-IOMMU overrides (shared/config.ts resolves those), cache sizes
 * and costs (the cost model), the allocators over these spaces (coordinator/id-space.ts).
 */
import { INV_DESC_BYTES } from './inv-desc.js';
import { FAULT_RECORD_BYTES } from './fault-record.js';
import { PAGE_REQUEST_BYTES, PRQ_DEPTH_LINUX } from './page-request.js';
import { SMMU_CMD_BYTES } from './smmuv3/commands.js';
import { SMMU_EVENT_BYTES } from './smmuv3/event.js';
import { SMMU_PRI_BYTES } from './smmuv3/pri.js';
import { AMD_CMD_BYTES } from './amd/commands.js';
import { AMD_EVENT_BYTES } from './amd/event-log.js';
import { PPR_ENTRY_BYTES, PPR_LOG_ENTRIES_LINUX } from './amd/ppr-log.js';

export type HwProfileName = 'vtd' | 'smmuv3' | 'amd';

/** One tag space (DID, ASID, VMID, DomainID): width, and the first id the kernel hands out. */
export interface TagSpaceWidth {
  bits: number;
  /** Lowest id Linux allocates; the ones below are reserved. */
  first: number;
}

export interface QueueWidth {
  entryBytes: number;
  /** Default depth in entries (a power of two). */
  depth: number;
}

export interface ProfileWidths {
  /** Architectural maximum PASID/SSID width. */
  pasidBitsMax: number;
  /** Width the simulator defaults to (what Linux and shipping parts use). */
  pasidBitsDefault: number;
  /** The tag spaces of this profile, by name. */
  tags: Readonly<Record<string, TagSpaceWidth>>;
  command: QueueWidth;
  /** Fault/event reporting: VT-d fault records, SMMU event queue, AMD event log. */
  event: QueueWidth;
  /** Page requests: VT-d PRQ, SMMU PRI queue, AMD PPR log. */
  pageRequest: QueueWidth;
}

/** VT-d: DID 0 is reserved, DID 1 tags pass-through entries (Linux FLPT_DEFAULT_DID); domains get 2 and up. */
export const FLPT_DEFAULT_DID = 1;
export const IDA_START_DID = 2;

export const PROFILE_WIDTHS: Readonly<Record<HwProfileName, ProfileWidths>> = {
  vtd: {
    // ECAP.PSS (39:35) = width − 1, at most 19: 20 bits (HARDWARE.md §4.1; PCIe PASID is 20 bits).
    pasidBitsMax: 20,
    // shared/config.ts VTD_DEFAULTS.pasidBits; Linux intel_pasid_max_id on current parts.
    pasidBitsDefault: 20,
    tags: {
      // CAP.ND = 6 → 16-bit DID; Linux ida from IDA_START_DID = 2 (0 reserved, 1 = FLPT_DEFAULT_DID)
      // (QEMU VTD_DOMAIN_ID_SHIFT 16).
      did: { bits: 16, first: IDA_START_DID },
    },
    // 256-bit scalable-mode descriptors; Linux QI_LENGTH 256 (HARDWARE.md §1.1.1).
    command: { entryBytes: INV_DESC_BYTES, depth: 256 },
    // 128-bit FRCD records; hardware has CAP.NFR + 1 registers, the simulator a 256-record
    // ring (shared/config.ts VTD_DEFAULTS.queues.event).
    event: { entryBytes: FAULT_RECORD_BYTES, depth: 256 },
    // 32-byte page request descriptors; Linux PRQ_ORDER 4 → 2048 (HARDWARE.md §1.1.4).
    pageRequest: { entryBytes: PAGE_REQUEST_BYTES, depth: PRQ_DEPTH_LINUX },
  },
  smmuv3: {
    // IDR1.SSIDSIZE (10:6) ≤ 20 ("SoCs with SSIDSIZE=0x14 i.e. 20"; HARDWARE.md §4.1).
    pasidBitsMax: 20,
    pasidBitsDefault: 20,
    tags: {
      // IDR0.ASID16 → 16 bits (8 without); Linux xa_alloc XA_LIMIT(1, 2^asid_bits − 1):
      // ASID 0 is never handed out (arm_smmu_domain_finalise_s1, arm_smmu_sva_domain_alloc).
      asid: { bits: 16, first: 1 },
      // IDR0.VMID16 → 16 bits (8 without); Linux ida_alloc_range(1, 2^vmid_bits − 1):
      // "Reserve VMID 0 for stage-2 bypass STEs" (arm_smmu_domain_finalise_s2).
      vmid: { bits: 16, first: 1 },
    },
    // 16-byte commands (CMDQ_ENT_SZ_SHIFT 4). Depth: hardware advertises IDR1.CMDQS (QEMU 19,
    // gem5 7) and Linux takes min(CMDQS, CMDQ_MAX_SZ_SHIFT); the simulator starts at 256, the
    // VT-d QI_LENGTH, so profiles compare like for like; it must stay ≥ CMDQ_BATCH_ENTRIES 64.
    command: { entryBytes: SMMU_CMD_BYTES, depth: 256 },
    // 32-byte event records (EVTQ_ENT_SZ_SHIFT 5); depth chosen like the VT-d event ring.
    event: { entryBytes: SMMU_EVENT_BYTES, depth: 256 },
    // 16-byte PRI records (PRIQ_ENT_SZ_SHIFT 4); "PRIQ (configurable)" (HARDWARE.md §5):
    // the simulator uses the VT-d PRQ depth, 2048.
    pageRequest: { entryBytes: SMMU_PRI_BYTES, depth: 2048 },
  },
  amd: {
    // EFR.PASmax (36:32): the specification allows 20 bits (HARDWARE.md §1.3, §4.1).
    pasidBitsMax: 20,
    // "hardware only implement upto 16-bit PASID" — Linux PASID_MASK 0xffff (amd_iommu_types.h).
    pasidBitsDefault: 16,
    tags: {
      // MAX_DOMAIN_ID 65536; Linux pdom_id_alloc = ida_alloc_range(1, MAX_DOMAIN_ID − 1).
      domainId: { bits: 16, first: 1 },
    },
    // 16-byte commands; Linux CMD_BUFFER_ENTRIES 512 (MMIO_CMD_SIZE_512).
    command: { entryBytes: AMD_CMD_BYTES, depth: 512 },
    // 16-byte event entries; Linux EVT_BUFFER_SIZE 8192 = 512 entries.
    event: { entryBytes: AMD_EVENT_BYTES, depth: 512 },
    // 16-byte PPR entries; Linux PPR_LOG_ENTRIES 512.
    pageRequest: { entryBytes: PPR_ENTRY_BYTES, depth: PPR_LOG_ENTRIES_LINUX },
  },
};

/** Largest id of a tag space (2^bits − 1). */
export function tagSpaceMax(t: TagSpaceWidth): number {
  return 2 ** t.bits - 1;
}

/** Ids the kernel can hand out from a tag space (max − first + 1). */
export function tagSpaceCapacity(t: TagSpaceWidth): number {
  return tagSpaceMax(t) - t.first + 1;
}
