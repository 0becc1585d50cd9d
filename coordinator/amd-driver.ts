/**
 * The AMD IOMMU driver side of attach and detach (drivers/iommu/amd/{iommu.c,pasid.c}), as
 * Linux runs it by default (amd_iommu_pgtable=v1): how a (device, PASID) gets a domain in
 * hardware.
 *
 * Models: a paging domain has a v1 host page table and takes a domain id from the global
 * space when it is allocated (pdom_id_alloc; exhaustion ENOMEM, as the domain allocators
 * return) and gives it back when freed; a device gets a GCR3 table and a domain id of its own
 * when the driver first programs it (setup_gcr3_table; exhaustion ENOSPC), and its DTE is
 * tagged with that id. The RID gets the paging domain's v1 table in the DTE (Mode, Host Page
 * Table Root, IR/IW), or passes through (identity: Mode 0, IR/IW), or is blocked (IR = IW =
 * 0); its translations are tagged by the device's domain id alone and flushed with
 * INVALIDATE_IOMMU_PAGES without GN. PASIDs take SVA domains only — the process's x86-64
 * table as the PASID's GCR3 entry, tagged (domain id, PASID), flushed with GN — as Linux has
 * set_dev_pasid for SVA domains alone: a paging or identity domain on a PASID is EOPNOTSUPP,
 * and so is replacing an SVA domain at a PASID (iommu_sva_set_dev_pasid refuses an old
 * domain). A DTE change is flushed with INVALIDATE_DEVTAB_ENTRY, then everything of the
 * (domain id, PASID) with INVALIDATE_IOMMU_PAGES (PDE: the cached table walk too) and the
 * device's ATC with INVALIDATE_IOTLB_PAGES (GN for PASIDs). Range flushes follow
 * domain_flush_pages: INVALIDATE_IOMMU_PAGES with the S-bit range encoding per attachment,
 * then the ATCs. At mm exit an SVA PASID's GCR3 entry is cleared (AMD has no per-PASID fault
 * suppression). Each allocation and table write is a fail-nth step; a failure leaves nothing
 * changed.
 * Does not model: v2 DMA domains (amd_iommu=pgtbl_v2: the tables and reader support a RID
 * through GCR3[0], the driver does not use it), nested domains and stage 2 (EOPNOTSUPP at
 * allocation), the v1 table growing its levels on demand (fixed at 4), interrupt remapping.
 */
import { AMD_V1, FIRST_STAGE } from '../shared/layout/pte-format.js';
import { type AmdCmd, INV_ALL_PAGES_ADDRESS, encodeInvRange } from '../shared/layout/amd/commands.js';
import { simError } from '../shared/errors.js';
import type { HwCmd } from '../shared/layout/profile-codec.js';
import { IommuDriver } from './iommu-driver.js';
import type { Domain } from './domain.js';
import type { Device } from './topology.js';
import type { AmdTables } from './amd-tables.js';
import type { DeviceCaps } from './context-tables.js';

export interface AmdTag {
  /** The device's own domain id (its DTE's, the IOTLB tag). */
  domid: number;
  devid: number;
  pasid: number;
  /** Translations through GCR3 (an SVA PASID): PASID-tagged, flushed with GN. */
  gn: boolean;
  ats: boolean;
}

/** Invalidation-queue depth field of INVALIDATE_IOTLB_PAGES: the ATS queue depth Linux uses. */
const MAX_PEND = 32;

export class AmdDriver extends IommuDriver<AmdTag> {
  readonly pteFormat = AMD_V1;
  readonly cpuFormat = FIRST_STAGE;
  readonly s2Format = undefined;
  private readonly pdomIds = new WeakMap<Domain, number>();

  /** The device's GCR3 table with a domain id of its own, and its DTE (may fail: ENOSPC, ENOMEM). */
  protected setupDevice(dev: Device, caps: DeviceCaps): void {
    const ids = this.core.idSpace('amd-domain-id');
    const domid = ids.alloc('probe-device', 'gcr3-table');
    try {
      this.tables(dev.iommu).setupDevice(dev.rid, caps, domid);
    } catch (e) {
      ids.free(domid);
      throw e;
    }
  }

  override domainInit(domain: Domain, op: string): void {
    const want = domain.type === 'sva' ? FIRST_STAGE : AMD_V1;
    if (domain.nested || domain.nestParent || (domain.pt !== undefined && domain.pt.format !== want)) {
      throw simError('EOPNOTSUPP', op, 'amd-format', 'stage-2, nest-parent and nested domains are not modelled on amd');
    }
    // SVA domains are made and dropped by the SVA layer; their id is not modelled.
    if (domain.pt !== undefined && domain.type !== 'sva') this.pdomIds.set(domain, this.core.idSpace('amd-domain-id').alloc(op));
  }

  override domainFree(domain: Domain): void {
    const id = this.pdomIds.get(domain);
    if (id === undefined) return;
    this.pdomIds.delete(domain);
    this.core.idSpace('amd-domain-id').free(id);
  }

  async setDevPasid(dev: Device, pasid: number, domain: Domain, old: Domain | undefined, op: string): Promise<void> {
    if (pasid !== 0 && domain.type !== 'sva') {
      throw simError('EOPNOTSUPP', op, 'no-set-dev-pasid', `the AMD driver attaches only SVA domains to a PASID, not ${domain.type} domains`);
    }
    if (pasid !== 0 && old !== undefined && old !== domain) throw simError('EOPNOTSUPP', op, 'sva-replace', 'iommu_sva_set_dev_pasid refuses to replace a domain');
    this.probe(dev);
    const tables = this.tables(dev.iommu);
    this.core.failNth.step(op);
    if (pasid !== 0) tables.reservePasidTable(dev.rid, pasid);
    const cmds: AmdCmd[] = [];
    if (pasid !== 0) {
      tables.setGcr3(dev.rid, pasid, domain.pt!.rootFrame);
    } else if (domain.type === 'identity') {
      tables.setRid(dev.rid, 'identity');
    } else {
      tables.setRid(dev.rid, 'v1', { rootFrame: domain.pt!.rootFrame, levels: domain.pt!.levels as 3 | 4 });
    }
    if (pasid === 0) cmds.push({ type: 'inv-devtab-entry', deviceId: dev.rid });
    cmds.push(...this.pasidFlush(dev, pasid));
    domain.attachments.set(`${dev.iommu}:${dev.rid}:${pasid}`, { dev, pasid });
    if (old !== undefined && old !== domain) old.attachments.delete(`${dev.iommu}:${dev.rid}:${pasid}`);
    await this.flushQuietly(dev.iommu, cmds, old !== undefined && old !== domain ? 'replace' : 'attach');
  }

  async blockDevPasid(dev: Device, pasid: number, old: Domain | undefined): Promise<void> {
    if (old === undefined || old.type === 'blocked') return;
    const tables = this.tables(dev.iommu);
    const cmds: AmdCmd[] = [];
    if (pasid === 0) {
      tables.setRid(dev.rid, 'blocked');
      cmds.push({ type: 'inv-devtab-entry', deviceId: dev.rid });
    } else {
      tables.clearGcr3(dev.rid, pasid);
    }
    cmds.push(...this.pasidFlush(dev, pasid));
    old.attachments.delete(`${dev.iommu}:${dev.rid}:${pasid}`);
    await this.flushQuietly(dev.iommu, cmds, 'detach');
  }

  /** mm release: the PASID's GCR3 entry is cleared and flushed (its faults are still logged). */
  async quietBlockDevPasid(dev: Device, pasid: number): Promise<void> {
    const tables = this.tables(dev.iommu);
    if (!tables.device(dev.rid)) return;
    tables.clearGcr3(dev.rid, pasid);
    await this.flushQuietly(dev.iommu, this.pasidFlush(dev, pasid), 'mm-release');
  }

  tagFor(domain: Domain, dev: Device, pasid: number): AmdTag | undefined {
    if (domain.type === 'blocked' || domain.type === 'identity') return undefined;
    const st = this.tables(dev.iommu).device(dev.rid);
    return st === undefined ? undefined : { domid: st.domainId, devid: dev.rid, pasid, gn: pasid !== 0, ats: dev.ats };
  }

  protected rangeCmds(tags: AmdTag[], start: bigint, end: bigint): HwCmd[] {
    const r = end - start >= 1n << 57n ? { addr: INV_ALL_PAGES_ADDRESS, s: true } : encodeInvRange(start, end - start);
    const out: AmdCmd[] = tags.map((t) => ({ type: 'inv-iommu-pages', pasid: t.gn ? t.pasid : 0, domainId: t.domid, s: r.s, pde: false, gn: t.gn, addr: r.addr }));
    for (const t of tags) if (t.ats) out.push(iotlbInv(t.devid, t.gn ? t.pasid : 0, r));
    return out;
  }

  // --- internals ---

  private tables(iommu: number): AmdTables {
    return this.core.tables(iommu) as AmdTables;
  }

  /**
   * Everything cached for (dev, pasid): the IOMMU's TLB and table walks (PDE) — of the PASID
   * with GN, of the RID's host table without — then the device's ATC.
   */
  private pasidFlush(dev: Device, pasid: number): AmdCmd[] {
    const st = this.tables(dev.iommu).device(dev.rid)!;
    const all = { addr: INV_ALL_PAGES_ADDRESS, s: true };
    const out: AmdCmd[] = [{ type: 'inv-iommu-pages', pasid, domainId: st.domainId, s: true, pde: true, gn: pasid !== 0, addr: all.addr }];
    if (dev.ats) out.push(iotlbInv(dev.rid, pasid, all));
    return out;
  }
}

function iotlbInv(devid: number, pasid: number, r: { addr: bigint; s: boolean }): AmdCmd {
  // The RID's translations sit in the ATC without a PASID: no GN for them.
  return { type: 'inv-iotlb-pages', deviceId: devid, pasid: pasid === 0 ? 0 : pasid, maxPend: MAX_PEND, queueId: devid, s: r.s, gn: pasid !== 0, addr: r.addr };
}
