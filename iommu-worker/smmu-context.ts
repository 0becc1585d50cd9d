/**
 * SMMUv3 stream and substream lookup: what the hardware reads before a stage-1 walk.
 *
 * Models: STRTAB_BASE → L1 stream table descriptor (by StreamID >> STRTAB_SPLIT: SPAN,
 * L2Ptr) → STE (V, Config, S1Fmt, S1ContextPtr, S1CDMax, S1DSS, EATS) → for a substream
 * the CD table, linear or 2-level (L1 CD descriptor, then the leaf: 1024 CDs with S1Fmt
 * 64K_L2, 64 with 4K_L2) → CD (V, EPD0, R, T0SZ, TG0, AA64, ASID, TTB0). Each table read is
 * counted for the cost model. Entries are read with plain loads and decoded with the
 * layout tables: this runs only on a context- or PASID-cache miss. Faults are the core's
 * FR codes standing for SMMUv3 events: C_BAD_STREAMID → ROOT_ENTRY_NOT_PRESENT, C_BAD_STE
 * → CONTEXT_ENTRY_NOT_PRESENT (V = 0) or CONTEXT_ENTRY_INVALID (S2/nested/reserved
 * Config, which this model does not translate), an abort STE → CONTEXT_ENTRY_INVALID
 * with fpd (the SMMU aborts without an event), C_BAD_SUBSTREAMID →
 * PASID_DIR_INDEX_OVER_PDTS (SSID beyond S1CDMax) or PASID_DIR_ENTRY_NOT_PRESENT (L1 CD
 * descriptor invalid), F_STREAM_DISABLED (non-SSID traffic with S1DSS TERMINATE) →
 * RID_PASID_ERROR, C_BAD_CD → PASID_ENTRY_NOT_PRESENT (V = 0) or PASID_ENTRY_INVALID
 * (T0SZ/TG0/AA64 this model cannot walk), a translation fault from CD.EPD0 →
 * FS_PTE_NOT_PRESENT. CD.R clear suppresses the CD's translation faults (fpd).
 * Requests without SSID arrive as SSID 0 (DeviceContext.ridPasid): with S1CDMax 0 they
 * use CD 0; otherwise S1DSS decides (terminate, bypass, or CD 0). The translation tag is
 * the ASID (| VMID << 16, VMID 0 for stage 1 only) and is not SSID-tagged.
 * Stage-2-only STEs (Config S2: S2VMID, VTCR T0SZ/SL0/TG/AA64, S2R, S2TTB) translate
 * traffic without SSID through an AArch64 stage-2 table, tagged by VMID (STAGE2_TAG + VMID,
 * apart from the ASIDs); SSID traffic is C_BAD_SUBSTREAMID (no CD table).
 * Does not model: linear stream tables, nested STEs, stall, the full C_BAD_STE
 * and C_BAD_CD legality rules beyond the fields checked, T0SZ other than 16/25 (start
 * levels with partial tables), SSID-tagged traffic with SSID 0 as distinct from traffic
 * without SSID, 16/64 KiB granules, TTB1, the ASID 0 reservation (Linux never gives a
 * domain ASID 0; pass-through contexts use tag 0).
 */
import { readWords } from '../shared/bits.js';
import {
  EATS_ABT, S1DSS_BYPASS, S1DSS_SSID0, S1DSS_TERMINATE, S1FMT_4K_L2, S1FMT_64K_L2, S1FMT_LINEAR, STE_BYTES, STE_CFG_ABORT,
  STE_CFG_BYPASS, STE_CFG_S1_TRANS, STE_CFG_S2_TRANS, STE_L1_DESC_BYTES, STE_WORDS, TG0_4K, decodeSte, decodeSteL1Desc, steIndex2l,
} from '../shared/layout/smmuv3/ste.js';
import { CD_BYTES, CD_L1_DESC_BYTES, CD_WORDS, decodeCd, decodeCdL1Desc } from '../shared/layout/smmuv3/cd.js';
import { PGTT_FL, PGTT_PT, PGTT_SL } from '../shared/layout/pasid-entry.js';
import { FR } from '../shared/layout/fault-record.js';
import { ARM64_S1, ARM64_S2 } from '../shared/layout/pte-format.js';
import { STAGE2_TAG } from './iotlb.js';
import { type DeviceContext, type PasidContext, TableReader } from './context-reader.js';

/** The stage-1 table format SMMUv3 CDs point at, and the stage-2 format of S2TTB. */
const S1_FORMAT = ARM64_S1;
const S2_FORMAT = ARM64_S2;
/** aux bit: STE.S2R (record stage-2 faults). */
const AUX_S2R = 1 << 7;

/** Largest SSID width an SMMUv3 supports (IDR1.SSIDSIZE ≤ 20). */
const MAX_S1CDMAX = 20;

/**
 * DeviceContext.aux of an SMMUv3 stream: bits 2:0 STE.Config, bits 4:3 STE.S1DSS,
 * bits 6:5 STE.S1Fmt.
 */
export function smmuAux(config: number, s1dss: number, s1fmt: number): number {
  return (config & 7) | ((s1dss & 3) << 3) | ((s1fmt & 3) << 5);
}
export function auxConfig(aux: number): number {
  return aux & 7;
}
export function auxS1dss(aux: number): number {
  return (aux >>> 3) & 3;
}
export function auxS1fmt(aux: number): number {
  return (aux >>> 5) & 3;
}

/** The context of traffic that bypasses stage 1 (STE Config BYPASS, or S1DSS BYPASS). */
const PASS_THROUGH: PasidContext = Object.freeze({
  fpd: false, pgtt: PGTT_PT, did: 0, pasidTagged: false, sre: true, fsFormat: S1_FORMAT,
  fsRootFrame: 0, fsLevels: 0, ssFormat: S2_FORMAT, ssRootFrame: 0, ssLevels: 0,
});

export class SmmuContextReader extends TableReader {
  /** Reads the STE of StreamID `sid`; undefined on fault (see `fault`). */
  readContext(sid: number): DeviceContext | undefined {
    this.reads = 0;
    this.fpd = false;
    const { l1, l2 } = steIndex2l(sid);
    if (l1 >= 1 << (16 - 8)) return this.fail(FR.ROOT_ENTRY_NOT_PRESENT); // beyond the stream table
    const root = this.u32At(this.rootFrame);
    if (!root) return this.fail(FR.ROOT_TABLE_ACCESS);
    this.reads++;
    const desc = decodeSteL1Desc(readWords(root.chunk, root.at + (l1 * STE_L1_DESC_BYTES) / 4, 1)[0]);
    // SPAN 0: no L2 table; SPAN s covers 2^(s-1) STEs (C_BAD_STREAMID beyond).
    if (desc.span === 0 || desc.span > 12 || l2 >= 1 << (desc.span - 1)) return this.fail(FR.ROOT_ENTRY_NOT_PRESENT);
    const st = this.at(desc.l2Ptr + BigInt(l2 * STE_BYTES));
    if (!st) return this.fail(FR.CONTEXT_TABLE_ACCESS);
    this.reads++;
    const ste = decodeSte(readWords(st.chunk, st.at, STE_WORDS));
    if (!ste.v) return this.fail(FR.CONTEXT_ENTRY_NOT_PRESENT);
    switch (ste.config) {
      case STE_CFG_ABORT: return this.fail(FR.CONTEXT_ENTRY_INVALID, true);
      case STE_CFG_BYPASS: break;
      case STE_CFG_S1_TRANS:
        if (ste.s1fmt !== S1FMT_LINEAR && ste.s1fmt !== S1FMT_4K_L2 && ste.s1fmt !== S1FMT_64K_L2) return this.fail(FR.CONTEXT_ENTRY_INVALID);
        if (ste.s1CdMax > MAX_S1CDMAX) return this.fail(FR.CONTEXT_ENTRY_INVALID);
        if (ste.s1CdMax > 0 && ste.s1dss !== S1DSS_TERMINATE && ste.s1dss !== S1DSS_BYPASS && ste.s1dss !== S1DSS_SSID0) {
          return this.fail(FR.CONTEXT_ENTRY_INVALID);
        }
        break;
      case STE_CFG_S2_TRANS: {
        // Stage 2 only: 4 KiB granule, AArch64, T0SZ 16 (SL0 2: 4 levels) or 25 (SL0 1: 3 levels).
        const levels = ste.s2t0sz === 16 && ste.s2sl0 === 2 ? 4 : ste.s2t0sz === 25 && ste.s2sl0 === 1 ? 3 : 0;
        if (!ste.s2aa64 || ste.s2tg !== TG0_4K || levels === 0) return this.fail(FR.CONTEXT_ENTRY_INVALID);
        return {
          fpd: false, dte: ste.eats !== EATS_ABT, paside: false, pre: true, dirFrame: Number(ste.s2ttb >> 12n), dirEntries: 1,
          dirLevels: levels, ridPasid: 0, ridPriv: false, tagBase: ste.s2vmid, hostRootFrame: 0, aux: smmuAux(ste.config, 0, 0) | (ste.s2r ? AUX_S2R : 0),
        };
      }
      default: // nested (not modelled) and the reserved encodings
        return this.fail(FR.CONTEXT_ENTRY_INVALID);
    }
    return {
      // Config bypass: EATS is effectively 0 (no ATS) and S1CDMax is ignored, so SSID traffic
      // is C_BAD_SUBSTREAMID (SMMUv3 spec §5.2, STE.Config).
      fpd: false, dte: ste.config !== STE_CFG_BYPASS && ste.eats !== EATS_ABT, paside: ste.config !== STE_CFG_BYPASS && ste.s1CdMax > 0, pre: true,
      dirFrame: Number(ste.s1ContextPtr >> 12n), dirEntries: 1 << ste.s1CdMax, dirLevels: ste.s1fmt === S1FMT_LINEAR ? 1 : 2,
      ridPasid: 0, ridPriv: false, tagBase: 0, hostRootFrame: 0, aux: smmuAux(ste.config, ste.s1dss, ste.s1fmt),
    };
  }

  /** Reads the CD of SSID `pasid` (0 for traffic without SSID) through the STE's CD table. */
  readPasid(ctx: DeviceContext, pasid: number): PasidContext | undefined {
    this.reads = 0;
    this.fpd = ctx.fpd;
    if (auxConfig(ctx.aux) === STE_CFG_BYPASS) return PASS_THROUGH;
    if (auxConfig(ctx.aux) === STE_CFG_S2_TRANS) {
      // Stage 2 only (the STE's S2TTB, kept in dirFrame/dirLevels): tagged by VMID, apart from the ASIDs.
      const fpd = ctx.fpd || (ctx.aux & AUX_S2R) === 0;
      return {
        fpd, pgtt: PGTT_SL, did: STAGE2_TAG + ctx.tagBase, pasidTagged: false, sre: true, fsFormat: S1_FORMAT,
        fsRootFrame: 0, fsLevels: 0, ssFormat: S2_FORMAT, ssRootFrame: ctx.dirFrame, ssLevels: ctx.dirLevels,
      };
    }
    if (pasid >= ctx.dirEntries) return this.fail(FR.PASID_DIR_INDEX_OVER_PDTS, ctx.fpd);
    if (pasid === 0 && ctx.dirEntries > 1) {
      switch (auxS1dss(ctx.aux)) {
        case S1DSS_TERMINATE: return this.fail(FR.RID_PASID_ERROR, ctx.fpd);
        case S1DSS_BYPASS: return PASS_THROUGH;
        default: break; // S1DSS_SSID0: CD 0
      }
    }
    const base = BigInt(ctx.dirFrame) << 12n;
    let cdAddr: bigint;
    if (ctx.dirLevels === 1) {
      cdAddr = base + BigInt(pasid * CD_BYTES);
    } else {
      const split = auxS1fmt(ctx.aux) === S1FMT_4K_L2 ? 6 : 10;
      const l1 = this.at(base + BigInt((pasid >>> split) * CD_L1_DESC_BYTES));
      if (!l1) return this.fail(FR.PASID_DIR_ACCESS, ctx.fpd);
      this.reads++;
      const desc = decodeCdL1Desc(readWords(l1.chunk, l1.at, 1)[0]);
      if (!desc.v) return this.fail(FR.PASID_DIR_ENTRY_NOT_PRESENT, ctx.fpd);
      cdAddr = desc.l2Ptr + BigInt((pasid & ((1 << split) - 1)) * CD_BYTES);
    }
    const loc = this.at(cdAddr);
    if (!loc) return this.fail(FR.PASID_TABLE_ACCESS, ctx.fpd);
    this.reads++;
    const cd = decodeCd(readWords(loc.chunk, loc.at, CD_WORDS));
    if (!cd.v) return this.fail(FR.PASID_ENTRY_NOT_PRESENT, ctx.fpd);
    const fpd = ctx.fpd || !cd.r;
    // EPD0 before the TCR checks: the quiet CD of an exiting mm has no T0SZ.
    if (cd.epd0) return this.fail(FR.FS_PTE_NOT_PRESENT, fpd);
    if (!cd.aa64 || cd.tg0 !== TG0_4K || (cd.t0sz !== 16 && cd.t0sz !== 25)) return this.fail(FR.PASID_ENTRY_INVALID, ctx.fpd);
    this.fpd = fpd;
    return {
      fpd, pgtt: PGTT_FL, did: cd.asid + ctx.tagBase * 0x10000, pasidTagged: false, sre: true, fsFormat: S1_FORMAT,
      fsRootFrame: Number(cd.ttb0 >> 12n), fsLevels: cd.t0sz === 16 ? 4 : 3, ssFormat: S2_FORMAT, ssRootFrame: 0, ssLevels: 0,
    };
  }



}
