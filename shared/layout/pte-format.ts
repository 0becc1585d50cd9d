/**
 * Page-table formats as the walker and the writer see them: one small object per format
 * with the operations both sides need, built from the field knowledge in fs-pte.ts,
 * ss-pte.ts and arm64-pte.ts (the only places these bits are known).
 *
 * Models: VT-d first-stage (x86-64, 4/5 levels) and second-stage (3/4/5 levels) formats;
 * the Arm AArch64 stage-1 and stage-2 formats, 4 KiB granule (3/4 levels), whose
 * permissions are the leaf's alone (leafPermOnly); 4 KiB leaves at level 1, large leaves at
 * level 2 (2 MiB) and 3 (1 GiB).
 * Does not model: the AMD v1 format (the AMD profile runs v2 tables), the Arm 16/64 KiB
 * granules and hierarchical table attributes (see arm64-pte.ts).
 */
import { FS_PS, FS_RW, FS_US, fsFrame, fsLargeFrame, fsMakeHi, fsMakeLo, fsNoExec, fsPresent } from './fs-pte.js';
import {
  ARM64_AP_RDONLY, ARM64_AP_UNPRIV, ARM64_HI_UXN, arm64Block, arm64Frame, arm64MakeLeafHi, arm64MakeLeafLo, arm64MakeTableHi,
  arm64MakeTableLo, arm64Valid, ARM64_S2AP_READ, ARM64_S2AP_WRITE, ARM64_HI_S2_XN, arm64MakeS2LeafLo, arm64MakeS2LeafHi,
} from './arm64-pte.js';
import { AMD_V1_HI_IR, AMD_V1_HI_IW, amdV1Frame, amdV1Large, amdV1PdeHi, amdV1PdeLo, amdV1Present, amdV1PteHi, amdV1PteLo } from './amd/v1-pte.js';
import { SS_PS, SS_R, SS_W, SS_X, ssFrame, ssMakeHi, ssMakeLo, ssPresent } from './ss-pte.js';

export type PteFormatName = 'first-stage' | 'second-stage' | 'arm64-s1' | 'arm64-s2' | 'amd-v1';

/** Permission bits a leaf grants, as the caches store them. */
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_EXEC = 4;
/** First stage: every level had U/S=1, so user (unprivileged) requests may use it. */
export const PERM_USER = 8;
export const PERM_ALL = PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER;

export interface Prot { read?: boolean; write?: boolean; exec?: boolean }

export interface PteFormat {
  readonly name: PteFormatName;
  /** Levels allowed for this format. */
  readonly levels: readonly number[];
  /**
   * Permissions live in the leaf only (Arm: AP[2] is a deny bit and bit 1 means "table"
   * above level 1 but "page" at it): a walk's permissions are perm() of the leaf alone, not
   * walkPerm() over the levels. Absent or false: the AND over all levels (x86 formats).
   */
  readonly leafPermOnly?: boolean;
  present(lo: number): boolean;
  /** Large leaf (PS bit; Arm: bit 1 clear = block), meaningful at levels 2 and 3. */
  large(lo: number): boolean;
  /** Frame a non-leaf entry or 4 KiB leaf points at. */
  frame(lo: number, hi: number): number;
  /** Frame a large leaf points at. */
  largeFrame(lo: number, hi: number): number;
  /**
   * Permission bits (PERM_*) this entry grants on its own; a walk ANDs them over levels
   * (or, with leafPermOnly, takes the leaf's).
   */
  perm(lo: number, hi: number): number;
  /**
   * Permission bits of a whole walk from its entries' low halves ANDed together and high
   * halves ORed together (grant bits must be set at every level, XD at any level denies):
   * the same result as ANDing perm() over the levels, with one call per walk.
   */
  walkPerm(andLo: number, orHi: number): number;
  leafLo(frame: number, prot: Prot, large: boolean): number;
  leafHi(frame: number, prot: Prot): number;
  /** Low half of a table entry at `level` (pointing at a table of level − 1; AMD v1 records it). */
  tableLo(frame: number, level?: number): number;
  tableHi(frame: number): number;
}

export const FIRST_STAGE: PteFormat = {
  name: 'first-stage',
  levels: [4, 5],
  leafPermOnly: false, // set on every format, in the same place, so they share one shape
  present: fsPresent,
  large: (lo) => (lo & FS_PS) !== 0,
  frame: fsFrame,
  largeFrame: fsLargeFrame,
  perm: (lo, hi) => PERM_READ | ((lo & FS_RW) ? PERM_WRITE : 0) | (fsNoExec(hi) ? 0 : PERM_EXEC) | ((lo & FS_US) ? PERM_USER : 0),
  walkPerm: (andLo, orHi) => PERM_READ | ((andLo & FS_RW) ? PERM_WRITE : 0) | (fsNoExec(orHi) ? 0 : PERM_EXEC) | ((andLo & FS_US) ? PERM_USER : 0),
  // Linux maps DMA domains' first-stage leaves with U/S set (requests without PASID, and
  // PASID requests without PRIV, are user requests); read is implied by P.
  leafLo: (frame, prot, large) => fsMakeLo(frame, { write: !!prot.write, user: true, exec: !!prot.exec, large }),
  leafHi: (frame, prot) => fsMakeHi(frame, { write: !!prot.write, user: true, exec: !!prot.exec }),
  tableLo: (frame) => fsMakeLo(frame, { write: true, user: true, exec: true }),
  tableHi: (frame) => fsMakeHi(frame, { write: true, user: true, exec: true }),
};

export const SECOND_STAGE: PteFormat = {
  name: 'second-stage',
  levels: [3, 4, 5],
  leafPermOnly: false,
  present: ssPresent,
  large: (lo) => (lo & SS_PS) !== 0,
  frame: ssFrame,
  largeFrame: ssFrame,
  perm: (lo) => ((lo & SS_R) ? PERM_READ : 0) | ((lo & SS_W) ? PERM_WRITE : 0) | ((lo & SS_X) ? PERM_EXEC : 0) | PERM_USER,
  walkPerm: (andLo) => ((andLo & SS_R) ? PERM_READ : 0) | ((andLo & SS_W) ? PERM_WRITE : 0) | ((andLo & SS_X) ? PERM_EXEC : 0) | PERM_USER,
  leafLo: (frame, prot, large) => ssMakeLo(frame, { read: !!prot.read, write: !!prot.write, exec: !!prot.exec, large }),
  leafHi: (frame) => ssMakeHi(frame),
  tableLo: (frame) => ssMakeLo(frame, { read: true, write: true, exec: true }),
  tableHi: (frame) => ssMakeHi(frame),
};

/** Arm leaf permissions: read when valid, write unless AP[2], user when AP[1], exec unless UXN. */
function arm64Perm(lo: number, hi: number): number {
  return PERM_READ | ((lo & ARM64_AP_RDONLY) ? 0 : PERM_WRITE) | ((hi & ARM64_HI_UXN) ? 0 : PERM_EXEC) | ((lo & ARM64_AP_UNPRIV) ? PERM_USER : 0);
}

/**
 * Arm AArch64 stage-1, 4 KiB granule: 4 levels (T0SZ=16, 48-bit) or 3 (T0SZ=25, 39-bit).
 * Permissions are the leaf's (leafPermOnly); PERM_EXEC is UXN's (a request's exec counts
 * as an unprivileged instruction fetch; PXN is written, not read). walkPerm is perm():
 * the walker hands it the leaf's halves. The writer follows arm_lpae_prot_to_pte for a
 * stage-1 DMA mapping without IOMMU_PRIV: AP[1] always, AP[2] without write, XN
 * (PXN|UXN) without exec, AF, nG, SH inner shareable, AttrIndx = the cacheable MAIR index.
 */
export const ARM64_S1: PteFormat = {
  name: 'arm64-s1',
  levels: [3, 4],
  leafPermOnly: true,
  present: arm64Valid,
  large: arm64Block,
  frame: arm64Frame,
  largeFrame: arm64Frame,
  perm: arm64Perm,
  walkPerm: arm64Perm,
  leafLo: (frame, prot, large) => arm64MakeLeafLo(frame, { write: !!prot.write, exec: !!prot.exec, user: true, block: large }),
  leafHi: (frame, prot) => arm64MakeLeafHi(frame, { write: !!prot.write, exec: !!prot.exec, user: true }),
  tableLo: arm64MakeTableLo,
  tableHi: arm64MakeTableHi,
};

/** Arm stage-2 leaf permissions: read with S2AP[0], write with S2AP[1], exec unless XN; no user/privileged split. */
function arm64S2Perm(lo: number, hi: number): number {
  return ((lo & ARM64_S2AP_READ) ? PERM_READ : 0) | ((lo & ARM64_S2AP_WRITE) ? PERM_WRITE : 0) | ((hi & ARM64_HI_S2_XN) ? 0 : PERM_EXEC) | PERM_USER;
}

/**
 * Arm AArch64 stage 2, 4 KiB granule (an SMMUv3 STE's S2TTB; VTCR T0SZ 16 / 25 with the
 * matching SL0): the stage-1 table layout with stage-2 leaves (arm64-pte.ts). Permissions are
 * the leaf's S2AP and XN.
 */
export const ARM64_S2: PteFormat = {
  name: 'arm64-s2',
  levels: [3, 4],
  leafPermOnly: true,
  present: arm64Valid,
  large: arm64Block,
  frame: arm64Frame,
  largeFrame: arm64Frame,
  perm: arm64S2Perm,
  walkPerm: arm64S2Perm,
  leafLo: (frame, prot, large) => arm64MakeS2LeafLo(frame, { read: !!prot.read, write: !!prot.write, block: large }),
  leafHi: (frame, prot) => arm64MakeS2LeafHi(frame, { exec: !!prot.exec }),
  tableLo: arm64MakeTableLo,
  tableHi: arm64MakeTableHi,
};

/** AMD v1 leaf permissions: read (and execute) with IR, write with IW; no user/supervisor split. */
function amdV1Perm(_lo: number, hi: number): number {
  return ((hi & AMD_V1_HI_IR) ? PERM_READ | PERM_EXEC : 0) | ((hi & AMD_V1_HI_IW) ? PERM_WRITE : 0) | PERM_USER;
}

/**
 * AMD v1 host page tables, 4 KiB granule (a DTE's Mode and Host Page Table Root): Next
 * Level in PDEs, leaves of the level's default size (amd/v1-pte.ts). Permissions are the
 * leaf's IR/IW (Linux writes every PDE with both set).
 */
export const AMD_V1: PteFormat = {
  name: 'amd-v1',
  levels: [3, 4],
  leafPermOnly: true,
  present: amdV1Present,
  large: amdV1Large,
  frame: amdV1Frame,
  largeFrame: amdV1Frame,
  perm: amdV1Perm,
  walkPerm: amdV1Perm,
  // A leaf's Next Level is 0 at every level; the walker knows the level it found it at.
  leafLo: (frame) => amdV1PteLo(frame),
  leafHi: (frame, prot) => amdV1PteHi(frame, prot),
  // A PDE at `level` points at a table of level − 1, which its Next Level says.
  tableLo: (frame, level = 2) => amdV1PdeLo(frame, level - 1),
  tableHi: (frame) => amdV1PdeHi(frame),
};

export function pteFormat(name: PteFormatName): PteFormat {
  switch (name) {
    case 'amd-v1': return AMD_V1;
    case 'first-stage': return FIRST_STAGE;
    case 'second-stage': return SECOND_STAGE;
    case 'arm64-s1': return ARM64_S1;
    case 'arm64-s2': return ARM64_S2;
  }
}

/** Writes the table index of every level 1..5 into out[1..5] (out[0] unused). */
export function levelIndices(vpnLo: number, vpnHi: number, out: Int32Array): void {
  out[1] = vpnLo & 511;
  out[2] = (vpnLo >>> 9) & 511;
  out[3] = (vpnLo >>> 18) & 511;
  out[4] = ((vpnLo >>> 27) | (vpnHi << 5)) & 511;
  out[5] = (vpnHi >>> 4) & 511;
}

/** Index of VA bits for `level` from the page number split in two u32 halves. */
export function levelIndex(vpnLo: number, vpnHi: number, level: number): number {
  switch (level) {
    case 1: return vpnLo & 511;
    case 2: return (vpnLo >>> 9) & 511;
    case 3: return (vpnLo >>> 18) & 511;
    case 4: return ((vpnLo >>> 27) | (vpnHi << 5)) & 511;
    default: return (vpnHi >>> 4) & 511;
  }
}

/** Bits of input address a table with `levels` levels translates (39/48/57). */
export function addressWidth(levels: number): number {
  return 12 + 9 * levels;
}
