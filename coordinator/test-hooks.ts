/**
 * Test-only hooks (`testHooks: true`), the simulator's equivalents of the kernel selftests'
 * IOMMU_TEST_OP_*: look inside caches and tables, make programming steps fail (fail-nth),
 * raise hardware events as a device would, wedge or crash a worker.
 * Does not model: anything of the hardware; every hook is refused (EOPNOTSUPP) without
 * testHooks.
 */
import { simError } from '../shared/errors.js';
import { FR, type FaultReasonName, faultReasonName } from '../shared/layout/fault-record.js';
import { asU64 } from '../shared/units.js';
import type { Perm, Simulator } from './simulator.js';
import type { Device } from './topology.js';

/** Test-only hooks (testHooks: true), the equivalents of IOMMU_TEST_OP_*. */
export class TestHooks {
  constructor(private readonly sim: Simulator, private readonly enabled: boolean) {}

  private check(op: string): void {
    if (!this.enabled) throw simError('EOPNOTSUPP', op, 'test-hooks-disabled', 'start the simulator with testHooks: true');
  }

  /** The IOTLB entries of one IOMMU, as the hardware holds them now. */
  iotlbEntries(iommu: number): Promise<{ did: number; pasidTag: number; vpn: number; sizeShift: number; pfn: number; perm: number; pgtt: number }[]> {
    this.check('test.iotlbEntries');
    return this.sim.handle(iommu).request({ type: 'test', op: 'iotlb-entries' });
  }

  /** The PASID-table entry memory holds for (dev, pasid). */
  pasidEntry(dev: Device, pasid: number) {
    this.check('test.pasidEntry');
    return this.sim.tables(dev.iommu).readPasidEntry(dev.rid, pasid);
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

  /** The device sends a page request (IOMMU_TEST_OP-style); resolves once the coordinator has it. */
  async injectPageRequest(dev: Device, r: { pasid?: number; grpid: number; last: boolean; addr: bigint; perm: Perm }): Promise<void> {
    const op = 'test.injectPageRequest';
    this.check(op);
    this.sim.checkDevice(dev, op);
    if (!Number.isInteger(r.grpid) || r.grpid < 0 || r.grpid > 511) throw simError('EINVAL', op, 'bad-grpid', String(r.grpid));
    const ok = await this.sim.handle(dev.iommu).request<boolean>({
      type: 'test', op: 'inject-page-request',
      req: { rid: dev.rid, pasid: r.pasid ?? -1, prgIndex: r.grpid, last: !!r.last, addr: asU64(r.addr, op, 'addr'),
        read: !!r.perm?.read, write: !!r.perm?.write, exec: !!r.perm?.exec, priv: !!r.perm?.priv },
    });
    if (!ok) throw simError('EOVERFLOW', op, 'prq-full', 'the page request queue is full');
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
      type: 'test', op: 'inject-fault',
      fault: { rid: dev.rid, pasid: f.pasid ?? -1, addr: asU64(f.addr, op, 'addr'), reason: code, write: !!f.perm?.write },
    });
  }

  /** iopf_queue_discard_partial for one IOMMU; returns how many partial groups were dropped. */
  iopfQueueDiscardPartial(iommu: number): number {
    this.check('test.iopfQueueDiscardPartial');
    return this.sim.iopfHooks().discardPartial(iommu);
  }

  /** iopf_queue_remove_device: pending groups answered INVALID, partials freed. */
  iopfQueueRemoveDevice(dev: Device): Promise<void> {
    this.check('test.iopfQueueRemoveDevice');
    return this.sim.iopfHooks().removeDevice(dev);
  }

  /** Makes a worker throw, as a bug in the hardware model would. */
  crashWorker(iommu: number): void {
    this.check('test.crashWorker');
    this.sim.handle(iommu).post({ type: 'test', id: 0, op: 'crash' });
  }

  /** Makes a worker stop answering (a wedged thread). */
  hangWorker(iommu: number): void {
    this.check('test.hangWorker');
    this.sim.handle(iommu).post({ type: 'test', id: 0, op: 'hang' });
  }
}
