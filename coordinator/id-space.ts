/**
 * Tag-id spaces of the IOMMU drivers: SMMUv3 ASIDs and VMIDs, AMD DomainIDs and VT-d DIDs,
 * each a 16-bit space whose exhaustion fails with the errno the kernel returns.
 *
 * Models: lowest-free-first allocation from `first` to 2^bits − 1, as the kernel's IDA
 * (ida_alloc_range) and allocating XArray (xa_alloc with XA_LIMIT) both do; explicit
 * reservation of one id (the kdump/kexec adoption path); free. The errno on exhaustion, per
 * space, verified in the Linux sources:
 *  - SMMUv3 ASID: arm_smmu_domain_finalise_s1() and arm_smmu_sva_domain_alloc() call
 *    xa_alloc(&arm_smmu_asid_xa, …, XA_LIMIT(1, (1 << smmu->asid_bits) − 1)) and return its
 *    error as is; xa_alloc returns −EBUSY "if there are no free entries in @limit" → EBUSY.
 *  - SMMUv3 VMID: arm_smmu_domain_finalise_s2() (and arm_vsmmu_init()) call
 *    ida_alloc_range(&smmu->vmid_map, 1, (1 << smmu->vmid_bits) − 1) ("Reserve VMID 0 for
 *    stage-2 bypass STEs") and return the negative id → ENOSPC.
 *  - AMD DomainID: pdom_id_alloc() is ida_alloc_range(&pdom_ids, 1, MAX_DOMAIN_ID − 1) →
 *    −ENOSPC, but protection_domain_alloc() turns a failure into NULL and the paging-domain
 *    allocators (do_iommu_domain_alloc / amd_iommu_domain_alloc_paging_v1) into
 *    ERR_PTR(−ENOMEM) → ENOMEM; setup_gcr3_table() (the per-device domain id of a GCR3
 *    table) returns −ENOSPC → ENOSPC on that path (`path: 'gcr3-table'`).
 *  - VT-d DID: ida_alloc_range from IDA_START_DID = 2 per IOMMU → ENOSPC (the simulator's
 *    DID allocator: `new IdSpace('vtd-did')` per IOMMU).
 * Scope (one space per IOMMU or one for the system) is the caller's choice; `scope` in the
 * spec records what Linux does: arm_smmu_asid_xa and pdom_ids are global, vmid_map and the
 * VT-d domain_ida are per IOMMU.
 * Does not model: xa_alloc_cyclic, the SVA ASID sharing/stealing of older kernels, memory
 * allocation failure (ENOMEM of the allocator itself).
 */
import { type SimErrorCode, simError } from '../shared/errors.js';
import { PROFILE_WIDTHS, type TagSpaceWidth } from '../shared/layout/profile-widths.js';

export type IdSpaceKind = 'smmu-asid' | 'smmu-vmid' | 'amd-domain-id' | 'vtd-did';

export interface IdSpaceSpec {
  readonly kind: IdSpaceKind;
  readonly width: TagSpaceWidth;
  /** The kernel allocator: its own errno when the range is full (xa_alloc EBUSY, ida ENOSPC). */
  readonly allocator: 'xa_alloc' | 'ida_alloc_range';
  /** Errno the kernel's caller returns on exhaustion (the default path). */
  readonly code: SimErrorCode;
  /** Other kernel paths over the same space whose errno differs. */
  readonly pathCodes: Readonly<Record<string, SimErrorCode>>;
  readonly reason: string;
  readonly scope: 'per-iommu' | 'global';
  /** Where the behaviour comes from. */
  readonly source: string;
}

export const ID_SPACE_SPECS: Readonly<Record<IdSpaceKind, IdSpaceSpec>> = {
  'smmu-asid': {
    kind: 'smmu-asid', width: PROFILE_WIDTHS.smmuv3.tags.asid, allocator: 'xa_alloc', code: 'EBUSY', pathCodes: {},
    reason: 'asid-exhausted', scope: 'global',
    source: 'arm-smmu-v3.c arm_smmu_domain_finalise_s1, arm-smmu-v3-sva.c arm_smmu_sva_domain_alloc: xa_alloc → -EBUSY',
  },
  'smmu-vmid': {
    kind: 'smmu-vmid', width: PROFILE_WIDTHS.smmuv3.tags.vmid, allocator: 'ida_alloc_range', code: 'ENOSPC', pathCodes: {},
    reason: 'vmid-exhausted', scope: 'per-iommu',
    source: 'arm-smmu-v3.c arm_smmu_domain_finalise_s2: ida_alloc_range(&smmu->vmid_map, 1, …) → -ENOSPC',
  },
  'amd-domain-id': {
    kind: 'amd-domain-id', width: PROFILE_WIDTHS.amd.tags.domainId, allocator: 'ida_alloc_range', code: 'ENOMEM',
    pathCodes: { 'gcr3-table': 'ENOSPC' }, reason: 'domain-id-exhausted', scope: 'global',
    source: 'amd/iommu.c pdom_id_alloc (ida → -ENOSPC); protection_domain_alloc → NULL → domain alloc ERR_PTR(-ENOMEM); setup_gcr3_table → -ENOSPC',
  },
  'vtd-did': {
    kind: 'vtd-did', width: PROFILE_WIDTHS.vtd.tags.did, allocator: 'ida_alloc_range', code: 'ENOSPC', pathCodes: {},
    reason: 'did-exhausted', scope: 'per-iommu',
    source: 'intel/iommu.c domain_attach_iommu: ida_alloc_range(&iommu->domain_ida, IDA_START_DID, …) → -ENOSPC',
  },
};

export interface IdSpaceOptions {
  /**
   * Width override: 8 for SMMUs without IDR0.ASID16 / VMID16, or a VT-d CAP.ND below 6
   * (2^(4 + 2·ND) ids). Defaults to the spec's 16 bits.
   */
  bits?: number;
}

/** One tag space: ids first … 2^bits − 1, lowest free id first. */
export class IdSpace {
  readonly spec: IdSpaceSpec;
  readonly first: number;
  readonly max: number;
  private readonly used: Uint8Array;
  /** No id below `hint` (and ≥ first) is free. */
  private hint: number;
  private count = 0;

  constructor(kind: IdSpaceKind, opts: IdSpaceOptions = {}) {
    this.spec = ID_SPACE_SPECS[kind];
    const bits = opts.bits ?? this.spec.width.bits;
    if (!Number.isInteger(bits) || bits < 1 || bits > this.spec.width.bits) {
      throw simError('EINVAL', 'id-space', 'bad-width', `${kind}: ${bits} bits (1..${this.spec.width.bits})`);
    }
    this.first = this.spec.width.first;
    this.max = 2 ** bits - 1;
    this.used = new Uint8Array(this.max + 1);
    this.hint = this.first;
  }

  /** Ids this space can hand out. */
  get capacity(): number {
    return Math.max(0, this.max - this.first + 1);
  }

  get inUse(): number {
    return this.count;
  }

  get available(): number {
    return this.capacity - this.count;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id <= this.max && this.used[id] === 1;
  }

  /**
   * The lowest free id. When none is left, throws SimError with the kernel's errno for
   * `path` (the spec's default path when omitted) and reason `<kind>-exhausted`.
   */
  alloc(op: string, path?: string): number {
    for (let id = this.hint; id <= this.max; id++) {
      if (this.used[id] === 0) {
        this.used[id] = 1;
        this.count++;
        this.hint = id + 1;
        return id;
      }
    }
    this.hint = this.max + 1;
    const code = path === undefined ? this.spec.code : this.spec.pathCodes[path];
    if (code === undefined) throw simError('EINVAL', op, 'unknown-path', `${this.spec.kind} has no path ${path}`);
    throw simError(code, op, this.spec.reason,
      `no free ${this.spec.kind} in ${this.first}..${this.max} (${this.spec.allocator})`);
  }

  /**
   * Takes one given id (the kdump/kexec adoption of ids already in hardware tables). Out
   * of range → EINVAL (as arm_smmu_kdump_resv_vmid); already taken → the allocator's own
   * errno (ida_alloc_range(id, id) gives ENOSPC, xa_alloc EBUSY).
   */
  reserve(id: number, op: string): void {
    if (!Number.isInteger(id) || id < this.first || id > this.max) {
      throw simError('EINVAL', op, 'id-out-of-range', `${this.spec.kind} ${id} outside ${this.first}..${this.max}`);
    }
    if (this.used[id] === 1) {
      throw simError(this.spec.allocator === 'xa_alloc' ? 'EBUSY' : 'ENOSPC', op, 'id-in-use', `${this.spec.kind} ${id}`);
    }
    this.used[id] = 1;
    this.count++;
  }

  /** Returns an id. Freeing an id that is not allocated is a caller bug (the kernel WARNs): EINVAL. */
  free(id: number, op = 'id-free'): void {
    if (!this.has(id)) throw simError('EINVAL', op, 'id-not-allocated', `${this.spec.kind} ${id}`);
    this.used[id] = 0;
    this.count--;
    if (id < this.hint) this.hint = id;
  }
}
