/**
 * The hardware page walker: translates a page number through a page table in the shared
 * arena, level by level, with plain typed-array reads (ordering comes from the rings'
 * acquire loads; an Atomics.load per entry costs several times more).
 *
 * Models: first- and second-stage walks of 3–5 levels, large leaves at levels 2 and 3,
 * the permission AND over all levels, input-address-width checks, and the count of
 * memory reads (one per level) for the cost model. A table pointer outside the arena is
 * a walk abort (the hardware's "address beyond memory" fault).
 * Does not model: paging-structure caches (every miss walks from the root), A/D updates,
 * nested two-dimensional walks (added with nested translation).
 */
import { ARENA_BASE_FRAME, type ArenaView, CHUNK_FRAME_SHIFT, CHUNK_FRAMES } from '../shared/memory/arena.js';
import { type PteFormat, levelIndices } from '../shared/layout/pte-format.js';

export const WALK_OK = 0;
export const WALK_NOT_PRESENT = 1;
export const WALK_OUT_OF_RANGE = 2;
export const WALK_ABORT = 3;

export class PageWalker {
  /** Results of the last walk (fields, not an object: the walk allocates nothing). */
  pfn = 0;
  /** First 4 KiB page of the leaf (pfn minus vpn's offset inside a large page). */
  leafPfn = 0;
  sizeShift = 12;
  perm = 0;
  reads = 0;
  /** Level at which a walk stopped (fault) or found its leaf. */
  level = 0;

  constructor(private readonly view: ArenaView) {}

  /** Table index per level, filled once per walk. */
  private readonly idx = new Int32Array(6);

  /** Walks `vpn` (page number as u32 halves); returns WALK_*. pfn is the 4 KiB page of vpn. */
  walk(format: PteFormat, rootFrame: number, levels: number, vpnLo: number, vpnHi: number): number {
    const bits = 9 * levels;
    if (bits >= 32 ? vpnHi >>> (bits - 32) !== 0 : vpnHi !== 0 || vpnLo >>> bits !== 0) {
      this.reads = 0;
      this.level = levels;
      return WALK_OUT_OF_RANGE;
    }
    const idx = this.idx;
    levelIndices(vpnLo, vpnHi, idx);
    const chunks = this.view.chunks;
    let frame = rootFrame;
    let andLo = -1;
    let orHi = 0;
    for (let level = levels; level >= 1; level--) {
      const rel = frame - ARENA_BASE_FRAME;
      const chunk = rel >= 0 ? chunks[rel >>> CHUNK_FRAME_SHIFT] : undefined;
      if (chunk === undefined) {
        this.reads = levels - level;
        this.level = level;
        return WALK_ABORT;
      }
      const at = ((rel & (CHUNK_FRAMES - 1)) << 10) + 2 * idx[level];
      const lo = chunk[at];
      if (!format.present(lo)) {
        this.reads = levels - level + 1;
        this.level = level;
        return WALK_NOT_PRESENT;
      }
      const hi = chunk[at + 1];
      andLo &= lo;
      orHi |= hi;
      if (level === 1) {
        this.pfn = this.leafPfn = format.frame(lo, hi);
        this.sizeShift = 12;
      } else if (level <= 3 && format.large(lo)) {
        const span = 1 << (9 * (level - 1)); // 4 KiB pages in the large page
        this.leafPfn = format.largeFrame(lo, hi);
        this.pfn = this.leafPfn + (vpnLo & (span - 1));
        this.sizeShift = 12 + 9 * (level - 1);
      } else {
        frame = format.frame(lo, hi);
        continue;
      }
      this.perm = format.walkPerm(andLo, orHi);
      this.reads = levels - level + 1;
      this.level = level;
      return WALK_OK;
    }
    return WALK_ABORT; // unreachable: level 1 always returns
  }
}
