/**
 * Device TLB: the address translation cache (ATC) of one PCIe device using ATS.
 *
 * Models: a set-associative cache of translated pages (4 KiB, 2 MiB, 1 GiB) tagged by
 * (pasidTag, vpn), where pasidTag is the PASID of the translation request or NO_PASID_TAG
 * for requests without a PASID prefix; the same outputs as the IOTLB (pfn, perm, size,
 * pgtt). Invalidations are those an ATS invalidation request can carry:
 *   - without PASID (VT-d device-TLB descriptor, type 0x3): NO_PASID_TAG entries in range;
 *   - with PASID (PASID-based device-TLB descriptor, type 0x8): that PASID's entries;
 *   - with the global-invalidate bit: entries of every PASID in the range — this model
 *     also removes NO_PASID_TAG entries then (over-invalidation is always safe);
 *   - everything (`invalidateAll`, e.g. a device reset or ATS disable).
 * Does not model: the ATS wire protocol (ITags, completions, timeouts: the caller's job),
 * translation sizes other than 4 KiB/2 MiB/1 GiB, Untranslated-vs-Translated request
 * checks, the device's own invalidation latency, several functions sharing one ATC.
 *
 * Built on the IOTLB with DID 0 (one device ⇒ one tag space), so storage, replacement,
 * range probing and statistics are shared code, not a copy.
 */
import {
  ANY_PASID_TAG,
  Iotlb,
  NO_PASID_TAG,
  type IotlbConfig,
  type IotlbEntry,
  type PageSizeShift,
} from './iotlb.js';
import type { CacheStats } from './set-assoc.js';

export { NO_PASID_TAG };

export type DevTlbConfig = IotlbConfig;

export type DevTlbEntry = Omit<IotlbEntry, 'did'>;

/** Selects every PASID (and no-PASID) in `invalidate`: the ATS global-invalidate bit. */
export type AllPasids = 'all-pasids';

const DEV_DID = 0;

export class DevTlb {
  private readonly tlb: Iotlb;

  constructor(cfg: DevTlbConfig) {
    this.tlb = new Iotlb(cfg, 'dev-tlb');
  }

  /** Handle (≥ 0) of the entry translating 4 KiB page `vpn` for `pasidTag`, or -1. */
  lookup(pasidTag: number, vpn: number): number {
    return this.tlb.lookup(DEV_DID, pasidTag, vpn);
  }

  pfnOf(h: number): number {
    return this.tlb.pfnOf(h);
  }

  permOf(h: number): number {
    return this.tlb.permOf(h);
  }

  sizeShiftOf(h: number): PageSizeShift {
    return this.tlb.sizeShiftOf(h);
  }

  pgttOf(h: number): number {
    return this.tlb.pgttOf(h);
  }

  translatePfn(h: number, vpn: number): number {
    return this.tlb.translatePfn(h, vpn);
  }

  /** Caches a translation completion (page base vpn → pfn, both aligned to the size). */
  insert(pasidTag: number, vpn: number, sizeShift: number, pfn: number, perm: number, pgtt: number): void {
    this.tlb.insert(DEV_DID, pasidTag, vpn, sizeShift, pfn, perm, pgtt);
  }

  /** fillEntry() right after a lookup() of a page inside it missed (see Iotlb.fillAbsent). */
  fillAbsent(pasidTag: number, vpn: number, sizeShift: number, pfn: number, perm: number, pgtt: number): void {
    this.tlb.fillAbsent(DEV_DID, pasidTag, vpn, sizeShift, pfn, perm, pgtt);
  }

  /**
   * An ATS invalidation request: removes entries of `pasidTag` (NO_PASID_TAG for a request
   * without PASID; 'all-pasids' for the global bit) overlapping pages [vpn, vpn + npages).
   * A large page that overlaps only partly is removed. Returns the number removed.
   */
  invalidate(pasidTag: number | AllPasids, vpn: number, npages: number): number {
    if (pasidTag !== 'all-pasids' && (!Number.isInteger(pasidTag) || pasidTag < 0 || pasidTag > 0xffffffff)) {
      throw new RangeError(`dev-tlb.invalidate: pasidTag ${String(pasidTag)} not a u32`);
    }
    if (!Number.isSafeInteger(npages) || npages < 1) {
      throw new RangeError(`dev-tlb.invalidate: npages ${npages} is not a positive integer`);
    }
    return this.tlb.invalidateRange(DEV_DID, pasidTag === 'all-pasids' ? ANY_PASID_TAG : pasidTag, vpn, npages);
  }

  invalidateAll(): number {
    return this.tlb.invalidateAll();
  }

  entries(): DevTlbEntry[] {
    return this.tlb.entries().map(({ did: _did, ...rest }) => rest);
  }

  get size(): number {
    return this.tlb.size;
  }

  stats(): CacheStats {
    return this.tlb.stats();
  }
}
