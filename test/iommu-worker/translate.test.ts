import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { ContextTables } from '../../coordinator/context-tables.js';
import { PageTable } from '../../coordinator/page-table.js';
import { FIRST_STAGE } from '../../shared/layout/pte-format.js';
import { FLPM_4LEVEL, PASID_ENTRY_ZERO, PGTT_FL } from '../../shared/layout/pasid-entry.js';
import { FR } from '../../shared/layout/fault-record.js';
import { frameToAddr } from '../../shared/memory/arena.js';
import { resolveIommuConfig } from '../../shared/config.js';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE } from '../../shared/layout/dma-request.js';
import { Translator } from '../../iommu-worker/translate.js';

function machine(pasidBits = 20) {
  const fa = new FrameAllocator();
  const ct = new ContextTables(fa, 1 << 20);
  const pt = new PageTable(fa, FIRST_STAGE, 4);
  pt.map(0x1000n, 0x7000n, 0x1000n, { read: true });
  ct.setupDevice(0x0300, { maxPasids: pasidBits ? 1 << pasidBits : 0, ats: false, pri: false });
  ct.setPasidEntry(0x0300, 0, { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_FL, did: 2, flpm: FLPM_4LEVEL, fsptptr: frameToAddr(pt.rootFrame) });
  return { t: new Translator(fa.view, ct.rootFrame, resolveIommuConfig(0)), ct, pt };
}

describe('translation pipeline faults at each table level', () => {
  it('translates through root, context, PASID directory, PASID table and page table', () => {
    const { t } = machine();
    expect(t.translate(0x0300, -1, ACCESS_READ, false, 0x1234, 0)).toBe(0);
    expect(t.paLo).toBe(0x7234);
  });

  it('faults a requester on a bus without a root entry with ROOT_ENTRY_NOT_PRESENT', () => {
    expect(machine().t.translate(0x0500, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.ROOT_ENTRY_NOT_PRESENT);
  });

  it('faults a requester without a context entry on a known bus with CONTEXT_ENTRY_NOT_PRESENT', () => {
    expect(machine().t.translate(0x0308, -1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.CONTEXT_ENTRY_NOT_PRESENT);
  });

  it('faults a PASID whose directory slot is empty, and one whose table entry is clear', () => {
    const { t, ct } = machine();
    expect(t.translate(0x0300, 100, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DIR_ENTRY_NOT_PRESENT);
    ct.reservePasidTable(0x0300, 100);
    expect(t.translate(0x0300, 101, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
  });

  it('faults a PASID-tagged request from a device whose context entry has PASID disabled', () => {
    expect(machine(0).t.translate(0x0300, 1, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_DISABLED);
  });

  it('faults a supervisor request to a first-stage entry without SRE', () => {
    expect(machine().t.translate(0x0300, 0, ACCESS_READ, true, 0x1000, 0)).toBe(FR.SUPERVISOR_NOT_ENABLED);
  });
});

describe('fault processing disable', () => {
  it('suppresses the fault of a cleared PASID entry that keeps FPD (the SVA mm-exit teardown)', () => {
    const { t, ct } = machine();
    ct.setPasidEntry(0x0300, 7, { ...PASID_ENTRY_ZERO, present: false, fpd: true });
    expect(t.translate(0x0300, 7, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(t.suppressed).toBe(true);
    ct.setPasidEntry(0x0300, 8, { ...PASID_ENTRY_ZERO, present: false });
    expect(t.translate(0x0300, 8, ACCESS_READ, false, 0x1000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(t.suppressed).toBe(false);
  });
});

describe('cached translations and permission upgrades', () => {
  it('re-walks when a cached entry refuses an access the page table now allows, and faults only if the walk refuses too', () => {
    const { t, pt } = machine();
    expect(t.translate(0x0300, -1, ACCESS_READ, false, 0x1000, 0)).toBe(0);
    expect(t.iotlb.stats().inserts).toBe(1);
    // Upgrade to read-write without any invalidation (as Linux does for upgrades).
    pt.unmap(0x1000n, 0x1000n);
    pt.map(0x1000n, 0x7000n, 0x1000n, { read: true, write: true });
    expect(t.translate(0x0300, -1, ACCESS_WRITE, false, 0x1000, 0)).toBe(0);
    expect(t.iotlb.stats().inserts).toBe(2);
    // A refused access that the tables refuse as well is a fault.
    expect(t.translate(0x0300, -1, ACCESS_EXEC, false, 0x1000, 0)).toBe(FR.EXEC_DENIED);
  });
});
