/**
 * The CPU-side writer of one Arm SMMUv3's stream table and context-descriptor tables, as
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c programs them.
 *
 * Models: a 2-level stream table with STRTAB_SPLIT 8 (StreamID = PCI requester ID, L1
 * index = bus: 256 L1 descriptors in one frame), each bus's L2 table of 256 STEs (16 KiB,
 * order 2) allocated on first use of the bus (arm_smmu_init_l2_strtab); per device a CD
 * table sized as arm_smmu_alloc_cd_tables sizes it — 2^S1CDMax CDs for min(device, SMMU)
 * SSIDs (one CD, S1CDMax 0, without PASID support), linear when it holds at most
 * CTXDESC_L2_ENTRIES CDs, else 2-level (S1Fmt 64K_L2, as Linux: an L1 of 8-byte
 * descriptors and 1024-CD leaf tables of 64 KiB allocated on first use); the STE of a set
 * up device (V, Config ABORT until the driver attaches a domain, the CD-table fields,
 * S1DSS, EATS from ATS, STRW NSEL1, the S1 table-walk attributes Linux sets); changing
 * Config/S1DSS; stage-1 CDs as arm_smmu_make_s1_cd writes them for DMA domains (TG0 4K,
 * T0SZ from the level count, IPS 48-bit, IRGN0/ORGN0 WBWA, SH0 inner shareable, EPD1,
 * AA64, R, A, ASET, ASID, TTB0 and the io-pgtable-arm MAIR). ASET: Linux sets it for DMA
 * domains, whose ASIDs are private to the SMMU and must not match the CPUs' broadcast TLB
 * invalidations; SVA CDs, which share the mm's ASID, leave it clear (arm_smmu_make_sva_cd).
 * The quiet CD of an exiting mm (EPD0 set, R clear) is setCd with epd0/record. Entries are
 * written high words first and word 0 (which holds V) last; CDs are cleared by zeroing the
 * low half of word 0 (bits.ts clearPresentWord).
 * Does not model: linear stream tables, the abort/bypass STEs Linux writes into a fresh L2
 * table (arm_smmu_init_initial_stes; here L2 STEs start invalid, V = 0), the hitless
 * STE/CD update sequences and their CFGI/TLBI commands (the driver's job), stage 2 and
 * nested STEs, stall (CD.S, STE.S1STALLD), 16/64 KiB granules, S1Fmt 4K_L2, freeing a
 * device's tables while the device stays in the topology.
 */
import { clearPresentWord, readWords, writeWords } from '../shared/bits.js';
import { ArenaView, FRAME_BYTES, frameToAddr } from '../shared/memory/arena.js';
import {
  EATS_ABT, EATS_TRANS, S1DSS_BYPASS, S1DSS_SSID0, S1DSS_TERMINATE, S1FMT_64K_L2, S1FMT_LINEAR, STE_BYTES, STE_CFG_ABORT,
  STE_CFG_BYPASS, STE_CFG_S1_TRANS, STE_CFG_S2_TRANS, STE_L1_DESC_BYTES, STE_WORDS, STE_ZERO, STRTAB_SPLIT, STRW_NSEL1, TG0_4K, type Ste,
  decodeSte, encodeSte, encodeSteL1Desc, steIndex2l,
} from '../shared/layout/smmuv3/ste.js';
import {
  CD_BYTES, CD_L1_DESC_BYTES, CD_WORDS, CD_ZERO, CTXDESC_L2_ENTRIES, type Cd, cdIndex, decodeCd, encodeCd, encodeCdL1Desc,
} from '../shared/layout/smmuv3/cd.js';
import type { DeviceCaps } from './context-tables.js';
import type { FrameAllocator } from './frame-allocator.js';

/** L2 stream table: 2^STRTAB_SPLIT STEs × 64 B = 16 KiB. */
const STE_L2_ORDER = Math.log2(((1 << STRTAB_SPLIT) * STE_BYTES) / FRAME_BYTES);
/** CD leaf table of a 2-level CD table: 1024 CDs × 64 B = 64 KiB. */
const CD_L2_ORDER = Math.log2((CTXDESC_L2_ENTRIES * CD_BYTES) / FRAME_BYTES);
/** Linux STRTAB_STE_1_S1C_CACHE_WBRA and ARM_SMMU_SH_ISH (STE S1CIR/S1COR/S1CSH). */
const S1C_CACHE_WBRA = 1;
const SH_ISH = 3;
/** io-pgtable-arm ARM_LPAE_TCR_RGN_WBWA, ARM_LPAE_TCR_SH_IS and IPS 48-bit (ARM_LPAE_TCR_PS_48_BIT). */
const TCR_RGN_WBWA = 1;
const TCR_SH_IS = 3;
export const CD_IPS_48BIT = 5;
/** io-pgtable-arm's MAIR: NC (idx 0), WBRWA (1), device nGnRE (2), inner NC / outer WBRWA (3). */
export const ARM_LPAE_MAIR = 0xf404ff44n;

export interface SmmuDeviceState {
  sid: number;
  /** The linear CD table, or the L1 CD table of a 2-level one. */
  cdFrame: number;
  cdOrder: number;
  twoLevel: boolean;
  s1CdMax: number;
  /** CDs (SSIDs) the table covers: 2^s1CdMax. */
  cdCount: number;
  /** 2-level: L1 index → leaf CD table (order CD_L2_ORDER). */
  leafTables: Map<number, number>;
}

export type SteConfigName = 'abort' | 'bypass' | 's1' | 's2';
export type S1dssName = 'terminate' | 'bypass' | 'ssid0';

export interface SteConfig {
  config: SteConfigName;
  s1dss: S1dssName;
  /** Config 's2': the stage-2 table, its VMID (arm_smmu_make_s2_domain_ste). */
  s2?: { vmid: number; ttbFrame: number; levels: 3 | 4 };
}

export interface CdConfig {
  asid: number;
  /** Root of the stage-1 page table (TTB0). */
  ttbFrame: number;
  levels: 3 | 4;
  /** TTB0 walks disabled: every access is a translation fault (the quiet CD at mm exit). */
  epd0?: boolean;
  /** CD.R: record events (default true). */
  record?: boolean;
}

const CONFIG: Record<SteConfigName, number> = { abort: STE_CFG_ABORT, bypass: STE_CFG_BYPASS, s1: STE_CFG_S1_TRANS, s2: STE_CFG_S2_TRANS };
const S1DSS: Record<S1dssName, number> = { terminate: S1DSS_TERMINATE, bypass: S1DSS_BYPASS, ssid0: S1DSS_SSID0 };

function orderFor(bytes: number): number {
  return Math.max(0, Math.ceil(Math.log2(bytes / FRAME_BYTES)));
}

export class SmmuTables {
  /** The L1 stream table (STRTAB_BASE). */
  readonly rootFrame: number;
  private readonly l2Tables = new Map<number, number>(); // bus → L2 stream table
  private readonly devices = new Map<number, SmmuDeviceState>();

  constructor(private readonly alloc: FrameAllocator, private readonly iommuMaxPasids: number) {
    this.rootFrame = alloc.alloc(0, 'stream-table');
  }

  private get view(): ArenaView {
    return this.alloc.view;
  }

  device(sid: number): SmmuDeviceState | undefined {
    return this.devices.get(sid);
  }

  /**
   * Allocates the device's CD table and writes its STE (arm_smmu_alloc_cd_tables + an
   * STE that aborts until a domain is attached). Idempotent.
   */
  setupDevice(sid: number, caps: DeviceCaps): SmmuDeviceState {
    const have = this.devices.get(sid);
    if (have) return have;
    if (!Number.isInteger(sid) || sid < 0 || sid > 0xffff) throw new RangeError(`setupDevice: StreamID ${sid}`);
    // Linux: ssid_bits = min(SMMU SSIDSIZE, device PASID width); one CD without PASIDs.
    const maxSsids = Math.min(caps.maxPasids, this.iommuMaxPasids);
    const s1CdMax = maxSsids > 1 ? Math.ceil(Math.log2(maxSsids)) : 0;
    const cdCount = 2 ** s1CdMax;
    const twoLevel = cdCount > CTXDESC_L2_ENTRIES;
    const cdBytes = twoLevel ? Math.ceil(cdCount / CTXDESC_L2_ENTRIES) * CD_L1_DESC_BYTES : cdCount * CD_BYTES;
    const cdOrder = orderFor(cdBytes);
    const { l1: bus, l2: steIdx } = steIndex2l(sid);
    // Allocate everything first, so a failed allocation leaves nothing behind.
    const cdFrame = this.alloc.alloc(cdOrder, 'cd-table');
    let l2 = this.l2Tables.get(bus);
    if (l2 === undefined) {
      try {
        l2 = this.alloc.alloc(STE_L2_ORDER, 'stream-table-l2');
      } catch (e) {
        this.alloc.freeFrames(cdFrame, cdOrder);
        throw e;
      }
      this.l2Tables.set(bus, l2);
      const [chunk, at] = this.locate(this.rootFrame, bus * STE_L1_DESC_BYTES);
      writeWords(chunk, at, [encodeSteL1Desc({ span: STRTAB_SPLIT + 1, l2Ptr: frameToAddr(l2) })]);
    }
    const [chunk, at] = this.locate(l2, steIdx * STE_BYTES);
    writeWords(chunk, at, encodeSte({
      ...STE_ZERO, v: true, config: STE_CFG_ABORT, s1fmt: twoLevel ? S1FMT_64K_L2 : S1FMT_LINEAR,
      s1ContextPtr: frameToAddr(cdFrame), s1CdMax, s1dss: S1DSS_TERMINATE,
      s1cir: S1C_CACHE_WBRA, s1cor: S1C_CACHE_WBRA, s1csh: SH_ISH,
      eats: caps.ats ? EATS_TRANS : EATS_ABT, strw: STRW_NSEL1,
    }));
    const st: SmmuDeviceState = { sid, cdFrame, cdOrder, twoLevel, s1CdMax, cdCount, leafTables: new Map() };
    this.devices.set(sid, st);
    return st;
  }

  /**
   * Rewrites the STE's Config and S1DSS (DW1 first, DW0 — with V — last); for Config S2 also
   * the stage-2 words: VMID and VTCR (T0SZ/SL0 for 4 or 3 levels, 4 KiB granule, 48-bit PS,
   * AArch64, write-back inner-shareable walks, S2R) in DW2, S2TTB in DW3.
   */
  setSte(sid: number, cfg: SteConfig): void {
    const [chunk, at] = this.steAt(sid, 'setSte');
    const ste = decodeSte(readWords(chunk, at, STE_WORDS));
    ste.config = CONFIG[cfg.config];
    ste.s1dss = S1DSS[cfg.s1dss];
    if (cfg.config === 's2') {
      const s2 = cfg.s2;
      if (!s2) throw new RangeError(`setSte(${sid}): Config S2 needs its stage-2 table and VMID`);
      Object.assign(ste, {
        s2vmid: s2.vmid, s2t0sz: s2.levels === 4 ? 16 : 25, s2sl0: s2.levels === 4 ? 2 : 1, s2ir0: 1, s2or0: 1, s2sh0: 3, s2tg: TG0_4K,
        s2ps: CD_IPS_48BIT, s2aa64: true, s2r: true, s2ttb: frameToAddr(s2.ttbFrame),
      });
      writeWords(chunk, at, encodeSte(ste).slice(0, 4));
      return;
    }
    writeWords(chunk, at, encodeSte(ste).slice(0, 2));
  }

  /** Allocates the leaf CD table that will hold `ssid` (no-op if present or linear); may throw ENOMEM. */
  reservePasidTable(sid: number, ssid: number): void {
    const st = this.state(sid, 'reservePasidTable');
    if (!Number.isInteger(ssid) || ssid < 0 || ssid >= st.cdCount) {
      throw new RangeError(`reservePasidTable: ssid ${ssid} beyond the CD table (${st.cdCount})`);
    }
    if (!st.twoLevel) return;
    const { l1 } = cdIndex(ssid, true);
    if (st.leafTables.has(l1)) return;
    const leaf = this.alloc.alloc(CD_L2_ORDER, 'cd-table-l2');
    st.leafTables.set(l1, leaf);
    const [chunk, at] = this.locate(st.cdFrame, l1 * CD_L1_DESC_BYTES);
    writeWords(chunk, at, [encodeCdL1Desc({ v: true, l2Ptr: frameToAddr(leaf) })]);
  }

  /** Writes a valid stage-1 CD for `ssid` (its leaf table allocated if needed). */
  setCd(sid: number, ssid: number, cd: CdConfig): void {
    this.reservePasidTable(sid, ssid);
    const [chunk, at] = this.cdAt(sid, ssid)!;
    writeWords(chunk, at, encodeCd({
      ...CD_ZERO, v: true, t0sz: 64 - (12 + 9 * cd.levels), tg0: TG0_4K, ir0: TCR_RGN_WBWA, or0: TCR_RGN_WBWA, sh0: TCR_SH_IS,
      epd0: cd.epd0 ?? false, epd1: true, ips: CD_IPS_48BIT, aa64: true, r: cd.record ?? true, a: true, aset: true,
      asid: cd.asid, ttb0: frameToAddr(cd.ttbFrame), mair: ARM_LPAE_MAIR,
    }));
  }

  /** Clears a CD's V (arm_smmu_clear_cd); no-op when no table covers it. */
  clearCd(sid: number, ssid: number): void {
    const loc = this.cdAt(sid, ssid);
    if (loc) clearPresentWord(loc[0], loc[1]);
  }

  /** The CD as memory holds it now (undefined if no table covers it). */
  readCd(sid: number, ssid: number): Cd | undefined {
    const loc = this.cdAt(sid, ssid);
    return loc ? decodeCd(readWords(loc[0], loc[1], CD_WORDS)) : undefined;
  }

  /** The STE as memory holds it now (undefined if the bus has no L2 stream table). */
  readSte(sid: number): Ste | undefined {
    const l2 = this.l2Tables.get(steIndex2l(sid).l1);
    if (l2 === undefined) return undefined;
    const [chunk, at] = this.locate(l2, steIndex2l(sid).l2 * STE_BYTES);
    return decodeSte(readWords(chunk, at, STE_WORDS));
  }

  /** Frames of table memory the stream table and the CD tables use. */
  get tableFrames(): number {
    let n = 1 + this.l2Tables.size * (1 << STE_L2_ORDER);
    for (const d of this.devices.values()) n += (1 << d.cdOrder) + d.leafTables.size * (1 << CD_L2_ORDER);
    return n;
  }

  private state(sid: number, op: string): SmmuDeviceState {
    const st = this.devices.get(sid);
    if (!st) throw new Error(`${op}: device ${sid} has no tables`);
    return st;
  }

  private steAt(sid: number, op: string): [Uint32Array, number] {
    this.state(sid, op);
    const { l1, l2 } = steIndex2l(sid);
    return this.locate(this.l2Tables.get(l1)!, l2 * STE_BYTES);
  }

  /** Where the CD of `ssid` lives (undefined if outside the table or its leaf is absent). */
  private cdAt(sid: number, ssid: number): [Uint32Array, number] | undefined {
    const st = this.devices.get(sid);
    if (!st || ssid < 0 || ssid >= st.cdCount) return undefined;
    const { l1, l2 } = cdIndex(ssid, st.twoLevel);
    const table = st.twoLevel ? st.leafTables.get(l1) : st.cdFrame;
    return table === undefined ? undefined : this.locate(table, l2 * CD_BYTES);
  }

  /** A byte offset inside a naturally aligned multi-frame run (runs never straddle chunks). */
  private locate(frame: number, byteOffset: number): [Uint32Array, number] {
    return [this.view.chunkOf(frame)!, ArenaView.frameU32(frame) + byteOffset / 4];
  }
}
