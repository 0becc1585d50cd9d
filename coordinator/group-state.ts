/**
 * The kernel-side state of one IOMMU group (struct iommu_group in drivers/iommu/iommu.c).
 *
 * Models: the RID domain every device of the group shares (`domain`), the default domain
 * (what a kernel driver uses) and the blocking domain (what a user-owned group sits on),
 * DMA ownership (`owner` cookie and `ownerCnt`), the PASID array (PASID → domain, shared
 * by every device of the group) and the reset/recovery flag during which attaches fail
 * with EBUSY and RID and PASIDs are parked on the blocking domain.
 * Does not model: attach handles (a PASID maps to its domain only), iommu_group sysfs.
 */
import type { Domain } from './domain.js';
import type { Group } from './topology.js';

export class GroupState {
  /** The RID domain attached now (default, blocking or a caller's). */
  domain: Domain;
  owner: object | undefined;
  ownerCnt = 0;
  readonly pasids = new Map<number, Domain>();
  /** Devices in reset/recovery (pci_dev_reset_iommu_prepare … done). */
  readonly resetting = new Set<number>();

  constructor(readonly group: Group, readonly defaultDomain: Domain, readonly blockingDomain: Domain) {
    this.domain = defaultDomain;
  }

  /** The core domain a detach returns to: blocking when owned, else default. */
  get coreDomain(): Domain {
    return this.owner !== undefined ? this.blockingDomain : this.defaultDomain;
  }
}
