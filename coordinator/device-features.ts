/**
 * Device features of the v5 API (iommu_dev_{has,enable,disable}_feature, removed in
 * v6.15–6.16): AUX (auxiliary domains), SVA and IOPF, with the drivers' ordering rules.
 *
 * Models (SEMANTICS.md §1.7, §2.5): AUX needs PASID support (else EINVAL; it is a
 * scalable-mode VT-d feature); SVA needs PASID support, IOPF needs PRI (else ENODEV);
 * enabling an enabled feature EBUSY; enabling SVA on a device that can fault (PRI) before
 * IOPF is enabled EINVAL; disabling a feature not enabled EINVAL; disabling IOPF while SVA
 * is enabled EBUSY; disabling SVA while the device has bonds EBUSY; disabling AUX while
 * aux domains are attached EBUSY.
 * Does not model: the iopf queue membership that enabling SVA adds (the fault issue).
 */
import { simError } from '../shared/errors.js';
import type { Device } from './topology.js';

export type DevFeature = 'aux' | 'sva' | 'iopf';
const FEATURES: readonly DevFeature[] = ['aux', 'sva', 'iopf'];

export class DeviceFeatures {
  private readonly enabled = new Map<Device, Set<DevFeature>>();
  /** SVA bonds per device (the SVA issue keeps this count). */
  readonly bonds = new Map<Device, number>();

  constructor(private readonly auxUsers: (dev: Device) => number) {}

  has(dev: Device, f: DevFeature): boolean {
    this.check(f, 'devHasFeature');
    switch (f) {
      case 'aux': return dev.maxPasids > 0 && (dev as { kind?: string }).kind !== 'mdev';
      case 'sva': return dev.maxPasids > 0;
      case 'iopf': return dev.pri;
    }
  }

  isEnabled(dev: Device, f: DevFeature): boolean {
    this.check(f, 'devFeatureEnabled');
    return this.enabled.get(dev)?.has(f) ?? false;
  }

  enable(dev: Device, f: DevFeature): void {
    const op = 'devEnableFeature';
    this.check(f, op);
    if (!this.has(dev, f)) {
      throw simError(f === 'aux' ? 'EINVAL' : 'ENODEV', op, 'feature-not-supported', `${f} on ${dev.bdf}`);
    }
    const set = this.enabled.get(dev) ?? new Set<DevFeature>();
    if (set.has(f)) throw simError('EBUSY', op, 'feature-enabled', `${f} on ${dev.bdf}`);
    if (f === 'sva' && dev.pri && !set.has('iopf')) throw simError('EINVAL', op, 'iopf-not-enabled', `enable iopf before sva on ${dev.bdf}`);
    set.add(f);
    this.enabled.set(dev, set);
  }

  disable(dev: Device, f: DevFeature): void {
    const op = 'devDisableFeature';
    this.check(f, op);
    const set = this.enabled.get(dev);
    if (!set?.has(f)) throw simError('EINVAL', op, 'feature-not-enabled', `${f} on ${dev.bdf}`);
    if (f === 'iopf' && set.has('sva')) throw simError('EBUSY', op, 'sva-enabled', `disable sva before iopf on ${dev.bdf}`);
    if (f === 'sva' && (this.bonds.get(dev) ?? 0) > 0) throw simError('EBUSY', op, 'device-bound', `${dev.bdf} has SVA bonds`);
    if (f === 'aux' && this.auxUsers(dev) > 0) throw simError('EBUSY', op, 'aux-domains-attached', dev.bdf);
    set.delete(f);
  }

  private check(f: DevFeature, op: string): void {
    if (!FEATURES.includes(f)) throw simError('EINVAL', op, 'unknown-feature', String(f));
  }
}
