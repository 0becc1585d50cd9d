/**
 * The translation pipeline of one IOMMU: a device request in, a physical address or a
 * fault reason out.
 *
 * Models: context cache → PASID cache (each refilled from the tables on a miss by the
 * profile's reader: VT-d root/context/PASID tables, SMMUv3 STE/CD, AMD DTE/GCR3) → device
 * TLB (for devices whose entry enables ATS) → IOTLB → first- or second-stage walk in the
 * format the entry names (x86-64, VT-d second stage, AArch64 stage 1/2), or pass-through →
 * permission check → fill of IOTLB and device TLB. The IOTLB tag is the entry's (DID, ASID,
 * VMID or DomainID), with the PASID as well where the profile tags by it (VT-d first stage
 * and pass-through, AMD GN; not VT-d second stage, not SMMUv3's ASID-tagged entries).
 * Requests without PASID use the entry's RID PASID (RID_PASID, SSID 0, GCR3[0]).
 * Supervisor requests need SRE; unprivileged first-stage requests need U/S (AP[1] on Arm).
 * Only successful translations are cached; a cached entry that refuses an access is dropped
 * and the tables walked again before a fault is raised (permission upgrades are not
 * flushed by Linux). Modelled cost is accumulated per request.
 * Nested entries (PGTT=3): the guest's first stage walked through the host's second stage
 * (page-walk.ts walkNested, every extra read counted in the cost), cached PASID-tagged
 * under the nested DID; a first-stage miss is a page fault (PRI-recoverable, reported to
 * the nested domain's handler), a second-stage miss a non-recoverable fault.
 * Does not model: paging-structure caches (psc.ts charges their effect), ATS translation requests as separate
 * transactions (a device-TLB miss is resolved in the same request), A/D bit updates.
 */
import { PagingStructureCache } from './psc.js';
import type { ArenaView } from '../shared/memory/arena.js';
import type { ResolvedIommuConfig } from '../shared/config.js';
import { PERM_EXEC, PERM_READ, PERM_USER, PERM_WRITE, SECOND_STAGE } from '../shared/layout/pte-format.js';
import { ACCESS_EXEC, ACCESS_WRITE } from '../shared/layout/dma-request.js';
import { PGTT_FL, PGTT_NESTED, PGTT_PT, PGTT_SL } from '../shared/layout/pasid-entry.js';
import { FR } from '../shared/layout/fault-record.js';
import { Iotlb, NO_PASID_TAG } from './iotlb.js';
import { DevTlb } from './dev-tlb.js';
import { ContextCache } from './context-cache.js';
import { PasidCache } from './pasid-cache.js';
import { PageWalker, WALK_ABORT, WALK_NOT_PRESENT, WALK_OK, WALK_OUT_OF_RANGE, WALK_S2_ABORT, WALK_S2_NOT_PRESENT } from './page-walk.js';
import { VtdContextReader } from './vtd-context.js';
import { SmmuContextReader } from './smmu-context.js';
import { AmdContextReader } from './amd-context.js';
import type { ContextReader, DeviceContext, PasidContext } from './context-reader.js';

/** Faults raised when a table pointer is outside the memory this thread knows. */
const ACCESS_FAULTS = new Set<number>([FR.ROOT_TABLE_ACCESS, FR.CONTEXT_TABLE_ACCESS, FR.PASID_DIR_ACCESS, FR.PASID_TABLE_ACCESS, FR.PTE_ACCESS, FR.SS_PTE_ACCESS]);

export class Translator {
  readonly iotlb: Iotlb;
  /** Paging-structure caches (cost only; off unless configured). */
  readonly psc: PagingStructureCache;
  readonly contextCache: ContextCache<DeviceContext>;
  readonly pasidCache: PasidCache<PasidContext>;
  readonly devTlbs = new Map<number, DevTlb>();
  readonly walker: PageWalker;
  readonly reader: ContextReader;

  // Results of the last translate() (fields: the hot path allocates nothing).
  paLo = 0;
  paHi = 0;
  /** Fault reason (FR) of the last request, 0 when translated. */
  status = 0;
  /** The fault is suppressed (fault processing disabled) and not recorded. */
  suppressed = false;
  cached = false;
  costNs = 0;
  /** PASID the request was translated under (RID_PASID for requests without PASID). */
  effPasid = 0;
  /** The fault came from the page table (not present / permission): PRI can recover it. */
  pageFault = false;
  /** The requester's context entry has page requests enabled (PRE). */
  pri = false;

  walks = 0;
  walkReads = 0;
  devTlbHits = 0;
  devTlbMisses = 0;

  constructor(view: ArenaView, rootTableFrame: number, private readonly cfg: ResolvedIommuConfig, reader?: ContextReader) {
    this.iotlb = new Iotlb(cfg.iotlb);
    this.psc = new PagingStructureCache(cfg.pagingStructureCache);
    this.contextCache = new ContextCache<DeviceContext>(cfg.contextCache);
    this.pasidCache = new PasidCache<PasidContext>(cfg.pasidCache);
    this.walker = new PageWalker(view);
    this.reader = reader ?? (cfg.profile === 'smmuv3' ? new SmmuContextReader(view, rootTableFrame)
      : cfg.profile === 'amd' ? new AmdContextReader(view, rootTableFrame) : new VtdContextReader(view, rootTableFrame));
  }

  devTlb(rid: number): DevTlb {
    let t = this.devTlbs.get(rid);
    if (!t) {
      t = new DevTlb(this.cfg.devTlb);
      this.devTlbs.set(rid, t);
    }
    return t;
  }

  /**
   * Translates one request. `pasid` is -1 for a request without PASID; the address is
   * given as u32 halves. Returns `status` (0 = translated to paLo/paHi).
   */
  translate(rid: number, pasid: number, access: number, priv: boolean, addrLo: number, addrHi: number): number {
    const st = this.translateOnce(rid, pasid, access, priv, addrLo, addrHi);
    // A table in memory this thread has not attached yet (the arena grew while the
    // request was in flight): take the coordinator's pending arena messages and retry.
    if (st !== 0 && ACCESS_FAULTS.has(st) && this.refreshMemory()) return this.translateOnce(rid, pasid, access, priv, addrLo, addrHi);
    return st;
  }

  /** Attaches arena chunks announced by the coordinator; true if any arrived (set by main.ts). */
  refreshMemory: () => boolean = () => false;

  /** One pass of the pipeline; `rewalk` bypasses the IOTLB and device TLB (see the permission check). */
  private translateOnce(rid: number, pasid: number, access: number, priv: boolean, addrLo: number, addrHi: number, rewalk = false): number {
    const costs = this.cfg.costs;
    let cost = 0;
    let cached = false;
    this.pageFault = false;
    this.pri = false;

    // Context cache: re-check the slot of the last hit first (same counting and LRU).
    let ctx = rid === this.mRid ? this.contextCache.lookupAt(this.mCtxSlot, rid) : undefined;
    if (ctx === undefined) {
      ctx = this.contextCache.lookup(rid);
      if (ctx === undefined) {
        ctx = this.reader.readContext(rid);
        cost += this.reader.reads * costs.tableReadNs;
        if (ctx === undefined) return this.fault(this.reader.fault, this.reader.fpd, cost);
        this.contextCache.insert(rid, ctx);
      }
      this.mRid = rid;
      this.mCtxSlot = this.contextCache.lastSlot;
    }
    this.pri = ctx.pre;
    if (pasid >= 0 && !ctx.paside) return this.fault(FR.PASID_DISABLED, ctx.fpd, cost);
    const eff = pasid >= 0 ? pasid : ctx.ridPasid;
    this.effPasid = eff;
    let pe = rid === this.mPeRid && eff === this.mPeEff ? this.pasidCache.lookupAt(this.mPeSlot, rid, eff) : undefined;
    if (pe === undefined) {
      pe = this.pasidCache.lookup(rid, eff);
      if (pe === undefined) {
        pe = this.reader.readPasid(ctx, eff);
        cost += this.reader.reads * costs.tableReadNs;
        if (pe === undefined) return this.fault(this.reader.fault, this.reader.fpd, cost);
        this.pasidCache.insert(rid, eff, pe.did, pe);
      }
      this.mPeRid = rid;
      this.mPeEff = eff;
      this.mPeSlot = this.pasidCache.lastSlot;
    }
    const isPriv = pasid >= 0 ? priv : ctx.ridPriv;
    if (isPriv && !pe.sre && pe.pgtt !== PGTT_SL) return this.fault(FR.SUPERVISOR_NOT_ENABLED, pe.fpd, cost);

    const vpnLo = ((addrLo >>> 12) | (addrHi << 20)) >>> 0;
    const vpnHi = addrHi >>> 12;
    const vpn = vpnHi * 0x1_0000_0000 + vpnLo;
    const need = (PERM_READ << access) | (isPriv || (pe.pgtt !== PGTT_FL && pe.pgtt !== PGTT_NESTED) ? 0 : PERM_USER); // READ/WRITE/EXEC = 1 << access
    const devTlb = ctx.dte ? this.devTlb(rid) : undefined;
    const devTag = pasid >= 0 ? pasid : NO_PASID_TAG;
    const tag = pe.pasidTagged ? eff : NO_PASID_TAG;

    let pfn: number;
    let perm: number;
    let h: number;
    if (devTlb !== undefined && !rewalk && (h = devTlb.lookup(devTag, vpn)) >= 0) {
      this.devTlbHits++;
      pfn = devTlb.translatePfn(h, vpn);
      perm = devTlb.permOf(h);
      cost += costs.iotlbHitNs;
      cached = true;
    } else {
      if (devTlb !== undefined && !rewalk) this.devTlbMisses++;
      const iotlb = this.iotlb;
      // Every request pays the IOTLB lookup; a miss adds the walk (the miss penalty).
      if (!rewalk) cost += costs.iotlbHitNs;
      h = rewalk ? -1 : iotlb.lookup(pe.did, tag, vpn);
      if (h >= 0) {
        pfn = iotlb.translatePfn(h, vpn);
        perm = iotlb.permOf(h);
        cached = true;
        if (devTlb !== undefined) {
          const sizeShift = iotlb.sizeShiftOf(h);
          devTlb.fillAbsent(devTag, iotlb.vpnOf(h), sizeShift, iotlb.pfnOf(h), perm, pe.pgtt);
        }
      } else if (pe.pgtt === PGTT_PT) {
        pfn = vpn;
        perm = PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER;
        iotlb.fillAbsent(pe.did, tag, vpn, 12, pfn, perm, pe.pgtt);
        if (devTlb !== undefined) devTlb.fillAbsent(devTag, vpn, 12, pfn, perm, pe.pgtt);
      } else if (pe.pgtt === PGTT_NESTED) {
        const w = this.walker;
        const st = w.walkNested(pe.fsFormat, pe.fsRootFrame, pe.fsLevels, pe.ssFormat, pe.ssRootFrame, pe.ssLevels, vpnLo, vpnHi);
        this.walks++;
        this.walkReads += w.reads;
        cost += w.reads * costs.walkReadNs;
        if (st !== WALK_OK) {
          const fr = st === WALK_NOT_PRESENT ? FR.FS_PTE_NOT_PRESENT : st === WALK_S2_NOT_PRESENT ? FR.SS_PTE_NOT_PRESENT
            : st === WALK_ABORT ? FR.PTE_ACCESS : st === WALK_S2_ABORT ? FR.SS_PTE_ACCESS : FR.ADDRESS_BEYOND_AW;
          this.fault(fr, pe.fpd, cost);
          this.pageFault = st === WALK_NOT_PRESENT; // the guest's stage: its page request
          return fr;
        }
        pfn = w.pfn;
        perm = w.perm;
        const leafVpn = vpn - (pfn - w.leafPfn);
        iotlb.fillAbsent(pe.did, tag, leafVpn, w.sizeShift, w.leafPfn, perm, pe.pgtt);
        if (devTlb !== undefined) devTlb.fillAbsent(devTag, leafVpn, w.sizeShift, w.leafPfn, perm, pe.pgtt);
      } else {
        const fl = pe.pgtt === PGTT_FL;
        const w = this.walker;
        const root = fl ? pe.fsRootFrame : pe.ssRootFrame;
        const levels = fl ? pe.fsLevels : pe.ssLevels;
        const st = w.walk(fl ? pe.fsFormat : pe.ssFormat, root, levels, vpnLo, vpnHi);
        this.walks++;
        this.walkReads += w.reads;
        let charged = w.reads;
        if (this.psc.enabled && st !== WALK_OUT_OF_RANGE) {
          // Paging-structure caches: the walk starts below the deepest cached level.
          charged -= Math.min(this.psc.skippable(root, levels, vpn), w.reads - 1);
          if (st === WALK_OK || st === WALK_NOT_PRESENT) this.psc.fill(root, levels, vpn, w.level);
        }
        cost += charged * costs.walkReadNs;
        if (st !== WALK_OK) {
          const fr = st === WALK_NOT_PRESENT ? (fl ? FR.FS_PTE_NOT_PRESENT : FR.SS_PTE_NOT_PRESENT)
            : st === WALK_ABORT ? (fl ? FR.PTE_ACCESS : FR.SS_PTE_ACCESS) : FR.ADDRESS_BEYOND_AW;
          this.fault(fr, pe.fpd, cost);
          this.pageFault = st === WALK_NOT_PRESENT;
          return fr;
        }
        pfn = w.pfn;
        perm = w.perm;
        const leafVpn = vpn - (pfn - w.leafPfn);
        iotlb.fillAbsent(pe.did, tag, leafVpn, w.sizeShift, w.leafPfn, perm, pe.pgtt);
        if (devTlb !== undefined) devTlb.fillAbsent(devTag, leafVpn, w.sizeShift, w.leafPfn, perm, pe.pgtt);
      }
    }
    if ((perm & need) !== need) {
      if (cached && !rewalk) {
        // A cached translation refuses the access: the tables may have gained the permission
        // since (Linux does not flush TLBs for permission upgrades). Drop the cached entries
        // and walk again before faulting, as the hardware re-checks rather than trusting them.
        this.iotlb.invalidateRange(pe.did, tag, vpn, 1);
        devTlb?.invalidate(devTag, vpn, 1);
        const st = this.translateOnce(rid, pasid, access, priv, addrLo, addrHi, true);
        this.costNs += cost;
        return st;
      }
      const fr = (need & PERM_USER) !== 0 && (perm & PERM_USER) === 0 ? FR.PRIVILEGE
        : access === ACCESS_WRITE ? FR.WRITE_DENIED : access === ACCESS_EXEC ? FR.EXEC_DENIED : FR.READ_DENIED;
      this.fault(fr, pe.fpd, cost);
      this.pageFault = true;
      return fr;
    }
    // pfn < 2^40: split into the address's u32 halves without 64-bit math.
    const hi = (pfn / 0x100000) | 0;
    this.paHi = hi;
    this.paLo = (((pfn - hi * 0x100000) << 12) | (addrLo & 0xfff)) >>> 0;
    this.status = 0;
    this.costNs = cost;
    this.cached = cached;
    this.suppressed = false;
    return 0;
  }

  // The slots of the last context-cache and PASID-cache hits (see lookupAt()).
  private mRid = -1;
  private mCtxSlot = -1;
  private mPeRid = -1;
  private mPeEff = -1;
  private mPeSlot = -1;


  private fault(fr: number, fpd: boolean, cost: number): number {
    this.status = fr;
    this.cached = false;
    this.suppressed = fpd;
    this.costNs = cost + this.cfg.costs.faultNs;
    this.paLo = this.paHi = 0;
    return fr;
  }
}
