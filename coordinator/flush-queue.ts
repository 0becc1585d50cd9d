/**
 * The flush queue of a DMA-FQ (lazy) domain, as drivers/iommu/dma-iommu.c keeps it.
 *
 * Models: unmaps of a lazy domain clear their PTEs at once but defer the IOTLB flush: the
 * queue holds up to IOVA_DEFAULT_FQ_SIZE (256) entries and is flushed whole (one
 * domain-wide invalidation, flush_iotlb_all) when it fills or when its timeout
 * (IOVA_DEFAULT_FQ_TIMEOUT, 10 ms) has passed in modelled time since its first entry.
 * Until then the hardware may still translate the unmapped range (the point of lazy mode).
 * Does not model: per-CPU queues (one queue per domain), the single-queue variant
 * (32768 entries / 1000 ms) beyond its parameters, IOVA recycling.
 */
export const FQ_SIZE = 256;
export const FQ_TIMEOUT_NS = 10_000_000;

export class FlushQueue {
  entries = 0;
  /** Modelled time at which the queue must be flushed (Infinity when empty). */
  deadlineNs = Infinity;

  constructor(readonly size = FQ_SIZE, readonly timeoutNs = FQ_TIMEOUT_NS) {}

  /** Queues one unmap at modelled time `now`; true when the queue is now full. */
  add(nowNs: number): boolean {
    if (this.entries === 0) this.deadlineNs = nowNs + this.timeoutNs;
    this.entries++;
    return this.entries >= this.size;
  }

  due(nowNs: number): boolean {
    return this.entries > 0 && nowNs >= this.deadlineNs;
  }

  reset(): void {
    this.entries = 0;
    this.deadlineNs = Infinity;
  }
}
