/**
 * Test-only hooks (`testHooks: true`), the simulator's equivalents of the kernel selftests'
 * IOMMU_TEST_OP_*: look inside caches and tables, make programming steps fail (fail-nth),
 * raise hardware events as a device would, wedge or crash a worker.
 * Does not model: anything of the hardware; every hook is refused (EOPNOTSUPP) without
 * testHooks.
 */
import { simError } from '../shared/errors.js';
import { SmmuTables } from './smmu-tables.js';
import { AmdTables } from './amd-tables.js';
import { FR, type FaultReasonName, faultReasonName } from '../shared/layout/fault-record.js';
import { asU64 } from '../shared/units.js';
import type { Perm, Simulator } from './simulator.js';
import type { Device } from './topology.js';
import type { IommufdContext } from './iommufd/context.js';

/** A page request (or Stop Marker) a test makes a device send. */
export interface InjectedPageRequest {
  pasid?: number;
  /** PRG index, 0–511 (not needed for a stop marker). */
  grpid?: number;
  /** Last page in group (LPIG). */
  last?: boolean;
  addr?: bigint;
  perm?: Perm;
  /** A PCIe Stop Marker for `pasid` instead of a page request. */
  stopMarker?: boolean;
}

/** Test-only hooks (testHooks: true), the equivalents of IOMMU_TEST_OP_*. */
export class TestHooks {
  constructor(private readonly sim: Simulator, private readonly enabled: boolean) {}

  private check(op: string): void {
    if (!this.enabled) throw simError('EOPNOTSUPP', op, 'test-hooks-disabled', 'start the simulator with testHooks: true');
  }

  /** The IOTLB entries of one IOMMU, as the hardware holds them now. */
  iotlbEntries(iommu: number): Promise<{ did: number; pasidTag: number; vpn: number; sizeShift: number; pfn: number; perm: number; pgtt: number }[]> {
    this.check('test.iotlbEntries');
    return this.sim.handle(iommu).request({ type: 'test', iommu, op: 'iotlb-entries' });
  }

  /**
   * The per-PASID entry memory holds for (dev, pasid), decoded in the profile's format: the
   * VT-d PASID-table entry, the SMMUv3 CD, the AMD GCR3 entry (undefined if no table covers it).
   */
  pasidEntry(dev: Device, pasid: number) {
    this.check('test.pasidEntry');
    const t = this.sim.tables(dev.iommu);
    if (t instanceof SmmuTables) return t.device(dev.rid) ? t.readCd(dev.rid, pasid) : undefined;
    if (t instanceof AmdTables) return t.device(dev.rid) ? t.readGcr3(dev.rid, pasid) : undefined;
    return t.readPasidEntry(dev.rid, pasid);
  }

  /**
   * A driver's tag space (SMMUv3 ASIDs and AMD domain ids: system-wide; SMMUv3 VMIDs: of
   * SMMU `iommu`), e.g. to fill it before an exhaustion test.
   */
  idSpace(kind: 'smmu-asid' | 'smmu-vmid' | 'amd-domain-id', iommu = 0) {
    this.check('test.idSpace');
    return this.sim.idSpace(kind, iommu);
  }

  /**
   * Makes the n-th hardware-programming step from now (table frame, domain id, PASID-entry
   * write, map) fail with ENOMEM; 0 disarms. Returns nothing; `failNthSteps()` tells how
   * many steps ran since, so a sweep knows when N went past the scenario.
   */
  failNth(n: number): void {
    this.check('test.failNth');
    this.sim.failNth.arm(n);
  }

  failNthSteps(): number {
    this.check('test.failNthSteps');
    return this.sim.failNth.steps;
  }

  /**
   * The device sends a page request (IOMMU_TEST_OP-style) — or, with `stopMarker`, a PCIe
   * Stop Marker for `pasid` — and the promise resolves once the coordinator has taken it
   * in. `dropped` tells that the page request queue overflowed (or its overflow was still
   * pending) and the request was lost; a lost last-in-group request was answered SUCCESS by
   * the IOMMU itself.
   */
  async injectPageRequest(dev: Device, r: InjectedPageRequest): Promise<{ dropped: boolean }> {
    return (await this.injectPageRequests(dev, [r]))[0];
  }

  /**
   * The device sends several page requests back to back, all written by the IOMMU before
   * software looks at the queue (so a burst can overflow it); resolves once the
   * coordinator has taken in what reached the queue.
   */
  async injectPageRequests(dev: Device, rs: InjectedPageRequest[]): Promise<{ dropped: boolean }[]> {
    const op = 'test.injectPageRequest';
    this.check(op);
    this.sim.checkDevice(dev, op);
    if (!Array.isArray(rs)) throw simError('EINVAL', op, 'bad-requests', 'an array of page requests');
    const reqs = rs.map((r) => {
      if (typeof r !== 'object' || r === null) throw simError('EINVAL', op, 'bad-request');
      const stop = r.stopMarker === true;
      if (stop && r.pasid === undefined) throw simError('EINVAL', op, 'stop-marker-needs-pasid');
      if (r.pasid !== undefined && !(Number.isInteger(r.pasid) && r.pasid >= 0 && r.pasid < 1 << 20)) throw simError('EINVAL', op, 'bad-pasid', String(r.pasid));
      const grpid = r.grpid ?? 0;
      if (!stop && (!Number.isInteger(grpid) || grpid < 0 || grpid > 511 || r.grpid === undefined)) throw simError('EINVAL', op, 'bad-grpid', String(r.grpid));
      return {
        rid: dev.rid, pasid: r.pasid ?? -1, prgIndex: grpid, last: stop || !!r.last, addr: stop ? 0n : asU64(r.addr ?? 0n, op, 'addr'),
        read: !!r.perm?.read, write: !!r.perm?.write, exec: !!r.perm?.exec, priv: !!r.perm?.priv, stopMarker: stop,
      };
    });
    // The burst arrives at the IOMMU's current modelled time, all at once.
    const queued = await this.sim.handle(dev.iommu).request<boolean[]>({ type: 'test', iommu: dev.iommu, op: 'inject-page-request', reqs });
    await this.sim.settle(); // handed over at the modelled time the driver takes them in
    return queued.map((q) => ({ dropped: !q }));
  }

  /** The IOMMU records a non-recoverable fault for the device; resolves once the coordinator has it. */
  async injectFault(dev: Device, f: { type: 'dma-unrecov'; reason: FaultReasonName; pasid?: number; addr: bigint; perm: Perm }): Promise<void> {
    const op = 'test.injectFault';
    this.check(op);
    this.sim.checkDevice(dev, op);
    if (f.type !== 'dma-unrecov') throw simError('EOPNOTSUPP', op, 'only-dma-unrecov', String(f.type));
    const code = (Object.values(FR) as number[]).find((c) => faultReasonName(c) === f.reason);
    if (code === undefined) throw simError('EINVAL', op, 'bad-reason', String(f.reason));
    await this.sim.handle(dev.iommu).request({
      type: 'test', iommu: dev.iommu, op: 'inject-fault',
      fault: { rid: dev.rid, pasid: f.pasid ?? -1, addr: asU64(f.addr, op, 'addr'), reason: code, write: !!f.perm?.write },
    });
    await this.sim.settle(); // handed over at the modelled time the driver takes it in
  }

  /** iopf_queue_discard_partial for one IOMMU; returns how many partial groups were dropped. */
  iopfQueueDiscardPartial(iommu: number): number {
    this.check('test.iopfQueueDiscardPartial');
    return this.sim.iopfHooks().discardPartial(iommu);
  }

  /** iopf_queue_remove_device: pending groups answered INVALID, partials freed; later requests answered INVALID. */
  iopfQueueRemoveDevice(dev: Device): Promise<void> {
    this.check('test.iopfQueueRemoveDevice');
    this.sim.checkDevice(dev, 'test.iopfQueueRemoveDevice');
    return this.sim.iopfHooks().removeDevice(dev);
  }

  /** iopf_queue_add_device: ENODEV without PRI, EBUSY when the device is already in its queue. */
  iopfQueueAddDevice(dev: Device): void {
    this.check('test.iopfQueueAddDevice');
    this.sim.checkDevice(dev, 'test.iopfQueueAddDevice');
    this.sim.iopfHooks().addDevice(dev);
  }

  /** Makes a worker throw, as a bug in the hardware model would. */
  crashWorker(iommu: number): void {
    this.check('test.crashWorker');
    this.sim.handle(iommu).host.post({ type: 'test', id: 0, iommu, op: 'crash' });
  }

  /** Makes a worker stop answering (a wedged thread). */
  hangWorker(iommu: number): void {
    this.check('test.hangWorker');
    this.sim.handle(iommu).host.post({ type: 'test', id: 0, iommu, op: 'hang' });
  }

  /** IOMMU_TEST_OP_ADD_RESERVED: reserves [start, start + length) in an IOAS (EADDRINUSE over an area or allowed range). */
  ioasAddReserved(fd: IommufdContext, ioasId: number, start: bigint, length: bigint): void {
    this.check('test.ioasAddReserved');
    fd.addReservedForTest(ioasId, start, length);
  }

  /** IOMMU_TEST_OP_PASID_CHECK_HWPT: the HWPT id the core has at (device, PASID), or 0 (PASID 0: the RID). */
  pasidCheckHwpt(fd: IommufdContext, devId: number, pasid: number): number {
    this.check('test.pasidCheckHwpt');
    return fd.pasidHwptId(devId, pasid);
  }
}
