/**
 * The CPU-side writer of one VT-d IOMMU's device tables (scalable mode), as
 * drivers/iommu/intel/{iommu.c,pasid.c} program them.
 *
 * Models: the root table (RTADDR), lower/upper scalable-mode context tables allocated per
 * bus on first use, one context entry per device (PASID enable when the device can issue
 * PASIDs, DTE when it has ATS, PRE when it has PRI, RID_PASID = IOMMU_NO_PASID), the
 * device's PASID directory sized as Linux sizes it (max PASIDs / 64 entries rounded up to
 * whole 4 KiB frames, PDTS from that) and its 64-entry PASID tables allocated per
 * directory slot on first use; writing and clearing PASID-table entries. Entries are
 * written high words first and the present word last; cleared by dropping the present bit.
 * Does not model: legacy-mode context entries, PASID tables shared by DMA aliases, freeing
 * a device's tables while the device stays in the topology.
 */
import { writeWords, clearPresentWord, readWords } from '../shared/bits.js';
import { ArenaView, frameToAddr } from '../shared/memory/arena.js';
import { ROOT_ENTRY_BYTES, encodeRootEntry, decodeRootEntry } from '../shared/layout/root-entry.js';
import { SM_CONTEXT_ENTRY_BYTES, encodeSmContextEntry } from '../shared/layout/context-entry.js';
import { PASID_DIR_INDEX, PASID_TABLE_INDEX, encodePasidDirEntry } from '../shared/layout/pasid-dir-entry.js';
import { PASID_ENTRY_BYTES, PASID_ENTRY_WORDS, type PasidEntry, decodePasidEntry, encodePasidEntry } from '../shared/layout/pasid-entry.js';
import type { FrameAllocator } from './frame-allocator.js';

export interface DeviceTableState {
  rid: number;
  dirFrame: number;
  dirOrder: number;
  /** PASIDs the directory covers (a power of two, ≥ 64 × 512). */
  dirPasids: number;
  leafTables: Map<number, number>;
}

export interface DeviceCaps {
  /** Device PASID support: max PASIDs (0 = cannot issue PASID-tagged requests). */
  maxPasids: number;
  ats: boolean;
  pri: boolean;
}

export class ContextTables {
  readonly rootFrame: number;
  private readonly ctxTables = new Map<number, number>(); // bus*2 + upper → frame
  private readonly devices = new Map<number, DeviceTableState>();

  constructor(private readonly alloc: FrameAllocator, private readonly iommuMaxPasids: number) {
    this.rootFrame = alloc.alloc(0, 'root-table');
  }

  private get view(): ArenaView {
    return this.alloc.view;
  }

  device(rid: number): DeviceTableState | undefined {
    return this.devices.get(rid);
  }

  /**
   * Programs the context entry and PASID directory of a device (intel_pasid_alloc_table +
   * domain_context_mapping in scalable mode). Idempotent.
   */
  setupDevice(rid: number, caps: DeviceCaps): DeviceTableState {
    const have = this.devices.get(rid);
    if (have) return have;
    // Linux: the directory covers min(device, IOMMU) PASIDs; at least one 4 KiB page.
    const maxPasid = Math.min(caps.maxPasids, this.iommuMaxPasids);
    const dirBytes = Math.max(1, maxPasid >>> 6) * 8;
    const dirOrder = Math.max(0, Math.ceil(Math.log2(dirBytes / 4096)));
    const bus = rid >>> 8;
    const devfn = rid & 0xff;
    const upper = (devfn & 0x80) !== 0;
    const ctxKey = bus * 2 + (upper ? 1 : 0);
    // Allocate everything first, so a failed allocation leaves nothing behind.
    const dirFrame = this.alloc.alloc(dirOrder, 'pasid-dir');
    let ctxFrame = this.ctxTables.get(ctxKey);
    if (ctxFrame === undefined) {
      try {
        ctxFrame = this.alloc.alloc(0, 'context-table');
      } catch (e) {
        this.alloc.freeFrames(dirFrame, dirOrder);
        throw e;
      }
      this.ctxTables.set(ctxKey, ctxFrame);
      const [chunk, at] = this.locateFrame(this.rootFrame, bus * ROOT_ENTRY_BYTES);
      const cur = decodeRootEntry(readWords(chunk, at, 2));
      if (upper) { cur.upperPresent = true; cur.upperCtp = frameToAddr(ctxFrame); } else { cur.lowerPresent = true; cur.lowerCtp = frameToAddr(ctxFrame); }
      writeWords(chunk, at, encodeRootEntry(cur));
    }
    const dirEntries = (4096 << dirOrder) / 8;
    const pdts = Math.log2(dirEntries) - 7;
    const [chunk, at] = this.locateFrame(ctxFrame, (devfn & 0x7f) * SM_CONTEXT_ENTRY_BYTES);
    writeWords(chunk, at, encodeSmContextEntry({
      present: true, fpd: false, dte: caps.ats, paside: caps.maxPasids > 0, pre: caps.pri, pdts,
      pasidDirPtr: frameToAddr(dirFrame), ridPasid: 0, ridPriv: false,
    }));
    const st: DeviceTableState = { rid, dirFrame, dirOrder, dirPasids: dirEntries * 64, leafTables: new Map() };
    this.devices.set(rid, st);
    return st;
  }

  /** Allocates the PASID table that will hold `pasid` (no-op if present); may throw ENOMEM. */
  reservePasidTable(rid: number, pasid: number): void {
    const st = this.devices.get(rid);
    if (!st) throw new Error(`reservePasidTable: device ${rid} has no tables`);
    if (pasid >= st.dirPasids) throw new RangeError(`reservePasidTable: pasid ${pasid} beyond directory (${st.dirPasids})`);
    const di = PASID_DIR_INDEX(pasid);
    if (st.leafTables.has(di)) return;
    const leaf = this.alloc.alloc(0, 'pasid-table');
    st.leafTables.set(di, leaf);
    const [dchunk, dat] = this.locateFrame(st.dirFrame, di * 8);
    writeWords(dchunk, dat, [encodePasidDirEntry({ present: true, fpd: false, tablePtr: frameToAddr(leaf) })]);
  }

  /** Writes a present PASID-table entry (the PASID's leaf table is allocated if needed). */
  setPasidEntry(rid: number, pasid: number, e: PasidEntry): void {
    this.reservePasidTable(rid, pasid);
    const leaf = this.devices.get(rid)!.leafTables.get(PASID_DIR_INDEX(pasid))!;
    const [chunk, at] = this.locateFrame(leaf, PASID_TABLE_INDEX(pasid) * PASID_ENTRY_BYTES);
    writeWords(chunk, at, encodePasidEntry(e));
  }

  /** Clears a PASID-table entry's present bit (intel_pasid_clear_entry). */
  clearPasidEntry(rid: number, pasid: number): void {
    const leaf = this.devices.get(rid)?.leafTables.get(PASID_DIR_INDEX(pasid));
    if (leaf === undefined) return;
    const [chunk, at] = this.locateFrame(leaf, PASID_TABLE_INDEX(pasid) * PASID_ENTRY_BYTES);
    clearPresentWord(chunk, at);
  }

  /** The PASID-table entry as memory holds it now (undefined if no table covers it). */
  readPasidEntry(rid: number, pasid: number): PasidEntry | undefined {
    const leaf = this.devices.get(rid)?.leafTables.get(PASID_DIR_INDEX(pasid));
    if (leaf === undefined) return undefined;
    const [chunk, at] = this.locateFrame(leaf, PASID_TABLE_INDEX(pasid) * PASID_ENTRY_BYTES);
    return decodePasidEntry(readWords(chunk, at, PASID_ENTRY_WORDS));
  }

  /** Frames of table memory this IOMMU's device tables use. */
  get tableFrames(): number {
    let n = 1 + this.ctxTables.size;
    for (const d of this.devices.values()) n += (1 << d.dirOrder) + d.leafTables.size;
    return n;
  }

  private locateFrame(frame: number, byteOffset: number): [Uint32Array, number] {
    return [this.view.chunkOf(frame)!, ArenaView.frameU32(frame) + byteOffset / 4];
  }
}
