/**
 * The worker's nested (two-dimensional) walk, unit-level: a PGTT=nested PASID entry whose
 * first-stage root and table pointers are guest-physical, each translated by the second
 * stage. Checks the result, the read count ((n+1)(m+1)−1 with 4 KiB second-stage leaves),
 * the permission AND of both stages, the fault of each stage, and the IOTLB tag.
 */
import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { ContextTables } from '../../coordinator/context-tables.js';
import { PageTable } from '../../coordinator/page-table.js';
import { GuestStage1 } from '../../coordinator/iommufd/guest-memory.js';
import { SECOND_STAGE } from '../../shared/layout/pte-format.js';
import { AW_48_4LEVEL, FLPM_4LEVEL, FLPM_5LEVEL, PASID_ENTRY_ZERO, PGTT_NESTED } from '../../shared/layout/pasid-entry.js';
import { FR } from '../../shared/layout/fault-record.js';
import { frameToAddr } from '../../shared/memory/arena.js';
import { resolveIommuConfig } from '../../shared/config.js';
import { ACCESS_READ, ACCESS_WRITE } from '../../shared/layout/dma-request.js';
import { Translator } from '../../iommu-worker/translate.js';

const SZ_4K = 0x1000n;
const RID = 0x0300;

function machine(levels: 4 | 5 = 4) {
  const fa = new FrameAllocator();
  const ct = new ContextTables(fa, 1 << 20);
  const s2 = new PageTable(fa, SECOND_STAGE, 4, SZ_4K); // 4 KiB leaves: a 4-read host walk
  // Guest RAM for the guest's tables: GPA 0x100000.. backed by table frames.
  const tablePages: bigint[] = [];
  for (let i = 0; i < 12; i++) {
    const gpa = 0x10_0000n + BigInt(i) * SZ_4K;
    s2.map(gpa, frameToAddr(fa.alloc()), SZ_4K, { read: true, write: true });
    tablePages.push(gpa);
  }
  // Guest data pages: GPA 0x200000 (read-write) and 0x201000 (read-only at stage 2).
  s2.map(0x20_0000n, 0x5_0000_0000n, SZ_4K, { read: true, write: true });
  s2.map(0x20_1000n, 0x5_0000_1000n, SZ_4K, { read: true });
  const s1 = new GuestStage1(fa.view, { hostFrameOf: (g) => { const p = s2.iovaToPhys(g); return p === 0n ? undefined : Number(p >> 12n); } }, tablePages, levels);
  ct.setupDevice(RID, { maxPasids: 1 << 20, ats: false, pri: false });
  ct.setPasidEntry(RID, 0, {
    ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_NESTED, did: 9, aw: AW_48_4LEVEL, ssptptr: frameToAddr(s2.rootFrame),
    flpm: levels === 5 ? FLPM_5LEVEL : FLPM_4LEVEL, fsptptr: s1.rootGpa,
  });
  const cfg = resolveIommuConfig(0);
  return { t: new Translator(fa.view, ct.rootFrame, cfg), s1, s2, cfg };
}

const lo = (a: bigint) => Number(a & 0xffff_ffffn);
const hi = (a: bigint) => Number(a >> 32n);

describe('nested walk (worker)', () => {
  it('translates guest IOVA → GPA → HPA with (4+1)(4+1)−1 = 24 reads, cached PASID-tagged under the DID', () => {
    const { t, s1, cfg } = machine();
    s1.map(0x4000_0000n, 0x20_0000n, SZ_4K, { read: true, write: true });
    expect(t.translate(RID, -1, ACCESS_READ, false, lo(0x4000_0123n), 0)).toBe(0);
    expect((BigInt(t.paHi) << 32n) | BigInt(t.paLo)).toBe(0x5_0000_0123n);
    expect(t.walkReads).toBe(24);
    expect(t.costNs).toBeGreaterThanOrEqual(24 * cfg.costs.walkReadNs);
    const e = t.iotlb.lookup(9, 0, 0x4000_0);
    expect(e).toBeGreaterThanOrEqual(0); // tagged with RID_PASID 0, not the untagged second-stage tag
    expect(t.translate(RID, -1, ACCESS_READ, false, lo(0x4000_0123n), 0)).toBe(0);
    expect(t.walkReads).toBe(24); // hit: no new walk
  });

  it('a 5-level guest stage costs (5+1)(4+1)−1 = 29 reads', () => {
    const { t, s1 } = machine(5);
    s1.map(0x1_0000_0000n, 0x20_0000n, SZ_4K, { read: true });
    expect(t.translate(RID, -1, ACCESS_READ, false, lo(0x1_0000_0000n), hi(0x1_0000_0000n))).toBe(0);
    expect(t.walkReads).toBe(29);
  });

  it('grants the AND of both stages: a guest read-write page that the host maps read-only refuses writes', () => {
    const { t, s1 } = machine();
    s1.map(0x5000n, 0x20_1000n, SZ_4K, { read: true, write: true });
    expect(t.translate(RID, -1, ACCESS_READ, false, 0x5000, 0)).toBe(0);
    expect(t.translate(RID, -1, ACCESS_WRITE, false, 0x5000, 0)).toBe(FR.WRITE_DENIED);
  });

  it('a guest (stage-1) hole is a first-stage page fault PRI can recover; a host (stage-2) hole is a second-stage fault', () => {
    const { t, s1, s2 } = machine();
    expect(t.translate(RID, -1, ACCESS_READ, false, 0x7000, 0)).toBe(FR.FS_PTE_NOT_PRESENT);
    expect(t.pageFault).toBe(true);
    s1.map(0x8000n, 0x30_0000n, SZ_4K, { read: true }); // GPA 0x300000 is not in the second stage
    expect(t.translate(RID, -1, ACCESS_READ, false, 0x8000, 0)).toBe(FR.SS_PTE_NOT_PRESENT);
    expect(t.pageFault).toBe(false);
    s2.unmap(0x10_0000n, SZ_4K); // the guest's root table page loses its host mapping
    expect(t.translate(RID, -1, ACCESS_READ, false, 0x9000, 0)).toBe(FR.SS_PTE_NOT_PRESENT);
  });
});
