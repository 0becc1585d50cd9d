/**
 * The IOAS: an I/O address space of user memory (drivers/iommu/iommufd/ioas.c and
 * io_pagetable.c), replicated into every HWPT_PAGING linked to it (SEMANTICS.md §5.3).
 *
 * Models: areas (iova, length) → the owning process's pages, pinned at map time (every
 * page faulted in through the process's own fault path with the access the mapping needs:
 * EFAULT where it cannot be); fixed and automatic IOVA placement (lowest fit inside the
 * allowed ranges — everything when none were set — within [4 KiB, U64_MAX − 4 KiB] (never
 * IOVA 0), outside reserved ranges and areas, aligned to min(roundup_pow_of_two(length),
 * alignment of userVa) with the user page offset kept (an alignment below the IOAS's:
 * EINVAL; nothing fits: ENOSPC); fixed IOVAs are not limited to the allowed ranges); the
 * IOAS alignment (1 while no domain is linked,
 * the domains' smallest page, 4 KiB, once one is — linking a domain while an area is not
 * page-aligned fails with EADDRINUSE); fixed IOVA errors (unaligned EINVAL, reserved
 * EINVAL, over an area EEXIST); unmap of whole areas only (ENOENT for a split or nothing),
 * unmap-all (0, U64_MAX) that succeeds when empty; copy of whole source areas sharing their
 * pages (EPERM for a writeable copy of a read-only source); iova_ranges (the holes of the
 * reserved ranges — allowed ranges only steer automatic placement — EMSGSIZE with the needed count when the caller's
 * array is too small); allow_iovas (start < last, no overlap: EINVAL; intersecting a
 * reserved range: EADDRINUSE); reserved ranges by owner (a linked domain's aperture end, a
 * RID-attached device's reserved regions, the test hook's): a new one over an area or an
 * allowed range is EADDRINUSE. Every domain change is undone when a later one fails.
 * Does not model: GUP pin accounting (a page the process unmaps stays in the domains),
 * RLIMIT_MEMLOCK, huge pages, in-kernel accesses (mdev), HW_QUEUE pins.
 */
import { simError } from '../../shared/errors.js';
import { U64_MAX } from '../../shared/units.js';
import type { Domain } from '../domain.js';
import type { IommuApi } from '../iommu-api.js';
import type { Mm } from '../mm.js';
import { IommufdObject } from './object-table.js';
import { hex } from './uapi.js';

const PAGE = 0x1000n;

export interface IovaRange { start: bigint; last: bigint }

export interface Area {
  iova: bigint;
  length: bigint;
  /** Offset of iova inside its first page (the user VA's page offset). */
  offset: bigint;
  /** The user VA the area maps (a copy keeps its source's). */
  userVa: bigint;
  /** Physical page frames backing the area, one per page spanned. */
  pfns: number[];
  writeable: boolean;
  readable: boolean;
}

const overlaps = (a0: bigint, a1: bigint, b0: bigint, b1: bigint): boolean => a0 <= b1 && b0 <= a1;

export class Ioas extends IommufdObject {
  readonly type = 'ioas' as const;
  readonly areas: Area[] = [];
  allowed: IovaRange[] = [];
  /** Reserved ranges per owner (a HWPT's aperture, a device's regions, the test hook). */
  readonly reserved = new Map<object, IovaRange[]>();
  /** Domains of the HWPT_PAGINGs linked to this IOAS, in link order. */
  readonly domains: Domain[] = [];

  constructor(private readonly iommu: IommuApi, private readonly mm: Mm) {
    super();
  }

  get alignment(): bigint {
    return this.domains.length > 0 ? PAGE : 1n;
  }

  reservedRanges(): IovaRange[] {
    return [...this.reserved.values()].flat().sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** IOMMU_IOAS_IOVA_RANGES: the holes of the reserved ranges in [0, U64_MAX]. */
  validRanges(): IovaRange[] {
    let out: IovaRange[] = [{ start: 0n, last: U64_MAX }];
    for (const r of this.reservedRanges()) out = subtract(out, r);
    return out.sort((a, b) => (a.start < b.start ? -1 : 1));
  }

  // --- map / unmap / copy ---

  async map(userVa: bigint, length: bigint, iova: bigint | undefined, prot: { readable: boolean; writeable: boolean }, op: string): Promise<bigint> {
    this.checkRange(iova ?? 0n, length, op);
    if (userVa + length - 1n > U64_MAX) throw simError('EOVERFLOW', op, 'user-va-overflow', `${hex(userVa)} + ${hex(length)}`);
    const align = this.alignment;
    if (align > 1n && ((length | userVa) & (align - 1n)) !== 0n) throw simError('EINVAL', op, 'unaligned', `userVa ${hex(userVa)} length ${hex(length)} (IOAS alignment ${hex(align)})`);
    const at = iova === undefined ? this.allocIova(userVa, length, op) : this.checkFixed(iova, length, op);
    const pfns = this.pin(userVa, length, prot.writeable, op);
    const area: Area = { iova: at, length, offset: userVa & (PAGE - 1n), userVa, pfns, readable: prot.readable, writeable: prot.writeable };
    await this.insert(area);
    return at;
  }

  async copy(dst: Ioas, srcIova: bigint, length: bigint, dstIova: bigint | undefined, prot: { readable: boolean; writeable: boolean }, op: string): Promise<bigint> {
    this.checkRange(srcIova, length, op);
    const src = this.exactAreas(srcIova, length, op);
    if (prot.writeable && src.some((a) => !a.writeable)) throw simError('EPERM', op, 'source-read-only', `${hex(srcIova)}+${hex(length)}`);
    const align = dst.alignment;
    if (align > 1n && src.some((a) => a.offset !== 0n || (a.length & (align - 1n)) !== 0n)) throw simError('EINVAL', op, 'unaligned', 'source areas are not aligned to the destination IOAS');
    const at = dstIova === undefined ? dst.allocIova(src[0].userVa, length, op) : dst.checkFixed(dstIova, length, op);
    const added: Area[] = [];
    try {
      let off = 0n;
      for (const a of src) {
        const n: Area = { iova: at + off, length: a.length, offset: a.offset, userVa: a.userVa, pfns: a.pfns, readable: prot.readable, writeable: prot.writeable };
        await dst.insert(n);
        added.push(n);
        off += a.length;
      }
    } catch (e) {
      for (const n of added.reverse()) await dst.drop(n);
      throw e;
    }
    return at;
  }

  /** Unmaps whole areas inside [iova, iova + length); (0, U64_MAX) is everything. Returns bytes. */
  async unmap(iova: bigint, length: bigint, op: string): Promise<bigint> {
    if (iova === 0n && length === U64_MAX) {
      let n = 0n;
      for (const a of [...this.areas]) {
        await this.drop(a);
        n += a.length;
      }
      return n;
    }
    this.checkRange(iova, length, op);
    const last = iova + length - 1n;
    const hit = this.areas.filter((a) => overlaps(a.iova, a.iova + a.length - 1n, iova, last));
    if (hit.length === 0) throw simError('ENOENT', op, 'nothing-mapped', `${hex(iova)}..${hex(last)}`);
    const split = hit.find((a) => a.iova < iova || a.iova + a.length - 1n > last);
    if (split) throw simError('ENOENT', op, 'would-split-area', `area ${hex(split.iova)}+${hex(split.length)}`);
    let n = 0n;
    for (const a of hit) {
      await this.drop(a);
      n += a.length;
    }
    return n;
  }

  // --- allowed and reserved ranges ---

  setAllowed(ranges: IovaRange[], op: string): void {
    const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i];
      if (r.start >= r.last) throw simError('EINVAL', op, 'bad-range', `${hex(r.start)}..${hex(r.last)}`);
      if (i > 0 && sorted[i - 1].last >= r.start) throw simError('EINVAL', op, 'overlapping-ranges', `${hex(r.start)}`);
    }
    for (const r of sorted) {
      const res = this.reservedRanges().find((x) => overlaps(x.start, x.last, r.start, r.last));
      if (res) throw simError('EADDRINUSE', op, 'reserved', `${hex(r.start)}..${hex(r.last)} meets reserved ${hex(res.start)}..${hex(res.last)}`);
    }
    this.allowed = sorted;
  }

  /** Adds reserved ranges for `owner` (all or nothing). */
  addReserved(owner: object, ranges: readonly IovaRange[], op: string): void {
    for (const r of ranges) {
      const a = this.areas.find((x) => overlaps(x.iova, x.iova + x.length - 1n, r.start, r.last));
      if (a) throw simError('EADDRINUSE', op, 'reserved-over-mapping', `${hex(r.start)}..${hex(r.last)} meets area ${hex(a.iova)}`);
      const al = this.allowed.find((x) => overlaps(x.start, x.last, r.start, r.last));
      if (al) throw simError('EADDRINUSE', op, 'reserved-over-allowed', `${hex(r.start)}..${hex(r.last)}`);
    }
    this.reserved.set(owner, [...(this.reserved.get(owner) ?? []), ...ranges.map((r) => ({ ...r }))]);
  }

  removeReserved(owner: object): void {
    this.reserved.delete(owner);
  }

  // --- domains ---

  /** Links a domain: every area mapped into it (all or nothing); areas must be page-aligned. */
  async linkDomain(domain: Domain, op: string): Promise<void> {
    const bad = this.areas.find((a) => a.offset !== 0n || ((a.iova | a.length) & (PAGE - 1n)) !== 0n);
    if (bad) throw simError('EADDRINUSE', op, 'area-not-aligned', `area ${hex(bad.iova)}+${hex(bad.length)} cannot be mapped at 4 KiB granularity`);
    const width = domain.pt!.widthBits;
    const beyond = this.areas.find((a) => a.iova + a.length > 1n << BigInt(width));
    if (beyond) throw simError('EADDRINUSE', op, 'area-beyond-aperture', `area ${hex(beyond.iova)}`);
    const aperture: IovaRange = { start: 1n << BigInt(width), last: U64_MAX };
    this.addReserved(domain, [aperture], op);
    const done: Area[] = [];
    try {
      for (const a of this.areas) {
        await this.mapInto(domain, a);
        done.push(a);
      }
    } catch (e) {
      for (const a of done) await this.iommu.unmap(domain, a.iova, a.length);
      this.removeReserved(domain);
      throw e;
    }
    this.domains.push(domain);
  }

  async unlinkDomain(domain: Domain): Promise<void> {
    const i = this.domains.indexOf(domain);
    if (i < 0) return;
    this.domains.splice(i, 1);
    for (const a of this.areas) await this.iommu.unmap(domain, a.iova, a.length);
    this.removeReserved(domain);
  }

  async release(): Promise<void> {
    for (const a of [...this.areas]) await this.drop(a);
  }

  // --- internals ---

  private checkRange(iova: bigint, length: bigint, op: string): void {
    if (length === 0n) throw simError('EINVAL', op, 'zero-length');
    if (iova + length - 1n > U64_MAX || iova === U64_MAX || length === U64_MAX) throw simError('EOVERFLOW', op, 'iova-overflow', `${hex(iova)} + ${hex(length)}`);
  }

  private checkFixed(iova: bigint, length: bigint, op: string): bigint {
    this.checkRange(iova, length, op);
    const last = iova + length - 1n;
    const align = this.alignment;
    if ((iova & (align - 1n)) !== 0n) throw simError('EINVAL', op, 'iova-unaligned', `${hex(iova)} (alignment ${hex(align)})`);
    const r = this.reservedRanges().find((x) => overlaps(x.start, x.last, iova, last));
    if (r) throw simError('EINVAL', op, 'iova-reserved', `${hex(iova)}..${hex(last)} meets ${hex(r.start)}..${hex(r.last)}`);
    const a = this.areas.find((x) => overlaps(x.iova, x.iova + x.length - 1n, iova, last));
    if (a) throw simError('EEXIST', op, 'iova-in-use', `${hex(iova)}..${hex(last)} meets area ${hex(a.iova)}`);
    return iova;
  }

  /**
   * iopt_alloc_iova: the lowest fit inside the allowed ranges (everything when none) within
   * [PAGE, U64_MAX − PAGE] — never IOVA 0 — outside reserved ranges and areas, aligned to
   * min(roundup_pow_of_two(length), alignment of userVa) with userVa's page offset kept;
   * an alignment below the IOAS's is EINVAL.
   */
  private allocIova(userVa: bigint, length: bigint, op: string): bigint {
    if (length >= 1n << 63n) throw simError('EOVERFLOW', op, 'length-overflow', hex(length));
    let align = 1n;
    while (align < length) align <<= 1n;
    if (userVa !== 0n) {
      const uAlign = userVa & -userVa;
      if (uAlign < align) align = uAlign;
    }
    if (align < this.alignment) throw simError('EINVAL', op, 'alignment-too-small', `${hex(align)} < IOAS alignment ${hex(this.alignment)}`);
    const pageOffset = userVa & (PAGE - 1n);
    const window: IovaRange = { start: PAGE, last: U64_MAX - PAGE };
    let free: IovaRange[] = this.allowed.length === 0 ? [window]
      : this.allowed.filter((r) => overlaps(r.start, r.last, window.start, window.last))
        .map((r) => ({ start: r.start < window.start ? window.start : r.start, last: r.last > window.last ? window.last : r.last }));
    for (const r of this.reservedRanges()) free = subtract(free, r);
    for (const a of this.areas) free = subtract(free, { start: a.iova, last: a.iova + a.length - 1n });
    for (const r of free.sort((x, y) => (x.start < y.start ? -1 : 1))) {
      const start = ((r.start + align - 1n) & -align) | pageOffset;
      if (start >= r.start && start <= r.last && r.last - start >= length - 1n) return start;
    }
    throw simError('ENOSPC', op, 'no-iova-space', `no ${hex(length)} bytes aligned to ${hex(align)}`);
  }

  /** Faults in and pins the pages of [userVa, userVa + length). */
  private pin(userVa: bigint, length: bigint, write: boolean, op: string): number[] {
    const first = userVa & ~(PAGE - 1n);
    const end = (userVa + length + PAGE - 1n) & ~(PAGE - 1n);
    const pfns: number[] = [];
    for (let va = first; va < end; va += PAGE) {
      if (this.mm.state !== 'live' || this.mm.handleFault(va, write ? 'write' : 'read') !== 'success') {
        throw simError('EFAULT', op, 'bad-user-memory', `user VA ${hex(va)} cannot be ${write ? 'written' : 'read'}`);
      }
      pfns.push(Number(this.mm.physOf(va)! >> 12n));
    }
    return pfns;
  }

  /** Returns the areas exactly covering [iova, iova + length), in order; ENOENT otherwise. */
  private exactAreas(iova: bigint, length: bigint, op: string): Area[] {
    const out: Area[] = [];
    let at = iova;
    const end = iova + length;
    while (at < end) {
      const a = this.areas.find((x) => x.iova === at);
      if (!a || a.iova + a.length > end) throw simError('ENOENT', op, 'not-whole-areas', `${hex(iova)}+${hex(length)} does not match mapped areas`);
      out.push(a);
      at += a.length;
    }
    return out;
  }

  private async insert(area: Area): Promise<void> {
    const done: Domain[] = [];
    try {
      for (const d of this.domains) {
        await this.mapInto(d, area);
        done.push(d);
      }
    } catch (e) {
      for (const d of done) await this.iommu.unmap(d, area.iova, area.length);
      throw e;
    }
    this.areas.push(area);
    this.areas.sort((a, b) => (a.iova < b.iova ? -1 : 1));
  }

  private async drop(area: Area): Promise<void> {
    const i = this.areas.indexOf(area);
    if (i < 0) return;
    this.areas.splice(i, 1);
    for (const d of this.domains) await this.iommu.unmap(d, area.iova, area.length);
  }

  /** Maps an area into a domain, one call per run of contiguous pages; undone on failure. */
  private async mapInto(domain: Domain, a: Area): Promise<void> {
    const prot = { read: a.readable || a.writeable, write: a.writeable };
    let mapped = 0n;
    try {
      let i = 0;
      while (i < a.pfns.length) {
        let j = i + 1;
        while (j < a.pfns.length && a.pfns[j] === a.pfns[j - 1] + 1) j++;
        const bytes = BigInt(j - i) * PAGE;
        await this.iommu.map(domain, a.iova + BigInt(i) * PAGE, BigInt(a.pfns[i]) << 12n, bytes, prot);
        mapped += bytes;
        i = j;
      }
    } catch (e) {
      if (mapped > 0n) await this.iommu.unmap(domain, a.iova, mapped);
      throw e;
    }
  }
}

/** `ranges` minus `cut`. */
function subtract(ranges: IovaRange[], cut: IovaRange): IovaRange[] {
  const out: IovaRange[] = [];
  for (const r of ranges) {
    if (!overlaps(r.start, r.last, cut.start, cut.last)) {
      out.push(r);
      continue;
    }
    if (r.start < cut.start) out.push({ start: r.start, last: cut.start - 1n });
    if (r.last > cut.last) out.push({ start: cut.last + 1n, last: r.last });
  }
  return out;
}
