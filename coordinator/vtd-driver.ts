/**
 * The VT-d scalable-mode driver side of attach and detach (drivers/iommu/intel/
 * {iommu.c,pasid.c,cache.c}): how a (device, PASID) gets a domain in hardware.
 *
 * Models: set_dev_pasid — a domain id per (domain, IOMMU) allocated on first use and
 * released with the last user (FLPT_DEFAULT_DID for identity), the device's context entry
 * and PASID tables created on first use, the PASID-table entry written for the domain's
 * format (first stage, second stage, pass-through) and, when it replaces another domain,
 * written over the old entry without passing through non-present (hitless, as
 * intel_pasid_replace_* does) before the old DID's PASID-cache, IOTLB and device-TLB entries
 * are flushed; blocking a PASID clears its entry and flushes. Every allocation and entry
 * write is a fail-nth step; a failed step leaves tables, DIDs and tags as they were.
 * The domain's attachments are its cache tags (who may cache its translations).
 * SVA domains share the process's first-stage table; at mm exit their entries are left
 * non-present with FPD set, so translation is blocked and faults are suppressed.
 * Nested domains: the entry is PGTT=nested with the nested domain's own DID, the guest's
 * first-stage root (a guest-physical address) and the parent's second-stage root; a change
 * of the parent's second stage also flushes every nested domain above it (nested-flush.ts).
 * Does not model: PRI drain on teardown (the fault issue), caching mode.
 */
import { PASID_ENTRY_ZERO, PGTT_FL, PGTT_NESTED, PGTT_PT, PGTT_SL, AW_39_3LEVEL, AW_48_4LEVEL, AW_57_5LEVEL, FLPM_4LEVEL, FLPM_5LEVEL, type PasidEntry } from '../shared/layout/pasid-entry.js';
import { nestedParentFlush, nestedUserFlush } from './nested-flush.js';
import { FIRST_STAGE, SECOND_STAGE } from '../shared/layout/pte-format.js';
import { frameToAddr } from '../shared/memory/arena.js';
import { Domain } from './domain.js';
import { FLPT_DEFAULT_DID } from '../shared/layout/profile-widths.js';
import { type CacheTag, pasidTeardown, rangeFlush } from './invalidation.js';
import type { Device } from './topology.js';
import type { ContextTables, DeviceCaps } from './context-tables.js';
import type { HwCmd } from '../shared/layout/profile-codec.js';
import { IommuDriver } from './iommu-driver.js';

export class VtdDriver extends IommuDriver<CacheTag> {
  readonly pteFormat = FIRST_STAGE;
  readonly cpuFormat = FIRST_STAGE;
  readonly s2Format = SECOND_STAGE;

  private tables(iommu: number): ContextTables {
    return this.core.tables(iommu) as ContextTables;
  }

  /** The device's context entry and PASID directory (may fail: ENOMEM). */
  protected setupDevice(dev: Device, caps: DeviceCaps): void {
    this.tables(dev.iommu).setupDevice(dev.rid, caps);
  }

  /**
   * Points (dev, pasid) at `domain` (a non-blocked domain); `old` is what it pointed at
   * (undefined or a blocked domain: nothing). Throws and changes nothing on failure.
   */
  async setDevPasid(dev: Device, pasid: number, domain: Domain, old: Domain | undefined, op: string): Promise<void> {
    this.probe(dev);
    const tables = this.tables(dev.iommu);
    const did = this.getDid(domain, dev.iommu, op);
    try {
      this.core.failNth.step(op);
      tables.reservePasidTable(dev.rid, pasid);
    } catch (e) {
      this.putDid(domain, dev.iommu);
      throw e;
    }
    const oldTag = old !== undefined ? this.tagFor(old, dev, pasid) : undefined;
    tables.setPasidEntry(dev.rid, pasid, this.entryFor(domain, did));
    domain.attachments.set(Domain.key(dev, pasid), { dev, pasid });
    if (old !== undefined && old !== domain) {
      old.attachments.delete(Domain.key(dev, pasid));
      if (oldTag) await this.flushQuietly(dev.iommu, pasidTeardown(oldTag), 'replace');
      this.putDid(old, dev.iommu);
    } else if (old === domain) {
      this.putDid(domain, dev.iommu); // the same domain again: keep one reference
    }
  }

  /** Blocks (dev, pasid): clears its entry and flushes what `old` may have cached. Never fails. */
  async blockDevPasid(dev: Device, pasid: number, old: Domain | undefined): Promise<void> {
    if (old === undefined || old.type === 'blocked') return;
    const tables = this.tables(dev.iommu);
    const tag = this.tagFor(old, dev, pasid);
    tables.clearPasidEntry(dev.rid, pasid);
    old.attachments.delete(Domain.key(dev, pasid));
    if (tag) await this.flushQuietly(dev.iommu, pasidTeardown(tag), 'detach');
    this.putDid(old, dev.iommu);
  }

  /**
   * Blocks (dev, pasid) with its fault reporting off: the entry is left non-present with
   * FPD set (intel_pasid_tear_down_entry with fault_ignore, at mm exit), then flushed.
   */
  async quietBlockDevPasid(dev: Device, pasid: number, old: Domain): Promise<void> {
    const tables = this.tables(dev.iommu);
    if (!tables.device(dev.rid)) return;
    const tag = this.tagFor(old, dev, pasid);
    tables.setPasidEntry(dev.rid, pasid, { ...PASID_ENTRY_ZERO, present: false, fpd: true });
    if (tag) await this.flushQuietly(dev.iommu, pasidTeardown(tag), 'mm-release');
  }

  /** A user's stage-1 invalidation of a nested domain: PASID-based IOTLB, then device TLBs. */
  override async flushNestedUser(domain: Domain, addr: bigint, npages: bigint): Promise<void> {
    await Promise.all([...this.tagsByIommu(domain)].map(([iommu, tags]) => this.core.flush(iommu, nestedUserFlush(tags, addr, npages), 'nested-invalidate')));
  }

  // --- internals ---

  protected rangeCmds(tags: CacheTag[], start: bigint, end: bigint): HwCmd[] {
    return rangeFlush(tags, start, end);
  }

  protected override nestedParentCmds(tags: CacheTag[]): HwCmd[] {
    return nestedParentFlush(tags);
  }

  private entryFor(domain: Domain, did: number): PasidEntry {
    if (domain.type === 'identity') return { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_PT, did };
    if (domain.nested) {
      const { parent, s1 } = domain.nested;
      const ppt = parent.pt!;
      const aw = ppt.levels === 3 ? AW_39_3LEVEL : ppt.levels === 5 ? AW_57_5LEVEL : AW_48_4LEVEL;
      return {
        ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_NESTED, did, aw, ssptptr: frameToAddr(ppt.rootFrame),
        flpm: s1.levels === 5 ? FLPM_5LEVEL : FLPM_4LEVEL, fsptptr: s1.rootGpa, sre: s1.sre, wpe: s1.wpe,
      };
    }
    const pt = domain.pt!;
    if (pt.format === FIRST_STAGE) {
      return { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_FL, did, flpm: FLPM_4LEVEL, fsptptr: frameToAddr(pt.rootFrame) };
    }
    return { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_SL, did, aw: AW_48_4LEVEL, ssptptr: frameToAddr(pt.rootFrame) };
  }

  private getDid(domain: Domain, iommu: number, op: string): number {
    if (domain.type === 'identity') return FLPT_DEFAULT_DID;
    const d = domain.dids.get(iommu);
    if (d) {
      d.refs++;
      return d.did;
    }
    this.core.failNth.step(op);
    const did = this.core.dids(iommu).alloc(op);
    domain.dids.set(iommu, { did, refs: 1 });
    return did;
  }

  private putDid(domain: Domain, iommu: number): void {
    const d = domain.dids.get(iommu);
    if (!d) return;
    if (--d.refs === 0) {
      domain.dids.delete(iommu);
      this.core.dids(iommu).free(d.did);
    }
  }

  tagFor(domain: Domain, dev: Device, pasid: number): CacheTag | undefined {
    if (domain.type === 'blocked') return undefined;
    const did = domain.type === 'identity' ? FLPT_DEFAULT_DID : domain.dids.get(dev.iommu)?.did;
    if (did === undefined) return undefined;
    const pgtt = domain.type === 'identity' ? PGTT_PT : domain.nested ? PGTT_NESTED : domain.pt!.format === FIRST_STAGE ? PGTT_FL : PGTT_SL;
    return { did, rid: dev.rid, pasid, pgtt, ats: dev.ats };
  }
}
