/**
 * An open iommufd (`sim.iommufd.open()`): the ioctl surface of include/uapi/linux/iommufd.h
 * as calls on plain objects (API.md "iommufd"), over the object table and the object files
 * of this folder. Each call checks its arguments the uAPI way (uapi.ts), looks its objects
 * up (ENOENT), and either completes or leaves nothing changed.
 *
 * Models: IOAS alloc/map/unmap/copy/iova_ranges/allow_iovas, device bind/unbind, HWPT
 * alloc (paging, nest parent, PASID-compatible, with a fault object; nested 'vtd-s1' over a
 * nest parent or a vIOMMU), attach/replace/detach (device.ts), the fault queue, HWPT
 * invalidate with per-entry validation and partial progress (`err.out.entryNum`),
 * get_hw_info, vIOMMU/vDEVICE/vEVENTQ, destroy (EBUSY while referenced), close (devices
 * unbound, then every object leaf first). Calls that may wait for hardware return promises.
 * Does not model: IOMMU_OPTION, IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_CHANGE_PROCESS, HW_QUEUE,
 * dirty tracking, vIOMMU cache invalidation.
 */
import type { Subscription, Observable } from 'rxjs';
import { simError } from '../../shared/errors.js';
import { U64_MAX } from '../../shared/units.js';
import type { IommuApi } from '../iommu-api.js';
import type { Mm } from '../mm.js';
import type { FaultRecord } from '../simulator.js';
import type { Device } from '../topology.js';
import { Attachments, IommufdDevice } from './device.js';
import { FaultObject, type FaultRecordOut } from './fault.js';
import { hwInfo, type HwInfo } from './hw-info.js';
import { type Hwpt, type HwptInvalidateArgs, HwptNested, HwptPaging, invalidateHwpt, parseVtdS1 } from './hwpt.js';
import { Ioas, type IovaRange } from './ioas.js';
import { GuestStage1 } from './guest-memory.js';
import type { ArenaView } from '../../shared/memory/arena.js';
import { ObjectTable } from './object-table.js';
import { checkArgs, checkFlags, checkId, checkU32, checkU64 } from './uapi.js';
import {
  type VdeviceAllocArgs, type Veventq, type VeventOut, type VeventqAllocArgs, type Viommu, type ViommuAllocArgs, allocVdevice, allocVeventq, allocViommu,
} from './viommu.js';

export interface IommufdDeps {
  readonly iommu: IommuApi;
  checkOpen(op: string): void;
  checkDevice(dev: Device, op: string): void;
  iommuPasidBits(iommu: number): number;
  /** The hardware profile (the hw-info data type follows it). */
  profile: string;
  readonly faults$: Observable<FaultRecord>;
  /** Table memory, where guest page tables are written (GuestStage1). */
  readonly view: ArenaView;
}

type PtArgs = { devId: number; ptId: number; pasid?: number | 'alloc' };

export class IommufdContext {
  private readonly objects = new ObjectTable();
  private readonly att: Attachments;
  private readonly byDev = new Map<Device, IommufdDevice>();
  private readonly faultSub: Subscription;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: IommufdDeps, readonly mm: Mm, private readonly onClose: () => void) {
    const iommu = deps.iommu;
    this.att = new Attachments({
      iommu,
      autoHwpt: (ioas, dev, op) => this.autoHwpt(ioas, dev, op),
      dropAuto: async (h) => { if (this.objects.has(h) && h.users === 0) await this.objects.remove(h, 'auto-hwpt'); },
    });
    this.faultSub = deps.faults$.subscribe((r) => this.onFault(r));
  }

  // --- IOAS ---

  ioasAlloc(args: { flags?: unknown } = {}): { outIoasId: number } {
    const op = 'ioasAlloc';
    this.check(op);
    const a = checkArgs<{ flags?: unknown }>(args, ['flags'], op);
    checkFlags(a.flags, [], op);
    return { outIoasId: this.objects.add(new Ioas(this.deps.iommu, this.mm)).id };
  }

  async ioasMap(args: { ioasId: number; flags: { fixedIova?: boolean; readable?: boolean; writeable?: boolean }; userVa: bigint; length: bigint; iova?: bigint }): Promise<{ iova: bigint }> {
    const op = 'ioasMap';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['ioasId', 'flags', 'userVa', 'length', 'iova'], op);
    const flags = checkFlags(a.flags, ['fixedIova', 'readable', 'writeable'], op);
    const userVa = checkU64(a.userVa, op, 'userVa');
    const length = checkU64(a.length, op, 'length');
    const iova = flags.has('fixedIova') ? checkU64(a.iova ?? 0n, op, 'iova') : undefined;
    if (!flags.has('readable') && !flags.has('writeable')) throw simError('EINVAL', op, 'no-access', 'readable or writeable is needed');
    const ioas = this.objects.get<Ioas>(checkId(a.ioasId, op, 'ioasId'), ['ioas'], op);
    const at = await ioas.map(userVa, length, iova, { readable: flags.has('readable'), writeable: flags.has('writeable') }, op);
    return { iova: at };
  }

  async ioasUnmap(args: { ioasId: number; iova: bigint; length: bigint }): Promise<{ length: bigint }> {
    const op = 'ioasUnmap';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['ioasId', 'iova', 'length'], op);
    const iova = checkU64(a.iova, op, 'iova');
    const length = checkU64(a.length, op, 'length');
    const ioas = this.objects.get<Ioas>(checkId(a.ioasId, op, 'ioasId'), ['ioas'], op);
    return { length: await ioas.unmap(iova, length, op) };
  }

  async ioasCopy(args: { flags: { fixedIova?: boolean; readable?: boolean; writeable?: boolean }; dstIoasId: number; srcIoasId: number; length: bigint; dstIova?: bigint; srcIova: bigint }): Promise<{ dstIova: bigint }> {
    const op = 'ioasCopy';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['flags', 'dstIoasId', 'srcIoasId', 'length', 'dstIova', 'srcIova'], op);
    const flags = checkFlags(a.flags, ['fixedIova', 'readable', 'writeable'], op);
    const length = checkU64(a.length, op, 'length');
    const srcIova = checkU64(a.srcIova, op, 'srcIova');
    const dstIova = flags.has('fixedIova') ? checkU64(a.dstIova ?? 0n, op, 'dstIova') : undefined;
    if (!flags.has('readable') && !flags.has('writeable')) throw simError('EINVAL', op, 'no-access', 'readable or writeable is needed');
    const src = this.objects.get<Ioas>(checkId(a.srcIoasId, op, 'srcIoasId'), ['ioas'], op, 'srcIoasId');
    const dst = this.objects.get<Ioas>(checkId(a.dstIoasId, op, 'dstIoasId'), ['ioas'], op, 'dstIoasId');
    return { dstIova: await src.copy(dst, srcIova, length, dstIova, { readable: flags.has('readable'), writeable: flags.has('writeable') }, op) };
  }

  ioasIovaRanges(args: { ioasId: number; numIovas: number }): { numIovas: number; allowedIovas: IovaRange[]; outIovaAlignment: bigint } {
    const op = 'ioasIovaRanges';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['ioasId', 'numIovas'], op);
    const cap = checkU32(a.numIovas, op, 'numIovas');
    const ioas = this.objects.get<Ioas>(checkId(a.ioasId, op, 'ioasId'), ['ioas'], op);
    const ranges = ioas.validRanges();
    const out = { numIovas: ranges.length, allowedIovas: ranges.slice(0, cap), outIovaAlignment: ioas.alignment };
    if (ranges.length > cap) throw simError('EMSGSIZE', op, 'too-many-ranges', `${ranges.length} ranges, room for ${cap}`, out);
    return out;
  }

  ioasAllowIovas(args: { ioasId: number; allowedIovas: IovaRange[] }): void {
    const op = 'ioasAllowIovas';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['ioasId', 'allowedIovas', 'numIovas'], op);
    const list = a.allowedIovas ?? [];
    if (!Array.isArray(list)) throw simError('EINVAL', op, 'bad-ranges', 'allowedIovas is an array');
    const ranges = list.map((r, i) => {
      const x = checkArgs<IovaRange>(r, ['start', 'last'], op);
      return { start: checkU64(x.start, op, `allowedIovas[${i}].start`), last: checkU64(x.last, op, `allowedIovas[${i}].last`) };
    });
    const ioas = this.objects.get<Ioas>(checkId(a.ioasId, op, 'ioasId'), ['ioas'], op);
    ioas.setAllowed(ranges, op);
  }

  /** IOMMU_TEST_OP_ADD_RESERVED (through sim.test.ioasAddReserved). */
  addReservedForTest(ioasId: number, start: bigint, length: bigint): void {
    const op = 'test.ioasAddReserved';
    this.check(op);
    const ioas = this.objects.get<Ioas>(checkId(ioasId, op, 'ioasId'), ['ioas'], op);
    const s = checkU64(start, op, 'start');
    const n = checkU64(length, op, 'length');
    if (n === 0n || s + n - 1n > U64_MAX) throw simError('EINVAL', op, 'bad-range');
    ioas.addReserved({}, [{ start: s, last: s + n - 1n }], op);
  }

  // --- devices ---

  async bindDevice(dev: Device): Promise<{ devId: number }> {
    const op = 'bindDevice';
    this.check(op);
    this.deps.checkDevice(dev, op);
    if (this.byDev.has(dev)) throw simError('EBUSY', op, 'already-bound', dev.bdf);
    await this.deps.iommu.deviceClaimDmaOwner(dev, this);
    const idev = this.objects.add(new IommufdDevice(dev));
    this.byDev.set(dev, idev);
    return { devId: idev.id };
  }

  async unbindDevice(devId: number): Promise<void> {
    const op = 'unbindDevice';
    this.check(op);
    await this.unbind(this.objects.get<IommufdDevice>(checkId(devId, op, 'devId'), ['device'], op));
  }

  // --- attach ---

  async attach(args: PtArgs): Promise<{ ptId: number; pasid?: number }> {
    return this.attachOrReplace(args, 'attach');
  }

  async replace(args: PtArgs): Promise<{ ptId: number; pasid?: number }> {
    return this.attachOrReplace(args, 'replace');
  }

  async detach(args: { devId: number; pasid?: number }): Promise<void> {
    const op = 'detach';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['devId', 'pasid'], op);
    const idev = this.objects.get<IommufdDevice>(checkId(a.devId, op, 'devId'), ['device'], op);
    await this.att.detach(idev, this.pasidArg(a.pasid, op));
  }

  // --- HWPT ---

  async hwptAlloc(args: { devId: number; ptId: number; flags?: { nestParent?: boolean; dirtyTracking?: boolean; pasid?: boolean }; faultId?: number; dataType?: string; data?: unknown }): Promise<{ outHwptId: number }> {
    const op = 'hwptAlloc';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['devId', 'ptId', 'flags', 'faultId', 'dataType', 'data'], op);
    const flags = checkFlags(a.flags, ['nestParent', 'dirtyTracking', 'pasid'], op);
    const hasData = a.data !== undefined && a.data !== null;
    const typed = a.dataType !== undefined && a.dataType !== 'none';
    if (!typed && hasData) throw simError('EINVAL', op, 'data-without-type');
    if (typed && !hasData) throw simError('EINVAL', op, 'type-without-data');
    const idev = this.objects.get<IommufdDevice>(checkId(a.devId, op, 'devId'), ['device'], op);
    const pt = this.objects.find(checkId(a.ptId, op, 'ptId'));
    if (!pt || (pt.type !== 'ioas' && pt.type !== 'hwpt-paging' && pt.type !== 'viommu')) throw simError('EINVAL', op, 'bad-pt-id', `ptId ${a.ptId}`);
    const dev = idev.dev;
    if (pt.type === 'ioas') {
      if (typed) throw simError('EOPNOTSUPP', op, 'paging-with-data', String(a.dataType));
      if (flags.has('dirtyTracking')) throw simError('EOPNOTSUPP', op, 'no-dirty-tracking', `IOMMU ${dev.iommu} does not track dirty pages`);
      if (flags.has('nestParent') && a.faultId) throw simError('EOPNOTSUPP', op, 'nest-parent-with-fault');
      if (flags.has('pasid') && this.deps.iommuPasidBits(dev.iommu) === 0) throw simError('EOPNOTSUPP', op, 'iommu-without-pasid');
      const fault = this.faultArg(a.faultId, op);
      const hwpt = await this.newPaging(pt as Ioas, dev, { auto: false, nestParent: flags.has('nestParent'), pasid: flags.has('pasid'), fault }, op);
      return { outHwptId: hwpt.id };
    }
    // Nested: over a nest parent, or over a vIOMMU's.
    const extra = [...flags].filter((f) => f !== 'pasid');
    if (extra.length > 0) throw simError('EOPNOTSUPP', op, 'nested-flags', extra.join(','));
    if (a.dataType !== 'vtd-s1') throw simError('EOPNOTSUPP', op, 'unsupported-data-type', String(a.dataType));
    const s1 = parseVtdS1(a.data, op);
    const viommu = pt.type === 'viommu' ? (pt as Viommu) : undefined;
    const parent = viommu ? viommu.parent : (pt as HwptPaging);
    if (viommu && viommu.iommu !== dev.iommu) throw simError('EINVAL', op, 'viommu-other-iommu', `vIOMMU ${viommu.id} is on IOMMU ${viommu.iommu}`);
    if (parent.auto || !parent.nestParent) throw simError('EINVAL', op, 'not-nest-parent', `HWPT ${parent.id}`);
    const fault = this.faultArg(a.faultId, op);
    const domain = this.deps.iommu.domainAllocNested(parent.domain, dev, s1, { iopfHandler: fault?.handler });
    const hwpt = this.objects.add(new HwptNested(this.deps.iommu, domain, parent, viommu, flags.has('pasid'), fault));
    (viommu ?? parent).users++;
    if (fault) fault.users++;
    return { outHwptId: hwpt.id };
  }

  async hwptInvalidate(args: HwptInvalidateArgs): Promise<{ entryNum: number }> {
    this.check('hwptInvalidate');
    return invalidateHwpt(this.objects, this.deps.iommu, args);
  }

  // --- faults ---

  faultQueueAlloc(args: { flags?: unknown } = {}): { outFaultId: number } {
    const op = 'faultQueueAlloc';
    this.check(op);
    const a = checkArgs<{ flags?: unknown }>(args, ['flags'], op);
    checkFlags(a.flags, [], op);
    const f = this.objects.add(new FaultObject(this.deps.iommu, (dev) => this.byDev.get(dev)?.id ?? 0));
    return { outFaultId: f.id };
  }

  faultRead(faultId: number, maxRecords: number): FaultRecordOut[] {
    const op = 'faultRead';
    this.check(op);
    return this.objects.get<FaultObject>(checkId(faultId, op, 'faultId'), ['fault'], op).read(maxRecords, op);
  }

  faultWrite(faultId: number, responses: { cookie: number; code: 'success' | 'invalid' }[]): Promise<number> {
    const op = 'faultWrite';
    this.check(op);
    return this.objects.get<FaultObject>(checkId(faultId, op, 'faultId'), ['fault'], op).write(responses, op);
  }

  /** Closes the fault fd (its reference on the object goes). */
  faultClose(faultId: number): void {
    const op = 'faultClose';
    this.check(op);
    this.objects.get<FaultObject>(checkId(faultId, op, 'faultId'), ['fault'], op).closeFd();
  }

  /** Page-request groups waiting to be read (poll's EPOLLIN). */
  faultPending(faultId: number): number {
    return this.objects.get<FaultObject>(checkId(faultId, 'faultPending', 'faultId'), ['fault'], 'faultPending').pending;
  }

  // --- hw info, vIOMMU ---

  getHwInfo(args: { devId: number; dataType?: string; flags?: unknown }): HwInfo {
    const op = 'getHwInfo';
    this.check(op);
    const a = checkArgs<typeof args>(args, ['devId', 'dataType', 'flags'], op);
    checkFlags(a.flags, [], op);
    const idev = this.objects.get<IommufdDevice>(checkId(a.devId, op, 'devId'), ['device'], op);
    return hwInfo(idev.dev, this.deps.iommuPasidBits(idev.dev.iommu), a.dataType, op, this.deps.profile);
  }

  viommuAlloc(args: ViommuAllocArgs): { outViommuId: number } {
    this.check('viommuAlloc');
    return allocViommu(this.objects, args);
  }

  vdeviceAlloc(args: VdeviceAllocArgs): { outVdeviceId: number } {
    this.check('vdeviceAlloc');
    return allocVdevice(this.objects, args);
  }

  veventqAlloc(args: VeventqAllocArgs): { outVeventqId: number } {
    this.check('veventqAlloc');
    return allocVeventq(this.objects, args);
  }

  veventqRead(veventqId: number, max: number): VeventOut[] {
    const op = 'veventqRead';
    this.check(op);
    return this.objects.get<Veventq>(checkId(veventqId, op, 'veventqId'), ['veventq'], op).read(checkU32(max, op, 'max'));
  }

  /**
   * A guest kernel's first-stage page table written into guest memory — guest-physical
   * addresses as the nest-parent HWPT `parentId` translates them — using the free guest
   * pages `tablePages` for its tables: the `pgtblAddr` of 'vtd-s1' data is its rootGpa.
   */
  guestStage1(args: { parentId: number; tablePages: bigint[]; levels?: 4 | 5 }): GuestStage1 {
    const op = 'guestStage1';
    this.check(op);
    const parent = this.objects.get<HwptPaging>(checkId(args.parentId, op, 'parentId'), ['hwpt-paging'], op);
    const iommu = this.deps.iommu;
    return new GuestStage1(this.deps.view, {
      hostFrameOf: (gpa) => {
        const pa = iommu.iovaToPhys(parent.domain, gpa);
        return pa === 0n ? undefined : Number(pa >> 12n);
      },
    }, args.tablePages, args.levels ?? 4);
  }

  // --- lifetime ---

  async destroy(id: number): Promise<void> {
    const op = 'destroy';
    this.check(op);
    const o = this.objects.find(checkId(id, op, 'id'));
    if (!o) throw simError('ENOENT', op, 'no-such-object', `id ${id}`);
    if (o.type === 'device') throw simError('EBUSY', op, 'device-bound', 'a device object goes with unbindDevice');
    if (o.type === 'fault' && (o as FaultObject).fdOpen) throw simError('EBUSY', op, 'fault-fd-open', 'close the fault fd first (faultClose)');
    await this.objects.remove(o, op);
  }

  /** Closes the iommufd: devices unbound, then every object destroyed, leaf first. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.faultSub.unsubscribe();
      let live = true;
      try {
        this.deps.checkOpen('close');
      } catch {
        live = false; // the simulator is gone: nothing left to tear down in hardware
      }
      if (!live) {
        this.onClose();
        return;
      }
      for (const o of this.objects.newestFirst()) if (o.type === 'device') await this.unbind(o as IommufdDevice);
      for (const o of this.objects.newestFirst()) if (o.type === 'fault') (o as FaultObject).closeFd();
      // Leaf first: always an object nobody references any more (every reference points
      // at an object that exists, so one is always free until the table is empty).
      for (;;) {
        const o = this.objects.newestFirst().find((x) => x.users === 0);
        if (!o) break;
        await this.objects.remove(o, 'close');
      }
      this.onClose();
    })();
    return this.closing;
  }

  /** The HWPT id attached at (device, PASID) as the core sees it, or 0 (IOMMU_TEST_OP_PASID_CHECK_HWPT). */
  pasidHwptId(devId: number, pasid: number): number {
    const op = 'test.pasidCheckHwpt';
    const idev = this.objects.get<IommufdDevice>(checkId(devId, op, 'devId'), ['device'], op);
    const d = pasid === 0 ? this.deps.iommu.getDomainForDev(idev.dev) : this.deps.iommu.getDomainForDevPasid(idev.dev, pasid);
    if (!d) return 0;
    for (const o of this.objects.newestFirst()) {
      if ((o.type === 'hwpt-paging' || o.type === 'hwpt-nested') && (o as Hwpt).domain === d) return o.id;
    }
    return 0;
  }

  // --- internals ---

  private check(op: string): void {
    this.deps.checkOpen(op);
    if (this.closed) throw simError('EINVAL', op, 'iommufd-closed');
  }

  private pasidArg(p: unknown, op: string): number {
    if (p === undefined) return 0;
    if (typeof p !== 'number' || !Number.isInteger(p) || p <= 0 || p >= 1 << 20) throw simError('EINVAL', op, 'bad-pasid', String(p));
    return p;
  }

  private faultArg(faultId: unknown, op: string): FaultObject | undefined {
    if (faultId === undefined || faultId === 0) return undefined;
    return this.objects.get<FaultObject>(checkId(faultId, op, 'faultId'), ['fault'], op, 'faultId');
  }

  private async attachOrReplace(args: PtArgs, op: 'attach' | 'replace'): Promise<{ ptId: number; pasid?: number }> {
    this.check(op);
    const a = checkArgs<PtArgs>(args, ['devId', 'ptId', 'pasid'], op);
    const idev = this.objects.get<IommufdDevice>(checkId(a.devId, op, 'devId'), ['device'], op);
    const pt = this.objects.find(checkId(a.ptId, op, 'ptId'));
    if (!pt) throw simError('ENOENT', op, 'no-such-object', `ptId ${a.ptId}`);
    if (pt.type !== 'ioas' && pt.type !== 'hwpt-paging' && pt.type !== 'hwpt-nested') throw simError('EINVAL', op, 'bad-pt-type', `${pt.type} ${pt.id}`);
    const target = pt as Hwpt | Ioas;
    if (op === 'attach' && a.pasid === 'alloc') {
      const pasid = this.att.allocPasid(idev, op);
      try {
        const h = await this.att.attach(idev, target, pasid, op);
        idev.allocatedPasids.add(pasid);
        return { ptId: h.id, pasid };
      } catch (e) {
        this.deps.iommu.freeGlobalPasid(pasid, idev.dev);
        throw e;
      }
    }
    const pasid = this.pasidArg(a.pasid, op);
    const h = op === 'attach' ? await this.att.attach(idev, target, pasid, op) : await this.att.replace(idev, target, pasid, op);
    return pasid === 0 ? { ptId: h.id } : { ptId: h.id, pasid };
  }

  private async newPaging(ioas: Ioas, dev: Device, o: { auto: boolean; nestParent: boolean; pasid: boolean; fault?: FaultObject }, op: string): Promise<HwptPaging> {
    const iommu = this.deps.iommu;
    const domain = iommu.domainAlloc('paging', { dev, nestParent: o.nestParent, iopfHandler: o.fault?.handler });
    try {
      await ioas.linkDomain(domain, op);
    } catch (e) {
      iommu.domainFree(domain);
      throw e;
    }
    const hwpt = this.objects.add(new HwptPaging(iommu, domain, ioas, o.auto, o.pasid, o.fault));
    ioas.users++;
    if (o.fault) o.fault.users++;
    return hwpt;
  }

  private async autoHwpt(ioas: Ioas, dev: Device, op: string): Promise<{ hwpt: HwptPaging; fresh: boolean }> {
    for (const o of this.objects.newestFirst().reverse()) {
      if (o instanceof HwptPaging && o.auto && o.ioas === ioas && o.domain.iommu === dev.iommu) return { hwpt: o, fresh: false };
    }
    return { hwpt: await this.newPaging(ioas, dev, { auto: true, nestParent: false, pasid: false }, op), fresh: true };
  }

  private async unbind(idev: IommufdDevice): Promise<void> {
    for (const p of [...idev.attachments.keys()].sort((x, y) => y - x)) await this.att.detach(idev, p);
    if (idev.vdevice && this.objects.has(idev.vdevice)) await this.objects.remove(idev.vdevice, 'unbind');
    idev.users = 0; // the driver's own reference goes with unbind
    await this.objects.remove(idev, 'unbind');
    this.byDev.delete(idev.dev);
    await this.deps.iommu.deviceReleaseDmaOwner(idev.dev);
  }

  private onFault(r: FaultRecord): void {
    const idev = r.dev && this.byDev.get(r.dev);
    const vdev = idev?.vdevice;
    if (!vdev) return;
    for (const q of vdev.viommu.veventqs.values()) q.report(vdev, r);
  }

}
