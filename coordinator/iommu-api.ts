/**
 * `sim.iommu`: the kernel IOMMU API (drivers/iommu/iommu.c) as users program against it,
 * backed by the VT-d scalable-mode driver behaviour that programs the tables and queues
 * invalidations.
 *
 * Models (this slice): domain_alloc / domain_free; attach and detach of a device's
 * RID (written as the PASID-table entry at RID_PASID, as scalable mode does) and of a
 * (device, PASID); get_domain_for_dev[_pasid]; map / unmap (strict: unmap resolves only
 * after every IOMMU that may cache the range completed its wait descriptor) /
 * iova_to_phys. Errors and no-partial-state as SEMANTICS.md §1.3–1.5 say for these calls:
 * map on a non-paging domain EINVAL; attach_device needs a singleton group (EINVAL); an
 * occupied RID or PASID EBUSY; PASID 0 or beyond the device's width EINVAL; a domain made
 * for another IOMMU EINVAL; detach never fails.
 * Does not model (the kernel-API issue adds them): default domains, DMA ownership,
 * replace, groups of more than one device, DMA-FQ, SVA, reserved regions, device reset.
 */
import { simError } from '../shared/errors.js';
import { type Prot, FIRST_STAGE, SECOND_STAGE } from '../shared/layout/pte-format.js';
import { AW_48_4LEVEL, FLPM_4LEVEL, PASID_ENTRY_ZERO, PGTT_FL, PGTT_PT, PGTT_SL, type PasidEntry } from '../shared/layout/pasid-entry.js';
import { frameToAddr } from '../shared/memory/arena.js';
import { asU64 } from '../shared/units.js';
import { Domain, type DomainType } from './domain.js';
import { FLPT_DEFAULT_DID } from './did-allocator.js';
import { type CacheTag, pasidTeardown, rangeFlush } from './invalidation.js';
import { PageTable } from './page-table.js';
import type { Device } from './topology.js';
import type { SimulatorCore } from './simulator-core.js';

export interface DomainAllocOptions {
  dev?: Device;
  pgsizeBitmap?: bigint;
  /** Page-table format of a paging domain: VT-d first stage (default) or second stage. */
  stage?: 'first' | 'second';
}

const TYPES: readonly DomainType[] = ['blocked', 'identity', 'paging', 'dma', 'dma-fq'];

export class IommuApi {
  private nextDomainId = 1;
  /** (iommu, rid, pasid) → attached domain. */
  private readonly attached = new Map<string, Domain>();

  constructor(private readonly core: SimulatorCore) {}

  domainAlloc(type: DomainType, opts: DomainAllocOptions = {}): Domain {
    const op = 'domainAlloc';
    this.core.checkOpen(op);
    if (!TYPES.includes(type)) throw simError('EINVAL', op, 'bad-domain-type', String(type));
    if (type === 'dma-fq') throw simError('EOPNOTSUPP', op, 'flush-queue-not-modelled', 'DMA-FQ domains come with the kernel-API issue');
    if (opts.dev !== undefined) this.core.checkDevice(opts.dev, op);
    let pt: PageTable | undefined;
    if (type === 'paging' || type === 'dma') {
      const second = opts.stage === 'second';
      pt = new PageTable(this.core.frames, second ? SECOND_STAGE : FIRST_STAGE, 4, opts.pgsizeBitmap);
    }
    return new Domain(this.nextDomainId++, type, pt, opts.dev?.iommu);
  }

  domainFree(domain: Domain): void {
    const op = 'domainFree';
    if (domain.freed) throw simError('EINVAL', op, 'domain-freed', `domain ${domain.id}`);
    if (domain.attachments.size > 0) throw simError('EBUSY', op, 'domain-attached', `domain ${domain.id} still has ${domain.attachments.size} attachments`);
    domain.pt?.destroy();
    domain.freed = true;
  }

  getDomainForDev(dev: Device): Domain | undefined {
    return this.attached.get(Domain.key(dev, 0));
  }

  getDomainForDevPasid(dev: Device, pasid: number): Domain | undefined {
    return this.attached.get(Domain.key(dev, pasid));
  }

  async attachDevice(domain: Domain, dev: Device): Promise<void> {
    const op = 'attachDevice';
    this.checkAttach(domain, dev, op);
    if (dev.group.devices.length !== 1) throw simError('EINVAL', op, 'group-not-singleton', `${dev.bdf}`);
    await this.attachAt(domain, dev, 0, op);
  }

  async detachDevice(domain: Domain, dev: Device): Promise<void> {
    await this.detachAt(domain, dev, 0);
  }

  async attachDevicePasid(domain: Domain, dev: Device, pasid: number): Promise<void> {
    const op = 'attachDevicePasid';
    this.checkAttach(domain, dev, op);
    if (!Number.isInteger(pasid) || pasid === 0) throw simError('EINVAL', op, 'pasid-reserved', `pasid ${pasid}`);
    if (dev.maxPasids === 0) throw simError('EINVAL', op, 'no-pasid-support', dev.bdf);
    if (pasid < 0 || pasid >= dev.maxPasids) throw simError('EINVAL', op, 'pasid-out-of-range', `pasid ${pasid} ≥ ${dev.maxPasids}`);
    await this.attachAt(domain, dev, pasid, op);
  }

  async detachDevicePasid(domain: Domain, dev: Device, pasid: number): Promise<void> {
    await this.detachAt(domain, dev, pasid);
  }

  async map(domain: Domain, iova: bigint, paddr: bigint, size: bigint, prot: Prot): Promise<void> {
    const op = 'map';
    this.core.checkOpen(op);
    this.checkDomain(domain, op);
    if (!domain.pt) throw simError('EINVAL', op, 'not-paging', `${domain.type} domain`);
    asU64(iova, op, 'iova'); asU64(paddr, op, 'paddr'); asU64(size, op, 'size');
    domain.pt.map(iova, paddr, size, prot ?? {}, op);
  }

  /** Strict unmap: resolves with the bytes unmapped once no IOMMU can translate them. */
  async unmap(domain: Domain, iova: bigint, size: bigint): Promise<bigint> {
    const op = 'unmap';
    this.core.checkOpen(op);
    this.checkDomain(domain, op);
    if (!domain.pt) throw simError('EINVAL', op, 'not-paging', `${domain.type} domain`);
    asU64(iova, op, 'iova'); asU64(size, op, 'size');
    const { unmapped, gather } = domain.pt.unmap(iova, size, op);
    if (gather) {
      await Promise.all([...this.tagsByIommu(domain)].map(([iommu, tags]) =>
        this.core.flush(iommu, rangeFlush(tags, gather.start, gather.end), 'unmap')));
    }
    return unmapped;
  }

  iovaToPhys(domain: Domain, iova: bigint): bigint {
    this.checkDomain(domain, 'iovaToPhys');
    if (domain.type === 'identity') return iova;
    return domain.pt ? domain.pt.iovaToPhys(iova) : 0n;
  }

  // --- internals ---

  private checkDomain(domain: Domain, op: string): void {
    if (!(domain instanceof Domain)) throw simError('EINVAL', op, 'not-a-domain');
    if (domain.freed) throw simError('EINVAL', op, 'domain-freed', `domain ${domain.id}`);
  }

  private checkAttach(domain: Domain, dev: Device, op: string): void {
    this.core.checkOpen(op);
    this.checkDomain(domain, op);
    this.core.checkDevice(dev, op);
    if (domain.iommu !== undefined && domain.iommu !== dev.iommu) {
      throw simError('EINVAL', op, 'foreign-domain', `domain ${domain.id} was allocated for IOMMU ${domain.iommu}, ${dev.bdf} is behind ${dev.iommu}`);
    }
  }

  private async attachAt(domain: Domain, dev: Device, pasid: number, op: string): Promise<void> {
    const key = Domain.key(dev, pasid);
    const cur = this.attached.get(key);
    if (cur === domain && pasid === 0) return; // same domain again: no-op
    if (cur !== undefined) throw simError('EBUSY', op, pasid === 0 ? 'rid-attached' : 'pasid-in-use', `${dev.bdf} pasid ${pasid}`);
    const tables = this.core.tables(dev.iommu);
    tables.setupDevice(dev.rid, { maxPasids: dev.maxPasids, ats: dev.ats, pri: dev.pri });
    // Allocate the DID first: it is the only step that can fail, so nothing is written yet.
    const did = domain.type === 'identity' ? FLPT_DEFAULT_DID : this.getDid(domain, dev.iommu, op);
    const entry = this.pasidEntry(domain, did);
    if (entry) tables.setPasidEntry(dev.rid, pasid, entry);
    domain.attachments.set(key, { dev, pasid });
    this.attached.set(key, domain);
  }

  private async detachAt(domain: Domain, dev: Device, pasid: number): Promise<void> {
    const key = Domain.key(dev, pasid);
    if (this.attached.get(key) !== domain) return;
    const tables = this.core.tables(dev.iommu);
    const tag = this.tagFor(domain, dev, pasid);
    tables.clearPasidEntry(dev.rid, pasid);
    this.attached.delete(key);
    domain.attachments.delete(key);
    if (tag) await this.core.flush(dev.iommu, pasidTeardown(tag), 'detach').catch(() => {});
    if (domain.type !== 'identity' && domain.type !== 'blocked') this.putDid(domain, dev.iommu);
  }

  private pasidEntry(domain: Domain, did: number): PasidEntry | undefined {
    switch (domain.type) {
      case 'blocked': return undefined; // a blocked PASID is a non-present entry
      case 'identity': return { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_PT, did };
      default: {
        const pt = domain.pt!;
        if (pt.format === FIRST_STAGE) {
          return { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_FL, did, flpm: FLPM_4LEVEL, fsptptr: frameToAddr(pt.rootFrame) };
        }
        return { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_SL, did, aw: AW_48_4LEVEL, ssptptr: frameToAddr(pt.rootFrame) };
      }
    }
  }

  private getDid(domain: Domain, iommu: number, op: string): number {
    const d = domain.dids.get(iommu);
    if (d) {
      d.refs++;
      return d.did;
    }
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

  private tagFor(domain: Domain, dev: Device, pasid: number): CacheTag | undefined {
    if (domain.type === 'blocked') return undefined;
    const did = domain.type === 'identity' ? FLPT_DEFAULT_DID : domain.dids.get(dev.iommu)?.did;
    if (did === undefined) return undefined;
    const pgtt = domain.type === 'identity' ? PGTT_PT : domain.pt!.format === FIRST_STAGE ? PGTT_FL : PGTT_SL;
    return { did, rid: dev.rid, pasid, pgtt, ats: dev.ats };
  }

  private tagsByIommu(domain: Domain): Map<number, CacheTag[]> {
    const m = new Map<number, CacheTag[]>();
    for (const { dev, pasid } of domain.attachments.values()) {
      const t = this.tagFor(domain, dev, pasid);
      if (!t) continue;
      const list = m.get(dev.iommu) ?? [];
      list.push(t);
      m.set(dev.iommu, list);
    }
    return m;
  }
}
