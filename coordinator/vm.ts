/**
 * Virtual machines and how their guests' PASIDs become physical ones, by the device types
 * 0–5 of the /dev/ioasid discussion (seed 001; SEMANTICS.md §2.4).
 *
 * Models: a VM with its own vPASID space (1 .. 2^20 − 1, an optional quota) and the devices
 * assigned to it (a device belongs to at most one VM: EBUSY); binding a guest vPASID on an
 * assigned device gives the pPASID its DMA carries, decided by the device's type:
 *   0, 1 — cannot issue PASIDs: no vPASID (EOPNOTSUPP 'no-vpasid');
 *   2 — an mdev that programs one fixed PASID at bind: the pPASID is allocated once per
 *       device and every vPASID of the guest maps to it (the guest's number is not used);
 *   3 — accepts any PASID from the guest without translation: pPASID == vPASID, so that
 *       number must be free in the host space (under the global policy two VMs wanting the
 *       same number conflict: EBUSY 'ppasid-conflict');
 *   4 — translates vPASID → pPASID inside the device: any free pPASID;
 *   5 — an ENQCMD mdev: KVM's PASID translation table maps the guest's vPASID to a pPASID
 *       that must be global (the CPU tags the work descriptor), so the per-device policy
 *       cannot serve it (EINVAL 'needs-global-pasid').
 * pPASIDs come from the simulator's PASID allocator (pasidPolicy), bounded by the device's
 * width, through the VM's quota'd set when it has one (ioasid_set quota carved out of the
 * system capacity: ENOSPC when the capacity is promised, ENOSPC 'ppasid-quota' beyond the
 * set); unbinding returns them. The vPASID → pPASID table is per (VM, device).
 * Does not model: the VMCS PASID translation table's format, guest PASID-table shadowing
 * (nested translation, the iommufd issue), live migration.
 */
import { simError } from '../shared/errors.js';
import { type PasidAllocator, PasidCapacity, type PasidSet } from './pasid-allocator.js';
import { PasidIda } from './pasid-ida.js';
import type { Device } from './topology.js';

const VPASID_MAX = (1 << 20) - 1;

interface Binding { ppasid: number; refs: number }

export class Vm {
  readonly devices = new Set<Device>();
  private readonly vspace = new PasidIda();
  /** device → vPASID → binding */
  private readonly table = new Map<Device, Map<number, Binding>>();
  /** Type-2 devices: the one fixed pPASID, shared by every vPASID. */
  private readonly fixed = new Map<Device, Binding>();

  constructor(
    readonly id: number,
    readonly name: string,
    private readonly vms: VmManager,
    readonly quota = VPASID_MAX,
    /** The VM's quota'd share of the host PASID space, when it has one. */
    readonly ppasidSet?: PasidSet,
  ) {}

  /** Assigns a device to this VM (vfio passthrough). */
  assign(dev: Device): void {
    this.vms.assign(this, dev);
  }

  /** Allocates a guest vPASID (the guest's own allocator: lowest free). */
  allocVpasid(): number {
    const op = 'vm.allocVpasid';
    if (this.vspace.allocated >= this.quota) throw simError('ENOSPC', op, 'vpasid-quota', `VM ${this.name} has used its ${this.quota} vPASIDs`);
    const v = this.vspace.alloc(1, VPASID_MAX);
    if (v < 0) throw simError('ENOSPC', op, 'vpasid-space-exhausted', `VM ${this.name}`);
    return v;
  }

  freeVpasid(vpasid: number): void {
    this.vspace.free(vpasid);
  }

  /** Binds guest `vpasid` on `dev`; returns the pPASID the device's DMA will carry. */
  bindVpasid(dev: Device, vpasid: number): number {
    const op = 'vm.bindVpasid';
    if (!this.devices.has(dev)) throw simError('EINVAL', op, 'not-assigned', `${dev.bdf} is not assigned to VM ${this.name}`);
    if (!Number.isInteger(vpasid) || vpasid < 1 || vpasid > VPASID_MAX) throw simError('EINVAL', op, 'bad-vpasid', String(vpasid));
    const perDev = this.table.get(dev) ?? new Map<number, Binding>();
    const have = perDev.get(vpasid);
    if (have) return have.ppasid;
    const type = dev.deviceType;
    if (type === 0 || type === 1 || dev.maxPasids === 0) throw simError('EOPNOTSUPP', op, 'no-vpasid', `${dev.bdf} (type ${type}) cannot issue PASIDs`);
    let binding: Binding;
    if (type === 2) {
      binding = this.fixed.get(dev) ?? { ppasid: this.vms.allocPpasid(dev, undefined, this, op), refs: 0 };
      this.fixed.set(dev, binding);
    } else if (type === 3) {
      binding = { ppasid: this.vms.allocPpasid(dev, vpasid, this, op), refs: 0 };
    } else if (type === 4) {
      binding = { ppasid: this.vms.allocPpasid(dev, undefined, this, op), refs: 0 };
    } else {
      if (this.vms.policy !== 'global') throw simError('EINVAL', op, 'needs-global-pasid', `${dev.bdf} (type 5, ENQCMD) needs a global pPASID; the policy is ${this.vms.policy}`);
      binding = { ppasid: this.vms.allocPpasid(dev, undefined, this, op), refs: 0 };
    }
    binding.refs++;
    perDev.set(vpasid, binding);
    this.table.set(dev, perDev);
    return binding.ppasid;
  }

  /** Drops the binding; the pPASID returns to the host space with its last binding. Never fails. */
  unbindVpasid(dev: Device, vpasid: number): void {
    const perDev = this.table.get(dev);
    const b = perDev?.get(vpasid);
    if (!b) return;
    perDev!.delete(vpasid);
    if (--b.refs === 0) {
      this.vms.freePpasid(this, dev, b.ppasid);
      if (this.fixed.get(dev) === b) this.fixed.delete(dev);
    }
  }

  /** The pPASID `vpasid` maps to on `dev`, if bound. */
  ppasidOf(dev: Device, vpasid: number): number | undefined {
    return this.table.get(dev)?.get(vpasid)?.ppasid;
  }

  /** Releases every binding and assignment (the VM is destroyed). */
  destroy(): void {
    for (const [dev, perDev] of this.table) for (const v of [...perDev.keys()]) this.unbindVpasid(dev, v);
    for (const dev of this.devices) this.vms.unassign(dev);
    this.devices.clear();
    if (this.ppasidSet) this.vms.capacity.destroySet(this.ppasidSet);
  }
}

export class VmManager {
  private nextId = 1;
  private readonly owners = new Map<Device, Vm>();
  readonly vms: Vm[] = [];

  /** The system's PASID capacity that VM quotas are carved from (ioasid_install_capacity). */
  readonly capacity: PasidCapacity;

  constructor(private readonly pasids: PasidAllocator) {
    this.capacity = new PasidCapacity(pasids);
  }

  get policy(): PasidAllocator['policy'] {
    return this.pasids.policy;
  }

  /**
   * A VM with its own vPASID space (`quota` vPASIDs) and, with `ppasidQuota`, a quota'd set
   * of host PASIDs carved out of the system capacity (ENOSPC when the capacity is promised
   * already); its pPASID allocations fail with ENOSPC 'ppasid-quota' beyond it.
   */
  create(opts: { name?: string; quota?: number; ppasidQuota?: number } = {}): Vm {
    const quota = opts.quota ?? VPASID_MAX;
    if (!Number.isInteger(quota) || quota < 1 || quota > VPASID_MAX) throw simError('EINVAL', 'vms.create', 'bad-quota', String(opts.quota));
    const id = this.nextId++;
    const name = opts.name ?? `vm${id}`;
    const set = opts.ppasidQuota === undefined ? undefined : this.capacity.createSet(name, opts.ppasidQuota);
    const vm = new Vm(id, name, this, quota, set);
    this.vms.push(vm);
    return vm;
  }

  /** The VM a device is assigned to. */
  ownerOf(dev: Device): Vm | undefined {
    return this.owners.get(dev);
  }

  assign(vm: Vm, dev: Device): void {
    const cur = this.owners.get(dev);
    if (cur === vm) return;
    if (cur) throw simError('EBUSY', 'vm.assign', 'assigned-elsewhere', `${dev.bdf} belongs to VM ${cur.name}`);
    this.owners.set(dev, vm);
    vm.devices.add(dev);
  }

  unassign(dev: Device): void {
    this.owners.delete(dev);
  }

  /** A pPASID for `dev`: exactly `want` (type 3) or the lowest free. */
  allocPpasid(dev: Device, want: number | undefined, vm: Vm, op: string): number {
    const pd = { id: dev.index, maxPasids: dev.maxPasids };
    if (want !== undefined) {
      if (want >= dev.maxPasids) throw simError('EINVAL', op, 'vpasid-too-wide', `vPASID ${want} ≥ ${dev.maxPasids} of ${dev.bdf} (type 3 needs pPASID == vPASID)`);
      this.checkQuota(vm, op);
      const p = (vm.ppasidSet ?? this.pasids).alloc({ dev: pd, min: want, max: want, owner: vm });
      if (p !== want) {
        const other = this.pasids.ownerOf(want, pd);
        const who = other instanceof Vm ? `VM ${other.name}` : 'the host';
        throw simError('EBUSY', op, 'ppasid-conflict', `pPASID ${want} (== vPASID, type 3) on ${dev.bdf} is already used by ${who}`);
      }
      return p;
    }
    this.checkQuota(vm, op);
    const p = (vm.ppasidSet ?? this.pasids).alloc({ dev: pd, owner: vm });
    if (p < 0) throw simError('ENOSPC', op, 'ppasid-space-exhausted', `no pPASID below ${dev.maxPasids} for ${dev.bdf}`);
    return p;
  }

  freePpasid(vm: Vm, dev: Device, ppasid: number): void {
    (vm.ppasidSet ?? this.pasids).free(ppasid, { id: dev.index, maxPasids: dev.maxPasids });
  }

  private checkQuota(vm: Vm, op: string): void {
    const set = vm.ppasidSet;
    if (set && set.used >= set.quota) throw simError('ENOSPC', op, 'ppasid-quota', `VM ${vm.name} has used its ${set.quota} host PASIDs`);
  }
}
