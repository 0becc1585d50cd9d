/**
 * The v5-era guest SVA passdown (seed 002, the vSVA series; SEMANTICS.md §4.2): binding a
 * guest PASID table entry (iommu_sva_bind_gpasid / sva_bind_gpasid) and the generic
 * cache_invalidate call of include/uapi/linux/iommu.h (v5.x).
 *
 * Models: struct iommu_gpasid_bind_data as {version: 1, format: 'intel-vtd', flags:
 * {gpasidValid}, gpgd (guest first-stage root, 4 KiB aligned), hpasid, gpasid, addrWidth
 * (48/57), vtd: {flags: {sre, wpe}}} — wrong version, format, width or alignment, an hpasid
 * out of [1, 2^20) or beyond the device, a gpasid given without the flag: EINVAL; a domain
 * that is not a nesting (nest-parent) domain: EINVAL; the (device, hpasid) bound already:
 * EBUSY. struct iommu_cache_invalidate_info as {version: 1, cache: {iotlb, devIotlb, pasid},
 * granularity: 'domain' | 'pasid' | 'addr', pasidInfo | addrInfo} with the validity table
 * (DOMAIN: IOTLB and PASID cache; PASID: all three; ADDR: IOTLB and device TLB — every
 * cache type named must support the granularity) and EINVAL for a bad version, an empty
 * or unknown cache set, an unknown granularity, an invalid combination, a PASID-selective
 * request without PASID or ARCHID flag, a PASID the device has not bound, a granule size
 * other than 4K/2M/1G, an unaligned address or zero granules. Each valid request becomes
 * VT-d descriptors: IOTLB → PASID-based IOTLB (PASID-wide, or page-selective for ADDR;
 * DOMAIN: every bound PASID of the domain), device TLB → PASID-based device-TLB (ATS
 * devices), PASID cache → PASID-cache invalidation (DID-wide for DOMAIN).
 * Does not model: ARCHID (SMMU ASIDs; accepted, unused), the leaf flag, the guest PASID
 * ↔ host PASID translation (gpasid is recorded only).
 */
import { simError } from '../shared/errors.js';
import {
  type InvDesc, PC_GRAN_DOMAIN, PC_GRAN_PASID, PIOTLB_GRAN_PAGE, PIOTLB_GRAN_PASID, encodeAtsRange,
} from '../shared/layout/inv-desc.js';
import type { NestedStage1 } from './domain.js';
import { alignedRange } from './invalidation.js';
import type { Device } from './topology.js';

export interface GpasidBindData {
  version: number;
  format: 'intel-vtd';
  flags?: { gpasidValid?: boolean };
  gpgd: bigint;
  hpasid: number;
  gpasid?: number;
  addrWidth: number;
  vtd?: { flags?: { sre?: boolean; wpe?: boolean } };
}

export type InvGranularity = 'domain' | 'pasid' | 'addr';
export interface CacheInvalidateInfo {
  version: number;
  cache: { iotlb?: boolean; devIotlb?: boolean; pasid?: boolean };
  granularity: InvGranularity;
  pasidInfo?: { flags: { pasid?: boolean; archid?: boolean }; archid?: number; pasid?: number };
  addrInfo?: { flags: { pasid?: boolean; archid?: boolean; leaf?: boolean }; archid?: number; pasid?: number; addr: bigint; granuleSize: bigint; nbGranules: bigint };
}

const ALLOWED: Record<InvGranularity, readonly string[]> = {
  domain: ['iotlb', 'pasid'],
  pasid: ['iotlb', 'devIotlb', 'pasid'],
  addr: ['iotlb', 'devIotlb'],
};

/** Checks bind data; returns the guest first stage and the host PASID. */
export function checkBindData(data: GpasidBindData, dev: Device, op: string): { s1: NestedStage1; hpasid: number; gpasid?: number } {
  const bad = (reason: string, detail?: string) => simError('EINVAL', op, reason, detail);
  if (typeof data !== 'object' || data === null) throw bad('no-data');
  if (data.version !== 1) throw bad('bad-version', String(data.version));
  if (data.format !== 'intel-vtd') throw bad('bad-format', String(data.format));
  if (typeof data.gpgd !== 'bigint' || data.gpgd < 0n || (data.gpgd & 0xfffn) !== 0n || data.gpgd >= 1n << 52n) throw bad('bad-gpgd', String(data.gpgd));
  if (data.addrWidth !== 48 && data.addrWidth !== 57) throw bad('bad-addr-width', String(data.addrWidth));
  const h = data.hpasid;
  if (!Number.isInteger(h) || h <= 0 || h >= 1 << 20) throw bad('bad-hpasid', String(h));
  if (h >= dev.maxPasids) throw bad('hpasid-beyond-device', `${h} ≥ ${dev.maxPasids}`);
  const gv = !!data.flags?.gpasidValid;
  if (!gv && data.gpasid !== undefined) throw bad('gpasid-without-flag');
  if (gv && (!Number.isInteger(data.gpasid) || data.gpasid! <= 0 || data.gpasid! >= 1 << 20)) throw bad('bad-gpasid', String(data.gpasid));
  const f = data.vtd?.flags ?? {};
  return { s1: { rootGpa: data.gpgd, levels: data.addrWidth === 57 ? 5 : 4, sre: !!f.sre, wpe: !!f.wpe }, hpasid: h, gpasid: gv ? data.gpasid : undefined };
}

export interface InvTarget { did: number; pasid: number; rid: number; ats: boolean }

/**
 * Checks a cache_invalidate request and turns it into descriptors. `bound(pasid)` gives
 * the target of a bound PASID of the device (undefined if none); `all` every bound one.
 */
export function invalidateDescs(info: CacheInvalidateInfo, bound: (pasid: number) => InvTarget | undefined, all: InvTarget[], op: string): InvDesc[] {
  const bad = (reason: string, detail?: string) => simError('EINVAL', op, reason, detail);
  if (typeof info !== 'object' || info === null) throw bad('no-info');
  if (info.version !== 1) throw bad('bad-version', String(info.version));
  const cache = info.cache;
  if (typeof cache !== 'object' || cache === null) throw bad('no-cache-type');
  const types = Object.entries(cache).filter(([, v]) => v).map(([k]) => k);
  if (types.length === 0) throw bad('no-cache-type');
  const unknown = types.find((t) => !['iotlb', 'devIotlb', 'pasid'].includes(t));
  if (unknown) throw bad('unknown-cache-type', unknown);
  const allowed = ALLOWED[info.granularity];
  if (!allowed) throw bad('bad-granularity', String(info.granularity));
  const na = types.find((t) => !allowed.includes(t));
  if (na) throw bad('invalid-combination', `${na} × ${info.granularity}`);

  let targets: InvTarget[];
  let range: { addr: bigint; am: number; bytes: bigint } | undefined;
  if (info.granularity === 'domain') {
    targets = all;
  } else {
    const sel = info.granularity === 'pasid' ? info.pasidInfo : info.addrInfo;
    if (!sel || typeof sel !== 'object') throw bad('no-granularity-info');
    if (!sel.flags?.pasid && !sel.flags?.archid) throw bad('no-pasid-or-archid');
    if (sel.flags?.pasid) {
      const t = bound(sel.pasid as number);
      if (!t) throw bad('pasid-not-bound', String(sel.pasid));
      targets = [t];
    } else {
      targets = all; // ARCHID-tagged: every PASID of the domain
    }
    if (info.granularity === 'addr') {
      const a = info.addrInfo!;
      if (![0x1000n, 0x20_0000n, 0x4000_0000n].includes(a.granuleSize)) throw bad('bad-granule-size', String(a.granuleSize));
      if (typeof a.addr !== 'bigint' || (a.addr & (a.granuleSize - 1n)) !== 0n) throw bad('addr-unaligned', String(a.addr));
      if (typeof a.nbGranules !== 'bigint' || a.nbGranules <= 0n) throw bad('bad-granule-count', String(a.nbGranules));
      const bytes = a.granuleSize * a.nbGranules;
      range = { ...alignedRange(a.addr, a.addr + bytes), bytes };
    }
  }
  const out: InvDesc[] = [];
  if (cache.pasid) {
    if (info.granularity === 'domain') for (const did of new Set(targets.map((t) => t.did))) out.push({ type: 'pasid-cache', granularity: PC_GRAN_DOMAIN, did, pasid: 0 });
    else for (const t of targets) out.push({ type: 'pasid-cache', granularity: PC_GRAN_PASID, did: t.did, pasid: t.pasid });
  }
  if (cache.iotlb) {
    for (const t of targets) {
      out.push(range
        ? { type: 'pasid-iotlb', granularity: range.am > 18 ? PIOTLB_GRAN_PASID : PIOTLB_GRAN_PAGE, did: t.did, pasid: t.pasid, addr: range.am > 18 ? 0n : range.addr, ih: false, am: range.am > 18 ? 0 : range.am }
        : { type: 'pasid-iotlb', granularity: PIOTLB_GRAN_PASID, did: t.did, pasid: t.pasid, addr: 0n, ih: false, am: 0 });
    }
  }
  if (cache.devIotlb) {
    const r = range ? encodeAtsRange(range.addr, 1n << BigInt(range.am + 12)) : { addr: 0x7fff_ffff_ffff_f000n, s: true };
    for (const t of targets) if (t.ats) out.push({ type: 'pasid-device-tlb', sid: t.rid, pfsid: t.rid, qdep: 0, pasid: t.pasid, addr: r.addr, s: r.s, global: false });
  }
  return out;
}
