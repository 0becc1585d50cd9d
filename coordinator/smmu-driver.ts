/**
 * The SMMUv3 driver side of attach and detach (drivers/iommu/arm/arm-smmu-v3/
 * arm-smmu-v3.c, arm-smmu-v3-sva.c): how a (device, PASID) gets a domain in hardware.
 *
 * Models: an S1 domain (AArch64 stage-1 table) gets an ASID from the global ASID space
 * on its first attachment and is bound to that SMMU (attaching it behind another SMMU is
 * EINVAL, as arm_smmu_attach_dev refuses); exhaustion is EBUSY (xa_alloc). A PASID/SSID
 * gets the domain's CD (ASID, TTB0); the RID uses CD 0. The STE follows the RID and the
 * PASIDs in use: RID identity alone → bypass, RID blocked alone → abort, otherwise S1
 * with the CD table and S1DSS = bypass / terminate / SSID0 for a RID that is identity /
 * blocked / paging (arm_smmu_make_cdtable_ste). Every STE change is followed by
 * CFGI_STE, every CD change by CFGI_CD, then ATC_INV of the (stream, substream) for ATS
 * devices; an ASID released is flushed with TLBI_NH_ASID. Range flushes are TLBI_NH_VA
 * range commands per ASID (NUM/SCALE, SMMUv3.2 RIL) or TLBI_NH_ASID for the whole space,
 * then ATC_INV over the smallest aligned power-of-two span (arm_smmu_atc_inv_to_cmd). At
 * mm exit an SVA CD becomes the "quiet" CD (EPD0, R clear: faults not recorded) and its
 * ASID is flushed. Each allocation and table write is a fail-nth step; a failure leaves
 * nothing changed.
 * Does not model: stage-2 and nested domains (VMIDs; EOPNOTSUPP at allocation), identity
 * on a PASID (the SMMUv3 identity domain has no set_dev_pasid: EOPNOTSUPP), stall mode,
 * the ASID kept until domain free (released here with the domain's last attachment, so a
 * re-attached domain may get another ASID), hitless STE update sequences (the worker
 * reads whole entries).
 */
import { ARM64_S1 } from '../shared/layout/pte-format.js';
import { ATC_INV_SIZE_ALL, type SmmuCmd, tlbiRangeChunks, tlbiTg } from '../shared/layout/smmuv3/commands.js';
import { simError } from '../shared/errors.js';
import type { HwCmd } from '../shared/layout/profile-codec.js';
import { IommuDriver } from './iommu-driver.js';
import { alignedRange } from './invalidation.js';
import type { Domain } from './domain.js';
import type { Device } from './topology.js';
import type { SmmuTables, SteConfig } from './smmu-tables.js';

export interface SmmuTag {
  asid: number;
  sid: number;
  ssid: number;
  ats: boolean;
}

interface AsidRef {
  iommu: number;
  asid: number;
  refs: number;
}

/** What a device's RID is attached to, and which PASIDs are in use (the STE depends on both). */
interface MasterState {
  rid: 'blocked' | 'identity' | 'paging';
  pasids: Set<number>;
}

/** Address bits of a stage-1 table (4 levels, 48 bits): flushes covering it take the whole ASID. */
const WHOLE_SPACE = 1n << 48n;

export class SmmuDriver extends IommuDriver<SmmuTag> {
  readonly pteFormat = ARM64_S1;
  private readonly asids = new WeakMap<Domain, AsidRef>();
  private readonly masters = new Map<string, MasterState>();

  hasDevice(dev: Device): boolean {
    return this.tables(dev.iommu).device(dev.rid) !== undefined;
  }

  probe(dev: Device): void {
    const tables = this.tables(dev.iommu);
    if (tables.device(dev.rid)) return;
    this.core.failNth.step('probe-device');
    tables.setupDevice(dev.rid, { maxPasids: dev.maxPasids, ats: dev.ats, pri: dev.pri });
  }

  override domainInit(domain: Domain, op: string): void {
    if (domain.nested || domain.nestParent || (domain.pt !== undefined && domain.pt.format !== ARM64_S1)) {
      throw simError('EOPNOTSUPP', op, 'smmu-stage2-not-modelled', 'stage-2 and nested domains are not modelled on smmuv3');
    }
  }

  async setDevPasid(dev: Device, pasid: number, domain: Domain, old: Domain | undefined, op: string): Promise<void> {
    if (domain.type === 'identity' && pasid !== 0) {
      throw simError('EOPNOTSUPP', op, 'identity-pasid', 'the SMMUv3 identity domain has no set_dev_pasid');
    }
    const ref = this.asids.get(domain);
    if (domain.type !== 'identity' && ref !== undefined && ref.iommu !== dev.iommu) {
      throw simError('EINVAL', op, 'other-smmu', `domain ${domain.id} is bound to SMMU ${ref.iommu}, device ${dev.bdf} is behind SMMU ${dev.iommu}`);
    }
    this.probe(dev);
    const tables = this.tables(dev.iommu);
    const asid = domain.type === 'identity' ? 0 : this.getAsid(domain, dev.iommu, op);
    try {
      this.core.failNth.step(op);
      if (domain.type !== 'identity') tables.reservePasidTable(dev.rid, pasid);
    } catch (e) {
      if (domain.type !== 'identity') this.putAsid(domain);
      throw e;
    }
    const oldTag = old !== undefined ? this.tagFor(old, dev, pasid) : undefined;
    const m = this.master(dev);
    const steBefore = this.steFor(m);
    if (pasid === 0) m.rid = domain.type === 'identity' ? 'identity' : 'paging';
    else m.pasids.add(pasid);
    const cmds: SmmuCmd[] = [];
    if (domain.type !== 'identity') {
      tables.setCd(dev.rid, pasid, { asid, ttbFrame: domain.pt!.rootFrame, levels: domain.pt!.levels as 3 | 4 });
      cmds.push({ type: 'cfgi-cd', sid: dev.rid, ssid: pasid, leaf: true });
    } else {
      tables.clearCd(dev.rid, 0);
      cmds.push({ type: 'cfgi-cd', sid: dev.rid, ssid: 0, leaf: true });
    }
    this.writeSte(dev, m, steBefore, cmds);
    domain.attachments.set(`${dev.iommu}:${dev.rid}:${pasid}`, { dev, pasid });
    if (old !== undefined && old !== domain) {
      old.attachments.delete(`${dev.iommu}:${dev.rid}:${pasid}`);
      if (oldTag?.ats || (old.type === 'identity' && dev.ats)) cmds.push(atcInvAll(dev.rid, pasid));
      const released = this.putAsid(old);
      if (released !== undefined) cmds.push({ type: 'tlbi-nh-asid', vmid: 0, asid: released });
      await this.flushQuietly(dev.iommu, cmds, 'replace');
    } else {
      if (old === domain && domain.type !== 'identity') this.putAsid(domain); // the same domain again: keep one reference
      await this.flushQuietly(dev.iommu, cmds, 'attach');
    }
  }

  async blockDevPasid(dev: Device, pasid: number, old: Domain | undefined): Promise<void> {
    if (old === undefined || old.type === 'blocked') return;
    const tables = this.tables(dev.iommu);
    const m = this.master(dev);
    const steBefore = this.steFor(m);
    if (pasid === 0) m.rid = 'blocked';
    else m.pasids.delete(pasid);
    tables.clearCd(dev.rid, pasid);
    const cmds: SmmuCmd[] = [{ type: 'cfgi-cd', sid: dev.rid, ssid: pasid, leaf: true }];
    this.writeSte(dev, m, steBefore, cmds);
    old.attachments.delete(`${dev.iommu}:${dev.rid}:${pasid}`);
    if (dev.ats) cmds.push(atcInvAll(dev.rid, pasid));
    const released = this.putAsid(old);
    if (released !== undefined) cmds.push({ type: 'tlbi-nh-asid', vmid: 0, asid: released });
    await this.flushQuietly(dev.iommu, cmds, 'detach');
  }

  /** mm release: the CD becomes the quiet CD (EPD0, R = 0), then the ASID and the ATC are flushed. */
  async quietBlockDevPasid(dev: Device, pasid: number, old: Domain): Promise<void> {
    const tables = this.tables(dev.iommu);
    const ref = this.asids.get(old);
    if (!tables.device(dev.rid) || ref === undefined) return;
    tables.setCd(dev.rid, pasid, { asid: ref.asid, ttbFrame: 0, levels: 4, epd0: true, record: false });
    const cmds: SmmuCmd[] = [{ type: 'cfgi-cd', sid: dev.rid, ssid: pasid, leaf: true }, { type: 'tlbi-nh-asid', vmid: 0, asid: ref.asid }];
    if (dev.ats) cmds.push(atcInvAll(dev.rid, pasid));
    await this.flushQuietly(dev.iommu, cmds, 'mm-release');
  }

  tagFor(domain: Domain, dev: Device, pasid: number): SmmuTag | undefined {
    if (domain.type === 'blocked' || domain.type === 'identity') return undefined;
    const ref = this.asids.get(domain);
    if (ref === undefined) return undefined;
    return { asid: ref.asid, sid: dev.rid, ssid: pasid, ats: dev.ats };
  }

  protected rangeCmds(tags: SmmuTag[], start: bigint, end: bigint): HwCmd[] {
    const out: SmmuCmd[] = [];
    const whole = end - start >= WHOLE_SPACE;
    for (const asid of new Set(tags.map((t) => t.asid))) {
      if (whole) {
        out.push({ type: 'tlbi-nh-asid', vmid: 0, asid });
        continue;
      }
      // Range invalidation (IDR3.RIL): chunks of (NUM + 1) × 2^SCALE pages from the start.
      let addr = start & ~0xfffn;
      const pages = ((end - 1n) >> 12n) - (start >> 12n) + 1n;
      for (const c of tlbiRangeChunks(pages)) {
        out.push({ type: 'tlbi-nh-va', vmid: 0, asid, num: c.num, scale: c.scale, leaf: false, ttl: 0, tg: tlbiTg(12), addr });
        addr += c.pages << 12n;
      }
    }
    const { addr, am } = whole ? { addr: 0n, am: ATC_INV_SIZE_ALL } : alignedRange(start, end);
    for (const t of tags) {
      if (!t.ats) continue;
      out.push({ type: 'atc-inv', global: false, ssv: t.ssid !== 0, ssid: t.ssid, sid: t.sid, size: Math.min(am, ATC_INV_SIZE_ALL), addr: am >= ATC_INV_SIZE_ALL ? 0n : addr });
    }
    return out;
  }

  // --- internals ---

  private tables(iommu: number): SmmuTables {
    return this.core.tables(iommu) as SmmuTables;
  }

  private master(dev: Device): MasterState {
    const key = `${dev.iommu}:${dev.rid}`;
    let m = this.masters.get(key);
    if (!m) {
      m = { rid: 'blocked', pasids: new Set() };
      this.masters.set(key, m);
    }
    return m;
  }

  private steFor(m: MasterState): SteConfig {
    if (m.pasids.size === 0) {
      if (m.rid === 'identity') return { config: 'bypass', s1dss: 'terminate' };
      if (m.rid === 'blocked') return { config: 'abort', s1dss: 'terminate' };
    }
    return { config: 's1', s1dss: m.rid === 'identity' ? 'bypass' : m.rid === 'blocked' ? 'terminate' : 'ssid0' };
  }

  /** Rewrites the STE when what it must say changed, and queues its CFGI_STE first. */
  private writeSte(dev: Device, m: MasterState, before: SteConfig, cmds: SmmuCmd[]): void {
    const after = this.steFor(m);
    const written = this.tables(dev.iommu).readSte(dev.rid);
    if (after.config === before.config && after.s1dss === before.s1dss && written !== undefined && written.config !== 0) return;
    this.tables(dev.iommu).setSte(dev.rid, after);
    cmds.unshift({ type: 'cfgi-ste', sid: dev.rid, leaf: true });
  }

  private getAsid(domain: Domain, iommu: number, op: string): number {
    const ref = this.asids.get(domain);
    if (ref !== undefined && ref.refs > 0) {
      ref.refs++;
      return ref.asid;
    }
    this.core.failNth.step(op);
    const asid = this.core.idSpace('smmu-asid').alloc(op);
    this.asids.set(domain, { iommu, asid, refs: 1 });
    return asid;
  }

  /** Drops one reference; returns the ASID when it was released (its TLB entries must go). */
  private putAsid(domain: Domain): number | undefined {
    const ref = this.asids.get(domain);
    if (ref === undefined || ref.refs === 0) return undefined;
    if (--ref.refs > 0) return undefined;
    this.core.idSpace('smmu-asid').free(ref.asid);
    return ref.asid;
  }
}

function atcInvAll(sid: number, ssid: number): SmmuCmd {
  return { type: 'atc-inv', global: false, ssv: ssid !== 0, ssid, sid, size: ATC_INV_SIZE_ALL, addr: 0n };
}
