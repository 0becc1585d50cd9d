/**
 * HWPTs — hardware page tables (drivers/iommu/iommufd/hw_pagetable.c, SEMANTICS.md §5.2,
 * §5.4): HWPT_PAGING (a paging domain replicating an IOAS; automatic or user-allocated;
 * optionally a nest parent, PASID-compatible, or with a fault object) and HWPT_NESTED (a
 * guest's VT-d first stage over a nest parent, optionally through a vIOMMU).
 *
 * Models: the references each holds (paging → IOAS, nested → parent or vIOMMU, → fault
 * object) and drops when destroyed; the domain freed with the HWPT; the IOAS link (areas
 * mapped in, aperture reserved) made at allocation; the VT-d stage-1 data ('vtd-s1':
 * flags {sre, wpe, eafe}, pgtblAddr 4 KiB aligned, addrWidth 48 or 57: EINVAL otherwise,
 * unknown flags EOPNOTSUPP) and the VT-d stage-1 invalidation entries ({addr 4 KiB
 * aligned, npages, flags {leaf}}; addr 0 + npages U64_MAX is everything, U64_MAX with
 * another addr EINVAL; unknown flags EOPNOTSUPP, unknown non-zero fields E2BIG).
 * Does not model: dirty tracking (no IOMMU here reports it), IOMMU_HWPT_SET_DIRTY_TRACKING,
 * the mock driver's selftest data types.
 */
import { simError } from '../../shared/errors.js';
import { U64_MAX } from '../../shared/units.js';
import type { Domain, NestedStage1 } from '../domain.js';
import type { IommuApi } from '../iommu-api.js';
import type { FaultObject } from './fault.js';
import type { Ioas } from './ioas.js';
import { IommufdObject, type ObjectTable } from './object-table.js';
import { checkArgs, checkFlags, checkId, checkU64, hex } from './uapi.js';
import type { Viommu } from './viommu.js';

export class HwptPaging extends IommufdObject {
  readonly type = 'hwpt-paging' as const;

  constructor(
    private readonly iommu: IommuApi,
    readonly domain: Domain,
    readonly ioas: Ioas,
    /** Made by an attach to the IOAS (never picked for user-allocated use). */
    readonly auto: boolean,
    readonly pasidCompat: boolean,
    readonly fault: FaultObject | undefined,
  ) {
    super();
  }

  get nestParent(): boolean {
    return this.domain.nestParent;
  }

  async release(): Promise<void> {
    await this.ioas.unlinkDomain(this.domain);
    this.ioas.users--;
    if (this.fault) this.fault.users--;
    this.iommu.domainFree(this.domain);
  }
}

export class HwptNested extends IommufdObject {
  readonly type = 'hwpt-nested' as const;

  constructor(
    private readonly iommu: IommuApi,
    readonly domain: Domain,
    readonly parent: HwptPaging,
    readonly viommu: Viommu | undefined,
    readonly pasidCompat: boolean,
    readonly fault: FaultObject | undefined,
  ) {
    super();
  }

  release(): void {
    if (this.viommu) this.viommu.users--;
    else this.parent.users--;
    if (this.fault) this.fault.users--;
    this.iommu.domainFree(this.domain);
  }
}

export type Hwpt = HwptPaging | HwptNested;

/** struct iommu_hwpt_vtd_s1 → the nested domain's first stage. */
export function parseVtdS1(data: unknown, op: string): NestedStage1 {
  if (data === undefined || data === null) throw simError('EFAULT', op, 'no-data', 'dataType needs data');
  const d = checkArgs<{ flags?: unknown; pgtblAddr?: unknown; addrWidth?: unknown }>(data, ['flags', 'pgtblAddr', 'addrWidth'], op);
  const flags = checkFlags(d.flags, ['sre', 'wpe', 'eafe'], op);
  const root = checkU64(d.pgtblAddr ?? 0n, op, 'data.pgtblAddr');
  if ((root & 0xfffn) !== 0n || root >= 1n << 52n) throw simError('EINVAL', op, 'bad-pgtbl-addr', hex(root));
  if (d.addrWidth !== 48 && d.addrWidth !== 57) throw simError('EINVAL', op, 'bad-addr-width', String(d.addrWidth));
  return { rootGpa: root, levels: d.addrWidth === 57 ? 5 : 4, sre: flags.has('sre'), wpe: flags.has('wpe') };
}

export interface VtdS1Invalidation { addr: bigint; npages: bigint }

/** One struct iommu_hwpt_vtd_s1_invalidate entry. */
export function parseVtdS1Invalidate(e: unknown, op: string): VtdS1Invalidation {
  const d = checkArgs<{ addr?: unknown; npages?: unknown; flags?: unknown }>(e, ['addr', 'npages', 'flags'], op);
  checkFlags(d.flags, ['leaf'], op);
  const addr = checkU64(d.addr ?? 0n, op, 'addr');
  const npages = checkU64(d.npages ?? 0n, op, 'npages');
  if ((addr & 0xfffn) !== 0n) throw simError('EINVAL', op, 'addr-unaligned', hex(addr));
  if (npages === U64_MAX && addr !== 0n) throw simError('EINVAL', op, 'bad-all-range', `npages U64_MAX with addr ${hex(addr)}`);
  return { addr, npages };
}

export interface HwptInvalidateArgs { hwptId: number; dataType: string; entries: unknown[] }

/**
 * IOMMU_HWPT_INVALIDATE: a nested HWPT's entries in order; on a failing entry the error
 * carries `out.entryNum`, the count handled before it (their invalidations stay done).
 */
export async function invalidateHwpt(objects: ObjectTable, iommu: IommuApi, args: HwptInvalidateArgs): Promise<{ entryNum: number }> {
  const op = 'hwptInvalidate';
  const a = checkArgs<typeof args>(args, ['hwptId', 'dataType', 'entries', 'entryNum'], op);
  const obj = objects.find(checkId(a.hwptId, op, 'hwptId'));
  if (!obj) throw simError('ENOENT', op, 'no-such-object', `hwptId ${a.hwptId}`);
  if (obj.type === 'viommu') throw simError('EOPNOTSUPP', op, 'no-viommu-invalidate', `vIOMMU type '${(obj as unknown as { viommuType: string }).viommuType}' has no cache invalidation`);
  if (obj.type !== 'hwpt-nested') throw simError('EINVAL', op, 'not-nested', `${obj.type} ${obj.id}`);
  if (a.dataType !== 'vtd-s1') throw simError('EINVAL', op, 'unsupported-data-type', String(a.dataType));
  const entries = a.entries ?? [];
  if (!Array.isArray(entries)) throw simError('EINVAL', op, 'bad-entries', 'entries is an array');
  const hwpt = obj as HwptNested;
  let done = 0;
  for (const e of entries) {
    try {
      const inv = parseVtdS1Invalidate(e, op);
      if (inv.npages !== 0n) await iommu.flushNestedUser(hwpt.domain, inv.addr, inv.npages);
    } catch (err) {
      const x = err as { code?: string; reason?: string; message?: string };
      throw simError((x.code ?? 'EIO') as 'EIO', op, x.reason ?? 'entry-failed', `entry ${done}: ${x.message ?? ''}`, { entryNum: done });
    }
    done++;
  }
  return { entryNum: done };
}
