import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { AmdTables } from '../../coordinator/amd-tables.js';
import { PageTable } from '../../coordinator/page-table.js';
import { AMD_V1, FIRST_STAGE } from '../../shared/layout/pte-format.js';
import { PGTT_FL, PGTT_PT } from '../../shared/layout/pasid-entry.js';
import { DTE_BYTES, DTE_MODE_4_LEVEL, DTE_WORDS, GUEST_PGTABLE_5_LEVEL, decodeDte, encodeDte } from '../../shared/layout/amd/dte.js';
import { FR } from '../../shared/layout/fault-record.js';
import { ArenaView } from '../../shared/memory/arena.js';
import { readWords, writeWords } from '../../shared/bits.js';
import { resolveIommuConfig } from '../../shared/config.js';
import { ACCESS_READ, ACCESS_WRITE } from '../../shared/layout/dma-request.js';
import { Translator } from '../../iommu-worker/translate.js';
import { AMD_AUX_GIOV, AMD_AUX_GUEST_5LEVEL, AMD_AUX_IR, AMD_AUX_IW, AmdContextReader } from '../../iommu-worker/amd-context.js';
import { NO_PASID_TAG } from '../../iommu-worker/iotlb.js';
import { code } from '../helpers/errno.js';

const DEV = 0x0300;

function machine(opts: { maxPasids?: number; ats?: boolean; pri?: boolean; domainId?: number } = {}) {
  const fa = new FrameAllocator();
  const tables = new AmdTables(fa, 1 << 20);
  const pt = new PageTable(fa, FIRST_STAGE, 4);
  pt.map(0x1000n, 0x7000n, 0x1000n, { read: true });
  tables.setupDevice(DEV, { maxPasids: opts.maxPasids ?? 1 << 16, ats: opts.ats ?? false, pri: opts.pri ?? false }, opts.domainId ?? 10);
  tables.setGcr3(DEV, 0, pt.rootFrame);
  tables.setRid(DEV, 'translate');
  const reader = new AmdContextReader(fa.view, tables.rootFrame);
  const t = new Translator(fa.view, tables.rootFrame, resolveIommuConfig(0), reader);
  return { fa, tables, pt, reader, t };
}

/** Rewrites a DTE in place (fields the writer never sets). */
function patchDte(fa: FrameAllocator, tables: AmdTables, devid: number, patch: Partial<ReturnType<typeof decodeDte>>): void {
  const chunk = fa.view.chunkOf(tables.rootFrame)!;
  const at = ArenaView.frameU32(tables.rootFrame) + (devid * DTE_BYTES) / 4;
  writeWords(chunk, at, encodeDte({ ...decodeDte(readWords(chunk, at, DTE_WORDS)), ...patch }));
}

describe('AMD reader: decoded contexts', () => {
  it('maps the DTE onto DeviceContext (GLX, GCR3 root, DomainID, I, GV, PPR; aux = GIoV | IR | IW)', () => {
    const { tables, reader } = machine({ maxPasids: 1 << 20, ats: true, pri: true, domainId: 77 });
    const ctx = reader.readContext(DEV)!;
    expect(ctx).toEqual({
      fpd: false, dte: true, paside: true, pre: true, dirFrame: tables.device(DEV)!.gcr3Root, dirEntries: 1 << 20, dirLevels: 3,
      ridPasid: 0, ridPriv: false, tagBase: 77, hostRootFrame: 0, aux: AMD_AUX_GIOV | AMD_AUX_IR | AMD_AUX_IW,
    });
    expect(reader.reads).toBe(1);
    const pe = reader.readPasid(ctx, 0)!;
    expect(pe).toMatchObject({ pgtt: PGTT_FL, did: 77, pasidTagged: true, sre: true, fsLevels: 4, ssLevels: 0, fpd: false });
    expect(reader.reads).toBe(3); // root, middle, leaf
  });

  it('sizes dirEntries as 512^(GLX+1): 512 for a 1-PASID device, 2^18 for 2^16', () => {
    expect(machine({ maxPasids: 1 }).reader.readContext(DEV)).toMatchObject({ dirEntries: 512, dirLevels: 1 });
    expect(machine({ maxPasids: 1 << 16 }).reader.readContext(DEV)).toMatchObject({ dirEntries: 512 * 512, dirLevels: 2 });
  });

  it('maps SA to fpd and the 5-level guest paging mode to 5 page-table levels', () => {
    const { fa, tables, reader } = machine();
    patchDte(fa, tables, DEV, { sa: true, guestPagingMode: GUEST_PGTABLE_5_LEVEL });
    const ctx = reader.readContext(DEV)!;
    expect(ctx.fpd).toBe(true);
    expect(ctx.aux & AMD_AUX_GUEST_5LEVEL).not.toBe(0);
    expect(reader.readPasid(ctx, 0)).toMatchObject({ fsLevels: 5, fpd: true });
  });
});

describe('AMD translation through GCR3', () => {
  it('translates the requests without PASID through GCR3[0] (GIoV)', () => {
    const { t } = machine();
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1234, 0)).toBe(0);
    expect(t.paLo).toBe(0x7234);
    expect(t.effPasid).toBe(0);
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1234, 0)).toBe(0);
    expect(t.cached).toBe(true);
    expect(t.iotlb.entries()).toMatchObject([{ did: 10, pasidTag: 0, pgtt: PGTT_FL }]);
    expect(t.translate(DEV, -1, ACCESS_WRITE, false, 0x1234, 0)).toBe(FR.WRITE_DENIED);
  });

  it('translates a PASID through GCR3[pasid] in a lazily allocated leaf level', () => {
    const { t, tables, fa } = machine();
    const pt2 = new PageTable(fa, FIRST_STAGE, 4);
    pt2.map(0x40_0000n, 0x9000n, 0x1000n, { read: true, write: true });
    tables.setGcr3(DEV, 1000, pt2.rootFrame);
    expect(t.translate(DEV, 1000, ACCESS_WRITE, false, 0x40_0abc, 0)).toBe(0);
    expect(t.paLo).toBe(0x9abc);
    expect(t.iotlb.entries()).toMatchObject([{ did: 10, pasidTag: 1000 }]);
  });

  it('refuses supervisor requests on PASIDs > 0 (SVA), allows them on PASID 0 (the RID DMA domain)', () => {
    const { t, tables, pt } = machine();
    tables.setGcr3(DEV, 5, pt.rootFrame);
    expect(t.translate(DEV, 5, ACCESS_READ, true, 0x1000, 0)).toBe(FR.SUPERVISOR_NOT_ENABLED);
    expect(t.translate(DEV, 0, ACCESS_READ, true, 0x1000, 0)).toBe(0);
  });

  it('works with 3-level (2^20) and 1-level (1 PASID) GCR3 tables', () => {
    for (const maxPasids of [1 << 20, 1]) {
      const { t, tables, pt } = machine({ maxPasids });
      expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
      const last = tables.device(DEV)!.tablePasids - 1;
      tables.setGcr3(DEV, last, pt.rootFrame);
      expect(t.translate(DEV, last, ACCESS_READ, false, 0x1000, 0)).toBe(0);
      expect(t.paLo).toBe(0x7000);
    }
  });
});

describe('AMD RID modes', () => {
  it('passes identity requests through untranslated (pa == iova), cached without PASID tag', () => {
    const { t, tables } = machine();
    tables.setRid(DEV, 'identity');
    t.contextCache.invalidateAll();
    t.pasidCache.invalidateAll();
    expect(t.translate(DEV, -1, ACCESS_WRITE, false, 0x1234_5678, 0x12)).toBe(0);
    expect([t.paLo, t.paHi]).toEqual([0x1234_5678, 0x12]);
    expect(t.iotlb.entries()).toMatchObject([{ did: 10, pasidTag: NO_PASID_TAG, pgtt: PGTT_PT }]);
  });

  it('passes through a device without GCR3 table set to identity', () => {
    const { t, tables } = machine();
    tables.setRid(0x0400, 'identity');
    expect(t.translate(0x0400, -1, ACCESS_READ, false, 0x5000, 0)).toBe(0);
    expect(t.paLo).toBe(0x5000);
  });

  it('faults the blocked RID with CONTEXT_ENTRY_INVALID (recorded) while PASIDs still translate', () => {
    const { t, tables, pt } = machine();
    tables.setGcr3(DEV, 3, pt.rootFrame);
    tables.setRid(DEV, 'blocked');
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
    expect(t.suppressed).toBe(false);
    expect(t.translate(DEV, 3, ACCESS_READ, false, 0x1000, 0)).toBe(0);
  });

  it('faults DMA from a device no driver set up (the initialised DTE): blocked, and PASIDs disabled', () => {
    const { t } = machine();
    expect(t.translate(0x0500, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
    expect(t.suppressed).toBe(false);
    expect(t.translate(0x0500, 1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DISABLED);
  });
});

describe('AMD faults', () => {
  it('faults a DTE with V clear with CONTEXT_ENTRY_NOT_PRESENT', () => {
    const { t, fa, tables } = machine();
    patchDte(fa, tables, 0x0600, { v: false, tv: false });
    expect(t.translate(0x0600, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_NOT_PRESENT);
  });

  it('faults TV clear and a host page-table Mode other than 0, 3 and 4 with CONTEXT_ENTRY_RESERVED (ILLEGAL_DEV_TABLE_ENTRY)', () => {
    const { t, fa, tables } = machine();
    patchDte(fa, tables, 0x0600, { tv: false });
    expect(t.translate(0x0600, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_RESERVED);
    patchDte(fa, tables, DEV, { mode: 6 });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_RESERVED);
  });

  it('walks a v1 host table (Mode 4, Host Page Table Root) for the RID, tagged by the DomainID without a PASID', () => {
    const fa = new FrameAllocator();
    const tables = new AmdTables(fa, 1 << 16);
    tables.setupDevice(DEV, { maxPasids: 1 << 16, ats: false, pri: false }, 9);
    const pt = new PageTable(fa, AMD_V1, 4);
    pt.map(0x20_0000n, 0x5000_0000n, 0x20_0000n + 0x1000n, { read: true }); // a 2 MiB leaf and a 4 KiB one
    tables.setRid(DEV, 'v1', { rootFrame: pt.rootFrame, levels: 4 });
    expect(tables.readDte(DEV)).toMatchObject({ mode: DTE_MODE_4_LEVEL, giov: false, ir: true, iw: true });
    const t = new Translator(fa.view, tables.rootFrame, resolveIommuConfig(0), new AmdContextReader(fa.view, tables.rootFrame));
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x21_2345, 0)).toBe(0);
    expect(t.paLo).toBe(0x5001_2345);
    expect(t.walkReads).toBe(3); // the 2 MiB leaf at level 2
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x40_0010, 0)).toBe(0);
    expect(t.paLo).toBe(0x5020_0010);
    expect(t.translate(DEV, -1, ACCESS_WRITE, false, 0x40_0010, 0)).toBe(FR.WRITE_DENIED);
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x60_0000, 0)).toBe(FR.SS_PTE_NOT_PRESENT);
    expect(t.iotlb.entries().map((e) => [e.did, e.pasidTag])).toEqual([[9, NO_PASID_TAG], [9, NO_PASID_TAG]]);
  });

  it('faults GIoV without GV with PASID_DISABLED', () => {
    const { t, fa, tables, reader } = machine();
    patchDte(fa, tables, DEV, { gv: false });
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DISABLED);
    expect(t.translate(DEV, 4, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DISABLED);
    expect(reader.readPasid(reader.readContext(DEV)!, 4)).toBeUndefined();
    expect(reader.fault).toBe(FR.PASID_DISABLED);
  });

  it('faults a PASID beyond the GCR3 table with PASID_DIR_INDEX_OVER_PDTS', () => {
    const { t } = machine({ maxPasids: 1 });
    expect(t.translate(DEV, 512, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_INDEX_OVER_PDTS);
  });

  it('faults a missing lower level with PASID_DIR_ENTRY_NOT_PRESENT and a clear entry with PASID_ENTRY_NOT_PRESENT', () => {
    const { t, tables, pt } = machine({ maxPasids: 1 << 20 });
    expect(t.translate(DEV, 600_000, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_ENTRY_NOT_PRESENT);
    expect(t.translate(DEV, 513, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_ENTRY_NOT_PRESENT); // middle present, leaf not
    tables.reservePasidTable(DEV, 513);
    expect(t.translate(DEV, 514, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    tables.setGcr3(DEV, 514, pt.rootFrame);
    expect(t.translate(DEV, 514, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    tables.clearGcr3(DEV, 514);
    t.pasidCache.invalidateAll();
    t.iotlb.invalidateAll();
    expect(t.translate(DEV, 514, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(t.suppressed).toBe(false);
  });

  it('links nothing when a lower level fails to allocate: the walk still stops at the root', () => {
    const { t, tables, fa, pt } = machine({ maxPasids: 1 << 20 });
    let n = 0;
    fa.shouldFail = () => n++ === 1;
    expect(code(() => tables.setGcr3(DEV, 300_000, pt.rootFrame))).toBe('ENOMEM');
    fa.shouldFail = undefined;
    expect(t.translate(DEV, 300_000, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_ENTRY_NOT_PRESENT);
  });

  it('faults an unmapped address with FS_PTE_NOT_PRESENT', () => {
    expect(machine().t.translate(DEV, -1, ACCESS_READ, false, 0x0020_0000, 0)).toBe(FR.FS_PTE_NOT_PRESENT);
  });
});

describe('AMD IOTLB tagging', () => {
  it('does not share entries between two PASIDs pointing at the same table (GN: PASID-tagged)', () => {
    const { t, tables, pt } = machine();
    tables.setGcr3(DEV, 1, pt.rootFrame);
    tables.setGcr3(DEV, 2, pt.rootFrame);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.translate(DEV, 2, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(true);
    expect(t.iotlb.entries().map((e) => [e.did, e.pasidTag]).sort()).toEqual([[10, 1], [10, 2]]);
  });

  it('does not share entries between two devices with different DomainIDs on the same table', () => {
    const { t, tables, pt } = machine({ domainId: 10 });
    tables.setupDevice(0x0301, { maxPasids: 1 << 16, ats: false, pri: false }, 11);
    tables.setGcr3(0x0301, 0, pt.rootFrame);
    tables.setRid(0x0301, 'translate');
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.translate(0x0301, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.paLo).toBe(0x7000);
    expect(t.iotlb.entries().map((e) => e.did).sort()).toEqual([10, 11]);
  });

  it('fills the device TLB when the DTE enables the IOTLB (ATS), and not otherwise', () => {
    const ats = machine({ ats: true });
    expect(ats.t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(ats.t.devTlbs.get(DEV)?.size).toBe(1);
    expect(ats.t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(ats.t.devTlbHits).toBe(1);
    const plain = machine({ ats: false });
    expect(plain.t.translate(DEV, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(plain.t.devTlbs.size).toBe(0);
  });
});

describe('AMD reader aux', () => {
  it('encodes GIoV, IR and IW of each RID mode', () => {
    const { tables, reader } = machine();
    expect(reader.readContext(DEV)!.aux).toBe(AMD_AUX_GIOV | AMD_AUX_IR | AMD_AUX_IW);
    tables.setRid(DEV, 'identity');
    expect(reader.readContext(DEV)!.aux).toBe(AMD_AUX_IR | AMD_AUX_IW);
    expect(reader.readPasid(reader.readContext(DEV)!, 0)).toMatchObject({ pgtt: PGTT_PT, did: 10, pasidTagged: false, sre: true });
    tables.setRid(DEV, 'blocked');
    expect(reader.readContext(DEV)!.aux).toBe(0);
  });
});
