import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { ARM_LPAE_MAIR, CD_IPS_48BIT, SmmuTables } from '../../coordinator/smmu-tables.js';
import {
  EATS_ABT, EATS_TRANS, S1DSS_BYPASS, S1DSS_SSID0, S1DSS_TERMINATE, S1FMT_64K_L2, S1FMT_LINEAR, STE_CFG_ABORT, STE_CFG_BYPASS,
  STE_CFG_S1_TRANS, STRTAB_SPLIT, STRW_NSEL1, TG0_4K, decodeSteL1Desc,
} from '../../shared/layout/smmuv3/ste.js';
import { decodeCdL1Desc } from '../../shared/layout/smmuv3/cd.js';
import { readWords } from '../../shared/bits.js';
import { ArenaView, FRAME_BYTES, frameToAddr } from '../../shared/memory/arena.js';
import { code } from '../helpers/errno.js';

const DEV = 0x0300;

function machine(iommuMaxPasids = 1 << 20) {
  const fa = new FrameAllocator();
  return { fa, tables: new SmmuTables(fa, iommuMaxPasids) };
}

/** The 64-bit word at a byte offset of a frame, as the hardware would read it. */
function word(fa: FrameAllocator, frame: number, byteOffset: number): bigint {
  return readWords(fa.view.chunkOf(frame)!, ArenaView.frameU32(frame) + byteOffset / 4, 1)[0];
}

describe('stream table', () => {
  it('is one L1 frame with no L2 tables until a device is set up', () => {
    const { fa, tables } = machine();
    expect(fa.bytesInUse).toBe(FRAME_BYTES);
    expect(tables.tableFrames).toBe(1);
    expect(tables.device(DEV)).toBeUndefined();
    expect(tables.readSte(DEV)).toBeUndefined();
    for (let bus = 0; bus < 256; bus++) expect(decodeSteL1Desc(word(fa, tables.rootFrame, bus * 8)).span).toBe(0);
  });

  it('allocates a 16 KiB L2 table per bus on first use (L1 SPAN = STRTAB_SPLIT + 1), its other STEs invalid', () => {
    const { fa, tables } = machine();
    const st = tables.setupDevice(DEV, { maxPasids: 16, ats: false, pri: false });
    const l1 = decodeSteL1Desc(word(fa, tables.rootFrame, 3 * 8));
    expect(l1.span).toBe(STRTAB_SPLIT + 1);
    expect(Number(l1.l2Ptr >> 12n) % 4).toBe(0); // order-2, naturally aligned
    expect(tables.tableFrames).toBe(1 + 4 + (1 << st.cdOrder));
    expect(fa.bytesInUse).toBe(tables.tableFrames * FRAME_BYTES);
    expect(tables.readSte(DEV + 1)!.v).toBe(false);
    expect(tables.readSte(0x03ff)!.v).toBe(false);
    expect(tables.readSte(0x0400)).toBeUndefined();
    // Another device on the same bus shares the L2 table; a new bus gets its own.
    tables.setupDevice(0x03ff, { maxPasids: 0, ats: false, pri: false });
    expect(tables.tableFrames).toBe(1 + 4 + 1 + 1);
    tables.setupDevice(0x0400, { maxPasids: 0, ats: false, pri: false });
    expect(tables.tableFrames).toBe(1 + 8 + 3);
    expect(decodeSteL1Desc(word(fa, tables.rootFrame, 4 * 8)).span).toBe(STRTAB_SPLIT + 1);
    expect(() => tables.setupDevice(0x10000, { maxPasids: 0, ats: false, pri: false })).toThrow(RangeError);
  });
});

describe('setupDevice', () => {
  it('writes an abort STE carrying the CD table: linear S1Fmt, S1CDMax, S1DSS terminate, EATS from ATS, STRW NSEL1', () => {
    const { tables } = machine();
    const st = tables.setupDevice(DEV, { maxPasids: 16, ats: true, pri: true });
    expect(st).toMatchObject({ sid: DEV, twoLevel: false, s1CdMax: 4, cdCount: 16, cdOrder: 0 });
    expect(tables.readSte(DEV)).toMatchObject({
      v: true, config: STE_CFG_ABORT, s1fmt: S1FMT_LINEAR, s1ContextPtr: frameToAddr(st.cdFrame), s1CdMax: 4,
      s1dss: S1DSS_TERMINATE, eats: EATS_TRANS, strw: STRW_NSEL1, s1cir: 1, s1cor: 1, s1csh: 3, s2vmid: 0,
    });
    const noAts = machine().tables;
    noAts.setupDevice(DEV, { maxPasids: 16, ats: false, pri: false });
    expect(noAts.readSte(DEV)!.eats).toBe(EATS_ABT);
  });

  it('is idempotent', () => {
    const { fa, tables } = machine();
    const a = tables.setupDevice(DEV, { maxPasids: 16, ats: false, pri: false });
    const used = fa.bytesInUse;
    expect(tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: true, pri: false })).toBe(a);
    expect(fa.bytesInUse).toBe(used);
    expect(tables.readSte(DEV)!.eats).toBe(EATS_ABT);
  });

  it.each([
    // [device PASIDs, SMMU PASIDs, S1CDMax, 2-level, CD table order]
    [0, 1 << 20, 0, false, 0],
    [1, 1 << 20, 0, false, 0],
    [16, 1 << 20, 4, false, 0],
    [64, 1 << 20, 6, false, 0],
    [128, 1 << 20, 7, false, 1],
    [1024, 1 << 20, 10, false, 4],
    [2048, 1 << 20, 11, true, 0],
    [1 << 20, 1 << 20, 20, true, 1],
    [1 << 20, 256, 8, false, 2],
  ])('sizes the CD table for %i device / %i SMMU SSIDs: S1CDMax %i, 2-level %s, order %i', (dev, smmu, cdMax, twoLevel, order) => {
    const { tables } = machine(smmu);
    const st = tables.setupDevice(DEV, { maxPasids: dev, ats: false, pri: false });
    expect(st).toMatchObject({ s1CdMax: cdMax, cdCount: 2 ** cdMax, twoLevel, cdOrder: order });
    expect(tables.readSte(DEV)).toMatchObject({ s1CdMax: cdMax, s1fmt: twoLevel ? S1FMT_64K_L2 : S1FMT_LINEAR });
    expect(tables.tableFrames).toBe(1 + 4 + (1 << order));
  });

  it('leaves nothing behind when the CD table or the L2 stream table cannot be allocated', () => {
    for (const failAt of [1, 2]) {
      const { fa, tables } = machine();
      const used = fa.bytesInUse;
      let n = 0;
      fa.shouldFail = () => ++n === failAt;
      expect(code(() => tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false }))).toBe('ENOMEM');
      expect(fa.bytesInUse).toBe(used);
      expect(tables.tableFrames).toBe(1);
      expect(tables.device(DEV)).toBeUndefined();
      expect(tables.readSte(DEV)).toBeUndefined();
      expect(decodeSteL1Desc(word(fa, tables.rootFrame, 3 * 8)).span).toBe(0);
      fa.shouldFail = undefined;
      tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false });
      expect(tables.readSte(DEV)!.v).toBe(true);
    }
  });
});

describe('setSte', () => {
  it('changes only Config and S1DSS', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 16, ats: true, pri: false });
    const before = tables.readSte(DEV)!;
    tables.setSte(DEV, { config: 's1', s1dss: 'ssid0' });
    expect(tables.readSte(DEV)).toEqual({ ...before, config: STE_CFG_S1_TRANS, s1dss: S1DSS_SSID0 });
    tables.setSte(DEV, { config: 'bypass', s1dss: 'bypass' });
    expect(tables.readSte(DEV)).toEqual({ ...before, config: STE_CFG_BYPASS, s1dss: S1DSS_BYPASS });
    tables.setSte(DEV, { config: 'abort', s1dss: 'terminate' });
    expect(tables.readSte(DEV)).toEqual(before);
    expect(() => tables.setSte(DEV + 1, { config: 's1', s1dss: 'ssid0' })).toThrow();
  });
});

describe('context descriptors', () => {
  it('writes a stage-1 CD as Linux does for a DMA domain (4 and 3 levels)', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 16, ats: false, pri: false });
    tables.setCd(DEV, 3, { asid: 7, ttbFrame: 0x1000_0123, levels: 4 });
    expect(tables.readCd(DEV, 3)).toMatchObject({
      v: true, t0sz: 16, tg0: TG0_4K, ir0: 1, or0: 1, sh0: 3, epd0: false, epd1: true, ips: CD_IPS_48BIT, aa64: true,
      r: true, a: true, aset: true, s: false, asid: 7, ttb0: frameToAddr(0x1000_0123), mair: ARM_LPAE_MAIR,
    });
    tables.setCd(DEV, 4, { asid: 0xffff, ttbFrame: 0x1000_0200, levels: 3 });
    expect(tables.readCd(DEV, 4)).toMatchObject({ v: true, t0sz: 25, asid: 0xffff });
    expect(tables.readCd(DEV, 5)!.v).toBe(false);
    expect(tables.readCd(DEV, 16)).toBeUndefined();
    expect(() => tables.setCd(DEV, 16, { asid: 1, ttbFrame: 0x1000_0200, levels: 4 })).toThrow(RangeError);
  });

  it('writes the quiet CD of an exiting mm (EPD0, R clear) and clears V', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 16, ats: false, pri: false });
    tables.setCd(DEV, 1, { asid: 3, ttbFrame: 0x1000_0123, levels: 4, epd0: true, record: false });
    expect(tables.readCd(DEV, 1)).toMatchObject({ v: true, epd0: true, r: false, a: true });
    tables.clearCd(DEV, 1);
    expect(tables.readCd(DEV, 1)!.v).toBe(false);
    tables.clearCd(DEV, 100); // beyond the table: nothing to clear
    tables.clearCd(DEV + 1, 1); // no such device
  });

  it('allocates the 64 KiB leaf tables of a 2-level CD table on first use, once', () => {
    const { fa, tables } = machine();
    const st = tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false });
    const base = tables.tableFrames;
    expect(tables.readCd(DEV, 5000)).toBeUndefined();
    tables.setCd(DEV, 5000, { asid: 1, ttbFrame: 0x1000_0123, levels: 4 });
    expect(tables.tableFrames).toBe(base + 16);
    expect(fa.bytesInUse).toBe(tables.tableFrames * FRAME_BYTES);
    const l1 = decodeCdL1Desc(word(fa, st.cdFrame, 4 * 8));
    expect(l1).toEqual({ v: true, l2Ptr: frameToAddr(st.leafTables.get(4)!) });
    expect(decodeCdL1Desc(word(fa, st.cdFrame, 5 * 8)).v).toBe(false);
    tables.setCd(DEV, 5001, { asid: 1, ttbFrame: 0x1000_0123, levels: 4 });
    tables.reservePasidTable(DEV, 4096);
    expect(tables.tableFrames).toBe(base + 16);
    expect(tables.readCd(DEV, 5001)!.v).toBe(true);
    expect(tables.readCd(DEV, 4097)!.v).toBe(false);
    tables.reservePasidTable(DEV, (1 << 20) - 1);
    expect(tables.tableFrames).toBe(base + 32);
    expect(() => tables.reservePasidTable(DEV, 1 << 20)).toThrow(RangeError);
    expect(() => tables.reservePasidTable(DEV + 1, 0)).toThrow();
  });

  it('reserving in a linear table allocates nothing', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 1024, ats: false, pri: false });
    const base = tables.tableFrames;
    tables.reservePasidTable(DEV, 1023);
    tables.setCd(DEV, 1023, { asid: 1, ttbFrame: 0x1000_0123, levels: 4 });
    expect(tables.tableFrames).toBe(base);
    expect(() => tables.reservePasidTable(DEV, 1024)).toThrow(RangeError);
  });

  it('leaves no leaf table behind when its allocation fails', () => {
    const { fa, tables } = machine();
    const st = tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false });
    const used = fa.bytesInUse;
    fa.shouldFail = () => true;
    expect(code(() => tables.setCd(DEV, 5000, { asid: 1, ttbFrame: 0x1000_0123, levels: 4 }))).toBe('ENOMEM');
    expect(code(() => tables.reservePasidTable(DEV, 5000))).toBe('ENOMEM');
    expect(fa.bytesInUse).toBe(used);
    expect(st.leafTables.size).toBe(0);
    expect(decodeCdL1Desc(word(fa, st.cdFrame, 4 * 8)).v).toBe(false);
    expect(tables.readCd(DEV, 5000)).toBeUndefined();
  });
});
