/**
 * The hardware page walker: translates a page number through a page table in the shared
 * arena, level by level, with plain typed-array reads (ordering comes from the rings'
 * acquire loads; an Atomics.load per entry costs several times more).
 *
 * Models: first- and second-stage walks of 3–5 levels, large leaves at levels 2 and 3,
 * the permission AND over all levels (the leaf's permissions alone for a format with
 * leafPermOnly, the Arm stage 1), input-address-width checks, and the count of
 * memory reads (one per level) for the cost model. A table pointer outside the arena is
 * a walk abort (the hardware's "address beyond memory" fault).
 * Nested (two-dimensional) walks (walkNested): a guest-owned first stage whose table
 * pointers and leaves are guest-physical addresses, each translated by the host's second
 * stage before it is read or used — every first-stage table read costs a second-stage walk
 * plus the read itself, and the final guest-physical page one more walk, so a full miss is
 * up to (n+1)(m+1)−1 reads; second-stage reads of guest tables need read permission; the
 * leaf's permissions are the AND of both stages; the cached page size is the smaller of the
 * two leaves.
 * Does not model: paging-structure caches (psc.ts charges their effect on cost), A/D updates,
 * the nested-walk fault codes of first-stage table reads denied by the second stage (they
 * are reported as second-stage faults).
 */
import { ARENA_BASE_FRAME, type ArenaView, CHUNK_FRAME_SHIFT, CHUNK_FRAMES } from '../shared/memory/arena.js';
import { PERM_READ as PERM_READ_BIT, type PteFormat, levelIndices } from '../shared/layout/pte-format.js';

export const WALK_OK = 0;
export const WALK_NOT_PRESENT = 1;
export const WALK_OUT_OF_RANGE = 2;
export const WALK_ABORT = 3;
/** Nested walk: the second stage has no (readable) translation for a guest-physical address. */
export const WALK_S2_NOT_PRESENT = 4;
/** Nested walk: a second-stage table pointer is outside table memory. */
export const WALK_S2_ABORT = 5;

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

  /** The second-stage walker of nested walks (created on first use). */
  private s2?: PageWalker;

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
      // One branch per walk: Arm keeps its permissions in the leaf only.
      this.perm = format.leafPermOnly === true ? format.perm(lo, hi) : format.walkPerm(andLo, orHi);
      this.reads = levels - level + 1;
      this.level = level;
      return WALK_OK;
    }
    return WALK_ABORT; // unreachable: level 1 always returns
  }

  /**
   * Nested walk of `vpn`: the first stage (FIRST_STAGE format, root at guest-physical frame
   * `s1RootGpfn`) over the second stage (`s2Format`, root frame `s2RootFrame`). Results as
   * walk(): pfn / leafPfn are host frames, perm the AND of both stages; `reads` counts every
   * memory read of both dimensions. Returns WALK_* (WALK_NOT_PRESENT: the first stage;
   * WALK_S2_*: the second).
   */
  walkNested(s1Format: PteFormat, s1RootGpfn: number, s1Levels: number, s2Format: PteFormat, s2RootFrame: number, s2Levels: number, vpnLo: number, vpnHi: number): number {
    const s2 = (this.s2 ??= new PageWalker(this.view));
    const bits = 9 * s1Levels;
    if (bits >= 32 ? vpnHi >>> (bits - 32) !== 0 : vpnHi !== 0 || vpnLo >>> bits !== 0) {
      this.reads = 0;
      this.level = s1Levels;
      return WALK_OUT_OF_RANGE;
    }
    const idx = this.idx;
    levelIndices(vpnLo, vpnHi, idx);
    const chunks = this.view.chunks;
    let reads = 0;
    let gpfn = s1RootGpfn;
    let andLo = -1;
    let orHi = 0;
    for (let level = s1Levels; level >= 1; level--) {
      // The guest table's own address is guest-physical: translate it first.
      const st2 = s2.walk(s2Format, s2RootFrame, s2Levels, gpfn >>> 0, Math.floor(gpfn / 0x1_0000_0000));
      reads += s2.reads;
      if (st2 !== WALK_OK || (s2.perm & PERM_READ_BIT) === 0) return this.nestedFail(st2, reads, level);
      const rel = s2.pfn - ARENA_BASE_FRAME;
      const chunk = rel >= 0 ? chunks[rel >>> CHUNK_FRAME_SHIFT] : undefined;
      reads++;
      if (chunk === undefined) return this.done(WALK_ABORT, reads, level);
      const at = ((rel & (CHUNK_FRAMES - 1)) << 10) + 2 * idx[level];
      const lo = chunk[at];
      if (!s1Format.present(lo)) return this.done(WALK_NOT_PRESENT, reads, level);
      const hi = chunk[at + 1];
      andLo &= lo;
      orHi |= hi;
      let leafGpfn: number;
      let gpfnOfVpn: number;
      let s1Shift: number;
      if (level === 1) {
        leafGpfn = gpfnOfVpn = s1Format.frame(lo, hi);
        s1Shift = 12;
      } else if (level <= 3 && s1Format.large(lo)) {
        const span = 1 << (9 * (level - 1));
        leafGpfn = s1Format.largeFrame(lo, hi);
        gpfnOfVpn = leafGpfn + (vpnLo & (span - 1));
        s1Shift = 12 + 9 * (level - 1);
      } else {
        gpfn = s1Format.frame(lo, hi);
        continue;
      }
      // The output of the first stage is guest-physical too.
      const st = s2.walk(s2Format, s2RootFrame, s2Levels, gpfnOfVpn >>> 0, Math.floor(gpfnOfVpn / 0x1_0000_0000));
      reads += s2.reads;
      if (st !== WALK_OK) return this.nestedFail(st, reads, level);
      const shift = Math.min(s1Shift, s2.sizeShift);
      const span = 2 ** (shift - 12);
      this.pfn = s2.pfn;
      this.leafPfn = s2.pfn - (gpfnOfVpn % span);
      this.sizeShift = shift;
      this.perm = (s1Format.leafPermOnly === true ? s1Format.perm(lo, hi) : s1Format.walkPerm(andLo, orHi)) & s2.perm;
      return this.done(WALK_OK, reads, level);
    }
    return this.done(WALK_ABORT, reads, 1); // unreachable: level 1 always returns
  }

  private nestedFail(st2: number, reads: number, level: number): number {
    return this.done(st2 === WALK_ABORT ? WALK_S2_ABORT : st2 === WALK_OUT_OF_RANGE ? WALK_OUT_OF_RANGE : WALK_S2_NOT_PRESENT, reads, level);
  }

  private done(st: number, reads: number, level: number): number {
    this.reads = reads;
    this.level = level;
    return st;
  }
}
