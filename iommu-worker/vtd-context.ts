/**
 * VT-d scalable-mode device and PASID lookup: what the hardware reads before a page walk.
 *
 * Models: RTADDR → root entry (by bus) → lower/upper scalable-mode context table (by
 * devfn) → context entry (PASID enable, device-TLB enable, PDTS, RID_PASID, FPD) → PASID
 * directory entry (pasid >> 6) → PASID table entry (pasid & 63: PGTT, DID, first- and
 * second-stage roots, SRE, FPD). Each read is counted for the cost model. Entries are
 * read with plain loads and decoded with the layout tables: this runs only on a context-
 * or PASID-cache miss. Faults carry the fault reason of the step that failed and whether
 * fault processing was disabled (FPD) on the way.
 * Does not model: legacy (non-scalable) mode, reserved-bit checks of entries beyond the
 * fields decoded, the PASID-table and context-table "address beyond HAW" conditions other
 * than pointers outside simulated table memory.
 */
import { readWords } from '../shared/bits.js';
import { ROOT_ENTRY_BYTES, rootHalfFrame, rootHalfPresent } from '../shared/layout/root-entry.js';
import { SM_CONTEXT_ENTRY_BYTES, SM_CONTEXT_ENTRY_WORDS, decodeSmContextEntry, pasidDirEntries } from '../shared/layout/context-entry.js';
import { PASID_DIR_INDEX, PASID_TABLE_INDEX, pdeFpd, pdePresent, pdeTableFrame } from '../shared/layout/pasid-dir-entry.js';
import {
  AW_39_3LEVEL, AW_48_4LEVEL, AW_57_5LEVEL, FLPM_5LEVEL, PASID_ENTRY_BYTES, PASID_ENTRY_WORDS, PGTT_FL, PGTT_NESTED,
  PGTT_PT, PGTT_SL, decodePasidEntry,
} from '../shared/layout/pasid-entry.js';
import { FR } from '../shared/layout/fault-record.js';
import { FIRST_STAGE, SECOND_STAGE } from '../shared/layout/pte-format.js';
import { type DeviceContext, type PasidContext, TableReader } from './context-reader.js';

const AW_LEVELS: Record<number, number> = { [AW_39_3LEVEL]: 3, [AW_48_4LEVEL]: 4, [AW_57_5LEVEL]: 5 };

export class VtdContextReader extends TableReader {
  /** Reads the context entry of `rid`; undefined on fault (see `fault`). */
  readContext(rid: number): DeviceContext | undefined {
    this.reads = 0;
    this.fpd = false;
    const bus = rid >>> 8;
    const devfn = rid & 0xff;
    const root = this.u32At(this.rootFrame);
    if (!root) return this.fail(FR.ROOT_TABLE_ACCESS);
    const rat = root.at + (bus * ROOT_ENTRY_BYTES) / 4 + (devfn & 0x80 ? 2 : 0);
    this.reads++;
    const rlo = root.chunk[rat];
    if (!rootHalfPresent(rlo)) return this.fail(FR.ROOT_ENTRY_NOT_PRESENT);
    const ct = this.u32At(rootHalfFrame(rlo, root.chunk[rat + 1]));
    if (!ct) return this.fail(FR.CONTEXT_TABLE_ACCESS);
    this.reads++;
    const ce = decodeSmContextEntry(readWords(ct.chunk, ct.at + ((devfn & 0x7f) * SM_CONTEXT_ENTRY_BYTES) / 4, SM_CONTEXT_ENTRY_WORDS));
    if (!ce.present) return this.fail(FR.CONTEXT_ENTRY_NOT_PRESENT);
    return {
      fpd: ce.fpd, dte: ce.dte, paside: ce.paside, pre: ce.pre, dirFrame: Number(ce.pasidDirPtr >> 12n),
      dirEntries: pasidDirEntries(ce.pdts), dirLevels: 2, ridPasid: ce.ridPasid, ridPriv: ce.ridPriv, tagBase: 0, hostRootFrame: 0, aux: 0,
    };
  }

  /** Reads the PASID-table entry of `pasid` through the context's directory. */
  readPasid(ctx: DeviceContext, pasid: number): PasidContext | undefined {
    this.reads = 0;
    this.fpd = ctx.fpd;
    const dirIndex = PASID_DIR_INDEX(pasid);
    if (dirIndex >= ctx.dirEntries) return this.fail(FR.PASID_DIR_INDEX_OVER_PDTS, ctx.fpd);
    const dir = this.u32At(ctx.dirFrame);
    if (!dir) return this.fail(FR.PASID_DIR_ACCESS, ctx.fpd);
    this.reads++;
    const pdeAt = dir.at + dirIndex * 2;
    const plo = dir.chunk[pdeAt];
    if (!pdePresent(plo)) return this.fail(FR.PASID_DIR_ENTRY_NOT_PRESENT, ctx.fpd);
    const fpd = ctx.fpd || pdeFpd(plo);
    const tbl = this.u32At(pdeTableFrame(plo, dir.chunk[pdeAt + 1]));
    if (!tbl) return this.fail(FR.PASID_TABLE_ACCESS, fpd);
    this.reads++;
    const pe = decodePasidEntry(readWords(tbl.chunk, tbl.at + (PASID_TABLE_INDEX(pasid) * PASID_ENTRY_BYTES) / 4, PASID_ENTRY_WORDS));
    // A cleared entry may keep FPD set (intel_pasid_clear_entry with fault_ignore, at mm exit):
    // the request is blocked and its fault suppressed.
    if (!pe.present) return this.fail(FR.PASID_ENTRY_NOT_PRESENT, fpd || pe.fpd);
    const efpd = fpd || pe.fpd;
    const ssLevels = AW_LEVELS[pe.aw] ?? 0;
    const fsLevels = pe.flpm === FLPM_5LEVEL ? 5 : 4;
    switch (pe.pgtt) {
      case PGTT_FL: case PGTT_PT: break;
      case PGTT_SL: case PGTT_NESTED:
        if (ssLevels === 0) return this.fail(FR.PASID_ENTRY_INVALID, efpd);
        break;
      default:
        return this.fail(FR.PASID_ENTRY_INVALID, efpd);
    }
    this.fpd = efpd;
    return {
      fpd: efpd, pgtt: pe.pgtt, did: pe.did, pasidTagged: pe.pgtt !== PGTT_SL, sre: pe.sre, fsFormat: FIRST_STAGE,
      fsRootFrame: Number(pe.fsptptr >> 12n), fsLevels,
      ssFormat: SECOND_STAGE, ssRootFrame: Number(pe.ssptptr >> 12n), ssLevels,
    };
  }


}
