/**
 * What a hardware profile's device and PASID lookup gives the shared translation core: the
 * decoded requester context (VT-d context entry, SMMUv3 STE, AMD DTE) and the decoded
 * per-PASID context (VT-d PASID-table entry, SMMUv3 context descriptor, AMD GCR3 entry).
 *
 * Models: the fields the translation pipeline (translate.ts) needs, in one shape for every
 * profile, and the reader interface each profile implements (vtd-context.ts,
 * smmu-context.ts, amd-context.ts). Faults are reported as FR codes (fault-record.ts), the
 * core's fault language; each profile's event writer turns them into its own records.
 * Does not model: the caching itself (context-cache.ts, pasid-cache.ts).
 */
import type { PteFormat } from '../shared/layout/pte-format.js';

/** A decoded, present requester entry as the context cache holds it. */
export interface DeviceContext {
  /** Fault processing disabled for this requester (its faults are not recorded). */
  fpd: boolean;
  /** Device TLB (ATS) enabled: VT-d DTE, SMMUv3 STE.EATS, AMD DTE IOTLB enable. */
  dte: boolean;
  /** PASID-tagged requests allowed: VT-d PASIDE, SMMUv3 S1CDMax > 0, AMD GV. */
  paside: boolean;
  /** Page requests enabled: VT-d PRE, SMMUv3/AMD the device's PRI (STE/DTE PPR). */
  pre: boolean;
  /** Root of the per-PASID table: PASID directory, CD table (or its L1), GCR3 root. */
  dirFrame: number;
  /** PASIDs the per-PASID table covers (requests beyond it fault). */
  dirEntries: number;
  /** Levels of the per-PASID table: VT-d 2, SMMUv3 1 (linear) or 2, AMD GLX + 1. */
  dirLevels: number;
  /** PASID the requests without PASID use (VT-d RID_PASID, SMMUv3 SSID 0, AMD PASID 0). */
  ridPasid: number;
  ridPriv: boolean;
  /**
   * The requester's tag space, combined with the per-PASID tag by readers that need it:
   * SMMUv3 VMID (0 for stage-1 only), AMD DTE DomainID; VT-d 0.
   */
  tagBase: number;
  /** Profile-specific decoded bits a reader keeps for readPasid() (SMMUv3 S1DSS, AMD mode). */
  aux: number;
}

/** A decoded, present per-PASID entry as the PASID cache holds it. */
export interface PasidContext {
  fpd: boolean;
  /** Translation type, in VT-d PGTT terms (PGTT_FL, PGTT_SL, PGTT_NESTED, PGTT_PT). */
  pgtt: number;
  /** IOTLB tag: VT-d DID, SMMUv3 ASID (| VMID << 16), AMD DomainID. */
  did: number;
  /** IOTLB entries are tagged with the PASID as well (VT-d first stage/PT, AMD GN); not SMMUv3 (ASID only). */
  pasidTagged: boolean;
  /** Supervisor (privileged) requests allowed. */
  sre: boolean;
  /** Format of the first-stage table (x86-64 for VT-d/AMD, AArch64 stage 1 for SMMUv3). */
  fsFormat: PteFormat;
  fsRootFrame: number;
  fsLevels: number;
  /** Format of the second-stage table (VT-d second stage; AArch64 stage 2 for SMMUv3). */
  ssFormat: PteFormat;
  ssRootFrame: number;
  ssLevels: number;
}

/** One profile's table reader; `fault`/`fpd`/`reads` describe the last lookup. */
export interface ContextReader {
  /** FR code of the last failed lookup. */
  fault: number;
  /** The failed lookup's fault is suppressed (fault processing disabled on the way). */
  fpd: boolean;
  /** Table memory reads of the last lookup (for the cost model). */
  reads: number;
  readContext(rid: number): DeviceContext | undefined;
  readPasid(ctx: DeviceContext, pasid: number): PasidContext | undefined;
}
