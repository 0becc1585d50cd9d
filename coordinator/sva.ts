/**
 * Shared virtual addressing: binding a process address space to a device
 * (drivers/iommu/iommu-sva.c, latest; the v5 2018 API's extra rules by profile).
 *
 * Models (SEMANTICS.md §2.3, §3.1–3.3): one PASID per mm, taken from the global space at
 * the first bind (ENOSPC when none below the device's width) and identical on every
 * device; a bind reusing it on a narrower device is EOVERFLOW; under pasidPolicy
 * 'per-device' the mm's PASID comes from the first device's own space and must be free in
 * every later device's space too (EBUSY 'pasid-conflict' otherwise — the price of
 * per-device numbering for SVA/ENQCMD); a bond is a handle per (group, PASID) counting
 * its binds — binding again returns the same handle; a PASID
 * already used by a non-SVA domain, or by another mm's SVA domain, is EBUSY; one SVA
 * domain per (mm, IOMMU), attached at the mm's PASID group-wide (with the core's
 * rollback), sharing the mm's first-stage page table; the mm notifier of each SVA domain
 * turns munmap/mprotect into PASID-selective IOTLB and device-TLB invalidations on its
 * IOMMU, and munmap resolves when every IOMMU is done; at mm exit every bond's PASID entry
 * is left non-present with FPD (translation blocked, faults suppressed) until unbind; the
 * PASID stays the mm's until the mm is freed (free with bonds left: EBUSY). v5 profile:
 * the SVA feature must be enabled (ENODEV) and the group must be a singleton (EINVAL).
 * v5 also has bind_group (the whole group at the mm's PASID, all devices or none through
 * the core's rollback; every device needs the SVA feature), unbind_group and unbind_dev_all
 * (device shutdown: every bond of the device's group, whatever the counts).
 * At bind the group's reserved windows (host-bridge MMIO, MSI) are carved out of the process
 * as PROT_NONE mappings (seed 003).
 * Does not model: iopf handlers (the fault issue), ENQCMD.
 */
import { simError } from '../shared/errors.js';
import type { Domain } from './domain.js';
import type { IommuApi } from './iommu-api.js';
import type { Mm, MmNotifier } from './mm.js';
import type { PasidAllocator } from './pasid-allocator.js';
import type { SimulatorCore } from './simulator-core.js';
import type { Device } from './topology.js';
import type { IommuDriver } from './iommu-driver.js';

/** struct iommu_sva: one bond of an mm to a device's group at the mm's PASID. */
export class SvaHandle {
  /** Binds not yet unbound. */
  users = 1;

  constructor(readonly dev: Device, readonly mm: Mm, readonly domain: Domain, readonly pasid: number) {}
}

interface SvaDomain {
  domain: Domain;
  /** Bonds (handles) using it. */
  handles: Set<SvaHandle>;
  notifier: MmNotifier;
}

export class Sva {
  private readonly handles = new Map<string, SvaHandle>();
  private readonly domains = new Map<Mm, Map<number, SvaDomain>>();
  /** Per-device policy: the devices whose own space holds each mm's PASID. */
  private readonly claims = new Map<Mm, Set<Device>>();

  constructor(
    private readonly core: SimulatorCore,
    private readonly api: IommuApi,
    private readonly driver: IommuDriver,
    private readonly pasids: PasidAllocator,
    private readonly newDomain: (mm: Mm, iommu: number) => Domain,
    private readonly v5?: { svaEnabled(dev: Device): boolean; bonds: Map<Device, number> },
  ) {}

  async bind(dev: Device, mm: Mm, op = 'svaBindDevice', wholeGroup = false): Promise<SvaHandle> {
    this.core.checkOpen(op);
    this.core.checkDevice(dev, op);
    if (mm.state !== 'live') throw simError('EINVAL', op, 'mm-exited', `mm ${mm.id} has exited`);
    if (this.v5) {
      for (const d of wholeGroup ? dev.group.devices : [dev]) {
        if (!this.v5.svaEnabled(d)) throw simError('ENODEV', op, 'sva-not-enabled', d.bdf);
      }
      if (!wholeGroup && dev.group.devices.length !== 1) throw simError('EINVAL', op, 'group-not-singleton', `${dev.bdf} shares group ${dev.group.id}`);
    }
    // The mm's PASID (iommu_alloc_mm_data): one per mm, the same number on every device.
    const dv = { id: dev.index, maxPasids: dev.maxPasids };
    let pasid = mm.pasid;
    let claimed = false;
    if (pasid !== undefined) {
      if (pasid >= dev.maxPasids) throw simError('EOVERFLOW', op, 'pasid-too-wide', `mm PASID ${pasid} ≥ ${dev.maxPasids} of ${dev.bdf}`);
      // Per-device spaces: the number must also be free in this device's own space.
      if (this.pasids.policy === 'per-device' && !this.claims.get(mm)?.has(dev)) {
        if (this.pasids.alloc({ dev: dv, min: pasid, max: pasid, owner: mm }) !== pasid) {
          throw simError('EBUSY', op, 'pasid-conflict', `PASID ${pasid} of mm ${mm.id} is taken in the space of ${dev.bdf}`);
        }
        claimed = true;
      }
    } else {
      pasid = dev.maxPasids > 1 ? this.pasids.alloc({ dev: dv, owner: mm }) : -1;
      if (pasid < 0) throw simError('ENOSPC', op, 'pasid-space-exhausted', `no PASID below ${dev.maxPasids}`);
      mm.pasid = pasid; // the mm keeps it until it is freed
      claimed = this.pasids.policy === 'per-device';
    }
    if (claimed) {
      const set = this.claims.get(mm) ?? new Set<Device>();
      set.add(dev);
      this.claims.set(mm, set);
    }
    // An existing bond of this group at the PASID.
    const key = `${dev.group.id}:${pasid}`;
    const have = this.handles.get(key);
    if (have) {
      if (have.mm !== mm) throw simError('EBUSY', op, 'pasid-bound-elsewhere', `pasid ${pasid} of group ${dev.group.id}`);
      have.users++;
      this.countBond(dev, 1);
      return have;
    }
    if (this.api.getDomainForDevPasid(dev, pasid) !== undefined) {
      throw simError('EBUSY', op, 'pasid-in-use', `pasid ${pasid} of group ${dev.group.id} has another domain`);
    }
    // The mm's SVA domain for this IOMMU, or a new one.
    let perIommu = this.domains.get(mm);
    if (!perIommu) this.domains.set(mm, (perIommu = new Map()));
    let sd = perIommu.get(dev.iommu);
    const fresh = sd === undefined;
    if (sd === undefined) {
      const domain = this.newDomain(mm, dev.iommu);
      const entry: SvaDomain = {
        domain,
        handles: new Set(),
        notifier: {
          invalidateRange: (start, end) => this.driver.flushRange(domain, start, end, 'sva-invalidate'),
          release: () => this.release(entry),
        },
      };
      sd = entry;
    }
    try {
      await this.api.attachSvaPasid(sd.domain, dev, pasid);
    } catch (e) {
      if (fresh && perIommu.size === 0) this.domains.delete(mm);
      throw e;
    }
    if (fresh) {
      perIommu.set(dev.iommu, sd);
      mm.registerNotifier(sd.notifier);
    }
    this.carveReservedRegions(dev, mm);
    const handle = new SvaHandle(dev, mm, sd.domain, pasid);
    sd.handles.add(handle);
    this.handles.set(key, handle);
    this.countBond(dev, 1);
    return handle;
  }

  /** Drops one bind reference; the last detaches the PASID and may free the SVA domain. Never fails. */
  async unbind(handle: SvaHandle): Promise<void> {
    if (!(handle instanceof SvaHandle) || handle.users === 0) return;
    handle.users--;
    this.countBond(handle.dev, -1);
    if (handle.users > 0) return;
    this.handles.delete(`${handle.dev.group.id}:${handle.pasid}`);
    await this.api.detachDevicePasid(handle.domain, handle.dev, handle.pasid);
    const perIommu = this.domains.get(handle.mm);
    const sd = perIommu?.get(handle.dev.iommu);
    if (!sd) return;
    sd.handles.delete(handle);
    if (sd.handles.size === 0) {
      perIommu!.delete(handle.dev.iommu);
      if (perIommu!.size === 0) this.domains.delete(handle.mm);
      handle.mm.unregisterNotifier(sd.notifier);
    }
  }

  /** v5 bind_group: the whole group at the mm's PASID, every device or none; returns the PASID. */
  async bindGroup(devs: readonly Device[], mm: Mm): Promise<number> {
    const op = 'svaBindGroup';
    if (devs.length === 0) throw simError('ENODEV', op, 'not-a-group');
    const h = await this.bind(devs[0], mm, op, true);
    return h.pasid;
  }

  /** v5 unbind_group: drops the group's bond at `pasid` whatever its count. Never fails. */
  async unbindGroup(devs: readonly Device[], pasid: number): Promise<void> {
    const h = devs.length ? this.handles.get(`${devs[0].group.id}:${pasid}`) : undefined;
    if (h) await this.unbindAll(h);
  }

  /** v5 unbind_dev_all (device shutdown): drops every bond of the device's group. Never fails. */
  async unbindDevAll(dev: Device): Promise<void> {
    for (const h of [...this.handles.values()]) if (h.dev.group === dev.group) await this.unbindAll(h);
  }

  private async unbindAll(h: SvaHandle): Promise<void> {
    while (h.users > 0) await this.unbind(h);
  }

  getPasid(handle: SvaHandle): number {
    if (!(handle instanceof SvaHandle)) throw simError('EINVAL', 'svaGetPasid', 'not-a-handle');
    return handle.pasid;
  }

  /** mm_pasid_drop at mm free: the PASID returns to the allocator; refused while bonds remain. */
  freeMm(mm: Mm): void {
    if (this.domains.has(mm)) throw simError('EBUSY', 'mm.free', 'mm-bound', `mm ${mm.id} still has SVA bonds`);
    if (mm.pasid !== undefined) {
      if (this.pasids.policy === 'per-device') {
        for (const d of this.claims.get(mm) ?? []) this.pasids.free(mm.pasid, { id: d.index, maxPasids: d.maxPasids });
        this.claims.delete(mm);
      } else {
        this.pasids.free(mm.pasid);
      }
    }
    mm.pasid = undefined;
  }

  /** The notifier's release (exit_mmap): block every bond's PASID quietly. */
  private async release(sd: SvaDomain): Promise<void> {
    for (const h of sd.handles) {
      for (const d of h.dev.group.devices) if (d.maxPasids > 0) await this.driver.quietBlockDevPasid(d, h.pasid, sd.domain);
    }
  }

  /**
   * Carves the group's reserved windows (host-bridge MMIO, MSI) out of the process with
   * PROT_NONE mappings, as Brucker proposed for bind (seed 003), so the process cannot get a
   * VA whose DMA would never reach the IOMMU. A window the process already uses stays as it
   * is: DMA to it is flagged by the simulator instead.
   */
  private carveReservedRegions(dev: Device, mm: Mm): void {
    for (const d of dev.group.devices) {
      for (const r of d.reservedRegions) {
        if (r.type === 'direct') continue;
        const start = r.start & ~0xfffn;
        const end = (r.last | 0xfffn) + 1n;
        if (start < 0x1000n || end > 1n << 47n) continue;
        try {
          mm.mmap({ addr: start, length: end - start, prot: {}, fixed: true });
        } catch {
          // Already carved, or already in use by the process.
        }
      }
    }
  }

  private countBond(dev: Device, delta: number): void {
    if (!this.v5) return;
    this.v5.bonds.set(dev, (this.v5.bonds.get(dev) ?? 0) + delta);
  }
}
