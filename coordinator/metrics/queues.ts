/**
 * Queue occupancy of one queue name ('command', 'event', 'page-request', 'dma'),
 * aggregated over every IOMMU that reports it.
 *
 * Models: occupancy samples (entries in use out of the queue's depth, taken whenever the
 * caller samples, e.g. at each push) and stalls (a producer found the queue full: command
 * ring back-pressure, an event or page-request overflow, a stalled DMA request).
 * Does not model: time weighting (each sample counts once, whatever modelled time passed
 * since the last one) or per-IOMMU breakdowns (use one Metrics per IOMMU and merge()).
 * All sums are of integers, so merging is exact and order-independent.
 */

export const QUEUE_NAMES = ['command', 'event', 'page-request', 'dma'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export interface QueueSummary {
  samples: number;
  /** Mean entries in use per sample. */
  meanUsed: number;
  maxUsed: number;
  /** Σused / Σdepth over the samples (0 … 1). */
  meanFill: number;
  /** Largest used/depth of one sample. */
  maxFill: number;
  /** Samples with used === depth. */
  fullSamples: number;
  stalls: number;
}

export class QueueOccupancy {
  samples = 0;
  sumUsed = 0;
  sumDepth = 0;
  maxUsed = 0;
  maxFill = 0;
  fullSamples = 0;

  /** One sample; `used` and `depth` are validated integers, 0 ≤ used ≤ depth, depth ≥ 1. */
  sample(used: number, depth: number): void {
    this.samples++;
    this.sumUsed += used;
    this.sumDepth += depth;
    if (used > this.maxUsed) this.maxUsed = used;
    const fill = used / depth;
    if (fill > this.maxFill) this.maxFill = fill;
    if (used === depth) this.fullSamples++;
  }

  merge(o: QueueOccupancy): void {
    this.samples += o.samples;
    this.sumUsed += o.sumUsed;
    this.sumDepth += o.sumDepth;
    if (o.maxUsed > this.maxUsed) this.maxUsed = o.maxUsed;
    if (o.maxFill > this.maxFill) this.maxFill = o.maxFill;
    this.fullSamples += o.fullSamples;
  }

  reset(): void {
    this.samples = this.sumUsed = this.sumDepth = this.maxUsed = this.maxFill = this.fullSamples = 0;
  }

  /** The summary, with the queue's stall count (a counter kept by Metrics). */
  summary(stalls: number): QueueSummary {
    return {
      samples: this.samples,
      meanUsed: this.samples ? this.sumUsed / this.samples : 0,
      maxUsed: this.maxUsed,
      meanFill: this.sumDepth ? this.sumUsed / this.sumDepth : 0,
      maxFill: this.maxFill,
      fullSamples: this.fullSamples,
      stalls,
    };
  }
}
