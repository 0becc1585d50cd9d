/**
 * Configuration: the documented defaults of every hardware knob, and the resolved
 * per-IOMMU configuration a worker is started with.
 *
 * Models: the hardware profiles (VT-d scalable mode, SMMUv3, AMD): queue geometry, PASID
 * width, cache sizes and cost parameters. The cost model and cache sizes are shared
 * (HARDWARE §3.5 gives VT-d figures; no SMMUv3 or AMD figure contradicts them); the queue
 * depths, PASID width and ATS invalidation timeout follow each profile
 * (shared/layout/profile-widths.ts; HARDWARE §1.2, §1.3, §3.3). Sources of defaults are
 * given per field (HARDWARE.md section numbers).
 * Does not model: per-profile cost figures where none is published (the VT-d ones are used).
 */

import { PROFILE_WIDTHS } from './layout/profile-widths.js';

export type ProfileName = 'vtd' | 'smmuv3' | 'amd';
export type SemanticsName = 'latest' | 'v5';
export type PasidPolicy = 'global' | 'per-device';

export interface CacheGeometry {
  entries: number;
  ways: number;
  policy?: 'lru' | 'rr';
}

export interface QueueGeometry {
  /** Invalidation (command) queue depth in descriptors. Linux QI_LENGTH = 256. */
  command: number;
  /** Fault event queue depth in records. */
  event: number;
  /** Device DMA request ring depth (a simulator queue, not a hardware one). */
  dma: number;
  /** Page request queue depth in descriptors. Linux PRQ_ORDER 4: 2048 (HARDWARE.md §1.1.4). */
  pageRequest: number;
}

/** Modelled costs in nanoseconds of the simulated machine. */
export interface CostModel {
  /**
   * IOTLB (or device-TLB) lookup: a hit costs this; a miss costs this plus the walk.
   * Estimate (an SRAM lookup); only differences against it are calibrated.
   */
  iotlbHitNs: number;
  /**
   * One page-table memory read during a walk. A 4-level walk's 4 reads give the 280 ns
   * IOTLB miss penalty of HARDWARE §3.1 T1 (pcie-bench, derived); a nested walk reads
   * (n+1)(m+1)−1 entries (HARDWARE §5.4).
   */
  walkReadNs: number;
  /** One root/context/PASID-directory/PASID-table read on a context or PASID-cache miss. */
  tableReadNs: number;
  /** Processing one invalidation descriptor. IOTLB inv + wait ≈ 0.8 µs (HARDWARE §3.2 I1). */
  descriptorNs: number;
  /** Processing a wait descriptor and its status write. */
  waitNs: number;
  /**
   * Device-TLB (ATS) invalidation response time of a device: the median of a log-normal
   * distribution. No published figure (HARDWARE §3.3); the suggested range is 1–40 µs.
   */
  devTlbInvNs: number;
  /** Shape (σ of the underlying normal) of that distribution. Estimate: 0.6 keeps most draws in 1–15 µs. */
  devTlbInvSigma: number;
  /** Bounds of the response time (HARDWARE §3.3: 1–40 µs). */
  devTlbInvMinNs: number;
  devTlbInvMaxNs: number;
  /** Outstanding ATS invalidations per function: 32 (5-bit ITag; Linux QI_DEV_IOTLB_MAX_INVS; §3.3 A1). */
  atsMaxOutstanding: number;
  /** When an unanswered ATS invalidation times out (VT-d ITE). Linux waits 10 s on VT-d, 1 s on AMD/SMMU (§3.3 A2–A4). */
  atsTimeoutNs: number;
  /** Recording one fault. */
  faultNs: number;
  /**
   * Interrupt latency: from an entry landing in an idle event or page request queue to the
   * driver's thread starting to read it (MSI delivery plus IRQ-thread wake-up). Estimate:
   * a few µs on current x86 servers; no figure in HARDWARE.md.
   */
  irqNs: number;
  /** The fault handler (dmar_fault) reading and clearing one fault record. Estimate. */
  eventDrainNs: number;
  /** prq_event_thread reading one page request descriptor and queueing it as an iopf. Estimate. */
  prqDrainNs: number;
  /**
   * Servicing one page-request group before its response is queued (the handler's
   * work, e.g. handle_mm_fault for SVA): median CPU minor fault ≈ 1 µs (HARDWARE §3.4 P4).
   */
  prqServiceNs: number;
}

export interface IommuOptions {
  /** PASID width of the IOMMU (ECAP.PSS + 1). Default 20. */
  pasidBits?: number;
  iotlb?: CacheGeometry;
  pasidCache?: CacheGeometry;
  contextCache?: CacheGeometry;
  devTlb?: CacheGeometry;
  queues?: Partial<QueueGeometry>;
  costs?: Partial<CostModel>;
  /**
   * Paging-structure cache entries (upper-level page-table entries a walk may skip); 0, the
   * default, keeps the calibrated miss penalty of a full walk (HARDWARE §3.1 T1).
   */
  pagingStructureCache?: number;
}

export interface ResolvedIommuConfig {
  index: number;
  /** Hardware profile: the formats of tables, queues and records this IOMMU uses. */
  profile: ProfileName;
  pasidBits: number;
  iotlb: CacheGeometry;
  pasidCache: CacheGeometry;
  contextCache: CacheGeometry;
  devTlb: CacheGeometry;
  queues: QueueGeometry;
  costs: CostModel;
  pagingStructureCache: number;
  /** How long an idle worker spins before it sleeps, in microseconds. */
  spinUs: number;
  testHooks: boolean;
  /** Seed of this IOMMU's random draws (the simulation's seed and the IOMMU index). */
  seed: number;
}

export const VTD_DEFAULTS = {
  pasidBits: 20,
  /** 64 × 4 KiB reach (HARDWARE §3.1 T2), 8-way. */
  iotlb: { entries: 64, ways: 8, policy: 'lru' },
  pasidCache: { entries: 64, ways: 8, policy: 'lru' },
  contextCache: { entries: 64, ways: 8, policy: 'lru' },
  /** A device's ATC: 32 entries, 8-way (no public figure; a small cache). */
  devTlb: { entries: 32, ways: 8, policy: 'lru' },
  queues: { command: 256, event: 256, dma: 1024, pageRequest: 2048 },
  costs: {
    iotlbHitNs: 10,
    walkReadNs: 70,
    tableReadNs: 70,
    descriptorNs: 400,
    waitNs: 400,
    devTlbInvNs: 4000,
    devTlbInvSigma: 0.6,
    devTlbInvMinNs: 1000,
    devTlbInvMaxNs: 40_000,
    atsMaxOutstanding: 32,
    atsTimeoutNs: 10_000_000_000,
    faultNs: 100,
    irqNs: 2000,
    eventDrainNs: 200,
    prqDrainNs: 200,
    prqServiceNs: 1000,
  },
} as const satisfies Omit<ResolvedIommuConfig, 'index' | 'profile' | 'spinUs' | 'testHooks' | 'seed' | 'pagingStructureCache'>;

/** Entry sizes of the VT-d scalable-mode queues (256-bit descriptors, 128-bit FRCD). */
export const VTD_INV_DESC_BYTES = 32;
export const VTD_FAULT_RECORD_BYTES = 16;

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && (n & (n - 1)) === 0;
}

/** Merges options over the defaults; throws a RangeError naming the bad field. */
export function resolveIommuConfig(index: number, o: IommuOptions = {}, spinUs = 50, testHooks = false, seed = 1, profile: ProfileName = 'vtd'): ResolvedIommuConfig {
  const w = PROFILE_WIDTHS[profile];
  // SMMUv3 and AMD drivers give up on an ATS invalidation after 1 s (HARDWARE §3.3 A3, A4).
  const profileCosts = profile === 'vtd' ? {} : { atsTimeoutNs: 1_000_000_000 };
  const profileQueues = profile === 'vtd' ? {} : { command: w.command.depth, event: w.event.depth, pageRequest: w.pageRequest.depth };
  const c: ResolvedIommuConfig = {
    index,
    profile,
    pasidBits: o.pasidBits ?? (profile === 'vtd' ? VTD_DEFAULTS.pasidBits : w.pasidBitsDefault),
    iotlb: { ...VTD_DEFAULTS.iotlb, ...o.iotlb },
    pasidCache: { ...VTD_DEFAULTS.pasidCache, ...o.pasidCache },
    contextCache: { ...VTD_DEFAULTS.contextCache, ...o.contextCache },
    devTlb: { ...VTD_DEFAULTS.devTlb, ...o.devTlb },
    queues: { ...VTD_DEFAULTS.queues, ...profileQueues, ...o.queues },
    costs: { ...VTD_DEFAULTS.costs, ...profileCosts, ...o.costs },
    pagingStructureCache: o.pagingStructureCache ?? 0,
    spinUs,
    testHooks,
    seed: (Math.imul(seed >>> 0, 0x9e3779b1) ^ index) >>> 0,
  };
  const where = `iommus[${index}]`;
  if (!Number.isInteger(c.pasidBits) || c.pasidBits < 0 || c.pasidBits > w.pasidBitsMax) throw new RangeError(`${where}.pasidBits: expected 0..${w.pasidBitsMax}, got ${c.pasidBits}`);
  for (const k of ['iotlb', 'pasidCache', 'contextCache', 'devTlb'] as const) {
    const g = c[k];
    if (!isPow2(g.entries) || !isPow2(g.ways) && g.ways !== 1 || g.ways > g.entries) {
      throw new RangeError(`${where}.${k}: entries and ways must be powers of two with ways <= entries, got ${g.entries}/${g.ways}`);
    }
  }
  for (const k of ['command', 'event', 'dma', 'pageRequest'] as const) {
    if (!isPow2(c.queues[k]) || c.queues[k] > 1 << 16) throw new RangeError(`${where}.queues.${k}: expected a power of two 2..65536, got ${c.queues[k]}`);
  }
  if (!Number.isInteger(c.pagingStructureCache) || c.pagingStructureCache < 0 || c.pagingStructureCache > 1 << 16) {
    throw new RangeError(`${where}.pagingStructureCache: expected an integer 0..65536, got ${c.pagingStructureCache}`);
  }
  for (const [k, v] of Object.entries(c.costs)) {
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${where}.costs.${k}: expected a non-negative number, got ${v}`);
  }
  return c;
}
