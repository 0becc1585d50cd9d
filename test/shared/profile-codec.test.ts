/**
 * The per-profile codecs (shared/layout/profile-codec.ts): entry sizes, faults of the core
 * written as each profile's record and read back, page requests both ways, the completion
 * and page-response commands, and the cache class of commands.
 */
import { describe, expect, it } from 'vitest';
import { type CoreFault, type ResponseCode, profileCodec } from '../../shared/layout/profile-codec.js';
import type { HwProfileName } from '../../shared/layout/profile-widths.js';
import { FR, type FaultReasonName, faultReasonName, readFaultRecord } from '../../shared/layout/fault-record.js';
import type { PageRequestDesc } from '../../shared/layout/page-request.js';
import {
  CC_GRAN_DEVICE, IOTLB_GRAN_PAGE, type InvDesc, PC_GRAN_PASID, RESP_FAILURE, RESP_INVALID, RESP_SUCCESS, readInvDesc,
} from '../../shared/layout/inv-desc.js';
import { VTD_CODEC } from '../../shared/layout/vtd-codec.js';
import { SMMU_CODEC, coreResponseOfPriResp } from '../../shared/layout/smmuv3/codec.js';
import { AMD_CODEC } from '../../shared/layout/amd/codec.js';
import {
  CS_IRQ, MEMATTR_OIWB, PRI_RESP_DENY, PRI_RESP_FAIL, PRI_RESP_SUCC, SH_ISH, type SmmuCmd, readSmmuCmd,
} from '../../shared/layout/smmuv3/commands.js';
import { EVT_CLASS_CD, EVT_CLASS_IN, EVT_CLASS_TT, EVT_ID, readSmmuEvent } from '../../shared/layout/smmuv3/event.js';
import { readSmmuPri } from '../../shared/layout/smmuv3/pri.js';
import { type AmdCmd, PPR_FAILURE, PPR_INVALID, PPR_SUCCESS, readAmdCmd } from '../../shared/layout/amd/commands.js';
import { AMD_EVENT, IOPF_FLAG, readAmdEvent } from '../../shared/layout/amd/event-log.js';
import { readPprEntry } from '../../shared/layout/amd/ppr-log.js';

const PROFILES: HwProfileName[] = ['vtd', 'smmuv3', 'amd'];

describe('profileCodec', () => {
  it('returns each profile\'s codec, named after it', () => {
    expect(profileCodec('vtd')).toBe(VTD_CODEC);
    expect(profileCodec('smmuv3')).toBe(SMMU_CODEC);
    expect(profileCodec('amd')).toBe(AMD_CODEC);
    for (const p of PROFILES) expect(profileCodec(p).profile).toBe(p);
  });

  it('has the entry sizes of each queue', () => {
    const sizes = (p: HwProfileName) => {
      const c = profileCodec(p);
      return [c.cmdBytes, c.faultBytes, c.prqBytes];
    };
    expect(sizes('vtd')).toEqual([32, 16, 32]);
    expect(sizes('smmuv3')).toEqual([16, 32, 16]);
    expect(sizes('amd')).toEqual([16, 16, 16]);
  });
});

// --- Faults. ---

/** [FR, VT-d reason, SMMUv3 event, SMMUv3 reason, AMD event (null: not an AMD core fault), AMD reason]. */
type Row = [number, FaultReasonName, number, FaultReasonName, number | null, FaultReasonName | null];
const FAULTS: Row[] = [
  [FR.ROOT_ENTRY_NOT_PRESENT, 'unknown', EVT_ID.C_BAD_STREAMID, 'unknown', AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, 'unknown'],
  [FR.CONTEXT_TABLE_ACCESS, 'unknown', EVT_ID.F_STE_FETCH, 'unknown', AMD_EVENT.DEV_TAB_HARDWARE_ERROR, 'unknown'],
  [FR.CONTEXT_ENTRY_NOT_PRESENT, 'unknown', EVT_ID.C_BAD_STE, 'unknown', AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, 'unknown'],
  // A blocked AMD device (DTE IR = IW = 0): IO_PAGE_FAULT, as Linux logs DMA from a device with no domain.
  [FR.CONTEXT_ENTRY_INVALID, 'unknown', EVT_ID.C_BAD_STE, 'unknown', AMD_EVENT.IO_PAGE_FAULT, 'pte-fetch'],
  [FR.CONTEXT_ENTRY_RESERVED, 'unknown', EVT_ID.C_BAD_STE, 'unknown', AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, 'unknown'],
  [FR.RID_PASID_ERROR, 'unknown', EVT_ID.F_STREAM_DISABLED, 'unknown', null, null],
  [FR.PASID_DISABLED, 'pasid-invalid', EVT_ID.C_BAD_SUBSTREAMID, 'pasid-invalid', AMD_EVENT.INVALID_DEVICE_REQUEST, 'pasid-invalid'],
  [FR.PASID_DIR_INDEX_OVER_PDTS, 'pasid-invalid', EVT_ID.C_BAD_SUBSTREAMID, 'pasid-invalid', AMD_EVENT.INVALID_DEVICE_REQUEST, 'pasid-invalid'],
  [FR.PASID_DIR_ENTRY_NOT_PRESENT, 'pasid-invalid', EVT_ID.C_BAD_SUBSTREAMID, 'pasid-invalid', AMD_EVENT.IO_PAGE_FAULT, 'pte-fetch'],
  [FR.PASID_TABLE_ACCESS, 'pasid-fetch', EVT_ID.F_CD_FETCH, 'pasid-fetch', AMD_EVENT.PAGE_TAB_HARDWARE_ERROR, 'walk-abort'],
  [FR.PASID_ENTRY_NOT_PRESENT, 'bad-pasid-entry', EVT_ID.C_BAD_CD, 'bad-pasid-entry', AMD_EVENT.IO_PAGE_FAULT, 'pte-fetch'],
  [FR.PASID_ENTRY_INVALID, 'bad-pasid-entry', EVT_ID.C_BAD_CD, 'bad-pasid-entry', null, null],
  [FR.PTE_ACCESS, 'walk-abort', EVT_ID.F_WALK_EABT, 'walk-abort', AMD_EVENT.PAGE_TAB_HARDWARE_ERROR, 'walk-abort'],
  [FR.SS_PTE_ACCESS, 'walk-abort', EVT_ID.F_WALK_EABT, 'walk-abort', AMD_EVENT.PAGE_TAB_HARDWARE_ERROR, 'walk-abort'],
  [FR.FS_PTE_NOT_PRESENT, 'pte-fetch', EVT_ID.F_TRANSLATION, 'pte-fetch', AMD_EVENT.IO_PAGE_FAULT, 'pte-fetch'],
  [FR.SS_PTE_NOT_PRESENT, 'pte-fetch', EVT_ID.F_TRANSLATION, 'pte-fetch', AMD_EVENT.IO_PAGE_FAULT, 'pte-fetch'],
  [FR.WRITE_DENIED, 'permission', EVT_ID.F_PERMISSION, 'permission', AMD_EVENT.IO_PAGE_FAULT, 'permission'],
  [FR.READ_DENIED, 'permission', EVT_ID.F_PERMISSION, 'permission', AMD_EVENT.IO_PAGE_FAULT, 'permission'],
  [FR.EXEC_DENIED, 'permission', EVT_ID.F_PERMISSION, 'permission', AMD_EVENT.IO_PAGE_FAULT, 'permission'],
  [FR.PRIVILEGE, 'permission', EVT_ID.F_PERMISSION, 'permission', AMD_EVENT.IO_PAGE_FAULT, 'permission'],
  [FR.SUPERVISOR_NOT_ENABLED, 'permission', EVT_ID.F_PERMISSION, 'permission', AMD_EVENT.IO_PAGE_FAULT, 'permission'],
  // Arm reports an input address beyond T0SZ as F_TRANSLATION; AMD as IO_PAGE_FAULT.
  [FR.ADDRESS_BEYOND_AW, 'out-of-range', EVT_ID.F_TRANSLATION, 'pte-fetch', AMD_EVENT.IO_PAGE_FAULT, 'pte-fetch'],
];

function expected(p: HwProfileName, row: Row): { reason: FaultReasonName; code: number } | null {
  const [fr, vr, sid, sr, at, ar] = row;
  if (p === 'vtd') return { reason: vr, code: fr };
  if (p === 'smmuv3') return { reason: sr, code: sid };
  return at === null ? null : { reason: ar!, code: at };
}

/** Writes `f` into the second slot of a zeroed queue and reads it back; the first slot stays zero. */
function roundTrip(p: HwProfileName, f: CoreFault) {
  const c = profileCodec(p);
  const slot = c.faultBytes / 4;
  const u32 = new Uint32Array(slot * 3);
  c.writeFault(u32, slot, f);
  expect(Array.from(u32.subarray(0, slot)).every((w) => w === 0)).toBe(true);
  expect(Array.from(u32.subarray(2 * slot)).every((w) => w === 0)).toBe(true);
  return { view: c.readFault(u32, slot), u32, slot };
}

describe('faults: writeFault / readFault / faultOf', () => {
  for (const p of PROFILES) {
    describe(p, () => {
      it('reads back each core fault with its sid, PASID, page, direction, reason and the profile code', () => {
        let checked = 0;
        for (const row of FAULTS) {
          const exp = expected(p, row);
          if (exp === null) continue;
          const fr = row[0];
          for (const write of [false, true]) {
            const f: CoreFault = { rid: 0xa1b, pasid: 0x12345, addr: 0x1234_5678_9abcn, fr, write };
            const { view } = roundTrip(p, f);
            const ctx = `${p} FR 0x${fr.toString(16)} write=${write}`;
            expect(view.reason, ctx).toBe(exp.reason);
            expect(view.code, ctx).toBe(exp.code);
            expect(c(p).faultOf(fr), ctx).toEqual({ reason: view.reason, code: view.code });
            expect(view.sid, ctx).toBe(0xa1b);
            expect(view.pasidPresent, ctx).toBe(true);
            expect(view.pasid, ctx).toBe(0x12345);
            expect(view.addr, ctx).toBe(0x1234_5678_9000n);
            // AMD INVALID_DEVICE_REQUEST has no RW field: the direction is not reported.
            if (!(p === 'amd' && exp.code === AMD_EVENT.INVALID_DEVICE_REQUEST)) expect(view.read, ctx).toBe(!write);
            checked++;
          }
        }
        expect(checked).toBeGreaterThan(30);
      });

      it('reads back a fault without PASID as such', () => {
        for (const fr of [FR.FS_PTE_NOT_PRESENT, FR.WRITE_DENIED, FR.PTE_ACCESS, FR.CONTEXT_ENTRY_INVALID]) {
          const { view } = roundTrip(p, { rid: 0x300, pasid: -1, addr: 0xfee_d000n, fr, write: true });
          expect(view, `FR 0x${fr.toString(16)}`).toMatchObject({ sid: 0x300, pasidPresent: false, pasid: 0, addr: 0xfee_d000n });
        }
      });

      it('keeps PASID 0 apart from no PASID', () => {
        const { view } = roundTrip(p, { rid: 0x300, pasid: 0, addr: 0x5000n, fr: FR.FS_PTE_NOT_PRESENT, write: false });
        expect(view).toMatchObject({ pasidPresent: true, pasid: 0, read: true });
      });

      it('faultOf agrees with faultReasonName on VT-d and with readFault for every FR code', () => {
        for (let fr = 0x30; fr <= 0x91; fr++) {
          const o = c(p).faultOf(fr);
          if (p === 'vtd') expect(o).toEqual({ reason: faultReasonName(fr), code: fr });
          if (p === 'amd' && fr === FR.RID_PASID_ERROR) continue;
          const { view } = roundTrip(p, { rid: 1, pasid: 7, addr: 0x7000n, fr, write: false });
          expect({ reason: view.reason, code: view.code }, `FR 0x${fr.toString(16)}`).toEqual(o);
        }
      });
    });
  }

  it('VT-d: the record is the FRCD itself (FR code, T bit, F set)', () => {
    const { u32, slot } = roundTrip('vtd', { rid: 0x312, pasid: 9, addr: 0xabc_def0n, fr: FR.WRITE_DENIED, write: true });
    expect(readFaultRecord(u32, slot)).toEqual({
      addr: 0xabc_d000n, sid: 0x312, pasidPresent: true, reason: FR.WRITE_DENIED, pasid: 9, addressType: 0, read: false, fault: true,
    });
  });

  it('SMMUv3: SSV/SSID, RnW and CLASS as Linux and QEMU read them (IN for stage-1 translation faults, TT for walk aborts)', () => {
    const ev = (fr: number, write: boolean, pasid = 5) => {
      const { u32, slot } = roundTrip('smmuv3', { rid: 0x312, pasid, addr: 0x4000n, fr, write });
      return readSmmuEvent(u32, slot);
    };
    expect(ev(FR.WRITE_DENIED, true)).toMatchObject({ id: EVT_ID.F_PERMISSION, ssv: true, ssid: 5, sid: 0x312, rnw: false, class: EVT_CLASS_IN, inputAddr: 0x4000n });
    expect(ev(FR.FS_PTE_NOT_PRESENT, false)).toMatchObject({ id: EVT_ID.F_TRANSLATION, rnw: true, class: EVT_CLASS_IN });
    expect(ev(FR.PTE_ACCESS, false)).toMatchObject({ id: EVT_ID.F_WALK_EABT, class: EVT_CLASS_TT });
    expect(ev(FR.PASID_ENTRY_NOT_PRESENT, false)).toMatchObject({ id: EVT_ID.C_BAD_CD, class: EVT_CLASS_CD });
    expect(ev(FR.PASID_TABLE_ACCESS, false)).toMatchObject({ id: EVT_ID.F_CD_FETCH, class: EVT_CLASS_CD });
    expect(ev(FR.FS_PTE_NOT_PRESENT, false, -1)).toMatchObject({ ssv: false, ssid: 0 });
  });

  it('AMD: IO_PAGE_FAULT flags GN / RW / PR, and RW / GN on the other events that carry them', () => {
    const ev = (fr: number, write: boolean, pasid = 0x10005) => {
      const { u32, slot } = roundTrip('amd', { rid: 0x312, pasid, addr: 0x4000n, fr, write });
      return readAmdEvent(u32, slot);
    };
    const notPresent = ev(FR.FS_PTE_NOT_PRESENT, true);
    expect(notPresent).toMatchObject({ type: AMD_EVENT.IO_PAGE_FAULT, deviceId: 0x312, pasid: 0x10005, address: 0x4000n });
    expect(notPresent.flags & (IOPF_FLAG.GN | IOPF_FLAG.RW | IOPF_FLAG.PR)).toBe(IOPF_FLAG.GN | IOPF_FLAG.RW);
    const perm = ev(FR.READ_DENIED, false);
    expect(perm.flags & (IOPF_FLAG.GN | IOPF_FLAG.RW | IOPF_FLAG.PR)).toBe(IOPF_FLAG.GN | IOPF_FLAG.PR);
    expect(ev(FR.FS_PTE_NOT_PRESENT, false, -1).flags & IOPF_FLAG.GN).toBe(0);
    // PAGE_TAB_HARDWARE_ERROR and ILLEGAL_DEV_TABLE_ENTRY carry GN (bit 48) and RW (bit 53);
    // DEV_TAB_HARDWARE_ERROR RW only (AMD IOMMU spec, event log entry formats).
    expect(ev(FR.PTE_ACCESS, true).flags & (IOPF_FLAG.GN | IOPF_FLAG.RW)).toBe(IOPF_FLAG.GN | IOPF_FLAG.RW);
    expect(ev(FR.CONTEXT_ENTRY_RESERVED, true).flags & (IOPF_FLAG.GN | IOPF_FLAG.RW)).toBe(IOPF_FLAG.GN | IOPF_FLAG.RW);
    expect(ev(FR.CONTEXT_TABLE_ACCESS, true).flags & IOPF_FLAG.RW).toBe(IOPF_FLAG.RW);
    expect(ev(FR.PTE_ACCESS, false, -1).flags & (IOPF_FLAG.GN | IOPF_FLAG.RW)).toBe(0);
  });
});

function c(p: HwProfileName) {
  return profileCodec(p);
}

// --- Page requests. ---

function req(o: Partial<PageRequestDesc> = {}): PageRequestDesc {
  return {
    pasidPresent: true, privDataPresent: false, rid: 0x0312, pasid: 0x45, exe: false, pm: false, read: true, write: false,
    lpig: false, prgIndex: 0x1a5, addr: 0x7fff_1234_5000n, privData0: 0n, privData1: 0n, ...o,
  };
}

describe('page requests: writePageRequest / readPageRequest', () => {
  for (const p of PROFILES) {
    it(`${p}: round-trips requests, a stop marker, a 20-bit PASID, priv and exec`, () => {
      const codec = c(p);
      const slot = codec.prqBytes / 4;
      const cases = [
        req(),
        req({ write: true, read: true, lpig: true }),
        req({ read: false, write: false, lpig: true, prgIndex: 3 }), // stop marker
        req({ pasid: 0xfffff }),
        req({ pm: true }),
        req({ exe: true, pm: true, prgIndex: 511, addr: 0xffff_ffff_ffff_f000n }),
        req({ pasidPresent: false, pasid: 0, rid: 0xffff, prgIndex: 0 }),
      ];
      for (const d of cases) {
        const u32 = new Uint32Array(slot * 3);
        codec.writePageRequest(u32, slot, d);
        expect(Array.from(u32.subarray(0, slot)).every((w) => w === 0)).toBe(true);
        expect(codec.readPageRequest(u32, slot), JSON.stringify(d, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v))).toEqual(d);
      }
    });
  }

  it('SMMUv3: the PRI record carries SSV, SSID, Priv, Exec, Last', () => {
    const u32 = new Uint32Array(4);
    SMMU_CODEC.writePageRequest(u32, 0, req({ pasid: 0xfffff, pm: true, exe: true, lpig: true }));
    expect(readSmmuPri(u32, 0)).toMatchObject({ sid: 0x312, ssv: true, ssid: 0xfffff, priv: true, exec: true, last: true, read: true, write: false, prgIndex: 0x1a5 });
  });

  it('AMD: the PPR entry has US set for a user request (pm clear) and clear for a supervisor one', () => {
    const u32 = new Uint32Array(4);
    AMD_CODEC.writePageRequest(u32, 0, req({ pm: false, pasid: 0xfffff }));
    expect(readPprEntry(u32, 0)).toMatchObject({ us: true, gn: true, pasid: 0xfffff, deviceId: 0x312, prgIndex: 0x1a5 });
    AMD_CODEC.writePageRequest(u32, 0, req({ pm: true }));
    expect(readPprEntry(u32, 0).us).toBe(false);
  });
});

// --- Commands. ---

const RESP: ResponseCode[] = [RESP_SUCCESS, RESP_INVALID, RESP_FAILURE];

describe('completion and page-response commands', () => {
  const addr = 0x1234_5678_9ab8n;

  it('VT-d: a wait descriptor with status write, read back by readInvDesc', () => {
    const w = VTD_CODEC.waitCmd(addr, 0xdead_beef);
    expect(w).toMatchObject({ type: 'wait', statusWrite: true, statusData: 0xdead_beef, statusAddr: addr });
    const u32 = new Uint32Array(16);
    VTD_CODEC.writeCmd(u32, 8, w);
    expect(readInvDesc(u32, 8)).toEqual(w);
    for (const code of RESP) {
      const r = VTD_CODEC.pageResponseCmd({ rid: 0x312, pasid: 0x45, pasidPresent: true, prgIndex: 0x1a5, code });
      expect(r).toMatchObject({ type: 'page-group-response', rid: 0x312, pasid: 0x45, pasidPresent: true, prgIndex: 0x1a5, responseCode: code });
      VTD_CODEC.writeCmd(u32, 0, r);
      expect(readInvDesc(u32, 0)).toEqual(r);
    }
    expect(VTD_CODEC.pageResponseCmd({ rid: 1, pasid: 0x45, pasidPresent: false, prgIndex: 2, code: RESP_SUCCESS })).toMatchObject({ pasidPresent: false, pasid: 0 });
  });

  it('SMMUv3: CMD_SYNC with CS = IRQ and the MSI write at memory; CMD_PRI_RESP SUCC / DENY / FAIL', () => {
    const w = SMMU_CODEC.waitCmd(addr, 0xdead_beef);
    expect(w).toEqual({ type: 'cmd-sync', cs: CS_IRQ, msh: SH_ISH, msiattr: MEMATTR_OIWB, msiData: 0xdead_beef, msiAddr: addr });
    const u32 = new Uint32Array(8);
    SMMU_CODEC.writeCmd(u32, 4, w);
    expect(readSmmuCmd(u32, 4)).toEqual(w);
    const resp = { [RESP_SUCCESS]: PRI_RESP_SUCC, [RESP_INVALID]: PRI_RESP_DENY, [RESP_FAILURE]: PRI_RESP_FAIL };
    for (const code of RESP) {
      const r = SMMU_CODEC.pageResponseCmd({ rid: 0x312, pasid: 0xfffff, pasidPresent: true, prgIndex: 0x1a5, code });
      expect(r).toEqual({ type: 'pri-resp', ssv: true, ssid: 0xfffff, sid: 0x312, grpid: 0x1a5, resp: resp[code] });
      SMMU_CODEC.writeCmd(u32, 0, r);
      const back = readSmmuCmd(u32, 0);
      expect(back).toEqual(r);
      expect(coreResponseOfPriResp((back as Extract<SmmuCmd, { type: 'pri-resp' }>).resp)).toBe(code);
    }
    expect(SMMU_CODEC.pageResponseCmd({ rid: 1, pasid: 9, pasidPresent: false, prgIndex: 2, code: RESP_SUCCESS })).toMatchObject({ ssv: false, ssid: 0 });
  });

  it('AMD: COMPLETION_WAIT with the store; COMPLETE_PPR with status 0 / 1 / 0xf', () => {
    const w = AMD_CODEC.waitCmd(addr, 0xdead_beef);
    expect(w).toEqual({ type: 'completion-wait', s: true, i: false, f: false, storeAddr: addr, storeData: 0xdead_beefn });
    const u32 = new Uint32Array(8);
    AMD_CODEC.writeCmd(u32, 4, w);
    expect(readAmdCmd(u32, 4)).toEqual(w);
    const status = { [RESP_SUCCESS]: PPR_SUCCESS, [RESP_INVALID]: PPR_INVALID, [RESP_FAILURE]: PPR_FAILURE };
    expect(status).toEqual({ 0: 0, 1: 1, 15: 0xf });
    for (const code of RESP) {
      const r = AMD_CODEC.pageResponseCmd({ rid: 0x312, pasid: 0xfffff, pasidPresent: true, prgIndex: 0x1a5, code });
      expect(r).toEqual({ type: 'complete-ppr', deviceId: 0x312, pasid: 0xfffff, gn: true, tag: 0x1a5, status: status[code] });
      AMD_CODEC.writeCmd(u32, 0, r);
      expect(readAmdCmd(u32, 0)).toEqual(r);
    }
    expect(AMD_CODEC.pageResponseCmd({ rid: 1, pasid: 9, pasidPresent: false, prgIndex: 2, code: RESP_SUCCESS })).toMatchObject({ gn: false, pasid: 0 });
  });
});

describe('cacheClass', () => {
  it('VT-d', () => {
    const cls = (d: InvDesc) => VTD_CODEC.cacheClass(d);
    expect(cls({ type: 'iotlb', granularity: IOTLB_GRAN_PAGE, dw: false, dr: false, did: 1, addr: 0n, ih: false, am: 0 })).toBe('iotlb');
    expect(cls({ type: 'pasid-iotlb', granularity: 2, did: 1, pasid: 3, addr: 0n, ih: false, am: 0 })).toBe('iotlb');
    expect(cls({ type: 'device-tlb', sid: 1, pfsid: 0, qdep: 0, addr: 0n, s: false })).toBe('devtlb');
    expect(cls({ type: 'pasid-device-tlb', sid: 1, pfsid: 0, qdep: 0, pasid: 3, addr: 0n, s: false, global: false })).toBe('devtlb');
    expect(cls({ type: 'pasid-cache', granularity: PC_GRAN_PASID, did: 1, pasid: 3 })).toBe('pasid-cache');
    expect(cls({ type: 'context-cache', granularity: CC_GRAN_DEVICE, did: 1, sid: 3, fm: 0 })).toBe('context-cache');
    expect(cls(VTD_CODEC.waitCmd(0n, 1))).toBe('other');
  });

  it('SMMUv3', () => {
    const cls = (x: SmmuCmd) => SMMU_CODEC.cacheClass(x);
    expect(cls({ type: 'atc-inv', global: false, ssv: true, ssid: 1, sid: 2, size: 0, addr: 0n })).toBe('devtlb');
    expect(cls({ type: 'tlbi-nh-va', vmid: 0, asid: 1, num: 0, scale: 0, leaf: true, ttl: 0, tg: 0, addr: 0n })).toBe('iotlb');
    expect(cls({ type: 'tlbi-nh-asid', vmid: 0, asid: 1 })).toBe('iotlb');
    expect(cls({ type: 'tlbi-nh-all', vmid: 0 })).toBe('iotlb');
    expect(cls({ type: 'cfgi-cd', sid: 1, ssid: 2, leaf: true })).toBe('pasid-cache');
    expect(cls({ type: 'cfgi-cd-all', sid: 1 })).toBe('pasid-cache');
    expect(cls({ type: 'cfgi-ste', sid: 1, leaf: true })).toBe('context-cache');
    expect(cls({ type: 'cfgi-ste-range', sid: 0, range: 31 })).toBe('context-cache');
    expect(cls(SMMU_CODEC.waitCmd(0n, 1))).toBe('other');
    expect(cls({ type: 'pri-resp', ssv: false, ssid: 0, sid: 1, grpid: 0, resp: 0 })).toBe('other');
  });

  it('AMD', () => {
    const cls = (x: AmdCmd) => AMD_CODEC.cacheClass(x);
    expect(cls({ type: 'inv-iotlb-pages', deviceId: 1, pasid: 0, maxPend: 0, queueId: 1, s: false, gn: false, addr: 0n })).toBe('devtlb');
    expect(cls({ type: 'inv-iommu-pages', pasid: 0, domainId: 1, s: false, pde: true, gn: false, addr: 0n })).toBe('iotlb');
    expect(cls({ type: 'inv-iommu-all' })).toBe('iotlb');
    expect(cls({ type: 'inv-devtab-entry', deviceId: 1 })).toBe('context-cache');
    expect(cls(AMD_CODEC.waitCmd(0n, 1))).toBe('other');
    expect(cls({ type: 'complete-ppr', deviceId: 1, pasid: 0, gn: false, tag: 0, status: 0 })).toBe('other');
  });
});
