/**
 * The SMMUv3 formats behind the profile codec (../profile-codec.ts): 16-byte commands with
 * CMD_SYNC as completion (CS = IRQ with the MSI write aimed at memory, as Linux's MSIPOLL
 * does), 32-byte event records, 16-byte PRI records and CMD_PRI_RESP.
 *
 * Models: the translation core's fault codes (FR) as SMMUv3 events — C_BAD_STREAMID,
 * C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD, F_STE_FETCH, F_CD_FETCH,
 * F_WALK_EABT, F_TRANSLATION, F_PERMISSION — with SSV/SSID, SID, RnW, PnU, InD, CLASS and
 * the input address; an input address beyond T0SZ is an F_TRANSLATION, as the Arm
 * architecture reports it (so 'out-of-range' never appears on this profile); and the
 * public reason names of those events (the same names the VT-d codes map to).
 * Does not model: stall mode (STAG, CMD_RESUME), F_ADDR_SIZE/F_ACCESS (no output-size or
 * access-flag faults in the core), stage-2 events.
 */
import { FR, type FaultReasonName } from '../fault-record.js';
import type { PageRequestDesc } from '../page-request.js';
import type { ProfileCodec } from '../profile-codec.js';
import { RESP_FAILURE, RESP_SUCCESS } from '../inv-desc.js';
import { CS_IRQ, MEMATTR_OIWB, PRI_RESP_DENY, PRI_RESP_FAIL, PRI_RESP_SUCC, SH_ISH, SMMU_CMD_BYTES, type SmmuCmd, writeSmmuCmd } from './commands.js';
import { EVT_CLASS_CD, EVT_CLASS_IN, EVT_CLASS_TT, EVT_ID, SMMU_EVENT_BYTES, readSmmuEvent, smmuEvent, writeSmmuEvent } from './event.js';
import { SMMU_PRI_BYTES, readSmmuPri, writeSmmuPri } from './pri.js';

/** The event each FR code of the core becomes (anything else: F_TRANSLATION). */
const EVENT_OF_FR = new Map<number, number>([
  [FR.ROOT_ENTRY_NOT_PRESENT, EVT_ID.C_BAD_STREAMID],
  [FR.ROOT_TABLE_ACCESS, EVT_ID.F_STE_FETCH], [FR.CONTEXT_TABLE_ACCESS, EVT_ID.F_STE_FETCH],
  [FR.CONTEXT_ENTRY_NOT_PRESENT, EVT_ID.C_BAD_STE], [FR.CONTEXT_ENTRY_INVALID, EVT_ID.C_BAD_STE],
  [FR.CONTEXT_ENTRY_RESERVED, EVT_ID.C_BAD_STE],
  [FR.RID_PASID_ERROR, EVT_ID.F_STREAM_DISABLED],
  [FR.PASID_DISABLED, EVT_ID.C_BAD_SUBSTREAMID], [FR.PASID_DIR_INDEX_OVER_PDTS, EVT_ID.C_BAD_SUBSTREAMID],
  [FR.PASID_DIR_ENTRY_NOT_PRESENT, EVT_ID.C_BAD_SUBSTREAMID],
  [FR.PASID_DIR_ACCESS, EVT_ID.F_CD_FETCH], [FR.PASID_TABLE_ACCESS, EVT_ID.F_CD_FETCH],
  [FR.PASID_ENTRY_NOT_PRESENT, EVT_ID.C_BAD_CD], [FR.PASID_ENTRY_INVALID, EVT_ID.C_BAD_CD],
  [FR.PTE_ACCESS, EVT_ID.F_WALK_EABT], [FR.SS_PTE_ACCESS, EVT_ID.F_WALK_EABT],
  [FR.WRITE_DENIED, EVT_ID.F_PERMISSION], [FR.READ_DENIED, EVT_ID.F_PERMISSION], [FR.EXEC_DENIED, EVT_ID.F_PERMISSION],
  [FR.PRIVILEGE, EVT_ID.F_PERMISSION], [FR.SUPERVISOR_NOT_ENABLED, EVT_ID.F_PERMISSION],
]);

const REASON_OF_EVENT = new Map<number, FaultReasonName>([
  [EVT_ID.C_BAD_SUBSTREAMID, 'pasid-invalid'], [EVT_ID.C_BAD_CD, 'bad-pasid-entry'], [EVT_ID.F_CD_FETCH, 'pasid-fetch'],
  [EVT_ID.F_WALK_EABT, 'walk-abort'], [EVT_ID.F_TRANSLATION, 'pte-fetch'], [EVT_ID.F_ADDR_SIZE, 'out-of-range'],
  [EVT_ID.F_ACCESS, 'access'], [EVT_ID.F_PERMISSION, 'permission'],
]);

/** The event ID a fault of the core is recorded as. */
export function smmuEventOfFr(fr: number): number {
  return EVENT_OF_FR.get(fr) ?? EVT_ID.F_TRANSLATION;
}

/** The public reason name of an event (stream-level events: 'unknown', as VT-d root/context faults). */
export function smmuReasonOfEvent(id: number): FaultReasonName {
  return REASON_OF_EVENT.get(id) ?? 'unknown';
}

/**
 * CLASS of a stage-1 event: TT for an abort fetching a translation table, IN for a fault
 * on the input address (F_TRANSLATION, F_PERMISSION: QEMU SMMU_CLASS_IN; Linux reads a
 * CLASS_TT F_PERMISSION as a fault of the table walk, with TTRnW as its direction).
 */
function eventClass(id: number): number {
  if (id === EVT_ID.F_WALK_EABT) return EVT_CLASS_TT;
  if (id === EVT_ID.C_BAD_CD || id === EVT_ID.F_CD_FETCH) return EVT_CLASS_CD;
  return EVT_CLASS_IN;
}

const RESP_OF_CODE: Record<number, number> = { [RESP_SUCCESS]: PRI_RESP_SUCC, [RESP_FAILURE]: PRI_RESP_FAIL };

/** The core's response code of a CMD_PRI_RESP RESP field. */
export function coreResponseOfPriResp(resp: number): number {
  return resp === PRI_RESP_SUCC ? RESP_SUCCESS : resp === PRI_RESP_FAIL ? RESP_FAILURE : 0x1;
}

export const SMMU_CODEC: ProfileCodec<SmmuCmd> = {
  profile: 'smmuv3',
  cmdBytes: SMMU_CMD_BYTES,
  faultBytes: SMMU_EVENT_BYTES,
  prqBytes: SMMU_PRI_BYTES,
  writeCmd: writeSmmuCmd,
  cacheClass: (c) => (c.type === 'atc-inv' ? 'devtlb' : c.type.startsWith('tlbi-') ? 'iotlb' : c.type === 'cfgi-cd' || c.type === 'cfgi-cd-all' ? 'pasid-cache'
    : c.type === 'cfgi-ste' || c.type === 'cfgi-ste-range' ? 'context-cache' : 'other'),
  waitCmd: (addr, data) => ({ type: 'cmd-sync', cs: CS_IRQ, msh: SH_ISH, msiattr: MEMATTR_OIWB, msiData: data >>> 0, msiAddr: addr }),
  drainInWait: false,
  pageResponseCmd: (r) => ({
    type: 'pri-resp', ssv: r.pasidPresent, ssid: r.pasidPresent ? r.pasid : 0, sid: r.rid, grpid: r.prgIndex,
    resp: RESP_OF_CODE[r.code] ?? PRI_RESP_DENY,
  }),
  faultOf(fr) {
    const id = smmuEventOfFr(fr);
    return { reason: smmuReasonOfEvent(id), code: id };
  },
  writeFault(u32, at, f) {
    const id = smmuEventOfFr(f.fr);
    writeSmmuEvent(u32, at, smmuEvent(id, {
      ssv: f.pasid >= 0, ssid: f.pasid >= 0 ? f.pasid : 0, sid: f.rid, rnw: !f.write, pnu: false, ind: false,
      class: eventClass(id), inputAddr: f.addr & ~0xfffn,
    }));
  },
  readFault(u32, at) {
    const e = readSmmuEvent(u32, at);
    return { sid: e.sid, pasidPresent: e.ssv, pasid: e.ssid, addr: e.inputAddr, read: e.rnw, reason: smmuReasonOfEvent(e.id), code: e.id };
  },
  writePageRequest(u32, at, d) {
    writeSmmuPri(u32, at, {
      sid: d.rid, ssid: d.pasidPresent ? d.pasid : 0, ssv: d.pasidPresent, priv: d.pm, exec: d.exe, read: d.read, write: d.write,
      last: d.lpig, prgIndex: d.prgIndex, addr: d.addr,
    });
  },
  readPageRequest(u32, at): PageRequestDesc {
    const r = readSmmuPri(u32, at);
    return {
      pasidPresent: r.ssv, privDataPresent: false, rid: r.sid, pasid: r.ssid, exe: r.exec, pm: r.priv, read: r.read, write: r.write,
      lpig: r.last, prgIndex: r.prgIndex, addr: r.addr, privData0: 0n, privData1: 0n,
    };
  },
};
