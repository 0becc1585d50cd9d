/**
 * The invalidation-queue consumer: executes the VT-d scalable-mode descriptors the
 * coordinator queues, in order, against this IOMMU's caches.
 *
 * Models: context-cache (global / domain / device with function mask), IOTLB (global /
 * domain-selective / page-selective with AM; PSI affects only untagged second-stage
 * entries), PASID-based IOTLB (all of a PASID / page-selective within it), PASID-cache
 * (all PASIDs of a DID / one PASID / global), device-TLB and PASID-based device-TLB (ATS
 * invalidation of one device's ATC, range by the S-bit encoding, global bit) and the wait
 * descriptor (status write of its data to its address in table memory; the interrupt flag
 * rings the coordinator's doorbell). Descriptors complete in queue order, so a wait's
 * status write means everything before it is done. Each descriptor costs modelled time.
 * Page group responses (0x9) are handed to the device model (page-requests.ts), which
 * retries or fails the parked request.
 * Does not model: the interrupt-entry cache (IEC descriptors are accepted and counted),
 * the fence flag's effect on later descriptors (everything is in order anyway), queue
 * errors other than an unknown descriptor type (which stops the simulation as an
 * invalidation-queue error, IQE).
 */
import type { ArenaView } from '../shared/memory/arena.js';
import type { CostModel } from '../shared/config.js';
import {
  CC_GRAN_DEVICE, CC_GRAN_DOMAIN, IOTLB_GRAN_DOMAIN, IOTLB_GRAN_PAGE, type InvDesc, PC_GRAN_DOMAIN, PC_GRAN_PASID,
  PIOTLB_GRAN_PAGE, decodeAtsRange,
} from '../shared/layout/inv-desc.js';
import { NO_PASID_TAG } from './iotlb.js';
import type { Translator } from './translate.js';
import { CMD_ATS, CMD_OTHER, CMD_WAIT, type CommandSet, type DecodedCommand, storeStatus } from './command-set.js';
import { readInvDesc } from '../shared/layout/inv-desc.js';

export class InvalidationQueueError extends Error {
  constructor(readonly descriptor: InvDesc) {
    super(`invalidation queue error (IQE): descriptor type ${descriptor.type === 'unknown' ? descriptor.code : descriptor.type} not supported`);
  }
}

export class CommandExecutor implements CommandSet {
  readonly counts: Record<string, number> = {};
  waits = 0;
  /** Delivers a page group response to the device model (set by iommu.ts). */
  onPageResponse: (rid: number, prgIndex: number, code: number) => void = () => {};

  constructor(
    private readonly t: Translator,
    private readonly view: ArenaView,
    private readonly costs: CostModel,
  ) {}

  decode(u32: Uint32Array, at: number): DecodedCommand {
    const d = readInvDesc(u32, at);
    if (d.type === 'wait') return { kind: CMD_WAIT, sid: 0, data: d.statusData, pageDrain: d.pageDrain, interrupt: d.interrupt, cmd: d };
    if (d.type === 'device-tlb' || d.type === 'pasid-device-tlb') return { kind: CMD_ATS, sid: d.sid, data: 0, pageDrain: false, interrupt: false, cmd: d };
    return { kind: CMD_OTHER, sid: 0, data: 0, pageDrain: false, interrupt: false, cmd: d };
  }

  execute(dc: DecodedCommand): number {
    return this.executeDesc(dc.cmd as InvDesc);
  }

  /** Executes one descriptor; returns its modelled cost. A wait's status write is done here. */
  executeDesc(d: InvDesc): number {
    this.counts[d.type] = (this.counts[d.type] ?? 0) + 1;
    const t = this.t;
    switch (d.type) {
      case 'context-cache':
        t.psc.clear(); // paging-structure caches go with these invalidations
        if (d.granularity === CC_GRAN_DEVICE) t.contextCache.invalidateDevice(d.sid, d.fm);
        else if (d.granularity === CC_GRAN_DOMAIN) t.contextCache.invalidateDomain(d.did);
        else t.contextCache.invalidateAll();
        return this.costs.descriptorNs;
      case 'iotlb':
        t.psc.clear(); // paging-structure caches go with these invalidations
        if (d.granularity === IOTLB_GRAN_PAGE) t.iotlb.invalidateDomainRange(d.did, Number(d.addr >> 12n), d.am);
        else if (d.granularity === IOTLB_GRAN_DOMAIN) t.iotlb.invalidateDomain(d.did);
        else t.iotlb.invalidateAll();
        return this.costs.descriptorNs;
      case 'pasid-iotlb':
        t.psc.clear(); // paging-structure caches go with these invalidations
        if (d.granularity === PIOTLB_GRAN_PAGE) t.iotlb.invalidatePasidRange(d.did, d.pasid, Number(d.addr >> 12n), d.am);
        else t.iotlb.invalidatePasid(d.did, d.pasid);
        return this.costs.descriptorNs;
      case 'pasid-cache':
        t.psc.clear(); // paging-structure caches go with these invalidations
        if (d.granularity === PC_GRAN_PASID) t.pasidCache.invalidatePasid(d.did, d.pasid);
        else if (d.granularity === PC_GRAN_DOMAIN) t.pasidCache.invalidateDomain(d.did);
        else t.pasidCache.invalidateAll();
        return this.costs.descriptorNs;
      case 'device-tlb': {
        const r = decodeAtsRange(d.addr, d.s);
        t.devTlbs.get(d.sid)?.invalidate(NO_PASID_TAG, Number(r.base >> 12n), Number(r.bytes >> 12n));
        return this.costs.devTlbInvNs;
      }
      case 'pasid-device-tlb': {
        const r = decodeAtsRange(d.addr, d.s);
        t.devTlbs.get(d.sid)?.invalidate(d.global ? 'all-pasids' : d.pasid, Number(r.base >> 12n), Number(r.bytes >> 12n));
        return this.costs.devTlbInvNs;
      }
      case 'iec':
        return this.costs.descriptorNs;
      case 'page-group-response':
        this.onPageResponse(d.rid, d.prgIndex, d.responseCode);
        return this.costs.descriptorNs;
      case 'wait': {
        this.waits++;
        if (d.statusWrite && !storeStatus(this.view, d.statusAddr, d.statusData)) throw new InvalidationQueueError(d);
        return this.costs.waitNs;
      }
      default:
        throw new InvalidationQueueError(d);
    }
  }
}
