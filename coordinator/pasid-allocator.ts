/**
 * PASID allocation policies behind one interface, chosen by configuration
 * (`pasidPolicy: 'global' | 'per-device'`), plus quota'd PASID sets carved out of a system
 * capacity (SEMANTICS.md §2.1 Jacob Pan extension, §2.2, §2.4; HARDWARE.md §4).
 *
 * Models:
 * - 'global': one system-wide space (iommu_global_pasid_ida). Valid PASIDs are 1..max−1,
 *   where max is the NARROWEST max_pasids among the devices involved (an allocation for
 *   several devices must be valid on all of them, as ENQCMD/SVA need); with no device the
 *   whole 20-bit space. Lowest free id first.
 * - 'per-device': every device numbers its own PASIDs (per-RID PASID/CD/GCR3 tables), so
 *   the same number may be live on two devices. An allocation for several devices gets the
 *   lowest number free on ALL of them (bounded by the narrowest) and takes it on each; it
 *   is then freed per device.
 * - PASID 0 is IOMMU_NO_PASID and never handed out; a device with max_pasids 0 gets none.
 * - Failure to find an id is reported as -1 (callers map it to PASID_INVALID / ENOSPC);
 *   a malformed request (per-device without a device, non-integer bounds) throws EINVAL.
 * - An optional owner per allocation (for lookups and debugging).
 * - LowestFreeIda: the PasidIda with lowest-free floors, same answers, O(1) per id when
 *   the space fills from the bottom (used by both policies and by ioasid.ts).
 * - PasidCapacity / PasidSet: ioasid_install_capacity + ioasid_set_alloc(token, quota) +
 *   ioasid_adjust_set: quota beyond the available capacity → ENOSPC, duplicate token →
 *   EEXIST, shrinking below usage → EINVAL; allocation beyond the quota fails (-1).
 *   One allocation counts one against the quota, however many devices it spans.
 * Does not model: per-IOASID refcounts and FREE_PENDING, notifiers, SPID lookups,
 * the cgroup controller; locking (the coordinator is single-threaded).
 */
import { simError } from '../shared/errors.js';
import { PASID_SPACE, PasidIda } from './pasid-ida.js';

export type PasidPolicy = 'global' | 'per-device';

/** What the allocator needs to know about a device (a topology Device fits). */
export interface PasidDevice {
  readonly id: number;
  /** dev->iommu->max_pasids: valid PASIDs are 1..maxPasids−1; 0 = no PASID support. */
  readonly maxPasids: number;
}

export interface PasidAllocRequest {
  /** The device the PASID is for. */
  dev?: PasidDevice;
  /** Or several devices the PASID must be valid on (merged with `dev` if both given). */
  devices?: readonly PasidDevice[];
  /** Lowest acceptable PASID (default and floor 1). */
  min?: number;
  /** Highest acceptable PASID, inclusive (default: the narrowest device's max_pasids − 1). */
  max?: number;
  /** Recorded with the allocation; see ownerOf(). */
  owner?: unknown;
}

export interface PasidAllocatorStats {
  readonly policy: PasidPolicy;
  /** Live (device, PASID) pairs for 'per-device'; live PASIDs for 'global'. */
  readonly inUse: number;
  /** Devices that have their own space ('per-device'); 0 for 'global'. */
  readonly spaces: number;
  readonly allocs: number;
  readonly frees: number;
  /** alloc() calls that returned -1. */
  readonly failures: number;
}

export interface PasidAllocator {
  readonly policy: PasidPolicy;
  /** Lowest free PASID satisfying the request, now in use; -1 when none. */
  alloc(req: PasidAllocRequest): number;
  /** Frees a PASID ('per-device': on `dev`, which is then required). Unknown: no-op. */
  free(pasid: number, dev?: PasidDevice): void;
  inUse(pasid: number, dev?: PasidDevice): boolean;
  /** The owner given at allocation, or undefined. */
  ownerOf(pasid: number, dev?: PasidDevice): unknown;
  stats(): PasidAllocatorStats;
}

/** Highest PASID id representable (2^20 − 1). */
export const PASID_MAX_ID = PASID_SPACE - 1;

/**
 * PasidIda plus lowest-free floors per recently used `min` (every id in [min, floor) is in
 * use), so the common "lowest free from min" allocation starts at the floor instead of
 * rescanning from min. Same answers as PasidIda for every call sequence; filling the
 * space from the bottom becomes O(1) per id.
 */
export class LowestFreeIda extends PasidIda {
  private static readonly MAX_FLOORS = 8;
  private readonly floors = new Map<number, number>();

  override alloc(min: number, max: number): number {
    if (!Number.isInteger(min) || min < 0) return super.alloc(min, max);
    const id = super.alloc(this.floors.get(min) ?? min, max); // all of [min, floor) is in use
    if (id >= 0) {
      // Most recently used last; the least recently used floor goes when there are too many.
      if (!this.floors.delete(min) && this.floors.size >= LowestFreeIda.MAX_FLOORS) {
        this.floors.delete(this.floors.keys().next().value as number);
      }
      this.floors.set(min, id + 1); // and now all of [floor, id] too
    }
    return id;
  }

  override free(id: number): void {
    if (this.has(id)) for (const [m, f] of this.floors) if (m <= id && id < f) this.floors.set(m, id);
    super.free(id);
  }
}

function devicesOf(req: PasidAllocRequest): PasidDevice[] {
  const out: PasidDevice[] = [];
  if (req.dev) out.push(req.dev);
  if (req.devices) for (const d of req.devices) if (!out.some((o) => o.id === d.id)) out.push(d);
  return out;
}

/** [min, max] for a request, or null when the range is empty (-1 result). */
function rangeOf(op: string, req: PasidAllocRequest, devs: readonly PasidDevice[]): [number, number] | null {
  if (req.min !== undefined && !Number.isInteger(req.min)) throw simError('EINVAL', op, 'bad-min', String(req.min));
  if (req.max !== undefined && !Number.isInteger(req.max)) throw simError('EINVAL', op, 'bad-max', String(req.max));
  let max = PASID_MAX_ID;
  for (const d of devs) {
    if (!Number.isInteger(d.maxPasids) || d.maxPasids < 0) throw simError('EINVAL', op, 'bad-max-pasids', `device ${d.id}`);
    max = Math.min(max, d.maxPasids - 1); // the narrowest device bounds the allocation
  }
  if (req.max !== undefined) max = Math.min(max, req.max);
  const min = Math.max(1, req.min ?? 1); // PASID 0 is IOMMU_NO_PASID
  return min > max ? null : [min, max];
}

abstract class AllocatorBase implements PasidAllocator {
  abstract readonly policy: PasidPolicy;
  protected allocs = 0;
  protected frees = 0;
  protected failures = 0;
  abstract alloc(req: PasidAllocRequest): number;
  abstract free(pasid: number, dev?: PasidDevice): void;
  abstract inUse(pasid: number, dev?: PasidDevice): boolean;
  abstract ownerOf(pasid: number, dev?: PasidDevice): unknown;
  abstract stats(): PasidAllocatorStats;
  protected done(p: number): number {
    if (p < 0) this.failures++;
    else this.allocs++;
    return p;
  }
}

class GlobalPasidAllocator extends AllocatorBase {
  readonly policy = 'global' as const;
  private readonly ida: PasidIda;
  private readonly owners = new Map<number, unknown>();

  constructor(ida?: PasidIda) {
    super();
    this.ida = ida ?? new LowestFreeIda();
  }

  alloc(req: PasidAllocRequest): number {
    const r = rangeOf('pasidAlloc', req, devicesOf(req));
    const p = r ? this.ida.alloc(r[0], r[1]) : -1;
    if (p >= 0 && req.owner !== undefined) this.owners.set(p, req.owner);
    return this.done(p);
  }

  free(pasid: number): void {
    if (!this.ida.has(pasid)) return;
    this.ida.free(pasid);
    this.owners.delete(pasid);
    this.frees++;
  }

  inUse(pasid: number): boolean {
    return this.ida.has(pasid);
  }

  ownerOf(pasid: number): unknown {
    return this.owners.get(pasid);
  }

  stats(): PasidAllocatorStats {
    return { policy: this.policy, inUse: this.ida.allocated, spaces: 0, allocs: this.allocs, frees: this.frees, failures: this.failures };
  }
}

class PerDevicePasidAllocator extends AllocatorBase {
  readonly policy = 'per-device' as const;
  private readonly spaces = new Map<number, { ida: PasidIda; owners: Map<number, unknown> }>();

  alloc(req: PasidAllocRequest): number {
    const devs = devicesOf(req);
    if (devs.length === 0) throw simError('EINVAL', 'pasidAlloc', 'no-device', "per-device policy needs 'dev' or 'devices'");
    const r = rangeOf('pasidAlloc', req, devs);
    if (!r) return this.done(-1);
    const spaces = devs.map((d) => this.space(d.id));
    if (spaces.length === 1) {
      const s = spaces[0];
      const p = s.ida.alloc(r[0], r[1]);
      if (p >= 0 && req.owner !== undefined) s.owners.set(p, req.owner);
      return this.done(p);
    }
    // Lowest id free on every device: take each device's lowest free >= candidate until they agree.
    let cand = r[0];
    for (;;) {
      let agreed = true;
      for (const s of spaces) {
        const p = s.ida.alloc(cand, r[1]);
        if (p < 0) return this.done(-1);
        s.ida.free(p); // probe only
        if (p !== cand) { cand = p; agreed = false; }
      }
      if (agreed) break;
    }
    for (const s of spaces) {
      s.ida.claim(cand);
      if (req.owner !== undefined) s.owners.set(cand, req.owner);
    }
    return this.done(cand);
  }

  free(pasid: number, dev?: PasidDevice): void {
    if (!dev) throw simError('EINVAL', 'pasidFree', 'no-device', 'per-device policy frees on a device');
    const s = this.spaces.get(dev.id);
    if (!s || !s.ida.has(pasid)) return;
    s.ida.free(pasid);
    s.owners.delete(pasid);
    this.frees++;
  }

  inUse(pasid: number, dev?: PasidDevice): boolean {
    if (!dev) throw simError('EINVAL', 'pasidInUse', 'no-device', 'per-device policy looks up on a device');
    return this.spaces.get(dev.id)?.ida.has(pasid) ?? false;
  }

  ownerOf(pasid: number, dev?: PasidDevice): unknown {
    if (!dev) throw simError('EINVAL', 'pasidOwner', 'no-device', 'per-device policy looks up on a device');
    return this.spaces.get(dev.id)?.owners.get(pasid);
  }

  stats(): PasidAllocatorStats {
    let inUse = 0;
    for (const s of this.spaces.values()) inUse += s.ida.allocated;
    return { policy: this.policy, inUse, spaces: this.spaces.size, allocs: this.allocs, frees: this.frees, failures: this.failures };
  }

  private space(id: number): { ida: PasidIda; owners: Map<number, unknown> } {
    let s = this.spaces.get(id);
    if (!s) this.spaces.set(id, (s = { ida: new LowestFreeIda(), owners: new Map() }));
    return s;
  }
}

/**
 * The allocator for a configured policy. 'global' may be given an existing IDA to share
 * (e.g. IommuApi.pasidIda, so allocGlobalPasid and this allocator see one space).
 */
export function createPasidAllocator(policy: PasidPolicy, opts: { ida?: PasidIda } = {}): PasidAllocator {
  switch (policy) {
    case 'global': return new GlobalPasidAllocator(opts.ida);
    case 'per-device':
      if (opts.ida) throw simError('EINVAL', 'createPasidAllocator', 'shared-ida-per-device', 'per-device spaces are private');
      return new PerDevicePasidAllocator();
    default: throw simError('EINVAL', 'createPasidAllocator', 'bad-policy', String(policy));
  }
}

// ---------------------------------------------------------------------------------------
// Quota'd sets (one per VM / mm): ioasid_install_capacity + ioasid_set_alloc + adjust.

/** The system capacity PASID sets carve their quotas out of. */
export class PasidCapacity {
  private readonly sets = new Map<unknown, PasidSet>();
  private reserved = 0;

  /**
   * @param allocator where the sets' PASIDs come from (shared by all sets).
   * @param capacity ioasid_install_capacity: total PASIDs the sets may reserve
   *   (default: the whole space below 2^20 minus PASID 0).
   */
  constructor(readonly allocator: PasidAllocator, readonly capacity: number = PASID_MAX_ID) {
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > PASID_MAX_ID) {
      throw simError('EINVAL', 'ioasidInstallCapacity', 'bad-capacity', String(capacity));
    }
  }

  /** Capacity not yet promised to a set. */
  get available(): number {
    return this.capacity - this.reserved;
  }

  /** ioasid_set_alloc(token, quota): ENOSPC beyond available, EEXIST for a known token. */
  createSet(token: unknown, quota: number): PasidSet {
    const op = 'ioasidSetAlloc';
    if (!Number.isInteger(quota) || quota <= 0) throw simError('EINVAL', op, 'bad-quota', String(quota));
    if (this.sets.has(token)) throw simError('EEXIST', op, 'token-exists');
    if (quota > this.available) throw simError('ENOSPC', op, 'quota-exceeds-capacity', `${quota} > ${this.available}`);
    const set = new PasidSet(this, token, quota);
    this.sets.set(token, set);
    this.reserved += quota;
    return set;
  }

  /** The set of a token, or undefined. */
  setOf(token: unknown): PasidSet | undefined {
    return this.sets.get(token);
  }

  /** ioasid_adjust_set: below current usage → EINVAL; growth beyond available → ENOSPC. */
  adjustSet(set: PasidSet, quota: number): void {
    const op = 'ioasidAdjustSet';
    if (this.sets.get(set.token) !== set) throw simError('ENOENT', op, 'no-such-set');
    if (!Number.isInteger(quota) || quota <= 0) throw simError('EINVAL', op, 'bad-quota', String(quota));
    if (quota < set.used) throw simError('EINVAL', op, 'below-usage', `${quota} < ${set.used}`);
    if (quota - set.quota > this.available) throw simError('ENOSPC', op, 'quota-exceeds-capacity', `${quota - set.quota} > ${this.available}`);
    this.reserved += quota - set.quota;
    set.setQuota(quota);
  }

  /** ioasid_set_put (last reference): frees the set's PASIDs and returns its quota. */
  destroySet(set: PasidSet): void {
    if (this.sets.get(set.token) !== set) return;
    set.freeAll();
    this.sets.delete(set.token);
    this.reserved -= set.quota;
  }
}

interface SetEntry { pasid: number; devs: PasidDevice[] }

/** A quota'd PASID set (IOASID_SET_TYPE_MM: one per VM); create via PasidCapacity.createSet. */
export class PasidSet {
  private entries = new Map<string, SetEntry>();
  private count = 0;
  private _quota: number;

  /** @internal use PasidCapacity.createSet */
  constructor(private readonly cap: PasidCapacity, readonly token: unknown, quota: number) {
    this._quota = quota;
  }

  get quota(): number { return this._quota; }
  /** Allocations live in this set. */
  get used(): number { return this.count; }

  /** Like PasidAllocator.alloc, but -1 once `used` reaches the quota. */
  alloc(req: PasidAllocRequest): number {
    if (this.cap.setOf(this.token) !== this) throw simError('ENOENT', 'ioasidAlloc', 'set-destroyed');
    if (this.count >= this._quota) return -1;
    const p = this.cap.allocator.alloc({ ...req, owner: req.owner ?? this.token });
    if (p < 0) return -1;
    const e: SetEntry = { pasid: p, devs: devicesOf(req) };
    for (const k of this.keys(e)) this.entries.set(k, e);
    this.count++;
    return p;
  }

  /** Frees an allocation of this set (on every device it was taken on). Not ours: no-op. */
  free(pasid: number, dev?: PasidDevice): void {
    const e = this.entries.get(this.key(pasid, dev));
    if (!e) return;
    this.release(e);
  }

  has(pasid: number, dev?: PasidDevice): boolean {
    return this.entries.has(this.key(pasid, dev));
  }

  /** @internal */
  setQuota(q: number): void { this._quota = q; }

  /** @internal */
  freeAll(): void {
    for (const e of new Set(this.entries.values())) this.release(e);
  }

  private release(e: SetEntry): void {
    const a = this.cap.allocator;
    if (a.policy === 'global') a.free(e.pasid);
    else for (const d of e.devs) a.free(e.pasid, d);
    for (const k of this.keys(e)) this.entries.delete(k);
    this.count--;
  }

  private keys(e: SetEntry): string[] {
    return this.cap.allocator.policy === 'global' ? [String(e.pasid)] : e.devs.map((d) => `${d.id}:${e.pasid}`);
  }

  private key(pasid: number, dev?: PasidDevice): string {
    if (this.cap.allocator.policy === 'global') return String(pasid);
    if (!dev) throw simError('EINVAL', 'ioasidFree', 'no-device', 'per-device policy frees on a device');
    return `${dev.id}:${pasid}`;
  }
}
