/**
 * Auxiliary domains of the v5 API (iommu_aux_{attach,detach}_device, iommu_aux_get_pasid;
 * v5.3–v5.16) and the vfio type1 mdev-group attach built on them (seed 004).
 *
 * Models (SEMANTICS.md §2.5, Intel's implementation): aux attach needs AUX enabled on the
 * device (ENODEV) and an unmanaged (paging) domain (EPERM); an aux domain gets ONE default
 * PASID from the global space in [1, max_pasids − 1] at its first aux attach, used on
 * every device it is aux-attached to (EINVAL on a device too narrow for it; ENOSPC when
 * the space is exhausted) and freed with the last detach; aux_get_pasid is EINVAL before
 * one is assigned. The hardware sees the domain at (parent device, default PASID). The
 * mdev-group attach: every device of the group must be an mdev of one same parent
 * (EINVAL); if the parent has AUX enabled the domain is aux-attached to the parent,
 * otherwise the parent is attached normally (singleton rule); a second aux domain for the
 * same mdev group is EBUSY. DMA of an mdev attached through the aux path is tagged with
 * the domain's PASID.
 * Does not model: aux attach of SVA or nested domains.
 */
import { simError } from '../shared/errors.js';
import type { Domain } from './domain.js';
import type { DeviceFeatures } from './device-features.js';
import type { PasidAllocator } from './pasid-allocator.js';
import type { Device, Group } from './topology.js';
import type { IommuDriver } from './iommu-driver.js';

export interface AuxHooks {
  /** Brings the device into hardware with its group's state (first use). */
  prepare(dev: Device): Promise<void>;
  /** The normal attach (iommu_attach_device) for VF-backed mdevs. */
  attachDevice(domain: Domain, dev: Device): Promise<void>;
  detachDevice(domain: Domain, dev: Device): Promise<void>;
}

function parentOf(dev: Device): Device | undefined {
  const d = dev as { kind?: string; parent?: Device };
  return d.kind === 'mdev' ? d.parent : undefined;
}

export class AuxDomains {
  private readonly pasidOf = new Map<Domain, number>();
  private readonly users = new Map<Domain, Set<Device>>();
  private readonly byDevice = new Map<Device, Set<Domain>>();
  /** mdev group → how it is attached. */
  private readonly mdevGroups = new Map<Group, { domain: Domain; parent: Device; aux: boolean }>();

  constructor(
    private readonly driver: IommuDriver,
    private readonly features: DeviceFeatures,
    private readonly pasids: PasidAllocator,
    private readonly hooks: AuxHooks,
  ) {}

  usersOf(dev: Device): number {
    return this.byDevice.get(dev)?.size ?? 0;
  }

  async attach(domain: Domain, dev: Device): Promise<void> {
    const op = 'auxAttachDevice';
    if (!this.features.isEnabled(dev, 'aux')) throw simError('ENODEV', op, 'aux-not-enabled', dev.bdf);
    if (domain.type !== 'paging') throw simError('EPERM', op, 'not-unmanaged', `${domain.type} domain`);
    if (this.users.get(domain)?.has(dev)) throw simError('EBUSY', op, 'already-attached', `domain ${domain.id} on ${dev.bdf}`);
    let pasid = this.pasidOf.get(domain);
    const fresh = pasid === undefined;
    if (pasid === undefined) {
      pasid = dev.maxPasids > 1 ? this.pasids.alloc({ dev: { id: dev.index, maxPasids: dev.maxPasids }, owner: domain }) : -1;
      if (pasid < 0) throw simError('ENOSPC', op, 'pasid-space-exhausted', `no PASID below ${dev.maxPasids}`);
    } else if (pasid >= dev.maxPasids) {
      throw simError('EINVAL', op, 'pasid-out-of-range', `domain PASID ${pasid} ≥ ${dev.maxPasids} of ${dev.bdf}`);
    }
    try {
      await this.hooks.prepare(dev);
      await this.driver.setDevPasid(dev, pasid, domain, undefined, op);
    } catch (e) {
      if (fresh) this.pasids.free(pasid);
      throw e;
    }
    this.pasidOf.set(domain, pasid);
    this.add(this.users, domain, dev);
    this.add(this.byDevice, dev, domain);
  }

  /** Never fails; a domain not aux-attached to the device is left alone. */
  async detach(domain: Domain, dev: Device): Promise<void> {
    const pasid = this.pasidOf.get(domain);
    const set = this.users.get(domain);
    if (pasid === undefined || !set?.has(dev)) return;
    await this.driver.blockDevPasid(dev, pasid, domain);
    set.delete(dev);
    this.byDevice.get(dev)?.delete(domain);
    if (set.size === 0) {
      this.users.delete(domain);
      this.pasidOf.delete(domain);
      this.pasids.free(pasid);
    }
  }

  getPasid(domain: Domain, dev: Device): number {
    const pasid = this.pasidOf.get(domain);
    if (pasid === undefined || !this.users.get(domain)?.has(dev)) throw simError('EINVAL', 'auxGetPasid', 'no-aux-pasid', `domain ${domain.id} on ${dev.bdf}`);
    return pasid;
  }

  /** vfio type1's attach of an mdev group (seed 004). */
  async attachMdevGroup(domain: Domain, group: Group): Promise<void> {
    const op = 'attachMdevGroup';
    const parents = new Set(group.devices.map(parentOf));
    const parent = [...parents][0];
    if (parents.size !== 1 || parent === undefined) {
      throw simError('EINVAL', op, 'not-one-parent', `group ${group.id}: every device must be an mdev of the same parent`);
    }
    if (this.mdevGroups.has(group)) throw simError('EBUSY', op, 'mdev-group-attached', `group ${group.id} already has a domain`);
    const aux = this.features.isEnabled(parent, 'aux');
    if (aux) await this.attach(domain, parent);
    else await this.hooks.attachDevice(domain, parent);
    this.mdevGroups.set(group, { domain, parent, aux });
  }

  async detachMdevGroup(domain: Domain, group: Group): Promise<void> {
    const g = this.mdevGroups.get(group);
    if (!g || g.domain !== domain) return;
    this.mdevGroups.delete(group);
    if (g.aux) await this.detach(domain, g.parent);
    else await this.hooks.detachDevice(domain, g.parent);
  }

  /** The PASID an mdev's DMA carries (its aux domain's), or undefined. */
  mdevPasid(dev: Device): number | undefined {
    const g = this.mdevGroups.get(dev.group);
    return g?.aux ? this.pasidOf.get(g.domain) : undefined;
  }

  private add<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
    const s = m.get(k) ?? new Set<V>();
    s.add(v);
    m.set(k, s);
  }
}
