/**
 * The VMA list of a process address space (Mm): sorted, non-overlapping ranges of user
 * virtual addresses, each with one protection.
 *
 * Models: Linux's anonymous private VMAs as far as placement and protection go — insert of a
 * free range, removal of any range (a VMA partly covered is split, as munmap does), a
 * protection change over a fully covered range (split at both ends, as mprotect does),
 * merging of neighbours that touch and have the same protection (vma_merge for compatible
 * anonymous VMAs), free-gap search top-down or bottom-up (unmapped_area[_topdown]).
 * Does not model: file mappings, flags other than read/write/exec (VM_SHARED, VM_LOCKED,
 * VM_GROWSDOWN…), anon_vma compatibility (every pair of equal-protection neighbours
 * merges), stack guard gaps, the maple tree (a sorted array is enough here).
 */

/** A VMA's protection, every bit spelled out. */
export interface VmaProt { read: boolean; write: boolean; exec: boolean }

export interface Vma {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  length: bigint;
  prot: VmaProt;
}

export function sameProt(a: VmaProt, b: VmaProt): boolean {
  return a.read === b.read && a.write === b.write && a.exec === b.exec;
}

/** True when any access is allowed (vma_is_accessible). */
export function accessible(p: VmaProt): boolean {
  return p.read || p.write || p.exec;
}

interface Range { start: bigint; end: bigint; prot: VmaProt }

export class VmaList {
  private list: Range[] = [];

  get count(): number {
    return this.list.length;
  }

  /** Copies of every VMA, lowest first. */
  snapshot(): Vma[] {
    return this.list.map((r) => ({ start: r.start, end: r.end, length: r.end - r.start, prot: { ...r.prot } }));
  }

  /** The VMA holding `addr`, if any. */
  find(addr: bigint): Vma | undefined {
    const i = this.indexAt(addr);
    if (i < 0) return undefined;
    const r = this.list[i];
    return { start: r.start, end: r.end, length: r.end - r.start, prot: { ...r.prot } };
  }

  /** True when some VMA overlaps [start, end). */
  overlaps(start: bigint, end: bigint): boolean {
    return this.list.some((r) => r.start < end && start < r.end);
  }

  /** True when VMAs cover every byte of [start, end) without a hole. */
  covers(start: bigint, end: bigint): boolean {
    let at = start;
    for (const r of this.list) {
      if (r.end <= at) continue;
      if (r.start > at) return false;
      at = r.end;
      if (at >= end) return true;
    }
    return at >= end;
  }

  /** The pieces of VMAs inside [start, end), clipped, with their protection. */
  pieces(start: bigint, end: bigint): Range[] {
    const out: Range[] = [];
    for (const r of this.list) {
      if (r.end <= start || r.start >= end) continue;
      out.push({ start: r.start > start ? r.start : start, end: r.end < end ? r.end : end, prot: { ...r.prot } });
    }
    return out;
  }

  /**
   * Makes [start, end) one range with `prot` (undefined: no VMA there), splitting the VMAs
   * it cuts and merging equal neighbours afterwards.
   */
  set(start: bigint, end: bigint, prot: VmaProt | undefined): void {
    const next: Range[] = [];
    let placed = false;
    for (const r of this.list) {
      if (r.end <= start || r.start >= end) {
        if (!placed && prot && r.start >= end) {
          next.push({ start, end, prot: { ...prot } });
          placed = true;
        }
        next.push(r);
        continue;
      }
      if (r.start < start) next.push({ start: r.start, end: start, prot: r.prot });
      if (!placed && prot) {
        next.push({ start, end, prot: { ...prot } });
        placed = true;
      }
      if (r.end > end) next.push({ start: end, end: r.end, prot: r.prot });
    }
    if (!placed && prot) next.push({ start, end, prot: { ...prot } });
    // Merge touching neighbours with the same protection.
    const merged: Range[] = [];
    for (const r of next) {
      const last = merged[merged.length - 1];
      if (last && last.end === r.start && sameProt(last.prot, r.prot)) last.end = r.end;
      else merged.push({ start: r.start, end: r.end, prot: r.prot });
    }
    this.list = merged;
  }

  /**
   * A free range of `length` bytes inside [lo, hi): the highest (topDown) or the lowest one.
   * Returns its start, or undefined when no gap is large enough.
   */
  findGap(length: bigint, lo: bigint, hi: bigint, topDown: boolean): bigint | undefined {
    const gaps: [bigint, bigint][] = [];
    let at = lo;
    for (const r of this.list) {
      if (r.end <= at) continue;
      if (r.start >= hi) break;
      if (r.start > at) gaps.push([at, r.start]);
      at = r.end;
    }
    if (at < hi) gaps.push([at, hi]);
    if (topDown) {
      for (let i = gaps.length - 1; i >= 0; i--) {
        const [s, e] = gaps[i];
        if (e - s >= length) return e - length;
      }
    } else {
      for (const [s, e] of gaps) if (e - s >= length) return s;
    }
    return undefined;
  }

  clear(): void {
    this.list = [];
  }

  private indexAt(addr: bigint): number {
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.list[mid];
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return mid;
    }
    return -1;
  }
}
