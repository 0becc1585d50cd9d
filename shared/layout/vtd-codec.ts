/**
 * The VT-d scalable-mode formats behind the profile codec (profile-codec.ts): 256-bit
 * invalidation descriptors with the wait descriptor as completion, 128-bit fault records
 * whose reason is the FR code itself, 256-bit page request descriptors, and the page group
 * response descriptor.
 * Does not model: anything beyond inv-desc.ts, fault-record.ts and page-request.ts (the
 * formats live there; this file only adapts them).
 */
import { INV_DESC_BYTES, type InvDesc, writeInvDesc } from './inv-desc.js';
import { FAULT_RECORD_BYTES, faultReasonName, readFaultRecord, writeFaultRecord } from './fault-record.js';
import { PAGE_REQUEST_BYTES, readPageRequest, writePageRequest } from './page-request.js';
import type { ProfileCodec } from './profile-codec.js';

export const VTD_CODEC: ProfileCodec<InvDesc> = {
  profile: 'vtd',
  cmdBytes: INV_DESC_BYTES,
  faultBytes: FAULT_RECORD_BYTES,
  prqBytes: PAGE_REQUEST_BYTES,
  writeCmd: writeInvDesc,
  cacheClass: (d) => (d.type === 'device-tlb' || d.type === 'pasid-device-tlb' ? 'devtlb' : d.type === 'iotlb' || d.type === 'pasid-iotlb' ? 'iotlb'
    : d.type === 'pasid-cache' ? 'pasid-cache' : d.type === 'context-cache' ? 'context-cache' : 'other'),
  waitCmd: (addr, data, pageDrain = false) => ({ type: 'wait', interrupt: true, statusWrite: true, fence: false, pageDrain, statusData: data, statusAddr: addr }),
  drainInWait: true,
  pageResponseCmd: (r) => ({
    type: 'page-group-response', pasidPresent: r.pasidPresent, pdp: false, responseCode: r.code, rid: r.rid,
    pasid: r.pasidPresent ? r.pasid : 0, lpig: true, prgIndex: r.prgIndex, privData0: 0n, privData1: 0n,
  }),
  faultOf: (fr) => ({ reason: faultReasonName(fr), code: fr }),
  writeFault(u32, at, f) {
    writeFaultRecord(u32, at, {
      addr: f.addr & ~0xfffn, sid: f.rid, pasidPresent: f.pasid >= 0, reason: f.fr, pasid: f.pasid >= 0 ? f.pasid : 0,
      addressType: 0, read: !f.write, fault: true,
    });
  },
  readFault(u32, at) {
    const r = readFaultRecord(u32, at);
    return { sid: r.sid, pasidPresent: r.pasidPresent, pasid: r.pasid, addr: r.addr, read: r.read, reason: faultReasonName(r.reason), code: r.reason };
  },
  writePageRequest,
  readPageRequest,
};
