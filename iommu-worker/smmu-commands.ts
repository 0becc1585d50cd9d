/**
 * The SMMUv3 command-queue consumer: executes the 16-byte commands the driver queues, in
 * order, against this SMMU's caches.
 *
 * Models: CFGI_STE / CFGI_STE_RANGE (incl. CFGI_ALL) / CFGI_CD / CFGI_CD_ALL on the
 * configuration caches (STE → context cache; CD → PASID cache); TLBI_NH_ALL, TLBI_NH_ASID,
 * TLBI_NH_VA (one page, or a range with NUM/SCALE/TG when IDR3.RIL) and TLBI_NH_VAA,
 * TLBI_NSNH_ALL on the TLB, whose entries are tagged by ASID (the CD's) and not by SSID;
 * TLBI_S12_VMALL and TLBI_S2_IPA (one page or a range) on a VMID's stage-2 entries;
 * ATC_INV on a function's ATC (SSV/SSID or all substreams with GLOBAL, SIZE as log2 pages);
 * PRI_RESP to the device model (SUCC retries, DENY = INVALID, FAIL stops the function's
 * PRI); CMD_SYNC, whose MSI write (MSIDATA to MSIADDR) is the completion the driver polls,
 * as Linux's MSIPOLL; PREFETCH_* as no-ops. Each command costs modelled time; the paging-
 * structure caches are emptied with configuration and TLB invalidations.
 * Does not model: EL2 TLBIs, stage-1 entries under a VMID (nesting), stall mode
 * (CMD_RESUME / CMD_STALL_TERM), the CERROR reporting in CMDQ_CONS (an illegal or
 * unsupported command stops the simulation, as an invalidation-queue error does on VT-d).
 */
import type { ArenaView } from '../shared/memory/arena.js';
import type { CostModel } from '../shared/config.js';
import { CFGI_RANGE_ALL, type SmmuCmd, readSmmuCmd, tlbiRangeBytes } from '../shared/layout/smmuv3/commands.js';
import { coreResponseOfPriResp } from '../shared/layout/smmuv3/codec.js';
import { ANY_DID, NO_PASID_TAG, STAGE2_TAG } from './iotlb.js';
import type { Translator } from './translate.js';
import { CMD_ATS, CMD_OTHER, CMD_WAIT, type CommandSet, type DecodedCommand, storeStatus } from './command-set.js';

export class SmmuCommandError extends Error {
  constructor(readonly command: SmmuCmd) {
    super(`SMMU command queue error (CERROR_ILL): command ${command.type === 'unknown' ? `opcode 0x${command.op.toString(16)}` : command.type} not supported`);
  }
}

/** 4 KiB pages a TLBI covers: TG 0 is one page (the leaf at the address), else (NUM + 1) × 2^SCALE granules. */
function rangePages(c: { num: number; scale: number; tg: number }): number {
  return c.tg === 0 ? 1 : Number(tlbiRangeBytes(c.num, c.scale, c.tg) >> 12n);
}

export class SmmuCommandExecutor implements CommandSet {
  readonly counts: Record<string, number> = {};
  waits = 0;
  onPageResponse: (rid: number, prgIndex: number, code: number) => void = () => {};

  constructor(private readonly t: Translator, private readonly view: ArenaView, private readonly costs: CostModel) {}

  decode(u32: Uint32Array, at: number): DecodedCommand {
    const c = readSmmuCmd(u32, at);
    if (c.type === 'cmd-sync') return { kind: CMD_WAIT, sid: 0, data: c.msiData, pageDrain: false, interrupt: c.cs === 1, cmd: c };
    if (c.type === 'atc-inv') return { kind: CMD_ATS, sid: c.sid, data: 0, pageDrain: false, interrupt: false, cmd: c };
    return { kind: CMD_OTHER, sid: 0, data: 0, pageDrain: false, interrupt: false, cmd: c };
  }

  execute(dc: DecodedCommand): number {
    const c = dc.cmd as SmmuCmd;
    this.counts[c.type] = (this.counts[c.type] ?? 0) + 1;
    const t = this.t;
    const costs = this.costs;
    switch (c.type) {
      case 'cfgi-ste':
        t.psc.clear();
        // An STE's invalidation takes the CDs cached through it along (LEAF only spares the
        // L1 stream-table descriptor, which is not cached here).
        t.contextCache.invalidateDevice(c.sid, 0);
        t.pasidCache.invalidateDevice(c.sid);
        return costs.descriptorNs;
      case 'cfgi-ste-range':
        t.psc.clear();
        if (c.range === CFGI_RANGE_ALL) {
          t.contextCache.invalidateAll();
          t.pasidCache.invalidateAll();
        } else {
          const n = 2 ** c.range;
          const first = c.sid - (c.sid % n);
          for (let sid = first; sid < first + n && sid <= 0xffff; sid++) {
            t.contextCache.invalidateDevice(sid, 0);
            t.pasidCache.invalidateDevice(sid);
          }
        }
        return costs.descriptorNs;
      case 'cfgi-cd':
        t.psc.clear();
        t.pasidCache.invalidateDevice(c.sid, c.ssid);
        return costs.descriptorNs;
      case 'cfgi-cd-all':
        t.psc.clear();
        t.pasidCache.invalidateDevice(c.sid);
        return costs.descriptorNs;
      case 'tlbi-nh-all':
      case 'tlbi-nsnh-all':
        t.psc.clear();
        t.iotlb.invalidateAll();
        return costs.descriptorNs;
      case 'tlbi-nh-asid':
        t.psc.clear();
        t.iotlb.invalidateDomain(c.asid);
        return costs.descriptorNs;
      case 'tlbi-nh-va':
      case 'tlbi-nh-vaa': {
        t.psc.clear();
        const vpn = Number(c.addr >> 12n);
        t.iotlb.invalidateRange(c.type === 'tlbi-nh-va' ? c.asid : ANY_DID, NO_PASID_TAG, vpn, rangePages(c));
        return costs.descriptorNs;
      }
      case 'tlbi-s12-vmall':
        // Everything of the VMID: its stage-2 entries (stage-1 under a VMID is not modelled).
        t.psc.clear();
        t.iotlb.invalidateDomain(STAGE2_TAG + c.vmid);
        return costs.descriptorNs;
      case 'tlbi-s2-ipa': {
        t.psc.clear();
        t.iotlb.invalidateRange(STAGE2_TAG + c.vmid, NO_PASID_TAG, Number(c.addr >> 12n), rangePages(c));
        return costs.descriptorNs;
      }
      case 'atc-inv': {
        const all = c.size >= 52;
        const base = all ? 0 : Number(c.addr >> 12n);
        const pages = 2 ** (all ? 52 : c.size);
        t.devTlbs.get(c.sid)?.invalidate(c.global ? 'all-pasids' : c.ssv ? c.ssid : NO_PASID_TAG, all ? 0 : base - (base % pages), pages);
        return costs.devTlbInvNs;
      }
      case 'pri-resp':
        this.onPageResponse(c.sid, c.grpid, coreResponseOfPriResp(c.resp));
        return costs.descriptorNs;
      case 'prefetch-config':
      case 'prefetch-addr':
        return costs.descriptorNs;
      case 'cmd-sync':
        this.waits++;
        if (c.cs === 1 && !storeStatus(this.view, c.msiAddr, c.msiData)) throw new SmmuCommandError(c);
        return costs.waitNs;
      default:
        throw new SmmuCommandError(c);
    }
  }
}
