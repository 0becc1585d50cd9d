/**
 * Domains: the kernel's struct iommu_domain as far as this issue needs it.
 *
 * Models: blocked, identity and paging (unmanaged) / DMA (strict) domains; a paging
 * domain owns an I/O page table in its profile's format (VT-d first stage by default, as
 * Linux prefers, or second stage; SMMUv3 AArch64 stage 1 or 2; AMD v1); on VT-d a domain
 * id (DID) per IOMMU allocated on the first attachment behind that IOMMU and released with
 * the last (the SMMUv3 ASID/VMID and AMD domain ids are the drivers' own); the attachments
 * (device, PASID) that decide which caches may hold its translations (Linux's cache tags).
 * An SVA domain's table is its process's CPU page table (x86-64, or AArch64 on SMMUv3),
 * owned by the mm, not by the domain.
 * A nested domain (IOMMU_DOMAIN_NESTED) has no table of its own here: its first stage is
 * owned by a guest (root and width given as guest-physical data) and translated through
 * its parent, a second-stage paging domain allocated as a nest parent, which keeps the
 * list of nested domains above it (their caches are flushed when the parent changes).
 * Does not model: page sizes beyond 4K/2M/1G.
 */
import type { IopfHandler } from './iopf.js';
import type { PageTable } from './page-table.js';
import type { Device } from './topology.js';

export type DomainType = 'blocked' | 'identity' | 'paging' | 'dma' | 'dma-fq' | 'sva' | 'nested';

/** The guest-owned first stage of a nested domain (VT-d: struct iommu_hwpt_vtd_s1). */
export interface NestedStage1 {
  /** Guest-physical address of the first-stage root table (4 KiB aligned). */
  rootGpa: bigint;
  /** 4 or 5 levels (address width 48 or 57). */
  levels: number;
  /** Supervisor requests enabled (IOMMU_VTD_S1_SRE). */
  sre: boolean;
  /** Write-protect enable (IOMMU_VTD_S1_WPE). */
  wpe: boolean;
}

export interface Attachment {
  dev: Device;
  pasid: number;
}

export class Domain {
  readonly attachments = new Map<string, Attachment>();
  /** The domain's I/O page-fault handler (iommu_domain::iopf_handler), if fault-capable. */
  iopfHandler: IopfHandler | undefined;
  /** DID per IOMMU index, with the number of attachments behind that IOMMU. */
  readonly dids = new Map<number, { did: number; refs: number }>();
  freed = false;
  /** Nested domains: the nest parent and the guest's first stage. */
  nested: { parent: Domain; s1: NestedStage1 } | undefined;
  /** A paging domain allocated as a nest parent (IOMMU_HWPT_ALLOC_NEST_PARENT). */
  nestParent = false;
  /** Nest parent: the nested domains above it. */
  readonly children = new Set<Domain>();

  constructor(
    readonly id: number,
    readonly type: DomainType,
    readonly pt: PageTable | undefined,
    /** IOMMU the domain was allocated for (opts.dev), if any. */
    readonly iommu: number | undefined,
  ) {}

  get isPaging(): boolean {
    return this.pt !== undefined;
  }

  static key(dev: Device, pasid: number): string {
    return `${dev.iommu}:${dev.rid}:${pasid}`;
  }
}
