/**
 * The iommufd FAULT object (drivers/iommu/iommufd/eventq.c, IOMMU_FAULT_QUEUE_ALLOC): the
 * I/O page faults of the HWPTs allocated with it, read and answered by user space
 * (SEMANTICS.md §5.6).
 *
 * Models: the HWPT's fault handler queues each page-request group; read delivers whole
 * groups only, oldest first (a group that does not fit stays queued), each delivered group
 * getting a cookie (from 1) carried by all its records; a record is {flags: {pasidValid,
 * lastPage}, devId, pasid, grpid, perm, addr, length: 0, cookie}; maxRecords must be a
 * whole number (ESPIPE otherwise, as a read size not a multiple of the record); write
 * answers by cookie with 'success' or 'invalid' (anything else, or an unknown or used
 * cookie: EINVAL), in order, returning how many were consumed (the error only when none
 * was); the response goes out as the page group response of the group. Detach or replace
 * of the HWPT at that (device, PASID) drops the groups queued for it (the core has
 * answered them INVALID); destroying the object answers INVALID to everything pending.
 * The fault fd holds a reference until faultClose.
 * Does not model: poll() readiness (EPOLLIN is `pending > 0`), file offsets (ppos).
 */
import { simError } from '../../shared/errors.js';
import type { IommuApi } from '../iommu-api.js';
import type { PageRequestGroup, Perm, ResponseCode } from '../iopf.js';
import type { Device } from '../topology.js';
import { IommufdObject } from './object-table.js';

export interface FaultRecordOut {
  flags: { pasidValid: boolean; lastPage: boolean };
  devId: number;
  pasid: number;
  grpid: number;
  perm: Perm;
  addr: bigint;
  length: number;
  cookie: number;
}

interface QueuedGroup {
  group: PageRequestGroup;
  devId: number;
  /** Resolves the core's iopf handler once answered. */
  answer: (code: ResponseCode) => void;
  cookie: number;
}

export class FaultObject extends IommufdObject {
  readonly type = 'fault' as const;
  private readonly queue: QueuedGroup[] = [];
  private readonly delivered = new Map<number, QueuedGroup>();
  private nextCookie = 1;
  fdOpen = true;

  constructor(private readonly iommu: IommuApi, private readonly devIdOf: (dev: Device) => number) {
    super();
    this.users = 1; // the fault fd
  }

  /** The iopf handler HWPTs with this fault object get (iommufd_fault_iopf_handler). */
  readonly handler = (group: PageRequestGroup): Promise<ResponseCode> =>
    new Promise<ResponseCode>((answer) => {
      this.queue.push({ group, devId: this.devIdOf(group.dev), answer, cookie: 0 });
    });

  /** Groups waiting to be read. */
  get pending(): number {
    return this.queue.length;
  }

  read(maxRecords: number, op: string): FaultRecordOut[] {
    this.checkFd(op);
    if (typeof maxRecords !== 'number' || !Number.isInteger(maxRecords) || maxRecords < 0) throw simError('ESPIPE', op, 'bad-read-size', String(maxRecords));
    const out: FaultRecordOut[] = [];
    while (this.queue.length > 0 && out.length + this.queue[0].group.faults.length <= maxRecords) {
      const q = this.queue.shift()!;
      q.cookie = this.nextCookie++;
      this.delivered.set(q.cookie, q);
      for (const f of q.group.faults) {
        out.push({
          flags: { pasidValid: f.pasid !== undefined, lastPage: f.last }, devId: q.devId, pasid: f.pasid ?? 0, grpid: f.grpid,
          perm: { ...f.perm }, addr: f.addr, length: 0, cookie: q.cookie,
        });
      }
    }
    return out;
  }

  async write(responses: unknown, op: string): Promise<number> {
    this.checkFd(op);
    if (!Array.isArray(responses)) throw simError('ESPIPE', op, 'bad-write-size', 'responses is an array');
    let done = 0;
    for (const r of responses as { cookie?: unknown; code?: unknown }[]) {
      const fail = (reason: string, detail: string) => {
        if (done > 0) return done;
        throw simError('EINVAL', op, reason, detail);
      };
      if (typeof r !== 'object' || r === null) return fail('bad-response', String(r));
      if (r.code !== 'success' && r.code !== 'invalid') return fail('bad-code', String(r.code));
      const q = typeof r.cookie === 'number' ? this.delivered.get(r.cookie) : undefined;
      if (!q) return fail('no-such-cookie', String(r.cookie));
      this.delivered.delete(q.cookie);
      const g = q.group;
      // Answer now, so the response is on its way when write returns; the handler's own
      // answer that follows finds the group answered and is dropped.
      await this.iommu.pageResponse(g.dev, { pasid: g.pasid, grpid: g.grpid, code: r.code }).catch(() => {});
      q.answer(r.code);
      done++;
    }
    return done;
  }

  /** The core answered the groups of (dev, pasid) INVALID on detach/replace: forget them. */
  purge(dev: Device, pasid: number | undefined): void {
    const match = (q: QueuedGroup) => q.group.dev === dev && q.group.pasid === pasid;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (match(this.queue[i])) this.queue.splice(i, 1)[0].answer('invalid');
    }
    for (const [c, q] of this.delivered) {
      if (match(q)) {
        this.delivered.delete(c);
        q.answer('invalid');
      }
    }
  }

  closeFd(): void {
    if (!this.fdOpen) return;
    this.fdOpen = false;
    this.users--;
  }

  async release(): Promise<void> {
    const all = [...this.queue, ...this.delivered.values()];
    this.queue.length = 0;
    this.delivered.clear();
    for (const q of all) {
      await this.iommu.pageResponse(q.group.dev, { pasid: q.group.pasid, grpid: q.group.grpid, code: 'invalid' }).catch(() => {});
      q.answer('invalid');
    }
  }

  private checkFd(op: string): void {
    if (!this.fdOpen) throw simError('EINVAL', op, 'fault-fd-closed', `fault ${this.id}`);
  }
}
