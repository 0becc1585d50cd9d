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
import { ARENA_BASE_FRAME, type ArenaView, CHUNK_FRAME_SHIFT, CHUNK_FRAMES } from '../shared/memory/arena.js';

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
  /** The requester's own page table for requests without PASID: AMD's DTE host (v1) table; 0 elsewhere. */
  hostRootFrame: number;
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

/** What every profile's reader shares: the last lookup's outcome and plain reads of table memory. */
export abstract class TableReader implements ContextReader {
  fault = 0;
  fpd = false;
  reads = 0;

  constructor(protected readonly view: ArenaView, public rootFrame: number) {}

  abstract readContext(rid: number): DeviceContext | undefined;
  abstract readPasid(ctx: DeviceContext, pasid: number): PasidContext | undefined;

  /** Records a failed lookup. */
  protected fail(fr: number, fpd = false): undefined {
    this.fault = fr;
    this.fpd = fpd;
    return undefined;
  }

  /** The chunk and u32 index of a frame of table memory (undefined outside the arena this thread has). */
  protected u32At(frame: number): { chunk: Uint32Array; at: number } | undefined {
    const rel = frame - ARENA_BASE_FRAME;
    const chunk = rel >= 0 ? this.view.chunks[rel >>> CHUNK_FRAME_SHIFT] : undefined;
    return chunk ? { chunk, at: (rel & (CHUNK_FRAMES - 1)) << 10 } : undefined;
  }

  /** The u32 position of a (4-byte aligned) table address. */
  protected at(addr: bigint): { chunk: Uint32Array; at: number } | undefined {
    const f = this.u32At(Number(addr >> 12n));
    return f ? { chunk: f.chunk, at: f.at + Number(addr & 0xfffn) / 4 } : undefined;
  }
}
