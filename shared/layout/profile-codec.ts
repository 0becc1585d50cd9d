/**
 * One hardware profile's formats on the simulator's queues: the command queue (VT-d
 * invalidation queue, SMMUv3 command queue, AMD command buffer), the fault queue (VT-d
 * fault records, SMMUv3 event queue, AMD event log) and the page-request queue (VT-d PRQ,
 * SMMUv3 PRI queue, AMD PPR log) — what the driver writes and the IOMMU reads, and the
 * reverse.
 *
 * Models: the entry size of each queue; the completion command the driver appends to a
 * batch (VT-d wait descriptor with status write, SMMUv3 CMD_SYNC with an MSI write to
 * memory as Linux's MSIPOLL does, AMD COMPLETION_WAIT with a store); the page-response
 * command (page group response, CMD_PRI_RESP, COMPLETE_PPR); a fault of the shared
 * translation core (an FR code, fault-record.ts) written as the profile's record and read
 * back as the public reason name plus the profile's own code; page requests both ways.
 * Does not model: queue registers (PROD/CONS, head/tail): the rings carry the entries.
 */
import type { FaultReasonName } from './fault-record.js';
import type { InvDesc } from './inv-desc.js';
import type { SmmuCmd } from './smmuv3/commands.js';
import type { AmdCmd } from './amd/commands.js';
import type { PageRequestDesc } from './page-request.js';
import type { HwProfileName } from './profile-widths.js';
import { VTD_CODEC } from './vtd-codec.js';
import { SMMU_CODEC } from './smmuv3/codec.js';
import { AMD_CODEC } from './amd/codec.js';

/** A command of any profile (each IOMMU takes only its own profile's). */
export type HwCmd = InvDesc | SmmuCmd | AmdCmd;

/** A fault as the translation core reports it. */
export interface CoreFault {
  rid: number;
  /** -1 for a request without PASID. */
  pasid: number;
  /** The faulting address (the record keeps its page). */
  addr: bigint;
  /** FR code of the shared core (fault-record.ts). */
  fr: number;
  write: boolean;
}

/** A fault record as software reads it back. */
export interface FaultView {
  sid: number;
  pasidPresent: boolean;
  pasid: number;
  addr: bigint;
  read: boolean;
  reason: FaultReasonName;
  /** The profile's own code: VT-d FR, SMMUv3 event ID, AMD event type. */
  code: number;
}

/** Which cache a command invalidates, for the latency metrics (intel/perf.h's kinds, per profile). */
export type CmdCacheClass = 'devtlb' | 'iotlb' | 'pasid-cache' | 'context-cache' | 'other';

/** Page response codes, as the core speaks them (VT-d QI_RESP_* values). */
export type ResponseCode = 0x0 | 0x1 | 0xf;

export interface ProfileCodec<Cmd extends HwCmd = HwCmd> {
  readonly profile: HwProfileName;
  readonly cmdBytes: number;
  readonly faultBytes: number;
  readonly prqBytes: number;
  writeCmd(u32: Uint32Array, at: number, c: Cmd): void;
  /** The cache a command invalidates. */
  cacheClass(c: Cmd): CmdCacheClass;
  /**
   * The completion command: stores `data` (32 bits) at `addr` when every earlier command is
   * done; with `pageDrain`, also a page-request drain point where the format has a bit for it.
   */
  waitCmd(addr: bigint, data: number, pageDrain?: boolean): Cmd;
  /**
   * The completion command carries the drain itself (VT-d's Page Drain bit). Where it does
   * not (SMMUv3, AMD), the driver's snapshot of the page-request queue after the sync is
   * marked beside the ring entry instead (protocol.ts SEQ_DRAIN_POINT).
   */
  readonly drainInWait: boolean;
  /** The response to a page request group (`code`: RESP_SUCCESS / RESP_INVALID / RESP_FAILURE). */
  pageResponseCmd(r: { rid: number; pasid: number; pasidPresent: boolean; prgIndex: number; code: ResponseCode }): Cmd;
  /** What a fault of the core reads back as: the public reason and the profile's own code. */
  faultOf(fr: number): { reason: FaultReasonName; code: number };
  writeFault(u32: Uint32Array, at: number, f: CoreFault): void;
  readFault(u32: Uint32Array, at: number): FaultView;
  writePageRequest(u32: Uint32Array, at: number, d: PageRequestDesc): void;
  readPageRequest(u32: Uint32Array, at: number): PageRequestDesc;
}

const CODECS = { vtd: VTD_CODEC, smmuv3: SMMU_CODEC, amd: AMD_CODEC } as unknown as Readonly<Record<HwProfileName, ProfileCodec>>;

export function profileCodec(p: HwProfileName): ProfileCodec {
  return CODECS[p];
}
