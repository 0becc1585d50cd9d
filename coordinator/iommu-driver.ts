/**
 * What the IOMMU drivers have in common (drivers/iommu/intel, arm/arm-smmu-v3, amd): the
 * operations the API layer calls to put a (device, PASID) under a domain in hardware and
 * to keep the IOMMU's caches coherent with a domain's page table, and the part of cache
 * maintenance every driver does the same way — a changed range is flushed on every IOMMU
 * behind which the domain is attached, through each attachment's "cache tag", and the end
 * to end latency of a strict unmap or an SVA munmap fan-out is recorded.
 *
 * Models: the driver interface (probe, set_dev_pasid, blocking, the quiet block at mm exit,
 * range and full flushes, domain allocation and free hooks); the fan-out per IOMMU; the
 * flush of nested domains above a nest parent (VT-d only has them).
 * Does not model: anything of a format (vtd-driver.ts, smmu-driver.ts, amd-driver.ts).
 */
import type { HwCmd } from '../shared/layout/profile-codec.js';
import { simError } from '../shared/errors.js';
import type { PteFormat } from '../shared/layout/pte-format.js';
import type { Domain } from './domain.js';
import type { Device } from './topology.js';
import type { DeviceCaps } from './context-tables.js';
import type { SimulatorCore } from './simulator-core.js';

export abstract class IommuDriver<Tag = unknown> {
  constructor(protected readonly core: SimulatorCore) {}

  /** Page-table format of paging domains on this profile. */
  abstract readonly pteFormat: PteFormat;
  /** Format of the CPU's page tables, which SVA domains share (x86-64, or AArch64 on SMMUv3). */
  abstract readonly cpuFormat: PteFormat;
  /** Format of stage-2 (second-stage, nest-parent) domains; undefined where not modelled. */
  abstract readonly s2Format: PteFormat | undefined;

  /** The device has its tables programmed (the driver probed it). */
  hasDevice(dev: Device): boolean {
    return this.core.tables(dev.iommu).device(dev.rid) !== undefined;
  }

  /** Creates the device's tables if it has none (a fail-nth step; may fail: ENOMEM, ENOSPC). */
  probe(dev: Device): void {
    if (this.hasDevice(dev)) return;
    this.core.failNth.step('probe-device');
    this.setupDevice(dev, { maxPasids: dev.maxPasids, ats: dev.ats, pri: dev.pri });
  }

  /** Writes the device's entry and allocates its per-PASID table (context entry, STE + CD table, DTE + GCR3). */
  protected abstract setupDevice(dev: Device, caps: DeviceCaps): void;
  /**
   * Points (dev, pasid) at `domain` (a non-blocked domain); `old` is what it pointed at
   * (undefined or a blocked domain: nothing). Throws and changes nothing on failure.
   */
  abstract setDevPasid(dev: Device, pasid: number, domain: Domain, old: Domain | undefined, op: string): Promise<void>;
  /** Blocks (dev, pasid) and flushes what `old` may have cached. Never fails. */
  abstract blockDevPasid(dev: Device, pasid: number, old: Domain | undefined): Promise<void>;
  /** Blocks (dev, pasid) of an SVA domain whose mm is gone (mm release). */
  abstract quietBlockDevPasid(dev: Device, pasid: number, old: Domain): Promise<void>;
  /** The cache tag of an attachment (undefined if it caches nothing). */
  abstract tagFor(domain: Domain, dev: Device, pasid: number): Tag | undefined;
  /** Commands that invalidate [start, end) for the tags behind one IOMMU. */
  protected abstract rangeCmds(tags: Tag[], start: bigint, end: bigint): HwCmd[];

  /** A domain was allocated (the AMD driver gives it a domain id here). */
  domainInit(_domain: Domain, _op: string): void {}
  /** A domain was freed. */
  domainFree(_domain: Domain): void {}

  /** A user's stage-1 invalidation of a nested domain (only VT-d has nested domains here). */
  flushNestedUser(_domain: Domain, _addr: bigint, _npages: bigint): Promise<void> {
    return Promise.reject(simError('EOPNOTSUPP', 'flushNestedUser', 'no-nested-domains', 'nested domains exist on the vtd profile only'));
  }

  /** Commands that flush nested domains above a changed nest parent (VT-d only). */
  protected nestedParentCmds(_tags: Tag[]): HwCmd[] {
    return [];
  }

  /** Invalidates [start, end) of `domain` everywhere it may be cached; resolves when done. */
  async flushRange(domain: Domain, start: bigint, end: bigint, kind: string): Promise<void> {
    const t0 = this.core.clock.now;
    await Promise.all([...this.tagsByIommu(domain)].map(([iommu, tags]) => this.core.flush(iommu, this.rangeCmds(tags, start, end), kind)));
    // A nest parent's change reaches every nested domain above it.
    const nestedTags = new Map<number, Tag[]>();
    for (const child of domain.children) {
      for (const [iommu, tags] of this.tagsByIommu(child)) nestedTags.set(iommu, [...(nestedTags.get(iommu) ?? []), ...tags]);
    }
    await Promise.all([...nestedTags].map(([iommu, tags]) => this.core.flush(iommu, this.nestedParentCmds(tags), `${kind}-nested`)));
    // End to end over every IOMMU that may cache the domain: the strict unmap, the SVA munmap fan-out.
    if (kind === 'unmap') this.core.recordLatency('unmap-strict', this.core.clock.now - t0);
    else if (kind === 'sva-invalidate') this.core.recordLatency('sva-munmap', this.core.clock.now - t0);
  }

  /** Invalidates everything of `domain` (iommu_flush_iotlb_all). */
  async flushAll(domain: Domain, kind: string): Promise<void> {
    await this.flushRange(domain, 0n, 1n << 64n, kind);
  }

  /** Flushes after a detach or replace, which cannot fail once the entry is written. */
  protected async flushQuietly(iommu: number, cmds: HwCmd[], kind: string): Promise<void> {
    // A dead worker is reported by the simulator itself.
    if (cmds.length > 0) await this.core.flush(iommu, cmds, kind).catch(() => {});
  }

  protected tagsByIommu(domain: Domain): Map<number, Tag[]> {
    const m = new Map<number, Tag[]>();
    for (const { dev, pasid } of domain.attachments.values()) {
      const t = this.tagFor(domain, dev, pasid);
      if (t === undefined) continue;
      const list = m.get(dev.iommu) ?? [];
      list.push(t);
      m.set(dev.iommu, list);
    }
    return m;
  }
}
