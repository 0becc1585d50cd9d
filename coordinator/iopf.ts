/**
 * I/O page faults on the CPU side (drivers/iommu/io-pgfault.c, as far as this slice goes):
 * page requests drained from the page request queues become page-request groups, are
 * routed to the fault handler of the domain attached at (device, PASID) — or at the RID
 * for a request without PASID — and are answered with exactly one page group response
 * through the invalidation queue.
 *
 * Models: page-request groups (SEMANTICS.md §3.4): requests without LAST_PAGE kept as
 * partials, the group formed at its last page with the partials of the same grpid and
 * answered once (the modelled devices send single-page groups; tests inject longer ones);
 * the `pageRequests$` stream; dispatch to the domain's iopf handler (an SVA domain's is
 * its process's fault path, mm.handleFault: SUCCESS when the page could be made present
 * with the access allowed, INVALID otherwise); INVALID when there is no domain or no
 * handler; a handler that throws gets FAILURE; `pageResponse` (EINVAL when no such group is
 * pending) answering with the VT-d page group response descriptor (0x9), after which the
 * device retries (SUCCESS) or gives up.
 * When the domain of a (device, PASID) is detached or replaced, the page request queue is
 * drained first and every pending group and partial of that (device, PASID) is answered
 * INVALID or dropped, so no stale request reaches the next owner of the PASID (a handler's
 * late answer is dropped).
 * A per-device fault handler (iommu_register_device_fault_handler; one per device, EBUSY
 * for a second) receives the device's page-request groups and unrecoverable faults; the
 * groups it gets are answered with pageResponse, and unregistering answers the ones still
 * pending INVALID (iopf_queue_remove_device).
 * iopf_queue_discard_partial and iopf_queue_remove_device as test hooks.
 * The response timeout of seed 002 (an option, off by default as in mainline): a group
 * unanswered for `responseTimeoutMs` of host time is answered FAILURE; a later answer is
 * refused (EINVAL) and counted. Host time on purpose: it guards against handlers — guests
 * — that never answer.
 * Page request queue overflow (PRS.PRO): the requests that reached the queue are taken in,
 * the IOMMU's partial groups are discarded, then the overflow is cleared; PCIe Stop Markers
 * are counted and dropped without a response (rule 12).
 * Does not model: the NEEDS_PASID response flag (VT-d always echoes the PASID), private data.
 */
import { Subject, type Observable } from 'rxjs';
import { simError } from '../shared/errors.js';
import type { PageRequestDesc } from '../shared/layout/page-request.js';
import { RESP_FAILURE, RESP_INVALID, RESP_SUCCESS } from '../shared/layout/inv-desc.js';
import type { HwCmd, ProfileCodec, ResponseCode as CoreResponseCode } from '../shared/layout/profile-codec.js';
import type { Domain } from './domain.js';
import type { Device, Topology } from './topology.js';

export type ResponseCode = 'success' | 'invalid' | 'failure';
export type Perm = { read?: boolean; write?: boolean; exec?: boolean; priv?: boolean };
export interface PageRequest { dev: Device; pasid?: number; grpid: number; addr: bigint; perm: Perm; last: boolean }
export interface PageRequestGroup { dev: Device; pasid?: number; grpid: number; faults: PageRequest[] }
export type IopfHandler = (g: PageRequestGroup) => ResponseCode | Promise<ResponseCode>;
/** What a per-device fault handler receives (iommu_register_device_fault_handler). */
export type DeviceFault = { type: 'page-request'; group: PageRequestGroup } | { type: 'fault'; record: unknown };
export type DeviceFaultHandler = (fault: DeviceFault, data: unknown) => void;

const CODE: Record<ResponseCode, CoreResponseCode> = { success: RESP_SUCCESS, invalid: RESP_INVALID, failure: RESP_FAILURE };

export interface IopfHooks {
  domainAt(dev: Device, pasid: number | undefined): Domain | undefined;
  /** Queues descriptors on one IOMMU's invalidation queue, `delayNs` after the current modelled time. */
  submit(iommu: number, descs: HwCmd[], delayNs?: number): Promise<void>;
  /** The queue formats of an IOMMU's profile. */
  codec(iommu: number): ProfileCodec;
  /** Drains one IOMMU's page request queue: everything it wrote so far is taken in now. */
  drain(iommu: number): Promise<void>;
  /** Modelled time the handler's work takes before a response is queued (prqServiceNs). */
  serviceNs(iommu: number): number;
  /** The coordinator's modelled clock. */
  now(): number;
  /** Records a page-request service latency (delivery to response, modelled ns). */
  recordService(ns: number): void;
}

/** A page group response that reached the IOMMU (its invalidation queue executed it). */
export interface PageResponseEvent { dev: Device; pasid?: number; grpid: number; code: ResponseCode }

export class Iopf {
  private readonly subject = new Subject<PageRequestGroup>();
  readonly pageRequests$: Observable<PageRequestGroup> = this.subject.asObservable();
  private readonly responseSubject = new Subject<PageResponseEvent>();
  /** Every page group response software sent, once the IOMMU has executed it. */
  readonly responses$: Observable<PageResponseEvent> = this.responseSubject.asObservable();
  private readonly pending = new Map<string, PageRequestGroup>();
  /** Modelled time each pending group was handed to software. */
  private readonly deliveredAt = new Map<string, number>();
  private readonly partials = new Map<string, PageRequest[]>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Groups failed by the response timeout, and answers that came after it. */
  timedOut = 0;
  lateResponses = 0;
  private readonly expired = new Set<string>();
  /** Page requests taken in; queue overflows seen, requests they lost, partial groups discarded, stop markers dropped. */
  requests = 0;
  groups = 0;
  responses = 0;
  prqOverflows = 0;
  prqLost = 0;
  partialsDiscarded = 0;
  stopMarkers = 0;
  /** Host-time limit for answering a group (seed 002's proposal); undefined = none, as mainline. */
  responseTimeoutMs: number | undefined;
  private readonly deviceHandlers = new Map<Device, { handler: DeviceFaultHandler; data: unknown }>();
  /** Devices taken out of their iopf queue (iopf_queue_remove_device). */
  private readonly removed = new Set<Device>();

  /** iommu_register_device_fault_handler: one per device (EBUSY for a second). */
  registerDeviceFaultHandler(dev: Device, handler: DeviceFaultHandler, data?: unknown): void {
    const op = 'registerDeviceFaultHandler';
    if (typeof handler !== 'function') throw simError('EINVAL', op, 'bad-handler');
    if (this.deviceHandlers.has(dev)) throw simError('EBUSY', op, 'handler-registered', dev.bdf);
    this.deviceHandlers.set(dev, { handler, data });
  }

  /** Unregisters; every group still pending for the device is answered INVALID (iopf_queue_remove_device). */
  async unregisterDeviceFaultHandler(dev: Device): Promise<void> {
    if (!this.deviceHandlers.delete(dev)) return;
    await this.answerPending((g) => g.dev === dev, 'invalid');
  }

  /** Hands an unrecoverable fault to the device's handler, if it has one. */
  reportFault(dev: Device | undefined, record: unknown): void {
    const h = dev && this.deviceHandlers.get(dev);
    if (!h) return;
    try {
      h.handler({ type: 'fault', record }, h.data);
    } catch {
      // A handler's exception is the handler's problem.
    }
  }

  constructor(private readonly topology: Topology, private readonly hooks: IopfHooks) {}

  /** A page request drained from IOMMU `iommu`'s queue. */
  onPageRequest(iommu: number, r: PageRequestDesc): void {
    const dev = this.topology.byRequester(iommu, r.rid);
    if (!dev) return; // no such requester: nothing to answer
    this.requests++;
    // A PCIe Stop Marker (PASID-tagged, L=1, R=W=0) needs no response: drivers drop it.
    if (r.pasidPresent && r.lpig && !r.read && !r.write) {
      this.stopMarkers++;
      return;
    }
    const pasid = r.pasidPresent ? r.pasid : undefined;
    const req: PageRequest = {
      dev, grpid: r.prgIndex, addr: r.addr, last: r.lpig,
      perm: { read: r.read, write: r.write, exec: r.exe, priv: r.pm },
    };
    if (pasid !== undefined) req.pasid = pasid;
    const key = this.key(dev, pasid, r.prgIndex);
    const queued = !this.removed.has(dev);
    if (!r.lpig) {
      if (!queued) return; // no iopf param: a partial is dropped
      // A partial: kept until the last page of its group arrives; no response for it.
      const list = this.partials.get(key) ?? [];
      list.push(req);
      this.partials.set(key, list);
      return;
    }
    const group: PageRequestGroup = { dev, grpid: r.prgIndex, faults: [...(this.partials.get(key) ?? []), req] };
    this.partials.delete(key);
    if (pasid !== undefined) group.pasid = pasid;
    this.pending.set(key, group);
    this.deliveredAt.set(key, this.hooks.now());
    this.groups++;
    this.expired.delete(key);
    if (this.responseTimeoutMs !== undefined) {
      this.timers.set(key, setTimeout(() => {
        this.timers.delete(key);
        if (this.pending.get(key) !== group) return;
        this.timedOut++;
        this.expired.add(key);
        void this.pageResponse(dev, { pasid, grpid: r.prgIndex, code: 'failure' }).catch(() => {});
      }, this.responseTimeoutMs));
    }
    if (!queued) {
      // No iopf param (rule 5): iopf_error_response answers INVALID, no handler sees it.
      void this.pageResponse(dev, { pasid, grpid: r.prgIndex, code: 'invalid' }).catch(() => {});
      return;
    }
    this.subject.next(group);
    void this.dispatch(group);
  }

  /** True while a group of one of `iommu`'s devices waits for software's response. */
  hasPending(iommu: number): boolean {
    for (const g of this.pending.values()) if (g.dev.iommu === iommu) return true;
    return false;
  }

  /** iopf_queue_discard_partial: drops the partial groups of one IOMMU's devices (no response). */
  discardPartial(iommu: number): number {
    let n = 0;
    for (const [k, list] of this.partials) {
      if (list[0].dev.iommu === iommu) {
        this.partials.delete(k);
        n++;
      }
    }
    this.partialsDiscarded += n;
    return n;
  }

  /**
   * The page request queue of `iommu` overflowed (PRS.PRO), its surviving requests taken
   * in: requests of unfinished groups may have been lost, so their partials are discarded
   * before PRO is cleared (Intel prq_event_thread). Lost last-in-group requests were
   * answered SUCCESS by the hardware, so no group is left waiting on software.
   */
  onQueueOverflow(iommu: number): void {
    this.prqOverflows++;
    this.discardPartial(iommu);
  }

  /**
   * iopf_queue_remove_device: every pending group of the device answered INVALID, partials
   * freed; until it is added again, its requests find no iopf param and are answered
   * INVALID (partials dropped) without reaching a handler. Devices with PRI start in the
   * queue, as the driver adds them when it enables PRI.
   */
  async removeDevice(dev: Device): Promise<void> {
    this.removed.add(dev);
    for (const [k, list] of this.partials) if (list[0].dev === dev) this.partials.delete(k);
    await this.answerPending((g) => g.dev === dev, 'invalid');
  }

  /** iopf_queue_add_device: ENODEV for a device without PRI (no page_response path), EBUSY if already added. */
  addDevice(dev: Device): void {
    const op = 'iopfQueueAddDevice';
    if (!dev.pri) throw simError('ENODEV', op, 'no-pri', dev.bdf);
    if (!this.removed.has(dev)) throw simError('EBUSY', op, 'already-added', dev.bdf);
    this.removed.delete(dev);
  }

  /** iommu_page_response: answers a pending group once. */
  async pageResponse(dev: Device, r: { pasid?: number; grpid: number; code: ResponseCode }, delayNs = 0): Promise<void> {
    const op = 'pageResponse';
    const key = this.key(dev, r.pasid, r.grpid);
    const g = this.pending.get(key);
    if (!g) {
      if (this.expired.delete(key)) this.lateResponses++;
      throw simError('EINVAL', op, 'no-such-group', `${dev.bdf} pasid ${r.pasid ?? '-'} grpid ${r.grpid}`);
    }
    const code = CODE[r.code];
    if (code === undefined) throw simError('EINVAL', op, 'bad-code', String(r.code));
    const timer = this.timers.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.timers.delete(key);
    }
    this.pending.delete(key);
    this.responses++;
    const at = this.deliveredAt.get(key);
    this.deliveredAt.delete(key);
    if (at !== undefined) this.hooks.recordService(this.hooks.now() + delayNs - at);
    // The profile's response command: page group response, CMD_PRI_RESP or COMPLETE_PPR.
    const cmd = this.hooks.codec(dev.iommu).pageResponseCmd({ rid: dev.rid, pasid: r.pasid ?? 0, pasidPresent: r.pasid !== undefined, prgIndex: r.grpid, code });
    await this.hooks.submit(dev.iommu, [cmd], delayNs);
    const ev: PageResponseEvent = { dev, grpid: r.grpid, code: r.code };
    if (r.pasid !== undefined) ev.pasid = r.pasid;
    this.responseSubject.next(ev);
  }

  /**
   * Answers INVALID to every pending group of `dev` at `pasid` (undefined: the RID), as the
   * kernel does when the domain there is detached or replaced; a handler's late answer is
   * then dropped.
   */
  async abortPending(dev: Device, pasid: number | undefined): Promise<void> {
    // Drain first: requests still in the hardware queue belong to the old owner too.
    await this.hooks.drain(dev.iommu);
    for (const [k, list] of this.partials) if (list[0].dev === dev && list[0].pasid === pasid) this.partials.delete(k);
    await this.answerPending((g) => g.dev === dev && g.pasid === pasid, 'invalid');
  }

  complete(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.subject.complete();
    this.responseSubject.complete();
  }

  /** Answers every pending group `which` selects (teardown paths: never fails). */
  private async answerPending(which: (g: PageRequestGroup) => boolean, code: ResponseCode): Promise<void> {
    for (const g of [...this.pending.values()]) {
      if (which(g)) await this.pageResponse(g.dev, { pasid: g.pasid, grpid: g.grpid, code }).catch(() => {});
    }
  }

  private async dispatch(g: PageRequestGroup): Promise<void> {
    // A device fault handler takes the group and answers it later with pageResponse.
    const dh = this.deviceHandlers.get(g.dev);
    if (dh) {
      try {
        dh.handler({ type: 'page-request', group: g }, dh.data);
        return;
      } catch {
        await this.pageResponse(g.dev, { pasid: g.pasid, grpid: g.grpid, code: 'failure' }).catch(() => {});
        return;
      }
    }
    const domain = this.hooks.domainAt(g.dev, g.pasid);
    let code: ResponseCode = 'invalid';
    if (domain?.iopfHandler) {
      try {
        code = await domain.iopfHandler(g);
      } catch {
        code = 'failure';
      }
    }
    // The handler's work (the mm fault path for SVA) takes modelled time before the response.
    await this.pageResponse(g.dev, { pasid: g.pasid, grpid: g.grpid, code }, domain?.iopfHandler ? this.hooks.serviceNs(g.dev.iommu) : 0).catch(() => {});
  }

  private key(dev: Device, pasid: number | undefined, grpid: number): string {
    return `${dev.iommu}:${dev.rid}:${pasid ?? -1}:${grpid}`;
  }
}
