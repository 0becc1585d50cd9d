/**
 * `sim.iommu`: the core of the kernel IOMMU API (drivers/iommu/iommu.c) as users program
 * against it, over the VT-d driver layer (vtd-driver.ts) that programs the hardware.
 *
 * Models (SEMANTICS.md §1.1–1.5, latest semantics): per group a default domain (DMA,
 * DMA-FQ or identity by option; DMA for untrusted devices; direct-mapped regions of
 * require_direct devices mapped 1:1) and a blocking domain; attach_device (singleton
 * group, else EINVAL), attach_group, and EBUSY while a non-core domain is attached (even
 * the same one); detach back to the core domain (blocking if owned, else default), never
 * failing; replace without passing through blocking, the old domain kept on failure;
 * setting the current domain again is a no-op; a blocked domain refused for require_direct
 * devices (EINVAL); DMA ownership by owner cookie (EPERM for another owner, EBUSY while a
 * non-default domain or a PASID is attached), use/unuse of the default domain; PASID
 * attach / replace / detach group-wide with PASID 0 reserved, width checks on every
 * PASID-capable device (the reset checked first), EBUSY on an occupied PASID, rollback
 * of the devices already programmed when one fails (their entries cleared again; a PASID
 * table once allocated stays, as Linux keeps them); devices in reset/recovery (attaches
 * EBUSY, RID and PASIDs parked on blocking until done); map / unmap (strict, or deferred
 * through the flush queue of a DMA-FQ domain) / gather-and-sync batching / iova_to_phys,
 * implemented in domain-mapping.ts.
 * Hardware is programmed lazily: a device's tables are written the first time it is
 * attached or does DMA, with whatever its group's state is then (neither that nor making
 * a group's default domain is a fail-nth step; a map is exactly one).
 * Global PASIDs (iommu_alloc_global_pasid, lowest free in [1, max_pasids − 1]).
 * The v5 profile adds device features and auxiliary domains (device-features.ts,
 * aux-domains.ts); there a normal attach of a paging domain to a device with AUX enabled
 * is EPERM and any attach while the group has aux domains or SVA bonds is EBUSY, and the
 * PASID-attach calls (v6.2+) do not exist (EOPNOTSUPP).
 * Nested domains (domainAllocNested, ops->domain_alloc_nested): a guest first stage over
 * a nest-parent paging domain of the same IOMMU; the parent cannot be freed while nested
 * domains sit on it (EBUSY).
 * v5 guest SVA passdown (gpasid.ts): bindGuestPasidTable points (dev, hpasid) at a nested
 * domain made over the caller's nesting domain with the guest's first stage, unbind
 * removes it, and cacheInvalidate passes a guest's invalidation down with the v5 validity
 * table.
 * Does not model: attach handles, sysfs changes of the default domain type.
 */
import { simError } from '../shared/errors.js';
import type { SemanticsName } from '../shared/config.js';
import { IOMMU_PASID_INVALID } from '../shared/units.js';
import { AuxDomains } from './aux-domains.js';
import { type DevFeature, DeviceFeatures } from './device-features.js';
import { PasidIda } from './pasid-ida.js';
import type { Mm } from './mm.js';
import { type PasidAllocator, type PasidDevice, type PasidPolicy, createPasidAllocator } from './pasid-allocator.js';
import { Ioasid, IoasidPasidAllocator, INVALID_IOASID, svaAllocPasid } from './ioasid.js';
import { Sva, SvaHandle } from './sva.js';
import type { DeviceFaultHandler, Iopf, IopfHandler, ResponseCode } from './iopf.js';
import { type Prot, SECOND_STAGE } from '../shared/layout/pte-format.js';
import { Domain, type DomainType, type NestedStage1 } from './domain.js';
import { type CacheInvalidateInfo, type GpasidBindData, type InvTarget, checkBindData, invalidateDescs } from './gpasid.js';
import { DomainMapping, IotlbGather } from './domain-mapping.js';
import { GroupState } from './group-state.js';
import { PageTable } from './page-table.js';
import type { SimulatorCore } from './simulator-core.js';
import type { Device, Group, ReservedRegion } from './topology.js';
import { VtdDriver } from './vtd-driver.js';
import { SmmuDriver } from './smmu-driver.js';
import { AmdDriver } from './amd-driver.js';
import type { IommuDriver } from './iommu-driver.js';

export interface DomainAllocOptions {
  dev?: Device;
  /** The domain's I/O page-fault handler (page requests of PRI devices attached to it). */
  iopfHandler?: IopfHandler;
  pgsizeBitmap?: bigint;
  /** Page-table format of a paging domain: VT-d first stage (default) or second stage. */
  stage?: 'first' | 'second';
  /** A paging domain that nested domains may sit on (IOMMU_HWPT_ALLOC_NEST_PARENT): second stage. */
  nestParent?: boolean;
}

export type DefaultDomainType = 'dma' | 'dma-fq' | 'identity';
export { IotlbGather };


const TYPES: readonly DomainType[] = ['blocked', 'identity', 'paging', 'dma', 'dma-fq'];

/** Reserved regions of type 'direct' (RMRR-style) a device declares. */
function directRegions(dev: Device): readonly ReservedRegion[] {
  return dev.reservedRegions.filter((x) => x.type === 'direct');
}

/** The allocator's view of a device. */
export function pasidDevice(dev: Device): PasidDevice {
  return { id: dev.index, maxPasids: dev.maxPasids };
}

/** mdevs have no requester id of their own: nothing to program for them. */
function programmable(dev: Device): boolean {
  return dev.kind !== 'mdev';
}

export class IommuApi {
  readonly driver: IommuDriver;
  private nextDomainId = 1;
  private readonly groupStates = new Map<Group, GroupState>();
  private readonly mapping: DomainMapping;
  /** The global PASID space (IOMMU_FIRST_GLOBAL_PASID = 1 up). */
  readonly pasidIda = new PasidIda();
  private readonly features?: DeviceFeatures;
  private readonly aux?: AuxDomains;
  private readonly sva: Sva;
  /** The PASID allocation policy (pasidPolicy): global space, or one space per device. */
  readonly pasids: PasidAllocator;
  private readonly v5Ioasid?: Ioasid;

  constructor(
    private readonly core: SimulatorCore,
    private readonly defaultType: DefaultDomainType = 'dma',
    readonly semantics: SemanticsName = 'latest',
    pasidPolicy: PasidPolicy = 'global',
  ) {
    this.driver = core.profile === 'smmuv3' ? new SmmuDriver(core) : core.profile === 'amd' ? new AmdDriver(core) : new VtdDriver(core);
    // v5: every PASID comes from the ioasid space (and its custom allocators, if any).
    this.v5Ioasid = semantics === 'v5' ? new Ioasid() : undefined;
    this.pasids = this.v5Ioasid ? new IoasidPasidAllocator(this.v5Ioasid)
      : createPasidAllocator(pasidPolicy, pasidPolicy === 'global' ? { ida: this.pasidIda } : {});
    this.mapping = new DomainMapping(core, this.driver, (d, op) => this.checkDomain(d, op));
    if (semantics === 'v5') {
      this.features = new DeviceFeatures((dev) => this.aux!.usersOf(dev));
      this.aux = new AuxDomains(this.driver, this.features, this.pasids, {
        prepare: (dev) => this.prepare(dev),
        attachDevice: (d, dev) => this.attachDevice(d, dev),
        detachDevice: (d, dev) => this.detachDevice(d, dev),
      });
    }
    const features = this.features;
    this.sva = new Sva(core, this, this.driver, this.pasids, (mm, iommu) => {
      const d = this.svaDomainAlloc(mm.pageTable, iommu);
      // The SVA fault path: make the page present through the process's own fault handler.
      d.iopfHandler = (g) => (g.faults.every((f) => mm.handleFault(f.addr, f.perm.write ? 'write' : f.perm.exec ? 'exec' : 'read') === 'success') ? 'success' : 'invalid');
      return d;
    },
      features ? { svaEnabled: (dev) => features.isEnabled(dev, 'sva'), bonds: features.bonds } : undefined);
  }

  // --- SVA (§3) ---

  /** iommu_sva_bind_device: binds the mm at its PASID (allocated at the first bind); same handle when bound already. */
  svaBindDevice(dev: Device, mm: Mm): Promise<SvaHandle> {
    return this.sva.bind(dev, mm);
  }

  /** iommu_sva_unbind_device: drops one bind; never fails. */
  svaUnbindDevice(handle: SvaHandle): Promise<void> {
    return this.sva.unbind(handle);
  }

  svaGetPasid(handle: SvaHandle): number {
    return this.sva.getPasid(handle);
  }

  /** v5 iommu_sva_bind_group: binds every device of the group at the mm's PASID, or none. */
  svaBindGroup(group: Group, mm: Mm): Promise<number> {
    this.checkGroup(group, 'svaBindGroup');
    this.v5('svaBindGroup');
    return this.sva.bindGroup(group.devices, mm);
  }

  /** v5 iommu_sva_unbind_group. Never fails. */
  async svaUnbindGroup(group: Group, pasid: number): Promise<void> {
    this.checkGroup(group, 'svaUnbindGroup');
    this.v5('svaUnbindGroup');
    await this.sva.unbindGroup(group.devices, pasid);
  }

  /** v5 iommu_sva_unbind_dev_all: drops every bond of the device's group (device shutdown). */
  async svaUnbindDevAll(dev: Device): Promise<void> {
    this.core.checkDevice(dev, 'svaUnbindDevAll');
    this.v5('svaUnbindDevAll');
    await this.sva.unbindDevAll(dev);
  }

  /** Called when a process address space is freed: its PASID returns to the global space. */
  svaFreeMm(mm: Mm): void {
    this.sva.freeMm(mm);
  }

  // --- global PASIDs (§2.2) ---

  /**
   * iommu_alloc_global_pasid: the lowest free PASID in [1, max_pasids − 1] of the
   * configured space (the global one, or the device's own under pasidPolicy 'per-device'),
   * or IOMMU_PASID_INVALID.
   */
  allocGlobalPasid(dev: Device): number {
    this.core.checkDevice(dev, 'allocGlobalPasid');
    if (dev.maxPasids === 0) return IOMMU_PASID_INVALID;
    const p = this.pasids.alloc({ dev: pasidDevice(dev) });
    return p < 0 ? IOMMU_PASID_INVALID : p;
  }

  /** iommu_free_global_pasid; under 'per-device' the device whose space it came from is needed. */
  freeGlobalPasid(pasid: number, dev?: Device): void {
    if (pasid === IOMMU_PASID_INVALID) return;
    if (this.pasids.policy === 'per-device' && dev === undefined) throw simError('EINVAL', 'freeGlobalPasid', 'no-device', 'per-device PASIDs are freed on their device');
    this.pasids.free(pasid, dev && pasidDevice(dev));
  }

  // --- v5: the ioasid allocator, device features and auxiliary domains ---

  /** The v5 ioasid allocator (declareSet, alloc, free, find, setData, registerAllocator, unregisterAllocator). */
  get ioasid(): Ioasid {
    if (!this.v5Ioasid) throw simError('EOPNOTSUPP', 'ioasid', 'v5-only', 'the ioasid allocator exists in the v5 semantics profile only');
    return this.v5Ioasid;
  }

  /** iommu_sva_alloc_pasid (v5): the mm's PASID in [min, max), allocated on first use from the ioasid space. */
  svaAllocPasid(mm: Mm, min: number, max: number): number {
    const ioasid = this.ioasid;
    return svaAllocPasid({
      ioasid, owner: mm,
      get valid() { return mm.pasid !== undefined; },
      get pasid() { return mm.pasid ?? INVALID_IOASID; },
      set: (p: number) => { mm.pasid = p; },
    }, min, max);
  }


  devHasFeature(dev: Device, f: DevFeature): boolean {
    this.core.checkDevice(dev, 'devHasFeature');
    return this.v5('devHasFeature').features.has(dev, f);
  }

  devEnableFeature(dev: Device, f: DevFeature): void {
    this.core.checkDevice(dev, 'devEnableFeature');
    this.v5('devEnableFeature').features.enable(dev, f);
  }

  devDisableFeature(dev: Device, f: DevFeature): void {
    this.core.checkDevice(dev, 'devDisableFeature');
    this.v5('devDisableFeature').features.disable(dev, f);
  }

  devFeatureEnabled(dev: Device, f: DevFeature): boolean {
    this.core.checkDevice(dev, 'devFeatureEnabled');
    return this.v5('devFeatureEnabled').features.isEnabled(dev, f);
  }

  async auxAttachDevice(domain: Domain, dev: Device): Promise<void> {
    this.checkDomain(domain, 'auxAttachDevice');
    this.core.checkDevice(dev, 'auxAttachDevice');
    await this.v5('auxAttachDevice').aux.attach(domain, dev);
  }

  async auxDetachDevice(domain: Domain, dev: Device): Promise<void> {
    this.core.checkDevice(dev, 'auxDetachDevice');
    await this.v5('auxDetachDevice').aux.detach(domain, dev);
  }

  auxGetPasid(domain: Domain, dev: Device): number {
    this.core.checkDevice(dev, 'auxGetPasid');
    return this.v5('auxGetPasid').aux.getPasid(domain, dev);
  }

  /** vfio type1's attach of an mdev group: aux path when the parent has AUX enabled (seed 004). */
  async attachMdevGroup(domain: Domain, group: Group): Promise<void> {
    this.checkDomain(domain, 'attachMdevGroup');
    this.checkGroup(group, 'attachMdevGroup');
    await this.v5('attachMdevGroup').aux.attachMdevGroup(domain, group);
  }

  async detachMdevGroup(domain: Domain, group: Group): Promise<void> {
    this.checkGroup(group, 'detachMdevGroup');
    await this.v5('detachMdevGroup').aux.detachMdevGroup(domain, group);
  }

  /** Requester id and PASID a device's DMA carries (an aux-attached mdev's carries its PASID). */
  requester(dev: Device): { rid: number; pasid: number | undefined } {
    return { rid: dev.rid, pasid: this.aux?.mdevPasid(dev) };
  }

  private v5(op: string): { features: DeviceFeatures; aux: AuxDomains } {
    if (!this.features || !this.aux) throw simError('EOPNOTSUPP', op, 'v5-only', `${op} exists in the v5 semantics profile only`);
    return { features: this.features, aux: this.aux };
  }

  /** v5: the legacy mutual exclusion of a whole-device attach with aux and SVA users. */
  private checkV5Attach(domain: Domain, group: Group, op: string): void {
    if (!this.features || !this.aux) return;
    for (const dev of group.devices) {
      if (domain.type === 'paging' && this.features.isEnabled(dev, 'aux')) {
        throw simError('EPERM', op, 'aux-enabled', `${dev.bdf} has AUX enabled: a paging domain attaches as aux`);
      }
      if (this.aux.usersOf(dev) > 0 || (this.features.bonds.get(dev) ?? 0) > 0) {
        throw simError('EBUSY', op, 'pasid-users', `${dev.bdf} has aux domains or SVA bonds`);
      }
    }
  }

  // --- domains ---

  domainAlloc(type: DomainType, opts: DomainAllocOptions = {}): Domain {
    const op = 'domainAlloc';
    this.core.checkOpen(op);
    if (!TYPES.includes(type)) throw simError('EINVAL', op, 'bad-domain-type', String(type));
    if (opts.dev !== undefined) this.core.checkDevice(opts.dev, op);
    if (opts.stage !== undefined && opts.stage !== 'first' && opts.stage !== 'second') throw simError('EINVAL', op, 'bad-stage', String(opts.stage));
    let pt: PageTable | undefined;
    if (opts.nestParent && type !== 'paging') throw simError('EINVAL', op, 'nest-parent-not-paging', type);
    if (opts.nestParent && opts.stage === 'first') throw simError('EINVAL', op, 'nest-parent-first-stage');
    if (type === 'paging' || type === 'dma' || type === 'dma-fq') {
      pt = new PageTable(this.core.frames, opts.stage === 'second' || opts.nestParent ? this.driver.s2Format ?? SECOND_STAGE : this.driver.pteFormat, 4, opts.pgsizeBitmap);
    }
    const domain = new Domain(this.nextDomainId++, type, pt, opts.dev?.iommu);
    domain.nestParent = !!opts.nestParent;
    try {
      this.driver.domainInit(domain, op); // the profile's own checks and domain id
    } catch (e) {
      pt?.destroy();
      throw e;
    }
    if (opts.iopfHandler !== undefined) {
      if (typeof opts.iopfHandler !== 'function') throw simError('EINVAL', op, 'bad-iopf-handler');
      domain.iopfHandler = opts.iopfHandler;
    }
    return domain;
  }

  /**
   * ops->domain_alloc_nested: a nested domain with the guest's first stage `s1` over
   * `parent` (a nest-parent paging domain: else EINVAL), for `dev`'s IOMMU.
   */
  domainAllocNested(parent: Domain, dev: Device, s1: NestedStage1, opts: { iopfHandler?: IopfHandler } = {}): Domain {
    const op = 'domainAllocNested';
    this.checkDomain(parent, op);
    this.core.checkDevice(dev, op);
    if (!parent.nestParent || !parent.pt) throw simError('EINVAL', op, 'not-nest-parent', `domain ${parent.id}`);
    if (parent.iommu !== undefined && parent.iommu !== dev.iommu) throw simError('EINVAL', op, 'foreign-domain', `domain ${parent.id} is for IOMMU ${parent.iommu}`);
    if (s1.levels !== 4 && s1.levels !== 5) throw simError('EINVAL', op, 'bad-s1-levels', String(s1.levels));
    if (s1.rootGpa < 0n || (s1.rootGpa & 0xfffn) !== 0n || s1.rootGpa >= 1n << 52n) throw simError('EINVAL', op, 'bad-s1-root', `0x${s1.rootGpa.toString(16)}`);
    const domain = new Domain(this.nextDomainId++, 'nested', undefined, dev.iommu);
    domain.nested = { parent, s1: { ...s1 } };
    this.driver.domainInit(domain, op);
    if (opts.iopfHandler !== undefined) domain.iopfHandler = opts.iopfHandler;
    parent.children.add(domain);
    return domain;
  }

  /** A nested domain's user-requested stage-1 invalidation (cache_invalidate_user). */
  async flushNestedUser(domain: Domain, addr: bigint, npages: bigint): Promise<void> {
    this.checkDomain(domain, 'flushNestedUser');
    if (!domain.nested) throw simError('EINVAL', 'flushNestedUser', 'not-nested', `domain ${domain.id}`);
    await this.driver.flushNestedUser(domain, addr, npages);
  }

  // --- v5: guest PASID bind and cache-invalidation passdown (seed 002) ---

  private readonly gpasids = new Map<string, { nested: Domain; parent: Domain; dev: Device; hpasid: number; gpasid?: number }>();

  /** v5 iommu_sva_bind_gpasid: (dev, hpasid) translates through the guest's first stage over `domain`. */
  async bindGuestPasidTable(domain: Domain, dev: Device, data: GpasidBindData): Promise<void> {
    const op = 'bindGuestPasidTable';
    this.checkDomain(domain, op);
    this.core.checkDevice(dev, op);
    this.v5(op);
    const { s1, hpasid, gpasid } = checkBindData(data, dev, op);
    if (!domain.nestParent || !domain.pt) throw simError('EINVAL', op, 'not-nesting-domain', `domain ${domain.id}`);
    const key = `${dev.index}:${hpasid}`;
    if (this.gpasids.has(key)) throw simError('EBUSY', op, 'pasid-bound', `${dev.bdf} pasid ${hpasid}`);
    const nested = this.domainAllocNested(domain, dev, s1);
    try {
      await this.attachPasid(nested, dev, hpasid, op);
    } catch (e) {
      this.domainFree(nested);
      throw e;
    }
    this.gpasids.set(key, { nested, parent: domain, dev, hpasid, gpasid });
  }

  /** v5 iommu_sva_unbind_gpasid: never fails; an unbound PASID is a no-op. */
  async unbindGuestPasidTable(domain: Domain, dev: Device, hpasid: number): Promise<void> {
    this.core.checkDevice(dev, 'unbindGuestPasidTable');
    const key = `${dev.index}:${hpasid}`;
    const b = this.gpasids.get(key);
    if (!b || b.parent !== domain) return;
    this.gpasids.delete(key);
    await this.detachDevicePasid(b.nested, dev, hpasid);
    this.domainFree(b.nested);
  }

  /** v5 iommu_cache_invalidate: a guest's invalidation of `dev`'s bound PASIDs of `domain`. */
  async cacheInvalidate(domain: Domain, dev: Device, info: CacheInvalidateInfo): Promise<void> {
    const op = 'cacheInvalidate';
    this.checkDomain(domain, op);
    this.core.checkDevice(dev, op);
    this.v5(op);
    const target = (b: { nested: Domain; hpasid: number }): InvTarget | undefined => {
      const did = b.nested.dids.get(dev.iommu)?.did;
      return did === undefined ? undefined : { did, pasid: b.hpasid, rid: dev.rid, ats: dev.ats };
    };
    const mine = [...this.gpasids.values()].filter((b) => b.parent === domain && b.dev === dev);
    if (mine.length === 0 && this.state(dev.group).domain !== domain) throw simError('EINVAL', op, 'device-not-attached', `${dev.bdf} uses domain ${domain.id} neither at its RID nor at a bound PASID`);
    const descs = invalidateDescs(info, (p) => {
      const b = mine.find((x) => x.hpasid === p);
      return b && target(b);
    }, mine.map(target).filter((t): t is InvTarget => t !== undefined), op);
    if (descs.length > 0) await this.core.flush(dev.iommu, descs, 'cache-invalidate');
  }

  /** The CPU side of I/O page faults (set by the simulator). */
  attachIopf(iopf: Iopf): void {
    this.iopf = iopf;
  }

  /** iommu_page_response: answers a pending page-request group; EINVAL when none is pending. */
  pageResponse(dev: Device, r: { pasid?: number; grpid: number; code: ResponseCode }): Promise<void> {
    this.core.checkDevice(dev, 'pageResponse');
    if (!this.iopf) throw simError('EOPNOTSUPP', 'pageResponse', 'no-iopf');
    return this.iopf.pageResponse(dev, r);
  }

  registerDeviceFaultHandler(dev: Device, handler: DeviceFaultHandler, data?: unknown): void {
    this.core.checkDevice(dev, 'registerDeviceFaultHandler');
    this.iopf!.registerDeviceFaultHandler(dev, handler, data);
  }

  /** Never fails; pending groups of the device are answered INVALID. */
  unregisterDeviceFaultHandler(dev: Device): Promise<void> {
    this.core.checkDevice(dev, 'unregisterDeviceFaultHandler');
    return this.iopf!.unregisterDeviceFaultHandler(dev);
  }

  private iopf?: Iopf;

  domainFree(domain: Domain): void {
    const op = 'domainFree';
    this.checkDomain(domain, op);
    if (domain.attachments.size > 0 || this.inUse(domain)) throw simError('EBUSY', op, 'domain-attached', `domain ${domain.id} is attached`);
    if (domain.type === 'sva') throw simError('EINVAL', op, 'sva-domain', 'an SVA domain is freed by its last unbind');
    if (domain.children.size > 0) throw simError('EBUSY', op, 'nested-domains', `domain ${domain.id} is the parent of ${domain.children.size} nested domains`);
    domain.nested?.parent.children.delete(domain);
    domain.pt?.destroy();
    this.driver.domainFree(domain);
    domain.freed = true;
    this.mapping.forget(domain);
  }

  // --- RID attach ---

  getDomainForDev(dev: Device): Domain {
    this.core.checkDevice(dev, 'getDomainForDev');
    return this.state(dev.group).domain;
  }

  async attachDevice(domain: Domain, dev: Device): Promise<void> {
    const op = 'attachDevice';
    this.checkDomain(domain, op);
    this.core.checkDevice(dev, op);
    if (dev.group.devices.length !== 1) throw simError('EINVAL', op, 'group-not-singleton', `${dev.bdf} shares group ${dev.group.id}`);
    await this.attachGroupInternal(domain, dev.group, op);
  }

  async attachGroup(domain: Domain, group: Group): Promise<void> {
    const op = 'attachGroup';
    this.checkDomain(domain, op);
    this.checkGroup(group, op);
    await this.attachGroupInternal(domain, group, op);
  }

  /** iommu_detach_device: back to the core domain; never fails (a mismatch is a no-op). */
  async detachDevice(domain: Domain, dev: Device): Promise<void> {
    this.core.checkDevice(dev, 'detachDevice');
    const st = this.state(dev.group);
    if (st.domain !== domain || dev.group.devices.length !== 1) return;
    await this.setGroupDomain(st, st.coreDomain, 'detachDevice', true);
  }

  async detachGroup(domain: Domain, group: Group): Promise<void> {
    this.checkGroup(group, 'detachGroup');
    const st = this.state(group);
    if (st.domain !== domain) return;
    await this.setGroupDomain(st, st.coreDomain, 'detachGroup', true);
  }

  /** Switches the group's RID domain without passing through blocking; failure keeps the old. */
  async replaceGroupDomain(group: Group, domain: Domain): Promise<void> {
    const op = 'replaceGroupDomain';
    this.checkGroup(group, op);
    this.checkDomain(domain, op);
    this.checkCompatible(domain, group, op);
    const st = this.state(group);
    this.checkV5Attach(domain, group, op);
    this.checkNotResetting(st, op);
    await this.setGroupDomain(st, domain, op);
  }

  // --- DMA ownership ---

  deviceUseDefaultDomain(dev: Device): void {
    const op = 'deviceUseDefaultDomain';
    this.core.checkDevice(dev, op);
    const st = this.state(dev.group);
    if (st.ownerCnt > 0 && (st.domain !== st.defaultDomain || st.owner !== undefined || st.pasids.size > 0)) {
      throw simError('EBUSY', op, 'group-in-use', `group ${st.group.id}`);
    }
    st.ownerCnt++;
  }

  deviceUnuseDefaultDomain(dev: Device): void {
    this.core.checkDevice(dev, 'deviceUnuseDefaultDomain');
    const st = this.state(dev.group);
    if (st.ownerCnt > 0 && st.pasids.size === 0) st.ownerCnt--;
  }

  async deviceClaimDmaOwner(dev: Device, owner: object): Promise<void> {
    const op = 'deviceClaimDmaOwner';
    if (owner === null || owner === undefined || typeof owner !== 'object') throw simError('EINVAL', op, 'no-owner');
    this.core.checkDevice(dev, op);
    const st = this.state(dev.group);
    if (st.ownerCnt > 0) {
      if (st.owner !== owner) throw simError('EPERM', op, 'owned-by-another', `group ${st.group.id}`);
      st.ownerCnt++;
      return;
    }
    await this.takeOwnership(st, owner, op);
  }

  async groupClaimDmaOwner(group: Group, owner: object): Promise<void> {
    const op = 'groupClaimDmaOwner';
    if (owner === null || owner === undefined || typeof owner !== 'object') throw simError('EINVAL', op, 'no-owner');
    this.checkGroup(group, op);
    const st = this.state(group);
    if (st.ownerCnt > 0) throw simError('EPERM', op, 'group-in-use', `group ${group.id}`);
    await this.takeOwnership(st, owner, op);
  }

  async deviceReleaseDmaOwner(dev: Device): Promise<void> {
    this.core.checkDevice(dev, 'deviceReleaseDmaOwner');
    const st = this.state(dev.group);
    if (st.ownerCnt > 1) st.ownerCnt--;
    else await this.releaseOwnership(st);
  }

  async groupReleaseDmaOwner(group: Group): Promise<void> {
    this.checkGroup(group, 'groupReleaseDmaOwner');
    await this.releaseOwnership(this.state(group));
  }

  /** The owner cookie of the device's group (undefined when kernel-owned). */
  dmaOwner(dev: Device): object | undefined {
    return this.state(dev.group).owner;
  }

  // --- PASID attach ---

  getDomainForDevPasid(dev: Device, pasid: number): Domain | undefined {
    this.core.checkDevice(dev, 'getDomainForDevPasid');
    return this.state(dev.group).pasids.get(pasid);
  }

  async attachDevicePasid(domain: Domain, dev: Device, pasid: number): Promise<void> {
    this.latestOnly('attachDevicePasid');
    await this.attachPasid(domain, dev, pasid, 'attachDevicePasid');
  }

  /** The SVA layer's attach at an mm's PASID: the same rules, in both profiles. */
  async attachSvaPasid(domain: Domain, dev: Device, pasid: number): Promise<void> {
    await this.attachPasid(domain, dev, pasid, 'svaBindDevice');
  }

  /** An SVA domain over a process's first-stage page table (iommu_sva_domain_alloc). */
  svaDomainAlloc(pageTable: PageTable, iommu: number): Domain {
    return new Domain(this.nextDomainId++, 'sva', pageTable, iommu);
  }

  private async attachPasid(domain: Domain, dev: Device, pasid: number, op: string): Promise<void> {
    const st = this.pasidCallChecks(domain, dev, pasid, op);
    this.checkNotResetting(st, op); // before the width checks (§1.5 rules 3, 4, 5)
    this.checkPasid(st, dev, pasid, op);
    if (st.pasids.has(pasid) || this.pendingPasids.has(`${st.group.id}:${pasid}`)) {
      throw simError('EBUSY', op, 'pasid-in-use', `pasid ${pasid} of group ${st.group.id}`);
    }
    const key = `${st.group.id}:${pasid}`;
    this.pendingPasids.add(key);
    try {
      await this.forEachPasidDevice(st, op, (d) => this.setPasid(d, pasid, domain, undefined, op), (d) => this.setPasid(d, pasid, undefined, domain, 'rollback'));
      st.pasids.set(pasid, domain); // visible only once every device has it
    } finally {
      this.pendingPasids.delete(key);
    }
  }

  async replaceDevicePasid(domain: Domain, dev: Device, pasid: number): Promise<void> {
    const op = 'replaceDevicePasid';
    this.latestOnly(op);
    const st = this.pasidCallChecks(domain, dev, pasid, op);
    const cur = st.pasids.get(pasid);
    if (cur === undefined) throw simError('EINVAL', op, 'pasid-not-attached', `pasid ${pasid}`);
    this.checkNotResetting(st, op);
    if (cur === domain) return;
    await this.forEachPasidDevice(st, op, (d) => this.setPasid(d, pasid, domain, cur, op), (d) => this.setPasid(d, pasid, cur, domain, 'rollback'));
    st.pasids.set(pasid, domain);
    for (const d of st.group.devices) await this.iopf?.abortPending(d, pasid);
  }

  /** iommu_detach_device_pasid: never fails; a PASID not attached to `domain` is left alone. */
  async detachDevicePasid(domain: Domain, dev: Device, pasid: number): Promise<void> {
    this.core.checkDevice(dev, 'detachDevicePasid');
    const st = this.state(dev.group);
    if (st.pasids.get(pasid) !== domain) return;
    st.pasids.delete(pasid);
    for (const d of st.group.devices) {
      if (d.maxPasids > 0 && !st.resetting.has(d.rid)) await this.setPasid(d, pasid, undefined, domain, 'detachDevicePasid');
    }
    for (const d of st.group.devices) await this.iopf?.abortPending(d, pasid);
  }

  // --- device reset / recovery ---

  /** pci_dev_reset_iommu_prepare: parks the device's RID and PASIDs on blocking; attaches EBUSY until done. */
  async deviceResetPrepare(dev: Device): Promise<void> {
    const op = 'deviceResetPrepare';
    this.core.checkDevice(dev, op);
    const st = this.state(dev.group);
    if (st.resetting.has(dev.rid)) throw simError('EBUSY', op, 'already-resetting', dev.bdf);
    await this.setRid(dev, undefined, st.domain, op);
    for (const [pasid, d] of st.pasids) if (dev.maxPasids > 0) await this.setPasid(dev, pasid, undefined, d, op);
    st.resetting.add(dev.rid);
  }

  /** pci_dev_reset_iommu_done: restores what the group has attached. */
  async deviceResetDone(dev: Device): Promise<void> {
    const op = 'deviceResetDone';
    this.core.checkDevice(dev, op);
    const st = this.state(dev.group);
    if (!st.resetting.delete(dev.rid)) return;
    this.core.failNth.paused++;
    try {
      await this.setRid(dev, st.domain, undefined, op);
      for (const [pasid, d] of st.pasids) if (dev.maxPasids > 0) await this.setPasid(dev, pasid, d, undefined, op);
    } finally {
      this.core.failNth.paused--;
    }
  }

  // --- map / unmap (domain-mapping.ts) ---

  map(domain: Domain, iova: bigint, paddr: bigint, size: bigint, prot: Prot): Promise<void> {
    return this.mapping.map(domain, iova, paddr, size, prot);
  }

  unmap(domain: Domain, iova: bigint, size: bigint): Promise<bigint> {
    return this.mapping.unmap(domain, iova, size);
  }

  unmapFast(domain: Domain, iova: bigint, size: bigint, gather: IotlbGather): bigint {
    return this.mapping.unmapFast(domain, iova, size, gather);
  }

  iotlbSync(domain: Domain, gather: IotlbGather): Promise<void> {
    return this.mapping.iotlbSync(domain, gather);
  }

  flushIotlbAll(domain: Domain): Promise<void> {
    return this.mapping.flushIotlbAll(domain);
  }

  iovaToPhys(domain: Domain, iova: bigint): bigint {
    return this.mapping.iovaToPhys(domain, iova);
  }

  // --- hooks for the simulator ---

  /** Programs a device's tables for its group's current state, the first time it is used. */
  async prepare(dev: Device): Promise<void> {
    if (!programmable(dev) || this.driver.hasDevice(dev)) return;
    const st = this.state(dev.group);
    this.core.failNth.paused++;
    try {
      this.driver.probe(dev);
      if (st.resetting.has(dev.rid)) return;
      await this.setRid(dev, st.domain, undefined, 'probe');
      for (const [pasid, d] of st.pasids) if (dev.maxPasids > 0) await this.setPasid(dev, pasid, d, undefined, 'probe');
    } finally {
      this.core.failNth.paused--;
    }
  }

  /**
   * Brings every device of the group into hardware with the group's current state before
   * an attach changes it (the kernel programmed them at boot; here it happens on first use).
   */
  private async probeGroup(st: GroupState): Promise<void> {
    for (const dev of st.group.devices) await this.prepare(dev);
  }

  /** Flushes the flush queues whose timeout has passed in modelled time. */
  pollFlushQueues(): Promise<void> {
    return this.mapping.pollFlushQueues();
  }


  /** The kernel-side state of a group (for tests and the fault issue). */
  groupState(group: Group): GroupState {
    return this.state(group);
  }

  // --- internals ---

  private readonly pendingPasids = new Set<string>();

  private state(group: Group): GroupState {
    let st = this.groupStates.get(group);
    if (!st) {
      const untrusted = group.devices.some((d) => d.untrusted);
      const type: DomainType = untrusted ? 'dma' : this.defaultType;
      const iommu = group.devices[0]?.iommu;
      // The kernel makes default domains when it probes the devices: making one here, on
      // first use, is no fail-nth step of the call that happens to look first (a detach
      // or a lookup must not fail with ENOMEM).
      this.core.failNth.paused++;
      let def: Domain;
      try {
        def = new Domain(this.nextDomainId++, type, type === 'identity' ? undefined
          : new PageTable(this.core.frames, this.driver.pteFormat, 4), iommu);
        this.driver.domainInit(def, 'default-domain');
        // iommu_create_device_direct_mappings: direct regions mapped 1:1 in the default domain.
        if (def.pt) {
          for (const dev of group.devices) {
            for (const r of directRegions(dev)) {
              const start = r.start & ~0xfffn;
              const end = (r.last | 0xfffn) + 1n;
              if (def.pt.iovaToPhys(start) === 0n) def.pt.map(start, start, end - start, { read: true, write: true }, 'direct-map');
            }
          }
        }
      } finally {
        this.core.failNth.paused--;
      }
      st = new GroupState(group, def, new Domain(this.nextDomainId++, 'blocked', undefined, iommu));
      this.groupStates.set(group, st);
    }
    return st;
  }

  private inUse(domain: Domain): boolean {
    for (const st of this.groupStates.values()) {
      if (st.domain === domain || st.defaultDomain === domain || st.blockingDomain === domain) return true;
      for (const d of st.pasids.values()) if (d === domain) return true;
    }
    return false;
  }

  private async attachGroupInternal(domain: Domain, group: Group, op: string): Promise<void> {
    const st = this.state(group);
    if (st.domain !== st.defaultDomain && st.domain !== st.blockingDomain) {
      throw simError('EBUSY', op, 'domain-attached', `group ${group.id} has domain ${st.domain.id} attached`);
    }
    this.checkCompatible(domain, group, op);
    this.checkV5Attach(domain, group, op);
    this.checkNotResetting(st, op);
    await this.setGroupDomain(st, domain, op);
  }

  /** __iommu_group_set_domain: every device or none; `nofail` for detach/release paths. */
  private async setGroupDomain(st: GroupState, domain: Domain, op: string, nofail = false): Promise<void> {
    if (st.domain === domain) return;
    await this.probeGroup(st);
    if (domain.type === 'blocked' && !nofail) {
      const d = st.group.devices.find((d) => d.requireDirect);
      if (d) throw simError('EINVAL', op, 'requires-direct-mapping', `${d.bdf} cannot be blocked`);
    }
    const old = st.domain;
    if (nofail) this.core.failNth.paused++;
    const done: Device[] = [];
    try {
      for (const dev of st.group.devices) {
        if (!st.resetting.has(dev.rid)) await this.setRid(dev, domain, old, op);
        done.push(dev);
      }
    } catch (e) {
      this.core.failNth.paused++;
      try {
        for (const dev of done.reverse()) if (!st.resetting.has(dev.rid)) await this.setRid(dev, old, domain, 'rollback');
      } finally {
        this.core.failNth.paused--;
      }
      throw e;
    } finally {
      if (nofail) this.core.failNth.paused--;
    }
    st.domain = domain;
    for (const dev of st.group.devices) await this.iopf?.abortPending(dev, undefined);
    await this.pollFlushQueues();
  }

  /** Programs the RID (PASID 0 / RID_PASID) of one device; skipped until the device is probed. */
  private async setRid(dev: Device, domain: Domain | undefined, old: Domain | undefined, op: string): Promise<void> {
    await this.setPasid(dev, 0, domain, old, op);
  }

  /** Programs (dev, pasid) from `old` to `domain` (undefined / blocked = no entry). */
  private async setPasid(dev: Device, pasid: number, domain: Domain | undefined, old: Domain | undefined, op: string): Promise<void> {
    if (!programmable(dev) || !this.driver.hasDevice(dev)) return; // programmed at first use
    const live = (d: Domain | undefined) => (d !== undefined && d.type !== 'blocked' ? d : undefined);
    const to = live(domain);
    const from = live(old);
    if (to === undefined) await this.driver.blockDevPasid(dev, pasid, from);
    else await this.driver.setDevPasid(dev, pasid, to, from, op);
  }

  private async forEachPasidDevice(st: GroupState, op: string, apply: (d: Device) => Promise<void>, undo: (d: Device) => Promise<void>): Promise<void> {
    await this.probeGroup(st);
    const done: Device[] = [];
    try {
      for (const d of st.group.devices) {
        if (d.maxPasids === 0) continue; // only devices that support PASID
        await apply(d);
        done.push(d);
      }
    } catch (e) {
      this.core.failNth.paused++;
      try {
        for (const d of done.reverse()) await undo(d);
      } finally {
        this.core.failNth.paused--;
      }
      throw e;
    }
  }

  private async takeOwnership(st: GroupState, owner: object, op: string): Promise<void> {
    if (st.domain !== st.defaultDomain || st.pasids.size > 0) {
      throw simError('EBUSY', op, 'group-in-use', `group ${st.group.id} has a non-default domain or PASIDs attached`);
    }
    await this.setGroupDomain(st, st.blockingDomain, op);
    st.owner = owner;
    st.ownerCnt++;
  }

  private async releaseOwnership(st: GroupState): Promise<void> {
    if (st.ownerCnt === 0 || st.owner === undefined || st.pasids.size > 0) return; // WARN in the kernel
    st.ownerCnt = 0;
    st.owner = undefined;
    await this.setGroupDomain(st, st.defaultDomain, 'release-dma-owner', true);
  }


  private checkPasid(st: GroupState, dev: Device, pasid: number, op: string): void {
    if (!Number.isInteger(pasid) || pasid === 0) throw simError('EINVAL', op, 'pasid-reserved', `pasid ${pasid}`);
    if (pasid < 0 || pasid >= 1 << 20) throw simError('EINVAL', op, 'pasid-out-of-range', `pasid ${pasid}`);
    if (dev.maxPasids === 0) throw simError('EINVAL', op, 'no-pasid-support', dev.bdf);
    for (const d of st.group.devices) {
      if (d.maxPasids > 0 && pasid >= d.maxPasids) throw simError('EINVAL', op, 'pasid-out-of-range', `pasid ${pasid} ≥ ${d.maxPasids} of ${d.bdf}`);
    }
  }

  /** The checks attach and replace of a PASID share (§1.5 rules 1–3), in the kernel's order. */
  private pasidCallChecks(domain: Domain, dev: Device, pasid: number, op: string): GroupState {
    this.checkDomain(domain, op);
    this.core.checkDevice(dev, op);
    this.checkCompatible(domain, dev.group, op);
    const st = this.state(dev.group);
    if (!Number.isInteger(pasid) || pasid === 0) throw simError('EINVAL', op, 'pasid-reserved', `pasid ${pasid}`);
    return st;
  }

  private latestOnly(op: string): void {
    if (this.semantics === 'v5') throw simError('EOPNOTSUPP', op, 'not-in-v5', `${op} came with v6.2; the v5 profile uses aux domains`);
  }

  private checkNotResetting(st: GroupState, op: string): void {
    if (st.resetting.size > 0) throw simError('EBUSY', op, 'device-resetting', `group ${st.group.id}`);
  }

  private checkCompatible(domain: Domain, group: Group, op: string): void {
    const dev = group.devices[0];
    if (domain.iommu !== undefined && dev !== undefined && domain.iommu !== dev.iommu) {
      throw simError('EINVAL', op, 'foreign-domain', `domain ${domain.id} was allocated for IOMMU ${domain.iommu}, group ${group.id} is behind ${dev.iommu}`);
    }
  }

  private checkDomain(domain: Domain, op: string): void {
    this.core.checkOpen(op);
    if (!(domain instanceof Domain)) throw simError('EINVAL', op, 'not-a-domain');
    if (domain.freed) throw simError('EINVAL', op, 'domain-freed', `domain ${domain.id}`);
  }

  private checkGroup(group: Group, op: string): void {
    this.core.checkOpen(op);
    if (group === null || typeof group !== 'object' || !Array.isArray(group.devices) || group.devices.length === 0) {
      throw simError('ENODEV', op, 'not-a-group');
    }
    this.core.checkDevice(group.devices[0], op);
    if (group.devices[0].group !== group) throw simError('ENODEV', op, 'not-a-group');
  }
}
