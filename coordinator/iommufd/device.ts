/**
 * iommufd DEVICE objects and attach / replace / detach of a device's RID or one of its
 * PASIDs to a HWPT or an IOAS (drivers/iommu/iommufd/device.c; SEMANTICS.md §5.5, §1.6).
 *
 * Models: bind claims DMA ownership of the device's group with the context as owner
 * cookie (EPERM for another context, the group moved to blocking), unbind releases it
 * after detaching everything and tombstoning the device's vDEVICE; the attachment table
 * per (group, PASID) — the first device of a group attaches the group's domain, the others
 * must name the same HWPT (EINVAL) and only take a reference; attaching an attached
 * (device, PASID) is EBUSY; an IOAS id gets an automatic HWPT_PAGING (an existing
 * automatic one of that IOAS for the device's IOMMU is reused; a new one is destroyed again
 * on failure and when its last device leaves); the PASID-compat rules (a PASID needs a
 * HWPT allocated with flags.pasid — so never an IOAS — and a PASID-capable device, and is
 * refused while the RID sits on a non-compatible HWPT; the RID may move to a
 * non-compatible HWPT only while no PASID is attached in the group); the device's
 * reserved regions enforced on the IOAS behind a RID attachment only (EADDRINUSE); a
 * fault-capable HWPT refused for a VF with PRI (EINVAL); replace (EINVAL when not
 * attached, the same HWPT a no-op, every group device's reference moved, the old HWPT kept
 * on failure); detach of something not attached is a no-op. Detach and replace drop the
 * pending faults of the old HWPT's fault object for that (device, PASID): the core
 * answered them INVALID. The seed-001 shape: pasid 'alloc' allocates a global PASID for
 * the attachment (ENOSPC when none; EINVAL for a type-5 device, whose PASID the CPU
 * translates and which therefore needs a global one, under the per-device policy) and
 * frees it at detach.
 * Does not model: vSID requirements of nested attaches (the VT-d driver has none), MSI
 * isolation checks (every IOMMU here remaps interrupts), device reset.
 */
import { simError } from '../../shared/errors.js';
import { IOMMU_PASID_INVALID } from '../../shared/units.js';
import type { IommuApi } from '../iommu-api.js';
import type { Device, Group } from '../topology.js';
import { IommufdObject } from './object-table.js';
import { type Hwpt, HwptPaging } from './hwpt.js';
import type { Ioas } from './ioas.js';
import type { Vdevice } from './viommu.js';

export class IommufdDevice extends IommufdObject {
  readonly type = 'device' as const;
  /** pasid (0 = the RID) → attached HWPT. */
  readonly attachments = new Map<number, Hwpt>();
  /** PASIDs allocated for this device by attach({pasid: 'alloc'}). */
  readonly allocatedPasids = new Set<number>();
  vdevice: Vdevice | undefined;

  constructor(readonly dev: Device) {
    super();
    this.users = 1; // held by its driver (VFIO) until unbind
  }

  release(): void {}
}

interface GroupAttach { hwpt: Hwpt; devices: Set<IommufdDevice> }

/** What the attach logic needs from its context. */
export interface AttachContext {
  readonly iommu: IommuApi;
  /** An automatic HWPT_PAGING on `ioas` for `dev` (reused or new) and whether it is new. */
  autoHwpt(ioas: Ioas, dev: Device, op: string): Promise<{ hwpt: HwptPaging; fresh: boolean }>;
  /** Destroys an automatic HWPT nobody uses any more. */
  dropAuto(hwpt: HwptPaging): Promise<void>;
}

export const pagingOf = (h: Hwpt): HwptPaging => (h instanceof HwptPaging ? h : h.parent);

export class Attachments {
  private readonly table = new Map<Group, Map<number, GroupAttach>>();

  constructor(private readonly ctx: AttachContext) {}

  at(group: Group, pasid: number): GroupAttach | undefined {
    return this.table.get(group)?.get(pasid);
  }

  private hasPasids(group: Group): boolean {
    for (const p of this.table.get(group)?.keys() ?? []) if (p !== 0) return true;
    return false;
  }

  async attach(idev: IommufdDevice, target: Hwpt | Ioas, pasid: number, op: string): Promise<Hwpt> {
    const dev = idev.dev;
    this.checkCompat(idev, target, pasid, op);
    if (idev.attachments.has(pasid)) throw simError('EBUSY', op, 'already-attached', `${dev.bdf} pasid ${pasid} is attached: use replace`);
    const ga = this.at(dev.group, pasid);
    if (ga) {
      // Another device of the group attached it already: same HWPT only, no hardware change.
      const same = ga.hwpt === target || (target.type === 'ioas' && ga.hwpt instanceof HwptPaging && ga.hwpt.auto && ga.hwpt.ioas === target);
      if (!same) throw simError('EINVAL', op, 'group-has-other-hwpt', `group ${dev.group.id} pasid ${pasid} is attached to HWPT ${ga.hwpt.id}`);
      if (pasid === 0) pagingOf(ga.hwpt).ioas.addReserved(idev, regionsOf(dev), op);
      ga.devices.add(idev);
      idev.attachments.set(pasid, ga.hwpt);
      ga.hwpt.users++;
      return ga.hwpt;
    }
    const { hwpt, fresh } = await this.resolve(target, dev, op);
    try {
      this.checkHwpt(idev, hwpt, op);
      if (pasid === 0) pagingOf(hwpt).ioas.addReserved(idev, regionsOf(dev), op);
      try {
        if (pasid === 0) await this.ctx.iommu.attachGroup(hwpt.domain, dev.group);
        else await this.ctx.iommu.attachDevicePasid(hwpt.domain, dev, pasid);
      } catch (e) {
        if (pasid === 0) pagingOf(hwpt).ioas.removeReserved(idev);
        throw e;
      }
    } catch (e) {
      if (fresh) await this.ctx.dropAuto(hwpt as HwptPaging);
      throw e;
    }
    let m = this.table.get(dev.group);
    if (!m) this.table.set(dev.group, (m = new Map()));
    m.set(pasid, { hwpt, devices: new Set([idev]) });
    idev.attachments.set(pasid, hwpt);
    hwpt.users++;
    return hwpt;
  }

  async replace(idev: IommufdDevice, target: Hwpt | Ioas, pasid: number, op: string): Promise<Hwpt> {
    const dev = idev.dev;
    const old = idev.attachments.get(pasid);
    const ga = this.at(dev.group, pasid);
    if (!old || !ga) throw simError('EINVAL', op, 'not-attached', `${dev.bdf} pasid ${pasid}`);
    this.checkCompat(idev, target, pasid, op);
    if (old === target || (target.type === 'ioas' && old instanceof HwptPaging && old.auto && old.ioas === target)) return old;
    const { hwpt, fresh } = await this.resolve(target, dev, op);
    const oldIoas = pagingOf(old).ioas;
    const newIoas = pagingOf(hwpt).ioas;
    const moveReserved = pasid === 0 && oldIoas !== newIoas;
    const added: IommufdDevice[] = [];
    try {
      this.checkHwpt(idev, hwpt, op);
      if (moveReserved) {
        for (const d of ga.devices) {
          newIoas.addReserved(d, regionsOf(d.dev), op);
          added.push(d);
        }
      }
      if (pasid === 0) await this.ctx.iommu.replaceGroupDomain(dev.group, hwpt.domain);
      else await this.ctx.iommu.replaceDevicePasid(hwpt.domain, dev, pasid);
    } catch (e) {
      for (const d of added) newIoas.removeReserved(d);
      if (fresh) await this.ctx.dropAuto(hwpt as HwptPaging);
      throw e;
    }
    if (moveReserved) for (const d of ga.devices) oldIoas.removeReserved(d);
    ga.hwpt = hwpt;
    for (const d of ga.devices) {
      d.attachments.set(pasid, hwpt);
      old.users--;
      hwpt.users++;
      old.fault?.purge(d.dev, pasid === 0 ? undefined : pasid);
    }
    if (old instanceof HwptPaging && old.auto && old.users === 0) await this.ctx.dropAuto(old);
    return hwpt;
  }

  /** Never fails; nothing attached is a no-op. */
  async detach(idev: IommufdDevice, pasid: number): Promise<void> {
    const dev = idev.dev;
    const hwpt = idev.attachments.get(pasid);
    const ga = this.at(dev.group, pasid);
    if (!hwpt || !ga) return;
    ga.devices.delete(idev);
    idev.attachments.delete(pasid);
    hwpt.users--;
    if (pasid === 0) pagingOf(hwpt).ioas.removeReserved(idev);
    if (ga.devices.size === 0) {
      this.table.get(dev.group)!.delete(pasid);
      if (pasid === 0) await this.ctx.iommu.detachGroup(hwpt.domain, dev.group);
      else await this.ctx.iommu.detachDevicePasid(hwpt.domain, dev, pasid);
    }
    hwpt.fault?.purge(dev, pasid === 0 ? undefined : pasid);
    if (idev.allocatedPasids.delete(pasid)) this.ctx.iommu.freeGlobalPasid(pasid, dev);
    if (hwpt instanceof HwptPaging && hwpt.auto && hwpt.users === 0) await this.ctx.dropAuto(hwpt);
  }

  /** seed 001: a PASID chosen for the attachment (the global allocator's lowest free). */
  allocPasid(idev: IommufdDevice, op: string): number {
    // A type-5 device (ENQCMD mdev) has its PASID translated by the CPU: it must be global.
    if (idev.dev.deviceType === 5 && this.ctx.iommu.pasids.policy === 'per-device') {
      throw simError('EINVAL', op, 'needs-global-pasid', `${idev.dev.bdf} is a type-5 device; pasidPolicy is per-device`);
    }
    const p = this.ctx.iommu.allocGlobalPasid(idev.dev);
    if (p === IOMMU_PASID_INVALID) throw simError('ENOSPC', op, 'no-free-pasid', idev.dev.bdf);
    return p;
  }

  // --- checks ---

  private checkCompat(idev: IommufdDevice, target: Hwpt | Ioas, pasid: number, op: string): void {
    const dev = idev.dev;
    if (pasid !== 0) {
      if (dev.maxPasids === 0) throw simError('EINVAL', op, 'no-pasid-support', dev.bdf);
      if (pasid >= dev.maxPasids) throw simError('EINVAL', op, 'pasid-out-of-range', `pasid ${pasid} ≥ ${dev.maxPasids}`);
      if (target.type === 'ioas') throw simError('EINVAL', op, 'ioas-for-pasid', 'automatic domains are not PASID-compatible');
      if (!target.pasidCompat) throw simError('EINVAL', op, 'hwpt-not-pasid-compat', `HWPT ${target.id} was not allocated with flags.pasid`);
      const rid = this.at(dev.group, 0);
      if (rid && !rid.hwpt.pasidCompat) throw simError('EINVAL', op, 'rid-not-pasid-compat', `the RID is attached to HWPT ${rid.hwpt.id}`);
    } else if (this.hasPasids(dev.group) && (target.type === 'ioas' || !target.pasidCompat)) {
      throw simError('EINVAL', op, 'pasids-attached', `group ${dev.group.id} has PASIDs attached: the RID needs a PASID-compatible HWPT`);
    }
  }

  private checkHwpt(idev: IommufdDevice, hwpt: Hwpt, op: string): void {
    const dev = idev.dev;
    if (hwpt.domain.iommu !== undefined && hwpt.domain.iommu !== dev.iommu) throw simError('EINVAL', op, 'foreign-hwpt', `HWPT ${hwpt.id} is for IOMMU ${hwpt.domain.iommu}`);
    if (hwpt.fault && dev.kind === 'vf' && dev.pri) throw simError('EINVAL', op, 'fault-hwpt-on-pri-vf', dev.bdf);
  }

  private async resolve(target: Hwpt | Ioas, dev: Device, op: string): Promise<{ hwpt: Hwpt; fresh: boolean }> {
    if (target.type !== 'ioas') return { hwpt: target, fresh: false };
    return this.ctx.autoHwpt(target, dev, op);
  }
}

function regionsOf(dev: Device): { start: bigint; last: bigint }[] {
  return dev.reservedRegions.map((r) => ({ start: r.start, last: r.last }));
}
