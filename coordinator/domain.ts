/**
 * Domains: the kernel's struct iommu_domain as far as this issue needs it.
 *
 * Models: blocked, identity and paging (unmanaged) / DMA (strict) domains; a paging
 * domain owns an I/O page table in the first-stage (default on VT-d scalable mode, as
 * Linux prefers) or second-stage format; per IOMMU a domain id (DID) allocated on the
 * first attachment behind that IOMMU and released with the last; the attachments
 * (device, PASID) that decide which caches may hold its translations (Linux's cache tags).
 * An SVA domain's table is its process's CPU page table (first-stage format), owned by
 * the mm, not by the domain.
 * Does not model: nested domains (a later issue), page sizes beyond 4K/2M/1G.
 */
import type { IopfHandler } from './iopf.js';
import type { PageTable } from './page-table.js';
import type { Device } from './topology.js';

export type DomainType = 'blocked' | 'identity' | 'paging' | 'dma' | 'dma-fq' | 'sva';

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
