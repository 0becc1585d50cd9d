/**
 * Guest memory a VMM process maps into an IOAS, and the guest kernel's first-stage page
 * table written into it — what a nested HWPT's 'vtd-s1' data points at.
 *
 * Models: (1) ArenaRam: the RAM of a process opened by sim.iommufd.open() without an mm
 * comes from table memory (the shared arena) instead of the number-only system RAM, so a
 * guest page table placed in it can be read by the IOMMU's walker, as real guest RAM is
 * memory the IOMMU reads; (2) GuestStage1: a VT-d first-stage table (x86-64 format, 4 or 5
 * levels, 4 KiB leaves) whose table pointers and leaves are guest-physical addresses; its
 * pages are guest pages, written through their host frames (guest-physical → the IOAS
 * area → the process's page); entries written high half first, present bit last. It does
 * no invalidation: stage-1 changes are the user's to invalidate (hwptInvalidate).
 * Does not model: large guest pages, A/D bits, the guest's own page allocator beyond a
 * list of free guest pages, a guest IOMMU driver.
 */
import { simError } from '../../shared/errors.js';
import { ArenaView } from '../../shared/memory/arena.js';
import { FIRST_STAGE, levelIndex, type Prot } from '../../shared/layout/pte-format.js';
import type { FrameAllocator } from '../frame-allocator.js';
import { SystemRam } from '../ram.js';
import { hex } from './uapi.js';

/** Process RAM from table memory: every page readable by the IOMMU walkers. */
export class ArenaRam extends SystemRam {
  private readonly frames: FrameAllocator;
  private used = 0;
  private most = 0;

  constructor(frames: FrameAllocator) {
    super({ maxPages: 0 });
    this.frames = frames;
  }

  override alloc(op = 'ram-alloc'): number {
    const f = this.frames.alloc(0, op);
    if (++this.used > this.most) this.most = this.used;
    return f;
  }

  override free(pfn: number): void {
    this.frames.freeFrames(pfn, 0);
    this.used--;
  }

  override get pagesInUse(): number {
    return this.used;
  }

  override get peakPages(): number {
    return this.most;
  }
}

/** Where guest pages live: the host frame behind a guest-physical page, if mapped. */
export interface GuestPhysical {
  hostFrameOf(gpa: bigint): number | undefined;
}

export class GuestStage1 {
  readonly rootGpa: bigint;
  private readonly free: bigint[];

  /**
   * `pages`: free guest-physical pages the guest kernel may use for its tables (4 KiB
   * aligned; each must be backed, through `mem`, by readable table memory).
   */
  constructor(private readonly view: ArenaView, private readonly mem: GuestPhysical, pages: readonly bigint[], readonly levels: 4 | 5 = 4) {
    this.free = [...pages].reverse();
    this.rootGpa = this.allocTable();
  }

  /** Maps guest IOVA [iova, iova + size) to guest-physical `gpa` (4 KiB pages). */
  map(iova: bigint, gpa: bigint, size: bigint, prot: Prot & { user?: boolean }): void {
    if (((iova | gpa | size) & 0xfffn) !== 0n || size <= 0n) throw simError('EINVAL', 'guestStage1.map', 'unaligned', `${hex(iova)} ${hex(gpa)} ${hex(size)}`);
    for (let off = 0n; off < size; off += 0x1000n) this.setLeaf(iova + off, gpa + off, prot);
  }

  /** Clears the leaves of [iova, iova + size); returns how many were present. No invalidation. */
  unmap(iova: bigint, size: bigint): number {
    let n = 0;
    for (let off = 0n; off < size; off += 0x1000n) {
      const e = this.entry(iova + off, 1, false);
      if (e && FIRST_STAGE.present(e.chunk[e.at])) {
        e.chunk[e.at] = 0;
        n++;
      }
    }
    return n;
  }

  private allocTable(): bigint {
    const gpa = this.free.pop();
    if (gpa === undefined) throw simError('ENOMEM', 'guestStage1', 'no-guest-pages', 'the guest ran out of page-table pages');
    const t = this.table(gpa);
    t.chunk.fill(0, t.at, t.at + 1024);
    return gpa;
  }

  private table(gpa: bigint): { chunk: Uint32Array; at: number } {
    const frame = this.mem.hostFrameOf(gpa);
    const chunk = frame === undefined ? undefined : this.view.chunkOf(frame);
    if (frame === undefined || !chunk) throw simError('EFAULT', 'guestStage1', 'guest-page-not-readable', `guest page ${hex(gpa)} is not backed by table memory`);
    return { chunk, at: ArenaView.frameU32(frame) };
  }

  /** The entry for `iova` at `level`, creating tables on the way when `create`. */
  private entry(iova: bigint, level: number, create: boolean): { chunk: Uint32Array; at: number } | undefined {
    const vpn = iova >> 12n;
    const lo = Number(vpn & 0xffff_ffffn);
    const hi = Number(vpn >> 32n);
    let gpa = this.rootGpa;
    for (let l = this.levels; ; l--) {
      const t = this.table(gpa);
      const at = t.at + 2 * levelIndex(lo, hi, l);
      if (l === level) return { chunk: t.chunk, at };
      if (!FIRST_STAGE.present(t.chunk[at])) {
        if (!create) return undefined;
        const next = this.allocTable();
        const f = Number(next >> 12n);
        t.chunk[at + 1] = FIRST_STAGE.tableHi(f);
        t.chunk[at] = FIRST_STAGE.tableLo(f);
      }
      gpa = BigInt(FIRST_STAGE.frame(t.chunk[at], t.chunk[at + 1])) << 12n;
    }
  }

  private setLeaf(iova: bigint, gpa: bigint, prot: Prot): void {
    const e = this.entry(iova, 1, true)!;
    const f = Number(gpa >> 12n);
    e.chunk[e.at + 1] = FIRST_STAGE.leafHi(f, prot);
    e.chunk[e.at] = FIRST_STAGE.leafLo(f, prot, false);
  }
}
