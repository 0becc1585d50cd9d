/**
 * Domain-id allocation per IOMMU (VT-d DID, 16 bits with cap ND = 6).
 *
 * Models: the per-IOMMU IDA Linux uses (ida_alloc_range from IDA_START_DID = 2: DID 0 is
 * reserved and DID 1 is FLPT_DEFAULT_DID, used for pass-through entries), lowest free id
 * first, exhaustion → ENOSPC.
 * Does not model: caching-mode DID 0 semantics.
 */
import { simError } from '../shared/errors.js';

export const FLPT_DEFAULT_DID = 1;
export const IDA_START_DID = 2;

export class DidAllocator {
  private readonly used = new Uint8Array(65536);
  private next = IDA_START_DID;

  constructor(readonly max = 65535) {}

  alloc(op: string): number {
    for (let d = this.next; d <= this.max; d++) {
      if (!this.used[d]) {
        this.used[d] = 1;
        this.next = d + 1;
        return d;
      }
    }
    throw simError('ENOSPC', op, 'did-exhausted', `no free domain id below ${this.max + 1}`);
  }

  free(did: number): void {
    this.used[did] = 0;
    if (did < this.next) this.next = did;
  }
}
