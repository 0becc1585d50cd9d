/**
 * A process address space (Linux's struct mm_struct) for SVA and iommufd: VMAs, the CPU
 * page table the IOMMU's first stage shares, the demand-paging fault path and the mm
 * notifier that SVA uses to keep IOTLBs and device TLBs coherent with the CPU's view.
 *
 * Models:
 * - User VA range [USER_VA_START, USER_VA_END) = [0x1000, 2^47) (4-level x86-64 paging).
 * - mmap of anonymous private memory: `addr` is a hint (rounded up to a page, used when the
 *   whole range there is free), otherwise placement is top-down from USER_VA_END (Linux's
 *   default) or bottom-up from USER_VA_START (option `placement`); `fixed: true` is
 *   MAP_FIXED_NOREPLACE: `addr` exactly, overlap → EEXIST. Length 0 or unaligned → EINVAL
 *   (stricter than Linux, which rounds the length up); no gap → ENOMEM; fixed `addr`
 *   unaligned → EINVAL, below USER_VA_START → EPERM (mmap_min_addr), above → ENOMEM.
 *   `populate` (MAP_POPULATE) backs every page at once, best effort as in Linux: a page that
 *   cannot be had (RAM or table frame ENOMEM) stops populating, mmap still succeeds.
 *   PROT_NONE VMAs are not populated.
 * - munmap: page-aligned addr (else EINVAL), length 0 → EINVAL, range beyond the user VA
 *   range → EINVAL; holes are fine; VMAs partly covered are split.
 * - mprotect: page-aligned addr (else EINVAL), length 0 → no-op, any hole in the range →
 *   ENOMEM and nothing changed (Linux changes the VMAs before the hole); VMAs split and merged.
 * - VMAs with the same protection that touch are merged (see vma.ts).
 * - CPU page table: a PageTable (page-table.ts) in the shared arena, x86-64 (FIRST_STAGE) or AArch64 format,
 *   4 levels, 4 KiB leaves only; user pages with U/S=1, R/W only with prot.write, XD unless
 *   prot.exec; write-only and exec-only imply read (x86). A populated page under PROT_NONE
 *   keeps its RAM page but has no present PTE (Linux's _PAGE_PROTNONE).
 * - handleFault(va, access): the fault path of handle_mm_fault for the IOMMU's page
 *   requests — no VMA or access not allowed by the VMA ('read' needs any permission,
 *   'write' needs write, 'exec' needs exec) → 'invalid'; otherwise the page is populated
 *   (a fresh RAM page, no zero-page sharing) → 'success'. Out of memory → 'invalid'
 *   (VM_FAULT_OOM makes the SVA handler answer IOMMU_PAGE_RESP_INVALID). On an mm that has
 *   exited → 'invalid' (mmget_not_zero fails), not an error.
 * - Changes go PTEs first, then notifiers: munmap clears the PTEs, then calls every
 *   notifier's invalidateRange(addr, addr + length) (when the range held any VMA) and
 *   resolves when all of them resolved; only then are the RAM pages freed (tlb_finish_mmu
 *   frees after the TLB flush, so no page is reused while a device may still hold a stale
 *   translation to it). mprotect rewrites the PTEs of populated pages (clear, then write the
 *   new entry, as ptep_modify_prot_start/commit) and calls invalidateRange(addr, addr +
 *   length) when some present PTE lost a permission (a downgrade). Notifiers are started in
 *   registration order and awaited together; a rejected notifier rejects the call after all
 *   settled (the change itself stays).
 * - exit(): state 'exited' at once; every notifier's release() is awaited first (SVA blocks
 *   translation there), then the notifiers are dropped, every VMA removed, PTEs cleared and
 *   RAM freed. The table frames stay until free() (Linux frees the pgd in __mmdrop), so the
 *   root an IOMMU points at is never reused while the mm is still referenced.
 * - free(): after exit only (live → EBUSY 'mm-live', exit still running → EBUSY
 *   'mm-exiting', twice → EINVAL 'mm-freed'); frees the page-table frames; state 'freed'.
 *   The SVA code drops the mm's PASID (`pasid`, which it owns) at that point.
 * - Any other call on an exited or freed mm: EINVAL with reason 'mm-exited' (Linux would
 *   say ESRCH, which SimErrorCode does not have).
 * Does not model: file or shared mappings, MAP_FIXED replacing existing mappings, copy-on-
 * write, the zero page, fork, swap/reclaim, huge pages (THP), accessed/dirty bits, mlock,
 * pinning (GUP) for iommufd, mmap_lock (calls interleave at their awaits: VMAs and PTEs are
 * changed synchronously before a call first awaits, so a concurrent mmap may reuse a range
 * whose invalidation is still in flight — its pages are not freed until it completes).
 */
import { simError } from '../shared/errors.js';
import { FIRST_STAGE, type PteFormat } from '../shared/layout/pte-format.js';
import { SZ_4K, hex } from '../shared/units.js';
import type { FrameAllocator } from './frame-allocator.js';
import { PageTable } from './page-table.js';
import { SystemRam } from './ram.js';
import { type Vma, type VmaProt, VmaList, accessible } from './vma.js';

export type { Vma, VmaProt } from './vma.js';

export const USER_VA_START = 0x1000n;
/** Exclusive end of user space: 2^47 (4-level paging). */
export const USER_VA_END = 1n << 47n;
export const MM_PAGE_SIZE = SZ_4K;
const PAGE_MASK = SZ_4K - 1n;

export type MmState = 'live' | 'exited' | 'freed';
export type MmAccess = 'read' | 'write' | 'exec';
export type MmFaultResult = 'success' | 'invalid';

export interface MmProt { read?: boolean; write?: boolean; exec?: boolean }

export interface MmapOptions {
  length: bigint | number;
  prot: MmProt;
  /** A hint, or the exact address with `fixed`. */
  addr?: bigint | number;
  /** MAP_FIXED_NOREPLACE: map exactly at `addr`; an overlap fails with EEXIST. */
  fixed?: boolean;
  /** MAP_POPULATE: back every page now. */
  populate?: boolean;
}

/** An mmu_notifier as SVA registers it. */
export interface MmNotifier {
  /** The CPU translations of [start, end) changed (end exclusive); flush secondary TLBs. */
  invalidateRange(start: bigint, end: bigint): Promise<void>;
  /** The address space is going away: stop walking its page table. */
  release?(): Promise<void>;
}

export interface MmOptions {
  /** Mm.id; the registry numbers them from 1. */
  id?: number;
  /** Where RAM pages come from (shared by every mm of a simulator); a new SystemRam if absent. */
  ram?: SystemRam;
  /** Placement of mmaps without a usable hint. Default 'top-down'. */
  placement?: 'top-down' | 'bottom-up';
  /** Format of the CPU page table: x86-64 (default) or AArch64 stage 1 (the SMMUv3 profile's CPUs). */
  format?: PteFormat;
}

let nextStandaloneId = 1;

export class Mm {
  readonly id: number;
  readonly pageTable: PageTable;
  readonly ram: SystemRam;
  readonly placement: 'top-down' | 'bottom-up';
  /** The mm's PASID: owned by the SVA code (allocated on first bind, dropped on free). */
  pasid: number | undefined;
  /** Called by free() before anything is released; throwing refuses the free. */
  beforeFree: ((mm: Mm) => void) | undefined = undefined;
  private stateValue: MmState = 'live';
  private exiting = false;
  private readonly vmaList = new VmaList();
  /** Populated pages: user page number → RAM page frame number. */
  private readonly pages = new Map<bigint, number>();
  private notifiers: MmNotifier[] = [];

  constructor(alloc: FrameAllocator, opts: MmOptions = {}) {
    this.id = opts.id ?? nextStandaloneId++;
    this.ram = opts.ram ?? new SystemRam();
    this.placement = opts.placement ?? 'top-down';
    // 4 KiB leaves only: VMAs are split at any page, so no large leaf could survive munmap.
    this.pageTable = new PageTable(alloc, opts.format ?? FIRST_STAGE, 4, SZ_4K);
  }

  get state(): MmState {
    return this.stateValue;
  }

  /** Copies of the VMAs, lowest first. */
  get vmas(): Vma[] {
    return this.vmaList.snapshot();
  }

  /** The VMA holding `va`, if any. */
  findVma(va: bigint): Vma | undefined {
    return this.vmaList.find(va);
  }

  /** Pages backed by RAM (resident set). */
  get residentPages(): number {
    return this.pages.size;
  }

  /** Physical address backing `va` (populated pages, whatever the PTE says), or undefined. */
  physOf(va: bigint): bigint | undefined {
    const pfn = this.pages.get(va >> 12n);
    return pfn === undefined ? undefined : (BigInt(pfn) << 12n) | (va & PAGE_MASK);
  }

  mmap(opts: MmapOptions): bigint {
    const op = 'mmap';
    this.checkLive(op);
    const length = toBig(opts.length, op, 'length');
    const prot = normProt(opts.prot);
    if (length <= 0n || (length & PAGE_MASK) !== 0n) throw simError('EINVAL', op, length === 0n ? 'zero-length' : 'unaligned', `length ${hex(length)}`);
    if (length > USER_VA_END - USER_VA_START) throw simError('ENOMEM', op, 'too-large', `length ${hex(length)}`);
    let start: bigint | undefined;
    if (opts.fixed) {
      if (opts.addr === undefined) throw simError('EINVAL', op, 'fixed-without-addr');
      const addr = toBig(opts.addr, op, 'addr');
      if ((addr & PAGE_MASK) !== 0n) throw simError('EINVAL', op, 'unaligned', `addr ${hex(addr)}`);
      if (addr < USER_VA_START) throw simError('EPERM', op, 'below-mmap-min-addr', `addr ${hex(addr)}`);
      if (addr + length > USER_VA_END) throw simError('ENOMEM', op, 'beyond-user-space', `${hex(addr)} + ${hex(length)}`);
      if (this.vmaList.overlaps(addr, addr + length)) throw simError('EEXIST', op, 'overlaps-mapping', `${hex(addr)} + ${hex(length)}`);
      start = addr;
    } else {
      if (opts.addr !== undefined) {
        const hint = (toBig(opts.addr, op, 'addr') + PAGE_MASK) & ~PAGE_MASK;
        if (hint >= USER_VA_START && hint + length <= USER_VA_END && !this.vmaList.overlaps(hint, hint + length)) start = hint;
      }
      start ??= this.vmaList.findGap(length, USER_VA_START, USER_VA_END, this.placement === 'top-down');
      if (start === undefined) throw simError('ENOMEM', op, 'no-space', `length ${hex(length)}`);
    }
    this.vmaList.set(start, start + length, prot);
    if (opts.populate && accessible(prot)) {
      try {
        for (let va = start; va < start + length; va += SZ_4K) this.populatePage(va, prot, op);
      } catch {
        // MAP_POPULATE is best effort (mm_populate's result is ignored by mmap).
      }
    }
    return start;
  }

  async munmap(addr: bigint | number, length: bigint | number): Promise<void> {
    const op = 'munmap';
    this.checkLive(op);
    const start = toBig(addr, op, 'addr');
    const len = toBig(length, op, 'length');
    if ((start & PAGE_MASK) !== 0n) throw simError('EINVAL', op, 'unaligned', `addr ${hex(start)}`);
    if (len <= 0n) throw simError('EINVAL', op, 'zero-length');
    const end = (start + len + PAGE_MASK) & ~PAGE_MASK;
    if (start < USER_VA_START || end > USER_VA_END) throw simError('EINVAL', op, 'beyond-user-space', `${hex(start)} + ${hex(len)}`);
    if (!this.vmaList.overlaps(start, end)) return;
    this.vmaList.set(start, end, undefined);
    const freed = this.clearPages(start, end);
    try {
      await this.invalidate(start, end);
    } finally {
      for (const pfn of freed) this.ram.free(pfn);
    }
  }

  async mprotect(addr: bigint | number, length: bigint | number, protIn: MmProt): Promise<void> {
    const op = 'mprotect';
    this.checkLive(op);
    const start = toBig(addr, op, 'addr');
    const len = toBig(length, op, 'length');
    const prot = normProt(protIn);
    if ((start & PAGE_MASK) !== 0n) throw simError('EINVAL', op, 'unaligned', `addr ${hex(start)}`);
    if (len < 0n) throw simError('EINVAL', op, 'bad-length', hex(len));
    if (len === 0n) return;
    const end = (start + len + PAGE_MASK) & ~PAGE_MASK;
    if (start < USER_VA_START || end > USER_VA_END) throw simError('ENOMEM', op, 'beyond-user-space', `${hex(start)} + ${hex(len)}`);
    if (!this.vmaList.covers(start, end)) throw simError('ENOMEM', op, 'unmapped-hole', `${hex(start)} + ${hex(len)}`);
    let downgraded = false;
    for (const piece of this.vmaList.pieces(start, end)) {
      const old = piece.prot;
      // A present PTE loses a permission: it goes away, or loses write or exec.
      const lost = !accessible(prot) || (old.write && !prot.write) || (old.exec && !prot.exec);
      for (const [vpn, pfn] of this.pagesIn(piece.start, piece.end)) {
        const va = vpn << 12n;
        if (accessible(old)) this.pageTable.unmap(va, SZ_4K, op);
        // Table frames already exist for a page that was populated: this map cannot fail.
        if (accessible(prot)) this.pageTable.map(va, BigInt(pfn) << 12n, SZ_4K, pteProt(prot), op);
        if (lost && accessible(old)) downgraded = true;
      }
    }
    this.vmaList.set(start, end, prot);
    if (downgraded) await this.invalidate(start, end);
  }

  /** The mm's page-fault path (handle_mm_fault for an I/O page request). */
  handleFault(va: bigint | number, access: MmAccess): MmFaultResult {
    if (this.stateValue !== 'live') return 'invalid';
    const addr = typeof va === 'number' ? BigInt(va) : va;
    if (addr < USER_VA_START || addr >= USER_VA_END) return 'invalid';
    const vma = this.vmaList.find(addr);
    if (!vma) return 'invalid';
    const p = vma.prot;
    const allowed = access === 'write' ? p.write : access === 'exec' ? p.exec : accessible(p);
    if (!allowed) return 'invalid';
    const page = addr & ~PAGE_MASK;
    if (this.pages.has(page >> 12n)) return 'success';
    try {
      this.populatePage(page, p, 'handle-fault');
    } catch {
      return 'invalid'; // VM_FAULT_OOM
    }
    return 'success';
  }

  registerNotifier(n: MmNotifier): void {
    this.checkLive('mmu-notifier-register');
    if (this.notifiers.includes(n)) throw simError('EEXIST', 'mmu-notifier-register', 'already-registered');
    this.notifiers.push(n);
  }

  /** Removes `n`; false when it was not registered (or was dropped by exit()). Never calls release(). */
  unregisterNotifier(n: MmNotifier): boolean {
    const i = this.notifiers.indexOf(n);
    if (i < 0) return false;
    this.notifiers.splice(i, 1);
    return true;
  }

  get notifierCount(): number {
    return this.notifiers.length;
  }

  /** exit_mmap: release notifiers, then tear every mapping down. */
  async exit(): Promise<void> {
    this.checkLive('mm-exit');
    this.stateValue = 'exited';
    this.exiting = true;
    const subs = this.notifiers;
    this.notifiers = [];
    const results = await Promise.allSettled(subs.map((n) => (n.release ? n.release() : Promise.resolve())));
    try {
      const freed = this.clearPages(USER_VA_START, USER_VA_END);
      this.vmaList.clear();
      for (const pfn of freed) this.ram.free(pfn);
    } finally {
      this.exiting = false;
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** mmdrop of the last reference: frees the page-table frames. */
  free(): void {
    if (this.stateValue === 'freed') throw simError('EINVAL', 'mm-free', 'mm-freed');
    if (this.stateValue === 'live') throw simError('EBUSY', 'mm-free', 'mm-live', `mm ${this.id} has not exited`);
    if (this.exiting) throw simError('EBUSY', 'mm-free', 'mm-exiting', `mm ${this.id} exit still running`);
    this.beforeFree?.(this); // SVA drops the mm's PASID here (mm_pasid_drop), or refuses (EBUSY)
    this.pageTable.destroy();
    this.stateValue = 'freed';
  }

  // --- internals ---

  private checkLive(op: string): void {
    if (this.stateValue !== 'live') throw simError('EINVAL', op, 'mm-exited', `mm ${this.id} is ${this.stateValue}`);
  }

  /** Backs one page with RAM and writes its PTE; on failure nothing is left behind. */
  private populatePage(va: bigint, prot: VmaProt, op: string): void {
    const vpn = va >> 12n;
    if (this.pages.has(vpn)) return;
    const pfn = this.ram.alloc(op);
    try {
      this.pageTable.map(va, BigInt(pfn) << 12n, SZ_4K, pteProt(prot), op);
    } catch (e) {
      this.ram.free(pfn);
      throw e;
    }
    this.pages.set(vpn, pfn);
  }

  /** Populated pages in [start, end) as [vpn, pfn], lowest first. */
  private pagesIn(start: bigint, end: bigint): [bigint, number][] {
    const lo = start >> 12n;
    const hi = end >> 12n;
    const out: [bigint, number][] = [];
    if (hi - lo <= BigInt(this.pages.size)) {
      for (let v = lo; v < hi; v++) {
        const pfn = this.pages.get(v);
        if (pfn !== undefined) out.push([v, pfn]);
      }
    } else {
      for (const [v, pfn] of this.pages) if (v >= lo && v < hi) out.push([v, pfn]);
      out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    }
    return out;
  }

  /** Clears the PTEs of populated pages in [start, end), forgets them; returns their RAM pages. */
  private clearPages(start: bigint, end: bigint): number[] {
    const freed: number[] = [];
    for (const [vpn, pfn] of this.pagesIn(start, end)) {
      const va = vpn << 12n;
      if (this.pageTable.permAt(va) !== 0) this.pageTable.unmap(va, SZ_4K);
      this.pages.delete(vpn);
      freed.push(pfn);
    }
    return freed;
  }

  private async invalidate(start: bigint, end: bigint): Promise<void> {
    const calls = this.notifiers.map((n) => n.invalidateRange(start, end));
    const results = await Promise.allSettled(calls);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

function toBig(v: bigint | number, op: string, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isSafeInteger(v)) throw simError('EINVAL', op, `bad-${what}`, String(v));
  return BigInt(v);
}

function normProt(p: MmProt): VmaProt {
  return { read: !!p?.read, write: !!p?.write, exec: !!p?.exec };
}

/** PTE bits for an accessible VMA: present implies read on x86. */
function pteProt(p: VmaProt): { read: boolean; write: boolean; exec: boolean } {
  return { read: true, write: p.write, exec: p.exec };
}
