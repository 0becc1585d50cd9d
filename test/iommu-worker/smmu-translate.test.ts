import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { SmmuTables } from '../../coordinator/smmu-tables.js';
import { PageTable } from '../../coordinator/page-table.js';
import { ARM64_S1 } from '../../shared/layout/pte-format.js';
import { FR } from '../../shared/layout/fault-record.js';
import { PGTT_FL, PGTT_PT } from '../../shared/layout/pasid-entry.js';
import {
  S1DSS_SSID0, STE_BYTES, STE_CFG_NESTED, STE_CFG_S1_TRANS, STE_CFG_S2_TRANS, STE_WORDS, TG0_64K, decodeSte, decodeSteL1Desc,
  encodeSte, steIndex2l,
} from '../../shared/layout/smmuv3/ste.js';
import { CD_BYTES, encodeCd } from '../../shared/layout/smmuv3/cd.js';
import { readWords, writeWords } from '../../shared/bits.js';
import { ArenaView } from '../../shared/memory/arena.js';
import { resolveIommuConfig } from '../../shared/config.js';
import { ACCESS_READ, ACCESS_WRITE } from '../../shared/layout/dma-request.js';
import { Translator } from '../../iommu-worker/translate.js';
import { SmmuContextReader, auxConfig, auxS1dss, auxS1fmt } from '../../iommu-worker/smmu-context.js';

const DEV = 0x0300;

interface Opts { maxPasids?: number; ats?: boolean; levels?: 3 | 4; s1dss?: 'terminate' | 'bypass' | 'ssid0' }

function machine(o: Opts = {}) {
  const fa = new FrameAllocator();
  const tables = new SmmuTables(fa, 1 << 20);
  const levels = o.levels ?? 4;
  const pt = new PageTable(fa, ARM64_S1, levels);
  pt.map(0x1000n, 0x7000n, 0x1000n, { read: true });
  tables.setupDevice(DEV, { maxPasids: o.maxPasids ?? 0, ats: o.ats ?? false, pri: false });
  tables.setCd(DEV, 0, { asid: 1, ttbFrame: pt.rootFrame, levels });
  tables.setSte(DEV, { config: 's1', s1dss: o.s1dss ?? 'ssid0' });
  const mk = () => new Translator(fa.view, tables.rootFrame, resolveIommuConfig(0), new SmmuContextReader(fa.view, tables.rootFrame));
  return { fa, tables, pt, t: mk(), mk };
}

/** Rewrites a whole table entry in place (for encodings the driver never writes). */
function rewrite(fa: FrameAllocator, frame: number, byteOffset: number, words: bigint[]): void {
  writeWords(fa.view.chunkOf(frame)!, ArenaView.frameU32(frame) + byteOffset / 4, words);
}

function steLocation(fa: FrameAllocator, tables: SmmuTables, sid: number): [number, number] {
  const { l1, l2 } = steIndex2l(sid);
  const d = decodeSteL1Desc(readWords(fa.view.chunkOf(tables.rootFrame)!, ArenaView.frameU32(tables.rootFrame) + l1 * 2, 1)[0]);
  return [Number(d.l2Ptr >> 12n), l2 * STE_BYTES];
}

describe('SMMUv3 translation through STE and CD', () => {
  it('translates a request without SSID through CD 0 (S1CDMax 0), AArch64 4-level table', () => {
    const { t } = machine();
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1234, 0)).toBe(0);
    expect(t.paLo).toBe(0x7234);
    expect(t.cached).toBe(false);
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1234, 0)).toBe(0);
    expect(t.cached).toBe(true);
    expect(t.translate(DEV, -1, ACCESS_WRITE, false, 0x1234, 0)).toBe(FR.WRITE_DENIED);
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x2000, 0)).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(t.pageFault).toBe(true);
    expect(t.suppressed).toBe(false);
  });

  it('translates through a 3-level (T0SZ 25) table and faults beyond its 39 bits', () => {
    const { t } = machine({ levels: 3 });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1234, 0)).toBe(0);
    expect(t.paLo).toBe(0x7234);
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1234, 0x80)).toBe(FR.ADDRESS_BEYOND_AW);
  });

  it('translates PASID-tagged requests through linear and 2-level CD tables', () => {
    for (const maxPasids of [16, 1 << 20]) {
      const { t, tables, fa } = machine({ maxPasids });
      const ssid = maxPasids - 1;
      const pt2 = new PageTable(fa, ARM64_S1, 4);
      pt2.map(0x1000n, 0x9000n, 0x1000n, { read: true, write: true });
      tables.setCd(DEV, ssid, { asid: 2, ttbFrame: pt2.rootFrame, levels: 4 });
      expect(t.translate(DEV, ssid, ACCESS_WRITE, false, 0x1010, 0)).toBe(0);
      expect(t.paLo).toBe(0x9010);
      expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1010, 0)).toBe(0);
      expect(t.paLo).toBe(0x7010);
    }
  });

  it('faults a PASID-tagged request from a stream with S1CDMax 0 (PASID disabled)', () => {
    expect(machine().t.translate(DEV, 1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DISABLED);
  });
});

describe('STE faults', () => {
  it('C_BAD_STREAMID: a bus without an L2 stream table, or a StreamID beyond the table', () => {
    const { t } = machine();
    expect(t.translate(0x0500, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.ROOT_ENTRY_NOT_PRESENT);
    expect(t.suppressed).toBe(false);
    expect(t.translate(0x10300, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.ROOT_ENTRY_NOT_PRESENT);
  });

  it('C_BAD_STE: an invalid STE on a known bus', () => {
    const { t } = machine();
    expect(t.translate(DEV + 8, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_NOT_PRESENT);
    expect(t.suppressed).toBe(false);
  });

  it('an abort STE (set up, nothing attached) aborts without recording an event', () => {
    const { t, tables } = machine();
    tables.setSte(DEV, { config: 'abort', s1dss: 'ssid0' });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
    expect(t.suppressed).toBe(true);
    tables.setupDevice(0x0310, { maxPasids: 16, ats: false, pri: false });
    expect(t.translate(0x0310, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
    expect(t.suppressed).toBe(true);
  });

  it('stage-2 and nested STEs are not modelled: CONTEXT_ENTRY_INVALID, recorded', () => {
    for (const config of [STE_CFG_S2_TRANS, STE_CFG_NESTED, 1]) {
      const { t, fa, tables } = machine();
      const [frame, off] = steLocation(fa, tables, DEV);
      rewrite(fa, frame, off, encodeSte({ ...tables.readSte(DEV)!, config }));
      expect(decodeSte(readWords(fa.view.chunkOf(frame)!, ArenaView.frameU32(frame) + off / 4, STE_WORDS)).config).toBe(config);
      expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
      expect(t.suppressed).toBe(false);
    }
  });

  it('a bypass STE passes traffic without SSID through unchanged (identity); SSID traffic is C_BAD_SUBSTREAMID, ATS off', () => {
    const { t, tables } = machine({ maxPasids: 16, ats: true });
    tables.setSte(DEV, { config: 'bypass', s1dss: 'terminate' });
    expect(t.translate(DEV, -1, ACCESS_WRITE, false, 0x12345678, 0x1)).toBe(0);
    expect([t.paLo, t.paHi]).toEqual([0x12345678, 0x1]);
    // SMMUv3 §5.2: with stage 1 bypassed S1CDMax is ignored and an SSID aborts; EATS is effectively 0.
    expect(t.translate(DEV, 9, ACCESS_READ, false, 0xabcde000, 0)).toBe(FR.PASID_DISABLED);
    expect(t.devTlbs.size).toBe(0);
  });
});

describe('S1DSS: traffic without SSID when S1CDMax > 0', () => {
  it('terminate: F_STREAM_DISABLED (RID_PASID_ERROR), recorded; SSID traffic still translates', () => {
    const { t, tables, pt } = machine({ maxPasids: 16, s1dss: 'terminate' });
    tables.setCd(DEV, 1, { asid: 1, ttbFrame: pt.rootFrame, levels: 4 });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.RID_PASID_ERROR);
    expect(t.suppressed).toBe(false);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
  });

  it('bypass: identity', () => {
    const { t } = machine({ maxPasids: 16, s1dss: 'bypass' });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.paLo).toBe(0x1000);
  });

  it('ssid0: CD 0', () => {
    const { t } = machine({ maxPasids: 16, s1dss: 'ssid0' });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.paLo).toBe(0x7000);
  });

  it('has no effect with S1CDMax 0: CD 0 is used', () => {
    const { t } = machine({ maxPasids: 0, s1dss: 'terminate' });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.paLo).toBe(0x7000);
  });
});

describe('CD faults', () => {
  it('C_BAD_SUBSTREAMID: an SSID beyond S1CDMax', () => {
    const { t } = machine({ maxPasids: 16 });
    expect(t.translate(DEV, 16, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_INDEX_OVER_PDTS);
    expect(t.suppressed).toBe(false);
  });

  it('C_BAD_SUBSTREAMID: a 2-level CD table without the leaf; C_BAD_CD: an invalid CD in a present leaf', () => {
    const { t, tables } = machine({ maxPasids: 1 << 20 });
    expect(t.translate(DEV, 5000, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_ENTRY_NOT_PRESENT);
    tables.reservePasidTable(DEV, 5000);
    expect(t.translate(DEV, 5001, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(t.suppressed).toBe(false);
  });

  it('C_BAD_CD: an invalid CD in a linear table, and a cleared one', () => {
    const { t, tables, pt, mk } = machine({ maxPasids: 16 });
    expect(t.translate(DEV, 3, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    tables.setCd(DEV, 4, { asid: 1, ttbFrame: pt.rootFrame, levels: 4 });
    expect(t.translate(DEV, 4, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    tables.clearCd(DEV, 4);
    expect(mk().translate(DEV, 4, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
  });

  it('a CD with EPD0 (the quiet CD at mm exit) is a translation fault, suppressed when R is clear', () => {
    const { t, tables, pt } = machine({ maxPasids: 16 });
    tables.setCd(DEV, 5, { asid: 9, ttbFrame: pt.rootFrame, levels: 4, epd0: true, record: false });
    expect(t.translate(DEV, 5, ACCESS_READ, false, 0x1000, 0)).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(t.suppressed).toBe(true);
    tables.setCd(DEV, 6, { asid: 9, ttbFrame: pt.rootFrame, levels: 4, epd0: true });
    expect(t.translate(DEV, 6, ACCESS_READ, false, 0x1000, 0)).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(t.suppressed).toBe(false);
  });

  it('CD.R clear suppresses the page-table faults of the CD', () => {
    const { t, tables, pt } = machine({ maxPasids: 16 });
    tables.setCd(DEV, 5, { asid: 9, ttbFrame: pt.rootFrame, levels: 4, record: false });
    expect(t.translate(DEV, 5, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.translate(DEV, 5, ACCESS_READ, false, 0x5000, 0)).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(t.suppressed).toBe(true);
  });

  it('C_BAD_CD: a T0SZ, granule or AArch32 format the model cannot walk', () => {
    const { t, tables, pt, fa } = machine({ maxPasids: 16 });
    const cdFrame = tables.device(DEV)!.cdFrame;
    tables.setCd(DEV, 2, { asid: 1, ttbFrame: pt.rootFrame, levels: 4 });
    const cd = tables.readCd(DEV, 2)!;
    rewrite(fa, cdFrame, 2 * CD_BYTES, encodeCd({ ...cd, t0sz: 20 }));
    expect(t.translate(DEV, 2, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_INVALID);
    expect(t.suppressed).toBe(false);
    rewrite(fa, cdFrame, 3 * CD_BYTES, encodeCd({ ...cd, tg0: TG0_64K }));
    expect(t.translate(DEV, 3, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_INVALID);
    rewrite(fa, cdFrame, 4 * CD_BYTES, encodeCd({ ...cd, aa64: false }));
    expect(t.translate(DEV, 4, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_INVALID);
  });
});

describe('IOTLB tags and the device TLB', () => {
  it('tags translations by ASID, not SSID: two SSIDs with the same ASID share IOTLB entries', () => {
    const { t, tables, pt } = machine({ maxPasids: 16 });
    tables.setCd(DEV, 1, { asid: 5, ttbFrame: pt.rootFrame, levels: 4 });
    tables.setCd(DEV, 2, { asid: 5, ttbFrame: pt.rootFrame, levels: 4 });
    tables.setCd(DEV, 3, { asid: 6, ttbFrame: pt.rootFrame, levels: 4 });
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.translate(DEV, 2, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(true);
    expect(t.paLo).toBe(0x7000);
    expect(t.translate(DEV, 3, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.iotlb.stats().inserts).toBe(2);
  });

  it('gives a stream with STE.EATS set a device TLB, and none without', () => {
    const ats = machine({ ats: true }).t;
    expect(ats.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(ats.devTlbs.size).toBe(1);
    expect(ats.devTlbs.has(DEV)).toBe(true);
    const noAts = machine({ ats: false }).t;
    expect(noAts.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(noAts.devTlbs.size).toBe(0);
  });
});

describe('SmmuContextReader', () => {
  it('decodes the STE into a DeviceContext and counts its reads', () => {
    const { fa, tables } = machine({ maxPasids: 1 << 20, ats: true });
    const r = new SmmuContextReader(fa.view, tables.rootFrame);
    const ctx = r.readContext(DEV)!;
    expect(r.reads).toBe(2);
    expect(ctx).toMatchObject({
      fpd: false, dte: true, paside: true, pre: true, dirFrame: tables.device(DEV)!.cdFrame, dirEntries: 1 << 20, dirLevels: 2,
      ridPasid: 0, ridPriv: false, tagBase: 0,
    });
    expect([auxConfig(ctx.aux), auxS1dss(ctx.aux), auxS1fmt(ctx.aux)]).toEqual([STE_CFG_S1_TRANS, S1DSS_SSID0, 2]);
    const pe = r.readPasid(ctx, 0)!;
    expect(r.reads).toBe(2); // L1 CD descriptor + CD
    expect(pe).toMatchObject({ fpd: false, pgtt: PGTT_FL, did: 1, pasidTagged: false, sre: true, fsLevels: 4, ssRootFrame: 0, ssLevels: 0 });
    expect(pe.fsFormat).toBe(ARM64_S1);
    const lin = machine({ maxPasids: 16 });
    const r2 = new SmmuContextReader(lin.fa.view, lin.tables.rootFrame);
    const ctx2 = r2.readContext(DEV)!;
    expect(ctx2).toMatchObject({ dte: false, dirEntries: 16, dirLevels: 1 });
    expect(r2.readPasid(ctx2, 0)!.fsRootFrame).toBe(lin.pt.rootFrame);
    expect(r2.reads).toBe(1);
    lin.tables.setSte(DEV, { config: 'bypass', s1dss: 'terminate' });
    const ctx3 = r2.readContext(DEV)!;
    expect(r2.readPasid(ctx3, 3)).toMatchObject({ pgtt: PGTT_PT, did: 0, pasidTagged: false, sre: true });
    expect(r2.reads).toBe(0);
  });

  it('reports an L1 stream table outside the arena as a table access fault', () => {
    const { fa } = machine();
    const r = new SmmuContextReader(fa.view, 5);
    expect(r.readContext(DEV)).toBeUndefined();
    expect(r.fault).toBe(FR.ROOT_TABLE_ACCESS);
  });
});
