/**
 * vIOMMU, vDEVICE and vEVENTQ objects (drivers/iommu/iommufd/viommu.c, eventq.c;
 * SEMANTICS.md §5.7): the guest-visible IOMMU instance a VMM presents, the devices it
 * names by virtual id, and its event queues.
 *
 * Models: a vIOMMU of type 'default' (IOMMU_VIOMMU_TYPE_DEFAULT, the core's generic one;
 * driver types are EOPNOTSUPP on VT-d) over a nest-parent HWPT it holds; vDEVICEs with a
 * virtual id unique per vIOMMU, one per device (EEXIST), holding their vIOMMU; a device
 * unbound tombstones its vDEVICE (the id then gives ENOENT); vEVENTQs — one per type per
 * vIOMMU (EEXIST), depth ≥ 1 (EINVAL), type 'default' EOPNOTSUPP — receiving the
 * non-recoverable faults of the vIOMMU's vDEVICEs as {virtId, reason, pasid?, addr} with a
 * monotonic sequence; events beyond the depth are lost, and one lost-events header
 * ({sequence of the first lost event, lostEvents: true}, not counted against the depth)
 * is queued behind the events until read.
 * Does not model: vIOMMU cache invalidation (the default type has none: EOPNOTSUPP),
 * HW_QUEUE, mmap of vIOMMU pages, driver-specific event formats.
 */
import { simError } from '../../shared/errors.js';
import type { FaultRecord } from '../simulator.js';
import { IommufdObject, type ObjectTable } from './object-table.js';
import type { HwptPaging } from './hwpt.js';
import type { IommufdDevice } from './device.js';
import { checkArgs, checkFlags, checkId, checkU32, checkU64 } from './uapi.js';

export interface ViommuAllocArgs { flags?: unknown; type: string; devId: number; hwptId: number }
export interface VdeviceAllocArgs { viommuId: number; devId: number; virtId: bigint | number }
export interface VeventqAllocArgs { viommuId: number; type: string; depth: number; flags?: unknown }

export const VIOMMU_TYPES = ['default', 'arm-smmuv3', 'tegra241-cmdqv'] as const;
export const VEVENTQ_TYPES = ['default', 'arm-smmuv3', 'tegra241-cmdqv'] as const;

export class Viommu extends IommufdObject {
  readonly type = 'viommu' as const;
  readonly vdevices = new Map<bigint, Vdevice>();
  readonly veventqs = new Map<string, Veventq>();

  constructor(readonly viommuType: string, readonly parent: HwptPaging, readonly iommu: number) {
    super();
  }

  release(): void {
    this.parent.users--;
  }
}

export class Vdevice extends IommufdObject {
  readonly type = 'vdevice' as const;

  constructor(readonly viommu: Viommu, readonly idev: IommufdDevice, readonly virtId: bigint) {
    super();
  }

  release(): void {
    this.viommu.vdevices.delete(this.virtId);
    this.idev.vdevice = undefined;
    this.viommu.users--;
  }
}

export interface VeventOut {
  sequence: number;
  /** A header, not an event: events from this sequence on were lost (the queue was full). */
  lostEvents?: boolean;
  data?: { virtId: bigint; reason: string; pasid?: number; addr: bigint };
}

export class Veventq extends IommufdObject {
  readonly type = 'veventq' as const;
  /** Queued events, and at most one lost-events header (not counted against the depth). */
  private readonly entries: VeventOut[] = [];
  private queued = 0;
  private sequence = 0;
  private header: VeventOut | undefined;
  lost = 0;

  constructor(readonly viommu: Viommu, readonly queueType: string, readonly depth: number) {
    super();
  }

  /** A fault of one of the vIOMMU's vDEVICEs. */
  report(vdev: Vdevice, r: FaultRecord): void {
    const seq = this.sequence++;
    if (this.queued >= this.depth) {
      this.lost++;
      if (!this.header) {
        this.header = { sequence: seq, lostEvents: true };
        this.entries.push(this.header);
      }
      return;
    }
    const e: VeventOut = { sequence: seq, data: { virtId: vdev.virtId, reason: r.reason, addr: r.addr } };
    if (r.pasid !== undefined) e.data!.pasid = r.pasid;
    this.entries.push(e);
    this.queued++;
  }

  read(max: number): VeventOut[] {
    const out = this.entries.splice(0, Math.max(0, max));
    for (const e of out) {
      if (e === this.header) this.header = undefined;
      else this.queued--;
    }
    return out;
  }

  release(): void {
    this.viommu.veventqs.delete(this.queueType);
    this.viommu.users--;
  }
}

// --- the allocation calls (IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC, IOMMU_VEVENTQ_ALLOC) ---

export function allocViommu(objects: ObjectTable, args: ViommuAllocArgs): { outViommuId: number } {
  const op = 'viommuAlloc';
  const a = checkArgs<typeof args>(args, ['flags', 'type', 'devId', 'hwptId'], op);
  checkFlags(a.flags, [], op);
  if (!(VIOMMU_TYPES as readonly string[]).includes(a.type)) throw simError('EOPNOTSUPP', op, 'unknown-type', String(a.type));
  if (a.type !== 'default') throw simError('EOPNOTSUPP', op, 'type-not-supported', `'${a.type}' vIOMMUs need another IOMMU driver`);
  const idev = objects.get<IommufdDevice>(checkId(a.devId, op, 'devId'), ['device'], op);
  const obj = objects.find(checkId(a.hwptId, op, 'hwptId'));
  if (!obj) throw simError('ENOENT', op, 'no-such-object', `hwptId ${a.hwptId}`);
  if (obj.type !== 'hwpt-paging' || !(obj as HwptPaging).nestParent || (obj as HwptPaging).auto) throw simError('EINVAL', op, 'not-nest-parent', `${obj.type} ${obj.id}`);
  const parent = obj as HwptPaging;
  if (parent.domain.iommu !== idev.dev.iommu) throw simError('EINVAL', op, 'other-iommu', `HWPT ${parent.id} is on IOMMU ${parent.domain.iommu}`);
  const v = objects.add(new Viommu(a.type, parent, idev.dev.iommu));
  parent.users++;
  return { outViommuId: v.id };
}

export function allocVdevice(objects: ObjectTable, args: VdeviceAllocArgs): { outVdeviceId: number } {
  const op = 'vdeviceAlloc';
  const a = checkArgs<typeof args>(args, ['viommuId', 'devId', 'virtId'], op);
  const virtId = checkU64(a.virtId, op, 'virtId');
  const viommu = objects.get<Viommu>(checkId(a.viommuId, op, 'viommuId'), ['viommu'], op);
  const idev = objects.get<IommufdDevice>(checkId(a.devId, op, 'devId'), ['device'], op);
  if (idev.dev.iommu !== viommu.iommu) throw simError('EINVAL', op, 'other-iommu', `${idev.dev.bdf} is behind IOMMU ${idev.dev.iommu}`);
  if (viommu.vdevices.has(virtId)) throw simError('EEXIST', op, 'virt-id-in-use', String(virtId));
  if (idev.vdevice) throw simError('EEXIST', op, 'device-has-vdevice', idev.dev.bdf);
  const v = objects.add(new Vdevice(viommu, idev, virtId));
  viommu.vdevices.set(virtId, v);
  idev.vdevice = v;
  viommu.users++;
  return { outVdeviceId: v.id };
}

export function allocVeventq(objects: ObjectTable, args: VeventqAllocArgs): { outVeventqId: number } {
  const op = 'veventqAlloc';
  const a = checkArgs<typeof args>(args, ['viommuId', 'type', 'depth', 'flags'], op);
  checkFlags(a.flags, [], op);
  if (!(VEVENTQ_TYPES as readonly string[]).includes(a.type) || a.type === 'default') throw simError('EOPNOTSUPP', op, 'bad-type', String(a.type));
  const depth = checkU32(a.depth, op, 'depth');
  if (depth === 0) throw simError('EINVAL', op, 'zero-depth');
  const viommu = objects.get<Viommu>(checkId(a.viommuId, op, 'viommuId'), ['viommu'], op);
  if (viommu.veventqs.has(a.type)) throw simError('EEXIST', op, 'type-exists', a.type);
  const q = objects.add(new Veventq(viommu, a.type, depth));
  viommu.veventqs.set(a.type, q);
  viommu.users++;
  return { outVeventqId: q.id };
}
