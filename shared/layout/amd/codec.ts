/**
 * The AMD IOMMU formats behind the profile codec (../profile-codec.ts): 16-byte commands
 * with COMPLETION_WAIT (store) as completion — Linux's iommu_completion_wait with its
 * cmd_sem store — 16-byte event-log entries, 16-byte PPR-log entries and COMPLETE_PPR.
 *
 * Models: the translation core's fault codes (FR) as AMD events: a missing or illegal DTE
 * (V clear; TV clear or a Mode not walked: CONTEXT_ENTRY_RESERVED) is
 * ILLEGAL_DEV_TABLE_ENTRY, a blocked device (DTE IR = IW = 0: CONTEXT_ENTRY_INVALID) an
 * IO_PAGE_FAULT as Linux logs for DMA from a device with no domain, a PASID the DTE cannot take (GV clear, beyond the GCR3 table)
 * INVALID_DEVICE_REQUEST, a table fetch abort DEV_TAB/PAGE_TAB_HARDWARE_ERROR, and every
 * other translation fault IO_PAGE_FAULT with GN (PASID valid), PR (page present: a
 * permission fault) and RW; read back, IO_PAGE_FAULT is 'permission' with PR set and
 * 'pte-fetch' without — AMD does not tell a missing GCR3 entry from a missing PTE, nor an
 * address beyond the table's width, so those read back as 'pte-fetch'.
 * Does not model: the event-log entries of interrupt remapping, RMP and command errors.
 */
import { FR, type FaultReasonName } from '../fault-record.js';
import type { PageRequestDesc } from '../page-request.js';
import type { ProfileCodec } from '../profile-codec.js';
import { AMD_CMD_BYTES, type AmdCmd, writeAmdCmd } from './commands.js';
import { AMD_EVENT, AMD_EVENT_BYTES, IOPF_FLAG, readAmdEvent, writeAmdEvent } from './event-log.js';
import { PPR_ENTRY_BYTES, PPR_REQ_FAULT, readPprEntry, writePprEntry } from './ppr-log.js';

const EVENT_OF_FR = new Map<number, number>([
  [FR.ROOT_ENTRY_NOT_PRESENT, AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY], [FR.CONTEXT_ENTRY_NOT_PRESENT, AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY],
  [FR.CONTEXT_ENTRY_RESERVED, AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY],
  [FR.ROOT_TABLE_ACCESS, AMD_EVENT.DEV_TAB_HARDWARE_ERROR], [FR.CONTEXT_TABLE_ACCESS, AMD_EVENT.DEV_TAB_HARDWARE_ERROR],
  [FR.PASID_DISABLED, AMD_EVENT.INVALID_DEVICE_REQUEST], [FR.PASID_DIR_INDEX_OVER_PDTS, AMD_EVENT.INVALID_DEVICE_REQUEST],
  [FR.PASID_DIR_ACCESS, AMD_EVENT.PAGE_TAB_HARDWARE_ERROR], [FR.PASID_TABLE_ACCESS, AMD_EVENT.PAGE_TAB_HARDWARE_ERROR],
  [FR.PTE_ACCESS, AMD_EVENT.PAGE_TAB_HARDWARE_ERROR], [FR.SS_PTE_ACCESS, AMD_EVENT.PAGE_TAB_HARDWARE_ERROR],
]);

/** Faults of pages that were present: permission faults (IO_PAGE_FAULT with PR). */
const PERMISSION_FR = new Set<number>([FR.WRITE_DENIED, FR.READ_DENIED, FR.EXEC_DENIED, FR.PRIVILEGE, FR.SUPERVISOR_NOT_ENABLED]);

/** Event types whose entry has the RW flag (bit 53) / the GN flag (bit 48): AMD IOMMU spec, event log formats. */
const HAS_RW = new Set<number>([AMD_EVENT.IO_PAGE_FAULT, AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, AMD_EVENT.DEV_TAB_HARDWARE_ERROR,
  AMD_EVENT.PAGE_TAB_HARDWARE_ERROR]);
const HAS_GN = new Set<number>([AMD_EVENT.IO_PAGE_FAULT, AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, AMD_EVENT.PAGE_TAB_HARDWARE_ERROR,
  AMD_EVENT.INVALID_DEVICE_REQUEST]);

/** The event type a fault of the core is logged as. */
export function amdEventOfFr(fr: number): number {
  return EVENT_OF_FR.get(fr) ?? AMD_EVENT.IO_PAGE_FAULT;
}

/** The public reason name of an event-log entry. */
export function amdReasonOfEvent(type: number, flags: number): FaultReasonName {
  switch (type) {
    case AMD_EVENT.IO_PAGE_FAULT: return (flags & IOPF_FLAG.PR) !== 0 ? 'permission' : 'pte-fetch';
    case AMD_EVENT.INVALID_DEVICE_REQUEST: return 'pasid-invalid';
    case AMD_EVENT.PAGE_TAB_HARDWARE_ERROR: return 'walk-abort';
    default: return 'unknown';
  }
}

export const AMD_CODEC: ProfileCodec<AmdCmd> = {
  profile: 'amd',
  cmdBytes: AMD_CMD_BYTES,
  faultBytes: AMD_EVENT_BYTES,
  prqBytes: PPR_ENTRY_BYTES,
  writeCmd: writeAmdCmd,
  // INVALIDATE_IOMMU_PAGES with PDE also drops the GCR3 walk: counted as the IOTLB flush it mostly is.
  cacheClass: (c) => (c.type === 'inv-iotlb-pages' ? 'devtlb' : c.type === 'inv-iommu-pages' || c.type === 'inv-iommu-all' ? 'iotlb'
    : c.type === 'inv-devtab-entry' ? 'context-cache' : 'other'),
  waitCmd: (addr, data) => ({ type: 'completion-wait', s: true, i: false, f: false, storeAddr: addr, storeData: BigInt(data >>> 0) }),
  drainInWait: false,
  pageResponseCmd: (r) => ({ type: 'complete-ppr', deviceId: r.rid, pasid: r.pasidPresent ? r.pasid : 0, gn: r.pasidPresent, tag: r.prgIndex, status: r.code }),
  faultOf(fr) {
    const type = amdEventOfFr(fr);
    return { reason: amdReasonOfEvent(type, PERMISSION_FR.has(fr) ? IOPF_FLAG.PR : 0), code: type };
  },
  writeFault(u32, at, f) {
    const type = amdEventOfFr(f.fr);
    let flags = (HAS_GN.has(type) && f.pasid >= 0 ? IOPF_FLAG.GN : 0) | (HAS_RW.has(type) && f.write ? IOPF_FLAG.RW : 0);
    if (type === AMD_EVENT.IO_PAGE_FAULT && PERMISSION_FR.has(f.fr)) flags |= IOPF_FLAG.PR | IOPF_FLAG.PE;
    writeAmdEvent(u32, at, { type, deviceId: f.rid, pasid: f.pasid >= 0 ? f.pasid : 0, flags, tag: 0, address: f.addr & ~0xfffn });
  },
  readFault(u32, at) {
    const e = readAmdEvent(u32, at);
    const gn = HAS_GN.has(e.type) ? (e.flags & IOPF_FLAG.GN) !== 0 : e.pasid !== 0;
    return {
      sid: e.deviceId, pasidPresent: gn, pasid: gn ? e.pasid : 0, addr: e.address,
      read: (e.flags & IOPF_FLAG.RW) === 0, reason: amdReasonOfEvent(e.type, e.flags), code: e.type,
    };
  },
  writePageRequest(u32, at, d) {
    writePprEntry(u32, at, {
      type: PPR_REQ_FAULT, deviceId: d.rid, pasid: d.pasidPresent ? d.pasid : 0, prgIndex: d.prgIndex, last: d.lpig,
      exec: d.exe, read: d.read, write: d.write, us: !d.pm, rvsd: false, gn: d.pasidPresent, otherFlags: 0, address: d.addr,
    });
  },
  readPageRequest(u32, at): PageRequestDesc {
    const e = readPprEntry(u32, at);
    return {
      pasidPresent: e.gn, privDataPresent: false, rid: e.deviceId, pasid: e.gn ? e.pasid : 0, exe: e.exec, pm: !e.us,
      read: e.read, write: e.write, lpig: e.last, prgIndex: e.prgIndex, addr: e.address, privData0: 0n, privData1: 0n,
    };
  },
};
