/**
 * The CPU-side writer of one AMD IOMMU's device table and GCR3 tables, as
 * drivers/iommu/amd/{init.c,iommu.c} program them with every paging domain in v2 mode
 * (amd_iommu=pgtbl_v2): the RID's domain in GCR3[0] with DTE.GIOV, PASID domains in
 * GCR3[pasid], the IOTLB tagged with the DTE's DomainID (the per-device gcr3_info.domid) and
 * the PASID (GN).
 *
 * Models: the device table (65536 DTEs × 32 B = 2 MiB, one order-9 allocation, shared by
 * the IOMMUs of one PCI segment as Linux's pci_seg->dev_table is), every DTE
 * initialised V=1, TV=1, Mode 0, IR=IW=0 — DMA from a device no driver attached is blocked
 * (iommu_init_device_table / the blocked default); per device (setup_gcr3_table +
 * set_dte_entry + set_dte_gcr3_table) a GCR3 table sized by get_gcr3_levels(min(device,
 * IOMMU PASIDs)) with its root level allocated at once and the lower levels on first use
 * (__get_gcr3_pte with alloc), a DTE with V, TV, Mode 0 (no host v1 table), I = ATS, PPR =
 * PRI, GV, GLX, the split GCR3 root, 4-level guest paging, DomainID, IR=IW=0 until the RID
 * gets a domain; the requests without PASID switched between blocked (GIoV 0, IR=IW=0),
 * identity (GIoV 0, IR=IW=1, Mode 0: pass-through) and translate (GIoV 1, IR=IW=1: through
 * GCR3[0]); GCR3 entries written (pointer | GCR3_VALID) and cleared. Entries are written high
 * words first and word 0's low half (V / GCR3_VALID) last; new lower levels are linked
 * deepest first, so a concurrent walk never reaches a half-built path. A failed allocation
 * (ENOMEM) frees whatever the call allocated and writes nothing.
 * A RID may instead use a v1 host page table (setRid 'v1': Mode, Host Page Table Root), as
 * Linux's default DMA domains do; GCR3 then serves the PASIDs (SVA) only.
 * Does not model: the DTE's interrupt-remapping fields, 5-level guest
 * paging (Linux amd_iommu_gpt_level 5), SNP's TV rules, freeing a device's GCR3 table while
 * the device stays in the topology, the required INV_DEV_ENTRY / INV_IOMMU_PAGES commands
 * (the caller's: command queue).
 */
import { clearPresentWord, readWords, writeWords } from '../shared/bits.js';
import { ArenaView, frameToAddr } from '../shared/memory/arena.js';
import {
  DEV_TABLE_ENTRIES, DTE_BYTES, DTE_MODE_NONE, DTE_WORDS, DTE_ZERO, GUEST_PGTABLE_4_LEVEL, type Dte, decodeDte, encodeDte,
} from '../shared/layout/amd/dte.js';
import {
  GCR3_ENTRIES_PER_LEVEL, GCR3_ENTRY_BYTES, type Gcr3Entry, decodeGcr3Entry, encodeGcr3Entry, gcr3Glx, gcr3Index,
} from '../shared/layout/amd/gcr3.js';
import type { DeviceCaps } from './context-tables.js';
import type { FrameAllocator } from './frame-allocator.js';

/** The device table's allocation order: 65536 × 32 B = 2 MiB = 512 frames. */
export const DEV_TABLE_ORDER = 9;
/** PASIDs a GCR3 table can index at most (20-bit PASIDs). */
export const GCR3_MAX_PASIDS = 1 << 20;

/** How the requests without PASID of a device are handled (setRid). */
export type AmdRidMode = 'blocked' | 'identity' | 'translate' | 'v1';

export interface AmdDeviceState {
  devid: number;
  /** DTE DomainID (the per-device gcr3_info.domid). */
  domainId: number;
  /** GCR3 table root level. */
  gcr3Root: number;
  /** DTE GLX: GCR3 levels − 1. */
  glx: number;
  /** PASIDs the GCR3 table indexes: 512^(glx + 1), capped at 2^20. */
  tablePasids: number;
  /** Lower GCR3 levels allocated so far: gcr3Key(level, pasid) → frame (level 0 = the leaves). */
  lowerTables: Map<number, number>;
  rid: AmdRidMode;
}

/** Key of the level-`level` GCR3 table (below the root) that covers `pasid`. */
function gcr3Key(level: number, pasid: number): number {
  return level * GCR3_MAX_PASIDS + Math.floor(pasid / GCR3_ENTRIES_PER_LEVEL ** (level + 1));
}

export class AmdTables {
  /** The device table (DEV_TABLE_ORDER frames). */
  readonly rootFrame: number;
  private readonly devices = new Map<number, AmdDeviceState>();
  /** The device table is this writer's own (not another IOMMU's of the same PCI segment). */
  private readonly ownsTable: boolean;

  /**
   * `shared`: the writer of another IOMMU of the same PCI segment, whose device table this
   * one uses too (Linux keeps one device table per segment: pci_seg->dev_table; every
   * IOMMU of the segment points its DEV_TABLE_BASE at it). Device ids are unique in a segment.
   */
  constructor(private readonly alloc: FrameAllocator, private readonly iommuMaxPasids: number, shared?: AmdTables) {
    this.ownsTable = shared === undefined;
    if (shared !== undefined) {
      this.rootFrame = shared.rootFrame;
      return;
    }
    this.rootFrame = alloc.alloc(DEV_TABLE_ORDER, 'amd-device-table');
    // Every DTE blocked: V, TV, Mode 0, IR=IW=0.
    const words = encodeDte({ ...DTE_ZERO, v: true, tv: true, mode: DTE_MODE_NONE });
    const u32 = new Uint32Array(DTE_WORDS * 2);
    words.forEach((w, i) => { u32[2 * i] = Number(w & 0xffffffffn); u32[2 * i + 1] = Number(w >> 32n); });
    const chunk = this.view.chunkOf(this.rootFrame)!;
    const base = ArenaView.frameU32(this.rootFrame);
    for (let d = 0; d < DEV_TABLE_ENTRIES; d++) chunk.set(u32, base + d * (DTE_BYTES / 4));
  }

  private get view(): ArenaView {
    return this.alloc.view;
  }

  device(devid: number): AmdDeviceState | undefined {
    return this.devices.get(devid);
  }

  /**
   * Allocates the device's GCR3 table and programs its DTE (setup_gcr3_table +
   * set_dte_entry in v2 mode); the RID stays blocked until setRid(). Idempotent.
   */
  setupDevice(devid: number, caps: DeviceCaps, domainId: number): AmdDeviceState {
    checkDevid(devid);
    const have = this.devices.get(devid);
    if (have) return have;
    if (!Number.isInteger(domainId) || domainId < 0 || domainId > 0xffff) throw new RangeError(`setupDevice: DomainID ${domainId}`);
    // Linux get_gcr3_levels(min(device, IOMMU)): at least one 4 KiB level (512 entries).
    const glx = gcr3Glx(Math.max(1, Math.min(caps.maxPasids, this.iommuMaxPasids)));
    const gcr3Root = this.alloc.alloc(0, 'gcr3-table'); // the only allocation: ENOMEM leaves nothing
    this.writeDte(devid, {
      ...DTE_ZERO, v: true, tv: true, mode: DTE_MODE_NONE, i: caps.ats, ppr: caps.pri, gv: true, giov: false, glx,
      gcr3Root: frameToAddr(gcr3Root), guestPagingMode: GUEST_PGTABLE_4_LEVEL, domainId, ir: false, iw: false,
    });
    const st: AmdDeviceState = {
      devid, domainId, gcr3Root, glx, tablePasids: Math.min(GCR3_ENTRIES_PER_LEVEL ** (glx + 1), GCR3_MAX_PASIDS),
      lowerTables: new Map(), rid: 'blocked',
    };
    this.devices.set(devid, st);
    return st;
  }

  /**
   * The requests without PASID: blocked (GIoV 0, IR=IW=0), identity (GIoV 0, IR=IW=1, Mode 0
   * pass-through), v1 (GIoV 0, IR=IW=1, Mode = levels, Host Page Table Root: Linux's default
   * DMA domains) or translate (GIoV 1, IR=IW=1: GCR3[0]; the device must be set up).
   * blocked and identity work on a DTE setupDevice() never touched too.
   */
  setRid(devid: number, mode: AmdRidMode, host?: { rootFrame: number; levels: 3 | 4 }): void {
    checkDevid(devid);
    const st = this.devices.get(devid);
    if (mode === 'translate' && !st) throw new Error(`setRid: device ${devid} has no GCR3 table`);
    if (mode === 'v1' && !host) throw new Error(`setRid: device ${devid}: a v1 RID needs its host page table`);
    const d = this.readDte(devid);
    d.giov = mode === 'translate';
    d.ir = d.iw = mode !== 'blocked';
    d.mode = mode === 'v1' ? host!.levels : DTE_MODE_NONE;
    d.ptRoot = mode === 'v1' ? frameToAddr(host!.rootFrame) : 0n;
    this.writeDte(devid, d);
    if (st) st.rid = mode;
  }

  /** Allocates the lower GCR3 levels covering `pasid` (no-op if present); may throw ENOMEM. */
  reservePasidTable(devid: number, pasid: number): void {
    const st = this.devices.get(devid);
    if (!st) throw new Error(`reservePasidTable: device ${devid} has no GCR3 table`);
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= st.tablePasids) {
      throw new RangeError(`reservePasidTable: pasid ${pasid} beyond the GCR3 table (${st.tablePasids})`);
    }
    // Allocate every missing level first, so a failed allocation leaves nothing behind.
    const fresh: Array<{ level: number; frame: number }> = [];
    try {
      for (let level = st.glx - 1; level >= 0; level--) {
        if (!st.lowerTables.has(gcr3Key(level, pasid))) fresh.push({ level, frame: this.alloc.alloc(0, 'gcr3-table') });
      }
    } catch (e) {
      for (const f of fresh) this.alloc.freeFrames(f.frame, 0);
      throw e;
    }
    for (const f of fresh) st.lowerTables.set(gcr3Key(f.level, pasid), f.frame);
    // Link deepest first: the topmost new level is published last.
    for (let i = fresh.length - 1; i >= 0; i--) {
      const { level, frame } = fresh[i];
      const parent = this.tableAt(st, level + 1, pasid)!;
      this.writeGcr3Word(parent, gcr3Index(pasid, level + 1), { valid: true, ptr: frameToAddr(frame) });
    }
  }

  /** Writes a valid GCR3 entry for `pasid` (update_gcr3 with set), reserving its levels. */
  setGcr3(devid: number, pasid: number, cr3Frame: number): void {
    this.reservePasidTable(devid, pasid);
    const leaf = this.tableAt(this.devices.get(devid)!, 0, pasid)!;
    this.writeGcr3Word(leaf, gcr3Index(pasid, 0), { valid: true, ptr: frameToAddr(cr3Frame) });
  }

  /** Clears the GCR3 entry of `pasid` (its valid bit; no-op if no table covers it). */
  clearGcr3(devid: number, pasid: number): void {
    const st = this.devices.get(devid);
    const leaf = st && pasid >= 0 && pasid < st.tablePasids ? this.tableAt(st, 0, pasid) : undefined;
    if (leaf === undefined) return;
    const [chunk, at] = this.locateFrame(leaf, gcr3Index(pasid, 0) * GCR3_ENTRY_BYTES);
    clearPresentWord(chunk, at);
  }

  /** The DTE of `devid` as memory holds it now. */
  readDte(devid: number): Dte {
    checkDevid(devid);
    const [chunk, at] = this.locateFrame(this.rootFrame, devid * DTE_BYTES);
    return decodeDte(readWords(chunk, at, DTE_WORDS));
  }

  /** The GCR3 entry of `pasid` as memory holds it now (undefined if no table covers it). */
  readGcr3(devid: number, pasid: number): Gcr3Entry | undefined {
    const st = this.devices.get(devid);
    const leaf = st && pasid >= 0 && pasid < st.tablePasids ? this.tableAt(st, 0, pasid) : undefined;
    if (leaf === undefined) return undefined;
    const [chunk, at] = this.locateFrame(leaf, gcr3Index(pasid, 0) * GCR3_ENTRY_BYTES);
    return decodeGcr3Entry(readWords(chunk, at, 1)[0]);
  }

  /** Frames of table memory: the device table (512) and every GCR3 level. */
  get tableFrames(): number {
    let n = this.ownsTable ? 1 << DEV_TABLE_ORDER : 0;
    for (const d of this.devices.values()) n += 1 + d.lowerTables.size;
    return n;
  }

  /** The GCR3 table at `level` on the path of `pasid` (the root at level glx). */
  private tableAt(st: AmdDeviceState, level: number, pasid: number): number | undefined {
    return level === st.glx ? st.gcr3Root : st.lowerTables.get(gcr3Key(level, pasid));
  }

  private writeDte(devid: number, d: Dte): void {
    const [chunk, at] = this.locateFrame(this.rootFrame, devid * DTE_BYTES);
    writeWords(chunk, at, encodeDte(d));
  }

  private writeGcr3Word(frame: number, index: number, e: Gcr3Entry): void {
    const [chunk, at] = this.locateFrame(frame, index * GCR3_ENTRY_BYTES);
    writeWords(chunk, at, [encodeGcr3Entry(e)]);
  }

  private locateFrame(frame: number, byteOffset: number): [Uint32Array, number] {
    return [this.view.chunkOf(frame)!, ArenaView.frameU32(frame) + byteOffset / 4];
  }
}

function checkDevid(devid: number): void {
  if (!Number.isInteger(devid) || devid < 0 || devid >= DEV_TABLE_ENTRIES) throw new RangeError(`DeviceID ${devid}`);
}

/**
 * The device tables of a machine's AMD IOMMUs: the IOMMUs of a PCI segment share one
 * (Linux pci_seg->dev_table), so each IOMMU joins the first table none of whose requester
 * ids its devices use, or gets a new one (devices of another segment reusing requester ids).
 */
export class AmdDeviceTablePool {
  private readonly shared: { table: AmdTables; used: Set<number> }[] = [];
  private readonly rids = new Map<number, Set<number>>();

  constructor(private readonly alloc: FrameAllocator, devices: readonly { iommu: number; rid: number }[]) {
    for (const d of devices) {
      const set = this.rids.get(d.iommu) ?? new Set<number>();
      set.add(d.rid);
      this.rids.set(d.iommu, set);
    }
  }

  /** The device-table writer of IOMMU `iommu`. */
  tablesFor(iommu: number, iommuMaxPasids: number): AmdTables {
    const mine = this.rids.get(iommu) ?? new Set<number>();
    for (const g of this.shared) {
      if ([...mine].some((r) => g.used.has(r))) continue;
      for (const r of mine) g.used.add(r);
      return new AmdTables(this.alloc, iommuMaxPasids, g.table);
    }
    const table = new AmdTables(this.alloc, iommuMaxPasids);
    this.shared.push({ table, used: new Set(mine) });
    return table;
  }
}
