/**
 * The SMMUv3 driver side of attach and detach (drivers/iommu/arm/arm-smmu-v3/
 * arm-smmu-v3.c, arm-smmu-v3-sva.c): how a (device, PASID) gets a domain in hardware.
 *
 * Models: an S1 domain (AArch64 stage-1 table) gets an ASID from the global ASID space
 * on its first attachment and is bound to that SMMU (attaching it behind another SMMU is
 * EINVAL, as arm_smmu_attach_dev refuses); exhaustion is EBUSY (xa_alloc). An S2 domain
 * (stage 'second' or a nest parent: AArch64 stage-2 table) gets a VMID from its SMMU's
 * VMID space (ida_alloc_range from 1: exhaustion ENOSPC) and is attached to RIDs only: the
 * STE becomes Config S2 with S2VMID/VTCR/S2TTB (arm_smmu_make_s2_domain_ste); a PASID
 * attach of it is EINVAL, and a RID attach while SSIDs are in use EBUSY
 * (arm_smmu_ssids_in_use). Its flushes are TLBI_S2_IPA ranges or TLBI_S12_VMALL. A PASID/SSID
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
 * Does not model: nested domains (vSMMU; EOPNOTSUPP at allocation), identity
 * on a PASID (the SMMUv3 identity domain has no set_dev_pasid: EOPNOTSUPP), stall mode,
 * the ASID/VMID kept until domain free (released here with the domain's last attachment,
 * so a re-attached domain may get another), hitless STE update sequences (the worker
 * reads whole entries).
 */
import { ARM64_S1, ARM64_S2 } from '../shared/layout/pte-format.js';
import { ATC_INV_SIZE_ALL, type SmmuCmd, tlbiRangeChunks, tlbiTg } from '../shared/layout/smmuv3/commands.js';
import { simError } from '../shared/errors.js';
import type { HwCmd } from '../shared/layout/profile-codec.js';
import { IommuDriver } from './iommu-driver.js';
import { alignedRange } from './invalidation.js';
import type { Domain } from './domain.js';
import type { Device } from './topology.js';
import type { SmmuTables, SteConfig } from './smmu-tables.js';
import type { DeviceCaps } from './context-tables.js';

export interface SmmuTag {
  /** ASID of a stage-1 domain, or VMID of a stage-2 one. */
  asid: number;
  stage2: boolean;
  sid: number;
  ssid: number;
  ats: boolean;
}

/** A domain's tag (ASID or VMID), the SMMU it is bound to, and its attachments there. */
interface TagRef {
  iommu: number;
  id: number;
  refs: number;
}

/** What a device's RID is attached to, and which PASIDs are in use (the STE depends on both). */
interface MasterState {
  rid: 'blocked' | 'identity' | 'paging' | 'stage2';
  /** The RID's stage-2 domain: its VMID and table. */
  s2?: { vmid: number; ttbFrame: number; levels: 3 | 4 };
  pasids: Set<number>;
}

/** Address bits of a stage-1 table (4 levels, 48 bits): flushes covering it take the whole ASID. */
const WHOLE_SPACE = 1n << 48n;

export class SmmuDriver extends IommuDriver<SmmuTag> {
  readonly pteFormat = ARM64_S1;
  readonly cpuFormat = ARM64_S1;
  readonly s2Format = ARM64_S2;
  private readonly tags = new WeakMap<Domain, TagRef>();
  private readonly masters = new Map<string, MasterState>();

  /** The device's STE (abort until something is attached) and CD table (may fail: ENOMEM). */
  protected setupDevice(dev: Device, caps: DeviceCaps): void {
    this.tables(dev.iommu).setupDevice(dev.rid, caps);
  }

  override domainInit(domain: Domain, op: string): void {
    if (domain.nested) throw simError('EOPNOTSUPP', op, 'smmu-nested-not-modelled', 'nested domains (vSMMU) are not modelled on smmuv3');
    if (domain.pt !== undefined && domain.pt.format !== ARM64_S1 && domain.pt.format !== ARM64_S2) {
      throw simError('EOPNOTSUPP', op, 'smmu-format', `${domain.pt.format.name} tables are not an SMMUv3 format`);
    }
  }

  async setDevPasid(dev: Device, pasid: number, domain: Domain, old: Domain | undefined, op: string): Promise<void> {
    if (domain.type === 'identity' && pasid !== 0) {
      throw simError('EOPNOTSUPP', op, 'identity-pasid', 'the SMMUv3 identity domain has no set_dev_pasid');
    }
    const s2 = isStage2(domain);
    const m = this.master(dev);
    if (s2 && pasid !== 0) throw simError('EINVAL', op, 's2-pasid', 'a stage-2 domain cannot be attached to a PASID');
    if (s2 && m.pasids.size > 0) throw simError('EBUSY', op, 'ssids-in-use', `${dev.bdf} has PASIDs attached: its STE cannot become stage 2`);
    // arm_smmu_attach_prepare: a PASID needs the CD table in the STE, or a RID that is identity/blocked.
    if (!s2 && pasid !== 0 && m.rid === 'stage2') throw simError('EINVAL', op, 'rid-stage2', `${dev.bdf}'s RID is attached to a stage-2 domain`);
    const ref = this.tags.get(domain);
    if (domain.type !== 'identity' && ref !== undefined && ref.iommu !== dev.iommu) {
      throw simError('EINVAL', op, 'other-smmu', `domain ${domain.id} is bound to SMMU ${ref.iommu}, device ${dev.bdf} is behind SMMU ${dev.iommu}`);
    }
    this.probe(dev);
    const tables = this.tables(dev.iommu);
    const tag = domain.type === 'identity' ? 0 : this.getTag(domain, dev.iommu, op);
    try {
      this.core.failNth.step(op);
      if (domain.type !== 'identity' && !s2) tables.reservePasidTable(dev.rid, pasid);
    } catch (e) {
      if (domain.type !== 'identity') this.putTag(domain);
      throw e;
    }
    const oldTag = old !== undefined ? this.tagFor(old, dev, pasid) : undefined;
    const steBefore = this.steFor(m);
    if (pasid === 0) {
      m.rid = domain.type === 'identity' ? 'identity' : s2 ? 'stage2' : 'paging';
      m.s2 = s2 ? { vmid: tag, ttbFrame: domain.pt!.rootFrame, levels: domain.pt!.levels as 3 | 4 } : undefined;
    } else {
      m.pasids.add(pasid);
    }
    const cmds: SmmuCmd[] = [];
    if (domain.type !== 'identity' && !s2) {
      tables.setCd(dev.rid, pasid, { asid: tag, ttbFrame: domain.pt!.rootFrame, levels: domain.pt!.levels as 3 | 4 });
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
      cmds.push(...this.release(old));
      await this.flushQuietly(dev.iommu, cmds, 'replace');
    } else {
      if (old === domain && domain.type !== 'identity') this.putTag(domain); // the same domain again: keep one reference
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
    if (pasid === 0) m.s2 = undefined;
    if (dev.ats) cmds.push(atcInvAll(dev.rid, pasid));
    cmds.push(...this.release(old));
    await this.flushQuietly(dev.iommu, cmds, 'detach');
  }

  /** mm release: the CD becomes the quiet CD (EPD0, R = 0), then the ASID and the ATC are flushed. */
  async quietBlockDevPasid(dev: Device, pasid: number, old: Domain): Promise<void> {
    const tables = this.tables(dev.iommu);
    const ref = this.tags.get(old);
    if (!tables.device(dev.rid) || ref === undefined) return;
    tables.setCd(dev.rid, pasid, { asid: ref.id, ttbFrame: 0, levels: 4, epd0: true, record: false });
    const cmds: SmmuCmd[] = [{ type: 'cfgi-cd', sid: dev.rid, ssid: pasid, leaf: true }, { type: 'tlbi-nh-asid', vmid: 0, asid: ref.id }];
    if (dev.ats) cmds.push(atcInvAll(dev.rid, pasid));
    await this.flushQuietly(dev.iommu, cmds, 'mm-release');
  }

  tagFor(domain: Domain, dev: Device, pasid: number): SmmuTag | undefined {
    if (domain.type === 'blocked' || domain.type === 'identity') return undefined;
    const ref = this.tags.get(domain);
    if (ref === undefined || ref.refs === 0) return undefined;
    return { asid: ref.id, stage2: isStage2(domain), sid: dev.rid, ssid: pasid, ats: dev.ats };
  }

  protected rangeCmds(tags: SmmuTag[], start: bigint, end: bigint): HwCmd[] {
    const out: SmmuCmd[] = [];
    const whole = end - start >= WHOLE_SPACE;
    const seen = new Set<string>();
    for (const t of tags) {
      const key = `${t.stage2}:${t.asid}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (whole) {
        out.push(t.stage2 ? { type: 'tlbi-s12-vmall', vmid: t.asid } : { type: 'tlbi-nh-asid', vmid: 0, asid: t.asid });
        continue;
      }
      // Range invalidation (IDR3.RIL): chunks of (NUM + 1) × 2^SCALE pages from the start.
      let addr = start & ~0xfffn;
      const pages = ((end - 1n) >> 12n) - (start >> 12n) + 1n;
      for (const c of tlbiRangeChunks(pages)) {
        const range = { num: c.num, scale: c.scale, leaf: false, ttl: 0, tg: tlbiTg(12), addr };
        out.push(t.stage2 ? { type: 'tlbi-s2-ipa', vmid: t.asid, ...range } : { type: 'tlbi-nh-va', vmid: 0, asid: t.asid, ...range });
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
    if (m.rid === 'stage2' && m.s2) return { config: 's2', s1dss: 'terminate', s2: m.s2 };
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
    const sameS2 = after.s2?.vmid === before.s2?.vmid && after.s2?.ttbFrame === before.s2?.ttbFrame;
    if (after.config === before.config && after.s1dss === before.s1dss && sameS2 && written !== undefined && written.config !== 0) return;
    this.tables(dev.iommu).setSte(dev.rid, after);
    cmds.unshift({ type: 'cfgi-ste', sid: dev.rid, leaf: true });
  }

  /** Takes a reference on the domain's ASID (stage 1) or its SMMU's VMID (stage 2), allocating it first. */
  private getTag(domain: Domain, iommu: number, op: string): number {
    const ref = this.tags.get(domain);
    if (ref !== undefined && ref.refs > 0) {
      ref.refs++;
      return ref.id;
    }
    this.core.failNth.step(op);
    const id = this.space(domain, iommu).alloc(op);
    this.tags.set(domain, { iommu, id, refs: 1 });
    return id;
  }

  /** Drops one reference; returns the tag when it was released. */
  private putTag(domain: Domain): number | undefined {
    const ref = this.tags.get(domain);
    if (ref === undefined || ref.refs === 0) return undefined;
    if (--ref.refs > 0) return undefined;
    this.space(domain, ref.iommu).free(ref.id);
    return ref.id;
  }

  /** Drops a reference of a detached domain; a released tag's TLB entries are flushed. */
  private release(domain: Domain): SmmuCmd[] {
    if (domain.type === 'identity' || domain.type === 'blocked') return [];
    const id = this.putTag(domain);
    if (id === undefined) return [];
    return [isStage2(domain) ? { type: 'tlbi-s12-vmall', vmid: id } : { type: 'tlbi-nh-asid', vmid: 0, asid: id }];
  }

  private space(domain: Domain, iommu: number) {
    return isStage2(domain) ? this.core.idSpace('smmu-vmid', iommu) : this.core.idSpace('smmu-asid');
  }
}

function isStage2(domain: Domain): boolean {
  return domain.pt?.format === ARM64_S2;
}

function atcInvAll(sid: number, ssid: number): SmmuCmd {
  return { type: 'atc-inv', global: false, ssv: ssid !== 0, ssid, sid, size: ATC_INV_SIZE_ALL, addr: 0n };
}
