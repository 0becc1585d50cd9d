import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { AmdTables, DEV_TABLE_ORDER } from '../../coordinator/amd-tables.js';
import { DTE_MODE_NONE, GUEST_PGTABLE_4_LEVEL } from '../../shared/layout/amd/dte.js';
import { frameToAddr } from '../../shared/memory/arena.js';
import { code } from '../helpers/errno.js';

const DEV = 0x0300;
const DT_FRAMES = 1 << DEV_TABLE_ORDER;

function machine(iommuMaxPasids = 1 << 20) {
  const fa = new FrameAllocator();
  return { fa, tables: new AmdTables(fa, iommuMaxPasids) };
}

describe('AMD device table', () => {
  it('is one 2 MiB allocation with every DTE blocked: V, TV, Mode 0, IR=IW=0, no GCR3', () => {
    const { fa, tables } = machine();
    expect(fa.bytesInUse).toBe(2 * 1024 * 1024);
    expect(tables.tableFrames).toBe(DT_FRAMES);
    for (const devid of [0, 1, DEV, 0x8000, 0xffff]) {
      const d = tables.readDte(devid);
      expect(d).toMatchObject({ v: true, tv: true, mode: DTE_MODE_NONE, ir: false, iw: false, gv: false, giov: false, gcr3Root: 0n, domainId: 0 });
    }
    expect(tables.device(DEV)).toBeUndefined();
    expect(() => tables.readDte(0x10000)).toThrow(RangeError);
  });
});

describe('setupDevice', () => {
  it('writes the v2 DTE: GV, GLX, GCR3 root, 4-level guest paging, DomainID, I = ATS, PPR = PRI, RID still blocked', () => {
    const { tables } = machine();
    const st = tables.setupDevice(DEV, { maxPasids: 1 << 16, ats: true, pri: true }, 42);
    expect(tables.readDte(DEV)).toMatchObject({
      v: true, tv: true, mode: DTE_MODE_NONE, i: true, ppr: true, gv: true, giov: false, glx: 1,
      gcr3Root: frameToAddr(st.gcr3Root), guestPagingMode: GUEST_PGTABLE_4_LEVEL, domainId: 42, ir: false, iw: false, sa: false,
    });
    expect(st).toMatchObject({ devid: DEV, domainId: 42, glx: 1, tablePasids: 512 * 512, rid: 'blocked' });
    // Neighbours untouched.
    expect(tables.readDte(DEV + 1)).toMatchObject({ gv: false, domainId: 0, ir: false });
  });

  it('writes I and PPR clear for a device without ATS and PRI', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 0, ats: false, pri: false }, 7);
    expect(tables.readDte(DEV)).toMatchObject({ i: false, ppr: false, gv: true, domainId: 7 });
  });

  it('is idempotent', () => {
    const { fa, tables } = machine();
    const a = tables.setupDevice(DEV, { maxPasids: 1 << 16, ats: false, pri: false }, 5);
    const used = fa.bytesInUse;
    const b = tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: true, pri: true }, 6);
    expect(b).toBe(a);
    expect(fa.bytesInUse).toBe(used);
    expect(tables.readDte(DEV)).toMatchObject({ domainId: 5, glx: 1, i: false });
  });

  it('sizes the GCR3 table by min(device, IOMMU) PASIDs: 1 level for 0/1/512, 2 for 2^16, 3 for 2^20', () => {
    const { tables } = machine();
    const cases: Array<[number, number, number]> = [[0, 0, 512], [1, 0, 512], [512, 0, 512], [513, 1, 512 * 512], [1 << 16, 1, 512 * 512], [1 << 20, 2, 1 << 20]];
    cases.forEach(([maxPasids, glx, pasids], i) => {
      const st = tables.setupDevice(i, { maxPasids, ats: false, pri: false }, i + 1);
      expect([st.glx, st.tablePasids]).toEqual([glx, pasids]);
      expect(tables.readDte(i).glx).toBe(glx);
    });
    // Only the root level of each is allocated.
    expect(tables.tableFrames).toBe(DT_FRAMES + cases.length);
  });

  it('caps the GCR3 table at the IOMMU PASID width', () => {
    const { tables } = machine(1 << 16);
    expect(tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false }, 1).glx).toBe(1);
  });

  it('leaves no state behind when the GCR3 root cannot be allocated', () => {
    const { fa, tables } = machine();
    const used = fa.bytesInUse;
    fa.shouldFail = () => true;
    expect(code(() => tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: true, pri: true }, 9))).toBe('ENOMEM');
    fa.shouldFail = undefined;
    expect(tables.device(DEV)).toBeUndefined();
    expect(fa.bytesInUse).toBe(used);
    expect(tables.readDte(DEV)).toMatchObject({ v: true, tv: true, gv: false, domainId: 0, i: false });
    expect(tables.tableFrames).toBe(DT_FRAMES);
  });
});

describe('setRid', () => {
  it('switches the requests without PASID between translate, identity and blocked', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 1 << 16, ats: false, pri: false }, 3);
    tables.setRid(DEV, 'translate');
    expect(tables.readDte(DEV)).toMatchObject({ giov: true, ir: true, iw: true, gv: true, mode: DTE_MODE_NONE, domainId: 3 });
    expect(tables.device(DEV)!.rid).toBe('translate');
    tables.setRid(DEV, 'identity');
    expect(tables.readDte(DEV)).toMatchObject({ giov: false, ir: true, iw: true, mode: DTE_MODE_NONE, gv: true });
    tables.setRid(DEV, 'blocked');
    expect(tables.readDte(DEV)).toMatchObject({ giov: false, ir: false, iw: false, gv: true, glx: 1, domainId: 3 });
  });

  it('blocks or passes through a device without GCR3 table, but cannot translate it', () => {
    const { tables } = machine();
    tables.setRid(DEV, 'identity');
    expect(tables.readDte(DEV)).toMatchObject({ v: true, tv: true, ir: true, iw: true, giov: false, gv: false });
    tables.setRid(DEV, 'blocked');
    expect(tables.readDte(DEV)).toMatchObject({ ir: false, iw: false });
    expect(() => tables.setRid(DEV, 'translate')).toThrow(/no GCR3 table/);
  });
});

describe('GCR3 entries and lazy lower levels', () => {
  it('writes GCR3 entries in the root level of a 1-level table without allocating', () => {
    const { fa, tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 1, ats: false, pri: false }, 1);
    const used = fa.bytesInUse;
    tables.setGcr3(DEV, 0, 0x1000_1234);
    tables.setGcr3(DEV, 511, 0x1000_5678);
    expect(fa.bytesInUse).toBe(used);
    expect(tables.readGcr3(DEV, 0)).toEqual({ valid: true, ptr: frameToAddr(0x1000_1234) });
    expect(tables.readGcr3(DEV, 511)).toEqual({ valid: true, ptr: frameToAddr(0x1000_5678) });
    expect(tables.readGcr3(DEV, 1)).toEqual({ valid: false, ptr: 0n });
    expect(tables.readGcr3(DEV, 512)).toBeUndefined();
    expect(() => tables.setGcr3(DEV, 512, 0x1000_0001)).toThrow(RangeError);
    tables.clearGcr3(DEV, 0);
    expect(tables.readGcr3(DEV, 0)!.valid).toBe(false);
    expect(tables.tableFrames).toBe(DT_FRAMES + 1);
  });

  it('allocates one leaf level per 512 PASIDs of a 2-level (2^16) table', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 1 << 16, ats: false, pri: false }, 1);
    expect(tables.readGcr3(DEV, 0)).toBeUndefined();
    tables.setGcr3(DEV, 0, 0x1000_0100);
    expect(tables.tableFrames).toBe(DT_FRAMES + 2);
    tables.setGcr3(DEV, 511, 0x1000_0101); // same leaf
    tables.reservePasidTable(DEV, 5); // present: no-op
    expect(tables.tableFrames).toBe(DT_FRAMES + 2);
    tables.setGcr3(DEV, 512, 0x1000_0102);
    tables.setGcr3(DEV, 0xffff, 0x1000_0103);
    expect(tables.tableFrames).toBe(DT_FRAMES + 4);
    expect(tables.device(DEV)!.lowerTables.size).toBe(3);
    expect(tables.readGcr3(DEV, 0xffff)).toEqual({ valid: true, ptr: frameToAddr(0x1000_0103) });
    expect(tables.readGcr3(DEV, 0x1_0000)).toBeUndefined(); // covered by the table, no leaf yet
    expect(() => tables.reservePasidTable(DEV, 512 * 512)).toThrow(RangeError);
    expect(() => tables.reservePasidTable(DEV + 1, 0)).toThrow(/no GCR3 table/);
  });

  it('allocates both lower levels of a 3-level (2^20) table, sharing the middle one', () => {
    const { tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false }, 1);
    tables.reservePasidTable(DEV, 1);
    expect(tables.tableFrames).toBe(DT_FRAMES + 3);
    tables.reservePasidTable(DEV, 512); // same middle, new leaf
    expect(tables.tableFrames).toBe(DT_FRAMES + 4);
    tables.reservePasidTable(DEV, 512 * 512); // new middle and leaf
    expect(tables.tableFrames).toBe(DT_FRAMES + 6);
    tables.setGcr3(DEV, (1 << 20) - 1, 0x1000_0200);
    expect(tables.tableFrames).toBe(DT_FRAMES + 8);
    expect(tables.readGcr3(DEV, (1 << 20) - 1)).toEqual({ valid: true, ptr: frameToAddr(0x1000_0200) });
    expect(() => tables.reservePasidTable(DEV, 1 << 20)).toThrow(RangeError);
  });

  it('frees what it allocated and links nothing when a lower level cannot be allocated', () => {
    const { fa, tables } = machine();
    tables.setupDevice(DEV, { maxPasids: 1 << 20, ats: false, pri: false }, 1);
    const used = fa.bytesInUse;
    let n = 0;
    fa.shouldFail = () => n++ === 1; // the middle level succeeds, the leaf fails
    expect(code(() => tables.setGcr3(DEV, 700, 0x1000_0300))).toBe('ENOMEM');
    fa.shouldFail = undefined;
    expect(fa.bytesInUse).toBe(used);
    expect(tables.device(DEV)!.lowerTables.size).toBe(0);
    expect(tables.readGcr3(DEV, 700)).toBeUndefined();
    expect(tables.tableFrames).toBe(DT_FRAMES + 1);
    // The root level was not linked: a retry builds the path afresh.
    tables.setGcr3(DEV, 700, 0x1000_0300);
    expect(tables.readGcr3(DEV, 700)).toEqual({ valid: true, ptr: frameToAddr(0x1000_0300) });
    expect(tables.tableFrames).toBe(DT_FRAMES + 3);
  });
});
