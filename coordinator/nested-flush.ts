/**
 * Invalidations around nested domains (VT-d scalable mode, drivers/iommu/intel/nested.c and
 * cache.c as far as behaviour goes).
 *
 * Models: (1) a change of a nest parent's second stage: every nested domain above it may
 * cache GPA-derived translations under its own DID and PASID tag, with no way to tell which
 * guest IOVAs they cover, so each nested DID behind an IOMMU is flushed domain-selectively
 * (IOTLB DSI), then the device TLBs of its ATS attachments; (2) a user's stage-1
 * invalidation request (struct iommu_hwpt_vtd_s1_invalidate: 4 KiB-aligned addr, npages,
 * addr 0 + npages U64_MAX = everything): a PASID-based IOTLB invalidation per attachment
 * of the nested domain (page-selective, widened to the PASID beyond MAMV), then the device
 * TLB of ATS devices (done automatically, as the uAPI says).
 * Does not model: the leaf-only hint (IOMMU_VTD_INV_FLAGS_LEAF is accepted; there are no
 * paging-structure caches to spare).
 */
import { IOTLB_GRAN_DOMAIN, type InvDesc } from '../shared/layout/inv-desc.js';
import { U64_MAX } from '../shared/units.js';
import { type CacheTag, rangeFlush } from './invalidation.js';

const ATS_ALL = { addr: 0x7fff_ffff_ffff_f000n, s: true };

/** After the nest parent changed: everything of these nested tags (one IOMMU). */
export function nestedParentFlush(tags: readonly CacheTag[]): InvDesc[] {
  const out: InvDesc[] = [];
  const dids = new Set<number>();
  for (const t of tags) {
    if (dids.has(t.did)) continue;
    dids.add(t.did);
    out.push({ type: 'iotlb', granularity: IOTLB_GRAN_DOMAIN, dw: false, dr: false, did: t.did, addr: 0n, ih: false, am: 0 });
  }
  for (const t of tags) {
    if (!t.ats) continue;
    out.push(t.pasid === 0
      ? { type: 'device-tlb', sid: t.rid, pfsid: t.rid, qdep: 0, addr: ATS_ALL.addr, s: ATS_ALL.s }
      : { type: 'pasid-device-tlb', sid: t.rid, pfsid: t.rid, qdep: 0, pasid: t.pasid, addr: ATS_ALL.addr, s: ATS_ALL.s, global: false });
  }
  return out;
}

/** A user's stage-1 invalidation of [addr, addr + npages·4K) (npages U64_MAX with addr 0: all). */
export function nestedUserFlush(tags: readonly CacheTag[], addr: bigint, npages: bigint): InvDesc[] {
  if (tags.length === 0) return [];
  const all = npages === U64_MAX || addr + (npages << 12n) > 1n << 64n;
  return all ? rangeFlush(tags, 0n, 1n << 64n) : rangeFlush(tags, addr, addr + (npages << 12n));
}
