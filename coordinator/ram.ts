/**
 * "System RAM": the physical pages that back process memory (anonymous pages of an Mm).
 *
 * Models: a page allocator handing out 4 KiB physical page numbers from 4 GiB up
 * (RAM_BASE_PFN), freed pages reused first (LIFO, like the per-CPU page lists), a capacity
 * limit that fails with ENOMEM, counts of pages in use and the peak.
 * Does not model: the contents of the pages (DMA is translated, never copied), zeroing,
 * huge pages, NUMA, reclaim or swap. These pages are NOT in the shared arena: they are only
 * numbers written into leaf PTEs; no thread ever reads them. The range stays below the
 * arena (ARENA_BASE_FRAME, 1 TiB), so a RAM page is never mistaken for a table frame.
 */
import { simError } from '../shared/errors.js';
import { ARENA_BASE_FRAME } from '../shared/memory/arena.js';

/** First RAM page: physical address 4 GiB. */
export const RAM_BASE_PFN = 0x10_0000;
/** Most pages that fit between 4 GiB and the arena. */
export const RAM_MAX_PAGES = ARENA_BASE_FRAME - RAM_BASE_PFN;

export interface SystemRamOptions {
  /** Capacity in 4 KiB pages (default and maximum RAM_MAX_PAGES, just under 1 TiB). */
  maxPages?: number;
}

export class SystemRam {
  readonly maxPages: number;
  private next = RAM_BASE_PFN;
  private readonly freeList: number[] = [];
  private inUse = 0;
  private peak = 0;
  /** Test hook: called before each allocation; returning true fails it with ENOMEM. */
  shouldFail?: () => boolean;

  constructor(opts: SystemRamOptions = {}) {
    const max = opts.maxPages ?? RAM_MAX_PAGES;
    if (!Number.isInteger(max) || max < 0 || max > RAM_MAX_PAGES) throw simError('EINVAL', 'ram', 'bad-capacity', `${max} pages`);
    this.maxPages = max;
  }

  /** Allocates one page; returns its page frame number (physical address >> 12). */
  alloc(op = 'ram-alloc'): number {
    if (this.shouldFail?.()) throw simError('ENOMEM', op, 'injected-failure');
    let pfn = this.freeList.pop();
    if (pfn === undefined) {
      if (this.next - RAM_BASE_PFN >= this.maxPages) throw simError('ENOMEM', op, 'ram-exhausted', `${this.maxPages} pages in use`);
      pfn = this.next++;
    }
    this.inUse++;
    if (this.inUse > this.peak) this.peak = this.inUse;
    return pfn;
  }

  free(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < RAM_BASE_PFN || pfn >= this.next) throw simError('EINVAL', 'ram-free', 'bad-pfn', `pfn ${pfn}`);
    this.freeList.push(pfn);
    this.inUse--;
  }

  get pagesInUse(): number {
    return this.inUse;
  }

  get peakPages(): number {
    return this.peak;
  }
}
