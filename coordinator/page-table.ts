/**
 * The CPU-side page-table writer: builds and edits a domain's I/O page table in the
 * shared arena, as the kernel's io-pgtable / intel pagetable code does.
 *
 * Models: map of 4 KiB / 2 MiB / 1 GiB pages chosen from a page-size bitmap (largest
 * page that alignment and length allow, as iommu_map's iommu_pgsize does); alignment of
 * iova|paddr|size to the smallest page → EINVAL; mapping over an existing mapping → EEXIST
 * (checked before anything is written) and a table frame that cannot be allocated part-way
 * (the leaves already written are cleared again), so a failed map changes nothing; iova beyond the
 * table's address width → EFAULT (intel_iommu_map); unmap that stops at the first hole
 * and never splits a large mapping, returning the bytes unmapped; iova_to_phys.
 * Entries are written high half first, present bit last; cleared by zeroing the half that
 * holds the present bit only (bits.ts), so a concurrent hardware walk never sees a torn
 * entry. Intermediate tables are kept until the table is destroyed (as Intel's driver does).
 * Does not model: dirty tracking, access bits, page-table sharing between domains,
 * empty-table reclaim on unmap.
 */
import { simError } from '../shared/errors.js';
import { ArenaView } from '../shared/memory/arena.js';
import { type PteFormat, type Prot, addressWidth, levelIndex } from '../shared/layout/pte-format.js';
import { SZ_1G, SZ_2M, SZ_4K, U64_MAX, hex } from '../shared/units.js';
import type { FrameAllocator } from './frame-allocator.js';

export const DEFAULT_PGSIZE_BITMAP = SZ_4K | SZ_2M | SZ_1G;
const PAGE_SHIFTS = [12, 21, 30] as const;

/** A range whose translations changed and must be invalidated. */
export interface Gather {
  start: bigint;
  /** Exclusive end. */
  end: bigint;
  /** Largest page size cleared. */
  pgsize: bigint;
}

export class PageTable {
  readonly rootFrame: number;
  readonly widthBits: number;
  private readonly tables: number[] = [];
  private mappedBytes = 0n;
  private readonly leafCount = [0, 0, 0];

  constructor(
    private readonly alloc: FrameAllocator,
    readonly format: PteFormat,
    readonly levels: number,
    readonly pgsizeBitmap: bigint = DEFAULT_PGSIZE_BITMAP,
  ) {
    if (!format.levels.includes(levels)) throw simError('EINVAL', 'page-table', 'bad-levels', `${format.name} with ${levels} levels`);
    if ((pgsizeBitmap & DEFAULT_PGSIZE_BITMAP) === 0n || (pgsizeBitmap & SZ_4K) === 0n && (pgsizeBitmap & (SZ_4K - 1n)) !== 0n) {
      throw simError('EINVAL', 'page-table', 'bad-pgsize-bitmap', hex(pgsizeBitmap));
    }
    this.widthBits = addressWidth(levels);
    this.rootFrame = alloc.alloc(0, 'page-table');
    this.tables.push(this.rootFrame);
  }

  get view(): ArenaView {
    return this.alloc.view;
  }

  /** Smallest supported page size. */
  get minPageSize(): bigint {
    const bm = this.pgsizeBitmap & DEFAULT_PGSIZE_BITMAP;
    return bm & -bm;
  }

  get tableFrames(): number {
    return this.tables.length;
  }

  get stats() {
    return { tableFrames: this.tables.length, mappedBytes: this.mappedBytes, leaves4k: this.leafCount[0], leaves2m: this.leafCount[1], leaves1g: this.leafCount[2] };
  }

  map(iova: bigint, paddr: bigint, size: bigint, prot: Prot, op = 'map'): void {
    const min = this.minPageSize;
    if (iova < 0n || paddr < 0n || size < 0n || iova > U64_MAX || paddr > U64_MAX || size > U64_MAX) {
      throw simError('EINVAL', op, 'bad-range', `iova ${hex(iova)} paddr ${hex(paddr)} size ${hex(size)}`);
    }
    if (((iova | paddr | size) & (min - 1n)) !== 0n) {
      throw simError('EINVAL', op, 'unaligned', `iova ${hex(iova)} paddr ${hex(paddr)} size ${hex(size)} (min page ${hex(min)})`);
    }
    if (!prot.read && !prot.write) throw simError('EINVAL', op, 'no-permission', 'prot needs read or write');
    if (size === 0n) return;
    if (iova + size - 1n > U64_MAX) throw simError('EOVERFLOW', op, 'iova-overflow', `${hex(iova)} + ${hex(size)}`);
    if (iova + size - 1n >= 1n << BigInt(this.widthBits)) {
      throw simError('EFAULT', op, 'beyond-address-width', `${hex(iova + size - 1n)} needs more than ${this.widthBits} bits`);
    }
    if (paddr + size - 1n >= 1n << 52n) throw simError('EINVAL', op, 'paddr-too-wide', hex(paddr + size - 1n));
    const plan = this.plan(iova, paddr, size);
    // Check first: a failed map must leave no partial state.
    for (const [va, , shift] of plan) {
      if (this.occupied(va, shift)) throw simError('EEXIST', op, 'already-mapped', `iova ${hex(va)}`);
    }
    // Table frames are allocated while leaves are written: if one cannot be had, the
    // leaves already written are cleared again, so a failed map leaves nothing mapped.
    let written = 0;
    try {
      for (const [va, pa, shift] of plan) {
        this.setLeaf(va, pa, shift, prot);
        written++;
      }
    } catch (e) {
      for (const [va] of plan.slice(0, written)) {
        const leaf = this.findLeaf(va)!;
        leaf.chunk[leaf.at] = 0;
        this.leafCount[PAGE_SHIFTS.indexOf(leaf.shift as 12 | 21 | 30)]--;
      }
      throw e;
    }
    this.mappedBytes += size;
  }

  /**
   * Unmaps up to `size` bytes from `iova`; stops at the first hole or at a large page the
   * range would split. Returns the bytes unmapped and the gather to invalidate.
   */
  unmap(iova: bigint, size: bigint, op = 'unmap'): { unmapped: bigint; gather?: Gather } {
    const min = this.minPageSize;
    if (iova < 0n || size < 0n || ((iova | size) & (min - 1n)) !== 0n) {
      throw simError('EINVAL', op, 'unaligned', `iova ${hex(iova)} size ${hex(size)} (min page ${hex(min)})`);
    }
    let unmapped = 0n;
    let pgsize = 0n;
    while (unmapped < size) {
      const va = iova + unmapped;
      if (va >= 1n << BigInt(this.widthBits)) break;
      const leaf = this.findLeaf(va);
      if (!leaf) break;
      const bytes = 1n << BigInt(leaf.shift);
      if ((va & (bytes - 1n)) !== 0n || size - unmapped < bytes) break; // would split
      leaf.chunk[leaf.at] = 0; // clear the present half only
      this.leafCount[PAGE_SHIFTS.indexOf(leaf.shift as 12 | 21 | 30)]--;
      unmapped += bytes;
      if (bytes > pgsize) pgsize = bytes;
    }
    this.mappedBytes -= unmapped;
    return unmapped === 0n ? { unmapped } : { unmapped, gather: { start: iova, end: iova + unmapped, pgsize } };
  }

  /** Physical address for `iova`, or 0n when unmapped (iommu_iova_to_phys). */
  iovaToPhys(iova: bigint): bigint {
    if (iova < 0n || iova >= 1n << BigInt(this.widthBits)) return 0n;
    const leaf = this.findLeaf(iova);
    if (!leaf) return 0n;
    const lo = leaf.chunk[leaf.at];
    const hi = leaf.chunk[leaf.at + 1];
    const frame = leaf.shift === 12 ? this.format.frame(lo, hi) : this.format.largeFrame(lo, hi);
    return (BigInt(frame) << 12n) + (iova & ((1n << BigInt(leaf.shift)) - 1n));
  }

  /**
   * Permission bits of the mapping at iova (AND over the walk; the leaf's alone for a
   * leafPermOnly format), or 0 when unmapped.
   */
  permAt(iova: bigint): number {
    const leaf = this.findLeaf(iova);
    return leaf ? leaf.perm : 0;
  }

  /** Frees every table frame. The caller has made sure no hardware can still walk it. */
  destroy(): void {
    for (const f of this.tables) this.alloc.freeFrames(f, 0);
    this.tables.length = 0;
  }

  // --- internals ---

  /** Splits [iova, iova+size) into pages: [va, pa, shift][]. */
  private plan(iova: bigint, paddr: bigint, size: bigint): [bigint, bigint, number][] {
    const out: [bigint, bigint, number][] = [];
    let off = 0n;
    while (off < size) {
      const va = iova + off;
      const pa = paddr + off;
      let shift = this.minPageSize.toString(2).length - 1;
      for (const s of PAGE_SHIFTS) {
        const pg = 1n << BigInt(s);
        if ((this.pgsizeBitmap & pg) !== 0n && ((va | pa) & (pg - 1n)) === 0n && size - off >= pg) shift = s;
      }
      out.push([va, pa, shift]);
      off += 1n << BigInt(shift);
    }
    return out;
  }

  private split(va: bigint): [vpnLo: number, vpnHi: number] {
    const vpn = va >> 12n;
    return [Number(vpn & 0xffffffffn), Number(vpn >> 32n)];
  }

  /** True when a page of 2^shift bytes at va would overlap an existing mapping. */
  private occupied(va: bigint, shift: number): boolean {
    const [vlo, vhi] = this.split(va);
    const target = (shift - 12) / 9 + 1;
    let frame = this.rootFrame;
    for (let level = this.levels; level >= target; level--) {
      const chunk = this.view.chunkOf(frame)!;
      const at = ArenaView.frameU32(frame) + 2 * levelIndex(vlo, vhi, level);
      const lo = chunk[at];
      if (!this.format.present(lo)) return false;
      if (level === 1 || (level <= 3 && this.format.large(lo))) return true; // a leaf covers it
      if (level === target) return this.tableHasMappings(this.format.frame(lo, chunk[at + 1]), level - 1);
      frame = this.format.frame(lo, chunk[at + 1]);
    }
    return false;
  }

  private tableHasMappings(frame: number, level: number): boolean {
    const chunk = this.view.chunkOf(frame)!;
    const base = ArenaView.frameU32(frame);
    for (let i = 0; i < 512; i++) {
      const lo = chunk[base + 2 * i];
      if (!this.format.present(lo)) continue;
      if (level === 1 || this.format.large(lo)) return true;
      if (this.tableHasMappings(this.format.frame(lo, chunk[base + 2 * i + 1]), level - 1)) return true;
    }
    return false;
  }

  private setLeaf(va: bigint, pa: bigint, shift: number, prot: Prot): void {
    const [vlo, vhi] = this.split(va);
    const target = (shift - 12) / 9 + 1;
    let frame = this.rootFrame;
    for (let level = this.levels; level > target; level--) {
      const chunk = this.view.chunkOf(frame)!;
      const at = ArenaView.frameU32(frame) + 2 * levelIndex(vlo, vhi, level);
      if (!this.format.present(chunk[at])) {
        const t = this.alloc.alloc(0, 'map');
        this.tables.push(t);
        chunk[at + 1] = this.format.tableHi(t);
        chunk[at] = this.format.tableLo(t, level);
      }
      frame = this.format.frame(chunk[at], chunk[at + 1]);
    }
    const chunk = this.view.chunkOf(frame)!;
    const at = ArenaView.frameU32(frame) + 2 * levelIndex(vlo, vhi, target);
    // An empty table left where a large leaf now goes stays allocated until destroy().
    const pframe = Number(pa >> 12n);
    chunk[at + 1] = this.format.leafHi(pframe, prot);
    chunk[at] = this.format.leafLo(pframe, prot, target > 1);
    this.leafCount[PAGE_SHIFTS.indexOf(shift as 12 | 21 | 30)]++;
  }

  private findLeaf(va: bigint): { chunk: Uint32Array; at: number; shift: number; perm: number } | undefined {
    const [vlo, vhi] = this.split(va);
    let frame = this.rootFrame;
    let perm = -1;
    for (let level = this.levels; level >= 1; level--) {
      const chunk = this.view.chunkOf(frame)!;
      const at = ArenaView.frameU32(frame) + 2 * levelIndex(vlo, vhi, level);
      const lo = chunk[at];
      const hi = chunk[at + 1];
      if (!this.format.present(lo)) return undefined;
      perm &= this.format.perm(lo, hi);
      if (level === 1 || (level <= 3 && this.format.large(lo))) {
        return { chunk, at, shift: 12 + 9 * (level - 1), perm: this.format.leafPermOnly === true ? this.format.perm(lo, hi) : perm };
      }
      frame = this.format.frame(lo, hi);
    }
    return undefined;
  }
}
