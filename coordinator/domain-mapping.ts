/**
 * Map and unmap of a domain (iommu_map / iommu_unmap / iommu_unmap_fast / iommu_iotlb_sync
 * / iommu_flush_iotlb_all / iommu_iova_to_phys), and the flush queues of lazy domains.
 *
 * Models: map through the domain's page table as one fail-nth step (page-table.ts clears
 * what it wrote if it runs out of table memory, so a failed map changes nothing); strict
 * unmap that resolves once every IOMMU holding a cache tag of the domain completed its
 * invalidation; gather-and-sync batching (several unmap_fast into one iotlb_sync, one flush
 * per IOMMU); DMA-FQ domains (unless an untrusted device is attached: those are always
 * strict) queue their unmaps in a flush queue (flush-queue.ts) flushed domain-wide when it
 * fills or its 10 ms pass in modelled time; iova_to_phys (identity: iova).
 * Does not model: IOVA allocation (the DMA API above this), caching-mode flushes on map.
 */
import { simError } from '../shared/errors.js';
import type { Prot } from '../shared/layout/pte-format.js';
import { asU64 } from '../shared/units.js';
import type { Domain } from './domain.js';
import { FlushQueue } from './flush-queue.js';
import type { SimulatorCore } from './simulator-core.js';
import type { IommuDriver } from './iommu-driver.js';

/** An IOTLB gather (struct iommu_iotlb_gather): ranges unmapped but not yet flushed. */
export class IotlbGather {
  start = -1n;
  end = 0n;
  pgsize = 0n;

  add(start: bigint, end: bigint, pgsize: bigint): void {
    if (this.start < 0n || start < this.start) this.start = start;
    if (end > this.end) this.end = end;
    if (pgsize > this.pgsize) this.pgsize = pgsize;
  }

  get empty(): boolean {
    return this.start < 0n;
  }
}

export class DomainMapping {
  private readonly flushQueues = new Map<Domain, FlushQueue>();

  constructor(
    private readonly core: SimulatorCore,
    private readonly driver: IommuDriver,
    private readonly checkDomain: (domain: Domain, op: string) => void,
  ) {}

  async map(domain: Domain, iova: bigint, paddr: bigint, size: bigint, prot: Prot): Promise<void> {
    const op = 'map';
    this.core.checkOpen(op);
    this.checkDomain(domain, op);
    if (!domain.pt || domain.type === 'sva') throw simError('EINVAL', op, 'not-paging', `${domain.type} domain`);
    asU64(iova, op, 'iova'); asU64(paddr, op, 'paddr'); asU64(size, op, 'size');
    if (typeof prot !== 'object' || prot === null) throw simError('EINVAL', op, 'bad-prot');
    this.core.failNth.step(op);
    // One fail-nth step per map: PageTable.map allocates table frames between leaf writes,
    // so an injected failure there would leave the range partly mapped.
    this.core.failNth.paused++;
    try {
      domain.pt.map(iova, paddr, size, prot, op);
    } finally {
      this.core.failNth.paused--;
    }
    await this.pollFlushQueues();
  }

  /**
   * Unmaps and resolves with the bytes unmapped (0n at a hole or where a large mapping
   * would split). Strict domains resolve once no IOMMU can translate the range; DMA-FQ
   * domains queue the flush (flush queue, 256 entries / 10 ms modelled).
   */
  async unmap(domain: Domain, iova: bigint, size: bigint): Promise<bigint> {
    const gather = new IotlbGather();
    const bytes = this.unmapFast(domain, iova, size, gather);
    await this.iotlbSync(domain, gather);
    return bytes;
  }

  /** iommu_unmap_fast: clears PTEs and adds the range to `gather`; no flush yet. */
  unmapFast(domain: Domain, iova: bigint, size: bigint, gather: IotlbGather): bigint {
    const op = 'unmap';
    this.core.checkOpen(op);
    this.checkDomain(domain, op);
    if (!domain.pt || domain.type === 'sva') throw simError('EINVAL', op, 'not-paging', `${domain.type} domain`);
    if (!(gather instanceof IotlbGather)) throw simError('EINVAL', op, 'bad-gather');
    asU64(iova, op, 'iova'); asU64(size, op, 'size');
    const r = domain.pt.unmap(iova, size, op);
    if (r.gather) gather.add(r.gather.start, r.gather.end, r.gather.pgsize);
    return r.unmapped;
  }

  /** iommu_iotlb_sync: flushes what `gather` collected (or queues it for a DMA-FQ domain). */
  async iotlbSync(domain: Domain, gather: IotlbGather): Promise<void> {
    this.checkDomain(domain, 'iotlbSync');
    if (gather.empty) return;
    const { start, end } = gather;
    gather.start = -1n;
    gather.end = gather.pgsize = 0n;
    if (domain.type === 'dma-fq' && ![...domain.attachments.values()].some((a) => a.dev.untrusted)) {
      let fq = this.flushQueues.get(domain);
      if (!fq) this.flushQueues.set(domain, (fq = new FlushQueue()));
      if (fq.add(this.core.clock.now)) await this.flushQueue(domain, fq);
      else await this.pollFlushQueues();
      return;
    }
    await this.driver.flushRange(domain, start, end, 'unmap');
  }

  /** iommu_flush_iotlb_all: flushes everything of the domain, its flush queue included. */
  async flushIotlbAll(domain: Domain): Promise<void> {
    this.checkDomain(domain, 'flushIotlbAll');
    const fq = this.flushQueues.get(domain);
    if (fq) fq.reset();
    await this.driver.flushAll(domain, 'flush-all');
  }

  iovaToPhys(domain: Domain, iova: bigint): bigint {
    this.checkDomain(domain, 'iovaToPhys');
    if (domain.type === 'identity') return iova;
    return domain.pt ? domain.pt.iovaToPhys(iova) : 0n;
  }

  /** Flushes the flush queues whose timeout has passed in modelled time. */
  async pollFlushQueues(): Promise<void> {
    for (const [domain, fq] of this.flushQueues) if (fq.due(this.core.clock.now)) await this.flushQueue(domain, fq);
  }

  /** Drops a freed domain's flush queue. */
  forget(domain: Domain): void {
    this.flushQueues.delete(domain);
  }

  private async flushQueue(domain: Domain, fq: FlushQueue): Promise<void> {
    fq.reset();
    await this.driver.flushAll(domain, 'flush-queue');
  }
}
