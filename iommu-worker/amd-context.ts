/**
 * AMD IOMMU device and PASID lookup: what the hardware reads before a v1 (host) or v2
 * (guest, x86-64 format) page walk.
 *
 * Models: the device table (DeviceID → 32-byte DTE: V, TV, Mode, I, PPR, GIoV, GV, GLX,
 * GCR3 root, guest paging mode, DomainID, IR, IW, SA) → the GCR3 table (GLX + 1 levels of
 * 512 × 8 B, 9 PASID bits per level) → the GCR3 entry of the PASID (valid, guest CR3). The
 * requests without PASID are PASID 0 (DeviceContext.ridPasid): with GIoV they translate
 * through GCR3[0]; without it the DTE's IR/IW decide (both clear: blocked) and then its Mode:
 * 0 is pass-through, 3 or 4 a v1 host table of that many levels at the Host Page Table Root
 * (Linux's default DMA domains), tagged by the DomainID without a PASID. Each table read is counted for the cost model. Entries are read
 * with plain loads and decoded with the layout tables: this runs only on a context- or
 * PASID-cache miss. Faults carry the FR code of the step that failed (fault-record.ts, the
 * core's language; the AMD event writer turns them into IO_PAGE_FAULT / ILLEGAL_DEV_TABLE_
 * ENTRY records) and whether the DTE's SA ("suppress all I/O page faults") was set.
 * Fault codes: DTE V clear → CONTEXT_ENTRY_NOT_PRESENT; TV clear, or a host Mode other than
 * 0, 3 and 4 → CONTEXT_ENTRY_RESERVED (ILLEGAL_DEV_TABLE_ENTRY); GIoV clear and IR=IW=0 (the
 * blocked RID; AMD logs IO_PAGE_FAULT) → CONTEXT_ENTRY_INVALID; GV clear → PASID_DISABLED;
 * PASID beyond the table → PASID_DIR_INDEX_OVER_PDTS; a non-valid upper-level entry →
 * PASID_DIR_ENTRY_NOT_PRESENT; a non-valid GCR3 entry → PASID_ENTRY_NOT_PRESENT; a table
 * outside the memory this thread holds → PASID_DIR_ACCESS (upper levels) or
 * PASID_TABLE_ACCESS (the leaf level), the device table → ROOT_TABLE_ACCESS.
 * Does not model: v1 tables of 1, 2, 5 or 6 levels, nested v2-over-v1 translation, IR/IW as a
 * permission limit on GCR3 translations (Linux sets IR=IW=1 whenever a domain is attached),
 * IR ≠ IW without GIoV (treated as blocked), PASID 0 as a PASID distinct from the requests
 * without PASID, the DTE legality checks (ILLEGAL_DEV_TABLE_ENTRY), GCR3 CR3 attribute bits.
 */
import { readWords } from '../shared/bits.js';
import {
  DEV_TABLE_ENTRIES, DTE_BYTES, DTE_MODE_NONE, DTE_WORDS, GUEST_PGTABLE_5_LEVEL, decodeDte,
} from '../shared/layout/amd/dte.js';
import { GCR3_ENTRIES_PER_LEVEL, GCR3_ENTRY_BYTES, gcr3Index } from '../shared/layout/amd/gcr3.js';
import { PGTT_FL, PGTT_PT, PGTT_SL } from '../shared/layout/pasid-entry.js';
import { FR } from '../shared/layout/fault-record.js';
import { AMD_V1, FIRST_STAGE, SECOND_STAGE } from '../shared/layout/pte-format.js';
import { type DeviceContext, type PasidContext, TableReader } from './context-reader.js';

// DeviceContext.aux: the DTE bits readPasid() needs.
/** DTE GIoV: the requests without PASID translate through GCR3[0]. */
export const AMD_AUX_GIOV = 1;
/** DTE IR: reads allowed (requests without PASID when GIoV is clear). */
export const AMD_AUX_IR = 2;
/** DTE IW: writes allowed (requests without PASID when GIoV is clear). */
export const AMD_AUX_IW = 4;
/** DTE GuestPagingMode is 5-level: GCR3 page tables have 5 levels (else 4). */
export const AMD_AUX_GUEST_5LEVEL = 8;
/** DTE Mode (host page-table levels, 0 = none) in aux bits 6:4. */
export const AMD_AUX_MODE_SHIFT = 4;

/** PASIDs any GCR3 table indexes at most. */
const MAX_PASIDS = 1 << 20;
const U32_PER_DTE = DTE_BYTES / 4;
const U32_PER_GCR3 = GCR3_ENTRY_BYTES / 4;

export class AmdContextReader extends TableReader {
  /** Reads the DTE of `devid`; undefined on fault (see `fault`). */
  readContext(devid: number): DeviceContext | undefined {
    this.reads = 0;
    this.fpd = false;
    if (!(devid >= 0 && devid < DEV_TABLE_ENTRIES)) return this.fail(FR.CONTEXT_ENTRY_NOT_PRESENT);
    const dt = this.u32At(this.rootFrame);
    if (!dt) return this.fail(FR.ROOT_TABLE_ACCESS);
    this.reads++;
    const d = decodeDte(readWords(dt.chunk, dt.at + devid * U32_PER_DTE, DTE_WORDS));
    if (!d.v) return this.fail(FR.CONTEXT_ENTRY_NOT_PRESENT);
    // Mode: 0 = no host table; 3 or 4 = a v1 host table of that many levels (others not modelled).
    if (!d.tv || (d.mode !== DTE_MODE_NONE && d.mode !== 3 && d.mode !== 4)) return this.fail(FR.CONTEXT_ENTRY_RESERVED, d.sa);
    const levels = d.glx + 1;
    return {
      fpd: d.sa, dte: d.i, paside: d.gv, pre: d.ppr, dirFrame: Number(d.gcr3Root >> 12n),
      dirEntries: Math.min(GCR3_ENTRIES_PER_LEVEL ** levels, MAX_PASIDS), dirLevels: levels,
      ridPasid: 0, ridPriv: false, tagBase: d.domainId, hostRootFrame: Number(d.ptRoot >> 12n),
      aux: (d.giov ? AMD_AUX_GIOV : 0) | (d.ir ? AMD_AUX_IR : 0) | (d.iw ? AMD_AUX_IW : 0)
        | (d.guestPagingMode === GUEST_PGTABLE_5_LEVEL ? AMD_AUX_GUEST_5LEVEL : 0) | (d.mode << AMD_AUX_MODE_SHIFT),
    };
  }

  /**
   * Reads the GCR3 entry of `pasid` (0 also for the requests without PASID) through the
   * DTE's GCR3 table, or gives the DTE's pass-through context for a RID without GIoV.
   */
  readPasid(ctx: DeviceContext, pasid: number): PasidContext | undefined {
    this.reads = 0;
    this.fpd = ctx.fpd;
    if (pasid === 0 && (ctx.aux & AMD_AUX_GIOV) === 0) {
      const rw = ctx.aux & (AMD_AUX_IR | AMD_AUX_IW);
      // Blocked (IR=IW=0; the AMD IOMMU logs IO_PAGE_FAULT unless SA). IR ≠ IW not modelled: blocked.
      if (rw !== (AMD_AUX_IR | AMD_AUX_IW)) return this.fail(FR.CONTEXT_ENTRY_INVALID, ctx.fpd);
      // A v1 host table (Mode 3/4): walked for the requests without PASID, tagged by the
      // DomainID alone (the translations INVALIDATE_IOMMU_PAGES without GN reaches).
      const mode = (ctx.aux >>> AMD_AUX_MODE_SHIFT) & 7;
      if (mode !== DTE_MODE_NONE) {
        return {
          fpd: ctx.fpd, pgtt: PGTT_SL, did: ctx.tagBase, pasidTagged: false, sre: true, fsFormat: FIRST_STAGE,
          fsRootFrame: 0, fsLevels: 0, ssFormat: AMD_V1, ssRootFrame: ctx.hostRootFrame, ssLevels: mode,
        };
      }
      // Mode 0 with IR=IW=1: untranslated, cached under the DomainID without a PASID tag.
      return {
        fpd: ctx.fpd, pgtt: PGTT_PT, did: ctx.tagBase, pasidTagged: false, sre: true, fsFormat: FIRST_STAGE,
        fsRootFrame: 0, fsLevels: 0, ssFormat: SECOND_STAGE, ssRootFrame: 0, ssLevels: 0,
      };
    }
    if (!ctx.paside) return this.fail(FR.PASID_DISABLED, ctx.fpd);
    if (!(pasid >= 0 && pasid < ctx.dirEntries)) return this.fail(FR.PASID_DIR_INDEX_OVER_PDTS, ctx.fpd);
    let frame = ctx.dirFrame;
    for (let level = ctx.dirLevels - 1; ; level--) {
      const t = this.u32At(frame);
      if (!t) return this.fail(level === 0 ? FR.PASID_TABLE_ACCESS : FR.PASID_DIR_ACCESS, ctx.fpd);
      this.reads++;
      const at = t.at + gcr3Index(pasid, level) * U32_PER_GCR3;
      const lo = t.chunk[at];
      if ((lo & 1) === 0) return this.fail(level === 0 ? FR.PASID_ENTRY_NOT_PRESENT : FR.PASID_DIR_ENTRY_NOT_PRESENT, ctx.fpd);
      // Pointer bits 51:12: lo 31:12 and hi 19:0.
      frame = (t.chunk[at + 1] & 0xfffff) * 0x100000 + (lo >>> 12);
      if (level === 0) break;
    }
    return {
      // pasid 0 here is the RID's DMA domain (GIoV): Linux v2 DMA domains are kernel
      // mappings, so supervisor requests are allowed; PASIDs > 0 carry SVA (user) address
      // spaces, where Linux does not support privileged requests.
      fpd: ctx.fpd, pgtt: PGTT_FL, did: ctx.tagBase, pasidTagged: true, sre: pasid === 0, fsFormat: FIRST_STAGE,
      fsRootFrame: frame, fsLevels: (ctx.aux & AMD_AUX_GUEST_5LEVEL) !== 0 ? 5 : 4, ssFormat: SECOND_STAGE, ssRootFrame: 0, ssLevels: 0,
    };
  }


}
