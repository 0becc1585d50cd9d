/**
 * The v5 ioasid allocator (drivers/iommu/ioasid.c, v5.5–v6.3; SEMANTICS.md §2.1) and the
 * v5 per-mm SVA PASID (iommu_sva_alloc_pasid / mm_pasid_drop). Used with semantics 'v5'.
 *
 * Models:
 * - One IOASID space, tagged by sets (DECLARE_IOASID_SET: a set is only a namespace tag;
 *   two sets declared with the same name are still different sets).
 * - alloc(set, min, max, data) → id in [min, max] inclusive, lowest free first with the
 *   default allocator, INVALID_IOASID on failure; free(unknown) is a no-op (kernel logs);
 *   find(set | null, id, getter?) → data, ENOENT / EACCES, null when the getter refuses;
 *   setData(unknown) → ENOENT.
 * - Custom allocators (guest vcmd PASID allocation): the first registered becomes active
 *   and takes precedence over the default; registering while the default allocator has
 *   outstanding ids → EAGAIN; the same ops object twice → EEXIST; ops with the same alloc
 *   and free functions share one allocator (one id table); later ones with different
 *   functions queue behind the active one and become active, in registration order, when
 *   it is unregistered. alloc/free/find/setData only see the ACTIVE allocator's ids.
 * - unregisterAllocator never throws (the kernel's is void): unknown ops are a no-op.
 *   When the last ops of an allocator goes while it still tracks ids, the kernel WARNs and
 *   drops them; here likewise: the ids are orphaned (not passed to ops.free, no longer
 *   known to find/free/setData), counted in stats().orphaned and described in warnings[].
 *   When no custom allocator remains, the default allocator is active again (its own
 *   table, untouched, never held ids while custom ones were active).
 * - A custom allocator's answer is checked: anything but an integer in [min, max] not
 *   already tracked fails the allocation (an id it did return is handed back to ops.free),
 *   like the kernel's xa_alloc(XA_LIMIT(id, id)) check.
 * - svaAllocPasid(mm, min, max): min == 0, max < min, either INVALID → EINVAL; an mm that
 *   already has a PASID keeps it, but one outside [min, max) → EOVERFLOW (the kernel's
 *   half-open check: an existing PASID equal to max overflows); allocation failure →
 *   ENOMEM. The PASID lives until MmPasid.drop() (mm_pasid_drop when the mm is freed).
 * Does not model: RCU and locking; the default allocator's range beyond the 20-bit PASID
 * space (max is clipped to 2^20 − 1); the custom ops' pdata argument — the third argument
 * passed to ops.alloc is the caller's data instead (TS closures carry the allocator's own).
 */
import { simError } from '../shared/errors.js';
import { PASID_SPACE } from './pasid-ida.js';
import { LowestFreeIda, PASID_MAX_ID, type PasidAllocRequest, type PasidAllocator, type PasidAllocatorStats } from './pasid-allocator.js';

/** INVALID_IOASID ((ioasid_t)-1). */
export const INVALID_IOASID = 0xffffffff;

/** A set tag from declareSet(). */
export interface IoasidSet {
  readonly name: string;
}

/** struct ioasid_allocator_ops (pdata folded into the object). */
export interface IoasidAllocatorOps {
  alloc(min: number, max: number, data?: unknown): number;
  free(id: number): void;
}

interface IoasidData { set: IoasidSet; data: unknown }

/**
 * ioasid_allocator_data: one id space, shared by every ops with the same functions. The
 * functions are called with `this` = the first registered member (the kernel's parent ops).
 */
interface AllocatorData {
  readonly members: IoasidAllocatorOps[];
  readonly alloc: IoasidAllocatorOps['alloc'];
  readonly free: IoasidAllocatorOps['free'];
  readonly ids: Map<number, IoasidData>;
}

export interface IoasidStats {
  /** Ids tracked by the active allocator. */
  readonly outstanding: number;
  /** 'default' or 'custom'. */
  readonly active: 'default' | 'custom';
  /** Registered custom allocators (distinct alloc/free function pairs). */
  readonly customAllocators: number;
  /** Ids dropped because their allocator was unregistered while holding them. */
  readonly orphaned: number;
}

export class Ioasid {
  private readonly ida = new LowestFreeIda();
  private readonly defaultIds = new Map<number, IoasidData>();
  private readonly custom: AllocatorData[] = [];
  private orphaned = 0;
  /** Kernel WARN/pr_warn lines worth a test's attention. */
  readonly warnings: string[] = [];
  /** iommu_sva_pasid: the set SVA's per-mm PASIDs are allocated in. */
  readonly svaSet: IoasidSet = this.declareSet('iommu_sva_pasid');

  /** DECLARE_IOASID_SET(name). */
  declareSet(name: string): IoasidSet {
    return Object.freeze({ name });
  }

  /** ioasid_alloc: an id in [min, max] (inclusive) or INVALID_IOASID. */
  alloc(set: IoasidSet, min: number, max: number, data?: unknown): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) return INVALID_IOASID;
    const active = this.custom[0];
    if (!active) {
      const id = this.ida.alloc(min, Math.min(max, PASID_SPACE - 1));
      if (id < 0) return INVALID_IOASID;
      this.defaultIds.set(id, { set, data });
      return id;
    }
    const id = active.alloc.call(active.members[0], min, max, data);
    if (id === INVALID_IOASID || id === -1) return INVALID_IOASID;
    if (!Number.isInteger(id) || id < min || id > max || active.ids.has(id)) {
      this.warnings.push(`custom allocator returned unusable id ${id} for [${min}, ${max}]`);
      if (Number.isInteger(id) && id >= 0 && !active.ids.has(id)) active.free.call(active.members[0], id);
      return INVALID_IOASID;
    }
    active.ids.set(id, { set, data });
    return id;
  }

  /** ioasid_free: unknown ids (to the active allocator) are ignored. */
  free(id: number): void {
    const active = this.custom[0];
    if (!active) {
      if (!this.defaultIds.delete(id)) return;
      this.ida.free(id);
      return;
    }
    if (!active.ids.has(id)) return;
    active.free.call(active.members[0], id);
    active.ids.delete(id);
  }

  /**
   * ioasid_find: the id's data. Unknown → ENOENT; in another set than `set` → EACCES
   * (set null: any set); a getter that returns false → null.
   */
  find(set: IoasidSet | null, id: number, getter?: (data: unknown) => boolean): unknown {
    const d = this.table().get(id);
    if (!d) throw simError('ENOENT', 'ioasidFind', 'no-such-ioasid', String(id));
    if (set !== null && d.set !== set) throw simError('EACCES', 'ioasidFind', 'other-set', `${id} is in ${d.set.name}`);
    if (getter && !getter(d.data)) return null;
    return d.data;
  }

  /** ioasid_set_data: unknown → ENOENT. */
  setData(id: number, data: unknown): void {
    const d = this.table().get(id);
    if (!d) throw simError('ENOENT', 'ioasidSetData', 'no-such-ioasid', String(id));
    d.data = data;
  }

  /** ioasid_register_allocator: EAGAIN while the default has ids, EEXIST for the same ops. */
  registerAllocator(ops: IoasidAllocatorOps): void {
    const op = 'ioasidRegisterAllocator';
    if (typeof ops?.alloc !== 'function' || typeof ops?.free !== 'function') throw simError('EINVAL', op, 'bad-ops');
    if (this.custom.length === 0 && this.defaultIds.size > 0) {
      throw simError('EAGAIN', op, 'default-has-ids', `${this.defaultIds.size} outstanding`);
    }
    if (this.custom.some((a) => a.members.includes(ops))) throw simError('EEXIST', op, 'already-registered');
    const same = this.custom.find((a) => a.alloc === ops.alloc && a.free === ops.free);
    if (same) { same.members.push(ops); return; } // shares that allocator's space
    this.custom.push({ members: [ops], alloc: ops.alloc, free: ops.free, ids: new Map() });
  }

  /** ioasid_unregister_allocator: never fails; see the header for outstanding ids. */
  unregisterAllocator(ops: IoasidAllocatorOps): void {
    const i = this.custom.findIndex((a) => a.members.includes(ops));
    if (i < 0) return;
    const a = this.custom[i];
    a.members.splice(a.members.indexOf(ops), 1);
    if (a.members.length > 0) return; // others still share this space
    if (a.ids.size > 0) {
      this.orphaned += a.ids.size;
      this.warnings.push(`allocator unregistered with ${a.ids.size} outstanding ids; they are dropped`);
      a.ids.clear();
    }
    this.custom.splice(i, 1); // the next registered (or the default) becomes active
  }

  stats(): IoasidStats {
    return {
      outstanding: this.table().size,
      active: this.custom.length ? 'custom' : 'default',
      customAllocators: this.custom.length,
      orphaned: this.orphaned,
    };
  }

  private table(): Map<number, IoasidData> {
    return this.custom[0]?.ids ?? this.defaultIds;
  }
}

/** An mm's PASID state (mm->pasid) for v5 SVA; the owner is what ioasid_find returns. */
export class MmPasid {
  private _pasid = INVALID_IOASID;

  constructor(readonly ioasid: Ioasid, readonly owner: unknown = undefined) {}

  /** mm->pasid: INVALID_IOASID until allocated. */
  get pasid(): number {
    return this._pasid;
  }

  get valid(): boolean {
    return this._pasid !== INVALID_IOASID;
  }

  /** @internal set by svaAllocPasid */
  set(pasid: number): void {
    this._pasid = pasid;
  }

  /** mm_pasid_drop: the mm is freed, its PASID returns to the allocator. Idempotent. */
  drop(): void {
    if (!this.valid) return;
    this.ioasid.free(this._pasid);
    this._pasid = INVALID_IOASID;
  }
}

/** What svaAllocPasid needs of an mm's PASID state (MmPasid, or an adapter over an Mm). */
export interface MmPasidState {
  readonly ioasid: Ioasid;
  readonly owner: unknown;
  readonly valid: boolean;
  readonly pasid: number;
  set(pasid: number): void;
}

/** iommu_sva_alloc_pasid (v5.x–v6.3): the mm's PASID, allocated on first use. */
export function svaAllocPasid(mm: MmPasidState, min: number, max: number): number {
  const op = 'svaAllocPasid';
  if (!Number.isInteger(min) || !Number.isInteger(max) || min === INVALID_IOASID || max === INVALID_IOASID ||
      min === 0 || max < min) {
    throw simError('EINVAL', op, 'bad-range', `[${min}, ${max}]`);
  }
  if (mm.valid) {
    // The kernel checks `pasid < min || pasid >= max`: half-open, unlike the allocation.
    if (mm.pasid < min || mm.pasid >= max) throw simError('EOVERFLOW', op, 'pasid-out-of-range', `${mm.pasid} not in [${min}, ${max})`);
    return mm.pasid;
  }
  const p = mm.ioasid.alloc(mm.ioasid.svaSet, min, max, mm.owner ?? mm);
  if (p === INVALID_IOASID) throw simError('ENOMEM', op, 'no-pasid');
  mm.set(p);
  return p;
}

/**
 * The ioasid space seen through the PasidAllocator interface, so that in the v5 profile
 * SVA, aux domains and allocGlobalPasid all draw from it (and from a registered custom
 * allocator, such as a guest's virtual-command one, when there is one).
 */
export class IoasidPasidAllocator implements PasidAllocator {
  readonly policy = 'global' as const;
  private allocs = 0;
  private frees = 0;
  private failures = 0;

  constructor(readonly ioasid: Ioasid, readonly set: IoasidSet = ioasid.svaSet) {}

  alloc(req: PasidAllocRequest): number {
    const devs = req.devices ?? (req.dev ? [req.dev] : []);
    let max = Math.min(req.max ?? PASID_MAX_ID, ...devs.map((d) => d.maxPasids - 1));
    const min = Math.max(1, req.min ?? 1);
    if (max > PASID_MAX_ID) max = PASID_MAX_ID;
    const p = max < min ? INVALID_IOASID : this.ioasid.alloc(this.set, min, max, req.owner);
    if (p === INVALID_IOASID) {
      this.failures++;
      return -1;
    }
    this.allocs++;
    return p;
  }

  free(pasid: number): void {
    this.frees++;
    this.ioasid.free(pasid);
  }

  inUse(pasid: number): boolean {
    try {
      this.ioasid.find(null, pasid);
      return true;
    } catch {
      return false;
    }
  }

  ownerOf(pasid: number): unknown {
    try {
      return this.ioasid.find(null, pasid);
    } catch {
      return undefined;
    }
  }

  stats(): PasidAllocatorStats {
    return { policy: 'global', inUse: this.ioasid.stats().outstanding, spaces: 1, allocs: this.allocs, frees: this.frees, failures: this.failures };
  }
}
