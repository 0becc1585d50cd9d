/**
 * What the driver queues to keep the IOMMU's caches coherent with the tables, as
 * drivers/iommu/intel/{cache.c,pasid.c} build it (VT-d scalable mode).
 *
 * Models: for a changed IOVA range, per attachment ("cache tag") behind an IOMMU — a
 * PASID-based IOTLB invalidation (first-stage and pass-through entries are PASID-tagged)
 * or one page-selective IOTLB invalidation per DID (second-stage entries are not) — then
 * device-TLB invalidations for ATS devices (after the IOTLB's, so the device cannot refetch
 * a stale entry), the range rounded up to the smallest naturally aligned power of two (as
 * calculate_psi_aligned_address does) and widened to a domain/PASID-wide flush beyond
 * MAMV; for a PASID-entry teardown — PASID-cache, then IOTLB, then device TLB
 * (intel_pasid_tear_down_entry). The wait descriptor is appended by the queue itself.
 * Does not model: caching-mode flushes on map, the IOTLB-flush batching of the gather
 * across calls (the flush queue comes with DMA-FQ domains).
 */
import {
  IOTLB_GRAN_DOMAIN, IOTLB_GRAN_PAGE, type InvDesc, PC_GRAN_PASID, PIOTLB_GRAN_PAGE, PIOTLB_GRAN_PASID, encodeAtsRange,
} from '../shared/layout/inv-desc.js';
import { PGTT_SL } from '../shared/layout/pasid-entry.js';

/** Maximum address-mask value (CAP.MAMV): PSI covers at most 2^18 pages. */
export const MAMV = 18;
/** Invalidate-queue depth field: 0 stands for 32 outstanding (Linux clamps qdep ≥ 32 to 0). */
const QDEP = 0;
const ATS_ALL = { addr: 0x7fff_ffff_ffff_f000n, s: true };

export interface CacheTag {
  did: number;
  rid: number;
  pasid: number;
  pgtt: number;
  ats: boolean;
}

/** Smallest naturally aligned power-of-two page range covering [start, end): base and AM. */
export function alignedRange(start: bigint, end: bigint): { addr: bigint; am: number } {
  const first = start >> 12n;
  const last = (end - 1n) >> 12n;
  let am = 0;
  while (first >> BigInt(am) !== last >> BigInt(am)) am++;
  return { addr: (first >> BigInt(am)) << BigInt(am + 12), am };
}

/** Descriptors that invalidate [start, end) for every tag behind one IOMMU. */
export function rangeFlush(tags: readonly CacheTag[], start: bigint, end: bigint): InvDesc[] {
  const { addr, am } = alignedRange(start, end);
  const wide = am > MAMV;
  const out: InvDesc[] = [];
  const slDids = new Set<number>();
  for (const t of tags) {
    if (t.pgtt === PGTT_SL) {
      if (slDids.has(t.did)) continue;
      slDids.add(t.did);
      out.push(wide
        ? { type: 'iotlb', granularity: IOTLB_GRAN_DOMAIN, dw: false, dr: false, did: t.did, addr: 0n, ih: false, am: 0 }
        : { type: 'iotlb', granularity: IOTLB_GRAN_PAGE, dw: false, dr: false, did: t.did, addr, ih: false, am });
    } else {
      out.push(wide
        ? { type: 'pasid-iotlb', granularity: PIOTLB_GRAN_PASID, did: t.did, pasid: t.pasid, addr: 0n, ih: false, am: 0 }
        : { type: 'pasid-iotlb', granularity: PIOTLB_GRAN_PAGE, did: t.did, pasid: t.pasid, addr, ih: false, am });
    }
  }
  const ats = wide ? ATS_ALL : encodeAtsRange(addr, 1n << BigInt(am + 12));
  for (const t of tags) if (t.ats) out.push(devTlbDesc(t, ats));
  return out;
}

/** Descriptors after a PASID-table entry was cleared or changed (intel_pasid_tear_down_entry). */
export function pasidTeardown(t: CacheTag): InvDesc[] {
  const out: InvDesc[] = [
    { type: 'pasid-cache', granularity: PC_GRAN_PASID, did: t.did, pasid: t.pasid },
    t.pgtt === PGTT_SL
      ? { type: 'iotlb', granularity: IOTLB_GRAN_DOMAIN, dw: false, dr: false, did: t.did, addr: 0n, ih: false, am: 0 }
      : { type: 'pasid-iotlb', granularity: PIOTLB_GRAN_PASID, did: t.did, pasid: t.pasid, addr: 0n, ih: false, am: 0 },
  ];
  if (t.ats) out.push(devTlbDesc(t, ATS_ALL));
  return out;
}

function devTlbDesc(t: CacheTag, r: { addr: bigint; s: boolean }): InvDesc {
  // The RID's own translations (RID_PASID) are invalidated without a PASID prefix.
  return t.pasid === 0
    ? { type: 'device-tlb', sid: t.rid, pfsid: t.rid, qdep: QDEP, addr: r.addr, s: r.s }
    : { type: 'pasid-device-tlb', sid: t.rid, pfsid: t.rid, qdep: QDEP, pasid: t.pasid, addr: r.addr, s: r.s, global: false };
}
