import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { PageTable } from '../../coordinator/page-table.js';
import { FIRST_STAGE, SECOND_STAGE, PERM_WRITE, PERM_EXEC, PERM_READ, type PteFormat } from '../../shared/layout/pte-format.js';
import { PageWalker, WALK_NOT_PRESENT, WALK_OK, WALK_OUT_OF_RANGE } from '../../iommu-worker/page-walk.js';
import { SZ_1G, SZ_2M, SZ_4K } from '../../shared/units.js';
import { ARENA_BASE_FRAME, CHUNK_BYTES, FRAME_BYTES } from '../../shared/memory/arena.js';

function expectErr(code: string, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect((e as { code?: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, call succeeded`);
}

function walkIova(pt: PageTable, iova: bigint) {
  const w = new PageWalker(pt.view);
  const vpn = iova >> 12n;
  const st = w.walk(pt.format, pt.rootFrame, pt.levels, Number(vpn & 0xffffffffn), Number(vpn >> 32n));
  return { st, paddr: (BigInt(w.pfn) << 12n) | (iova & 0xfffn), perm: w.perm, shift: w.sizeShift, reads: w.reads };
}

const variants: [string, PteFormat, number][] = [
  ['first-stage 4-level', FIRST_STAGE, 4],
  ['first-stage 5-level', FIRST_STAGE, 5],
  ['second-stage 3-level', SECOND_STAGE, 3],
  ['second-stage 4-level', SECOND_STAGE, 4],
];

describe.each(variants)('%s page table', (_n, format, levels) => {
  it('maps 4 KiB, 2 MiB and 1 GiB pages that the hardware walk translates', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    pt.map(0x1000n, 0xabc000n, SZ_4K, { read: true, write: true });
    pt.map(0x4000_0000n + SZ_2M, 0x8_0020_0000n, SZ_2M, { read: true });
    pt.map(0x40_0000_0000n, 0x40_0000_0000n, SZ_1G, { read: true, write: true });
    expect(walkIova(pt, 0x1234n)).toMatchObject({ st: WALK_OK, paddr: 0xabc234n, shift: 12, reads: levels });
    const r2 = walkIova(pt, 0x4000_0000n + SZ_2M + 0x12345n);
    expect(r2).toMatchObject({ st: WALK_OK, paddr: 0x8_0020_0000n + 0x12345n, shift: 21, reads: levels - 1 });
    expect(r2.perm & PERM_WRITE).toBe(0);
    const r3 = walkIova(pt, 0x40_0000_0000n + 0x3456_7890n);
    expect(r3).toMatchObject({ st: WALK_OK, paddr: 0x40_0000_0000n + 0x3456_7890n, shift: 30, reads: levels - 2 });
    expect(r3.perm & (PERM_READ | PERM_WRITE)).toBe(PERM_READ | PERM_WRITE);
    expect(r3.perm & PERM_EXEC).toBe(0);
    expect(pt.iovaToPhys(0x1fffn)).toBe(0xabcfffn);
    expect(pt.iovaToPhys(0x2000n)).toBe(0n);
    expect(walkIova(pt, 0x2000n).st).toBe(WALK_NOT_PRESENT);
  });

  it('chooses the largest page that alignment and length allow', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    pt.map(SZ_1G - SZ_4K, SZ_1G - SZ_4K, SZ_4K + SZ_1G + SZ_2M, { read: true });
    expect(pt.stats).toMatchObject({ leaves4k: 1, leaves1g: 1, leaves2m: 1 });
    expect(walkIova(pt, SZ_1G + 5n).shift).toBe(30);
    expect(walkIova(pt, 2n * SZ_1G + 5n).shift).toBe(21);
  });

  it('rejects unaligned iova, paddr or size with EINVAL and maps nothing', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    expectErr('EINVAL', () => pt.map(0x1001n, 0x2000n, SZ_4K, { read: true }));
    expectErr('EINVAL', () => pt.map(0x1000n, 0x2800n, SZ_4K, { read: true }));
    expectErr('EINVAL', () => pt.map(0x1000n, 0x2000n, 0x800n, { read: true }));
    expectErr('EINVAL', () => pt.map(0x1000n, 0x2000n, SZ_4K, {}));
    expect(pt.iovaToPhys(0x1000n)).toBe(0n);
  });

  it('refuses to map over an existing mapping with EEXIST, leaving no partial state', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    pt.map(0x20_0000n + 0x5000n, 0x9000n, SZ_4K, { read: true });
    // 0x20_0000..0x40_0000 would be one 2 MiB page: overlaps the 4 KiB mapping inside it.
    expectErr('EEXIST', () => pt.map(0x10_0000n, 0x10_0000n, 3n * SZ_2M, { read: true }));
    expect(pt.iovaToPhys(0x10_0000n)).toBe(0n);
    expect(pt.stats.mappedBytes).toBe(SZ_4K);
    // A 4 KiB page inside an existing 2 MiB leaf.
    pt.map(SZ_1G, SZ_1G, SZ_2M, { read: true });
    expectErr('EEXIST', () => pt.map(SZ_1G + 0x3000n, 0x3000n, SZ_4K, { read: true }));
  });

  it('rejects an iova beyond the address width with EFAULT', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    const width = 12n + 9n * BigInt(levels);
    expectErr('EFAULT', () => pt.map(1n << width, 0n, SZ_4K, { read: true }));
    expect(walkIova(pt, 1n << width).st).toBe(WALK_OUT_OF_RANGE);
    pt.map((1n << width) - SZ_4K, 0x1000n, SZ_4K, { read: true });
    expect(walkIova(pt, (1n << width) - 1n).paddr).toBe(0x1fffn);
  });

  it('unmaps whole pages, stops at a hole and never splits a large page', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    pt.map(0x10000n, 0x10000n, 4n * SZ_4K, { read: true });
    pt.map(SZ_2M, SZ_2M, SZ_2M, { read: true });
    expect(pt.unmap(0x10000n, 2n * SZ_4K)).toMatchObject({ unmapped: 2n * SZ_4K, gather: { start: 0x10000n, end: 0x12000n, pgsize: SZ_4K } });
    expect(walkIova(pt, 0x10000n).st).toBe(WALK_NOT_PRESENT);
    expect(walkIova(pt, 0x12000n).st).toBe(WALK_OK);
    // Range runs into a hole after two pages.
    expect(pt.unmap(0x12000n, 8n * SZ_4K).unmapped).toBe(2n * SZ_4K);
    expect(pt.unmap(0x12000n, SZ_4K).unmapped).toBe(0n);
    // Part of a 2 MiB page: nothing is unmapped.
    expect(pt.unmap(SZ_2M + SZ_4K, SZ_4K).unmapped).toBe(0n);
    expect(pt.unmap(SZ_2M, SZ_4K).unmapped).toBe(0n);
    expect(pt.iovaToPhys(SZ_2M + 0x10n)).toBe(SZ_2M + 0x10n);
    expect(pt.unmap(SZ_2M, SZ_2M).unmapped).toBe(SZ_2M);
    expect(pt.iovaToPhys(SZ_2M)).toBe(0n);
    // The cleared slot can be mapped again with a different address.
    pt.map(0x10000n, 0x77000n, SZ_4K, { read: true });
    expect(pt.iovaToPhys(0x10000n)).toBe(0x77000n);
  });

  it('maps a large page where an emptied table used to be', () => {
    const pt = new PageTable(new FrameAllocator(), format, levels);
    pt.map(SZ_2M, 0x5000n, SZ_4K, { read: true });
    pt.unmap(SZ_2M, SZ_4K);
    pt.map(SZ_2M, 0x4000_0000n, SZ_2M, { read: true });
    expect(walkIova(pt, SZ_2M + 0x1000n)).toMatchObject({ st: WALK_OK, shift: 21, paddr: 0x4000_1000n });
  });
});

describe('frame allocator', () => {
  it('hands out zeroed frames, reuses freed ones and reports bytes in use', () => {
    const fa = new FrameAllocator();
    const a = fa.alloc();
    const chunk = fa.view.chunkOf(a)!;
    chunk[(a - ARENA_BASE_FRAME) * 1024] = 0xdead;
    fa.freeFrames(a);
    expect(fa.bytesInUse).toBe(0);
    const b = fa.alloc();
    expect(b).toBe(a);
    expect(chunk[(b - ARENA_BASE_FRAME) * 1024]).toBe(0);
    const dir = fa.alloc(5);
    expect(dir % 32).toBe(0);
    expect(fa.bytesInUse).toBe(33 * FRAME_BYTES);
  });

  it('holds more than 4 GiB of tables across lazily created chunks, every frame addressable', () => {
    const chunks: number[] = [];
    const fa = new FrameAllocator({ maxBytes: 5 * 1024 ** 3, onChunk: (i) => chunks.push(i) });
    let last = 0;
    const runs = (4 * 1024 ** 3) / (FRAME_BYTES * 1024) + 8; // order-10 runs of 4 MiB
    for (let i = 0; i < runs; i++) last = fa.alloc(10);
    expect(fa.bytesInUse).toBeGreaterThan(4 * 1024 **3);
    expect(chunks.length).toBe(Math.ceil(fa.bytesReserved / CHUNK_BYTES));
    expect((last - ARENA_BASE_FRAME) * FRAME_BYTES).toBeGreaterThan(4 * 1024 ** 3);
    // A word written at the far end of the arena is read back through the shared view.
    const [chunk, at] = fa.view.locate((BigInt(last) << 12n) + 4092n)!;
    chunk[at] = 0xfeedf00d;
    expect(fa.view.chunkOf(last + 1023)![at]).toBe(0xfeedf00d);
    const pt = new PageTable(fa, SECOND_STAGE, 4);
    pt.map(0x1000n, 0x1234_5000n, SZ_4K, { read: true });
    expect(walkIova(pt, 0x1000n).paddr).toBe(0x1234_5000n);
  });

  it('fails with ENOMEM when the arena is full', () => {
    const fa = new FrameAllocator({ maxBytes: CHUNK_BYTES });
    expectErr('ENOMEM', () => { for (;;) fa.alloc(10); });
  });
});

describe('page table under memory pressure', () => {
  it('leaves nothing mapped when a table frame cannot be allocated part-way through a map', () => {
    const fa = new FrameAllocator();
    const pt = new PageTable(fa, FIRST_STAGE, 4);
    // Two 4 KiB pages in different 1 GiB regions: the first needs 3 new tables (L3, L2,
    // L1), the second 2 more (L2, L1); with 3 frames to give, the second page fails after
    // the first was written.
    let left = 3;
    fa.shouldFail = () => --left < 0;
    expectErr('ENOMEM', () => pt.map(SZ_1G - SZ_4K, 0x1000n, 2n * SZ_4K, { read: true }));
    expect(pt.iovaToPhys(SZ_1G - SZ_4K)).toBe(0n);
    expect(pt.iovaToPhys(SZ_1G)).toBe(0n);
    expect(pt.stats).toMatchObject({ mappedBytes: 0n, leaves4k: 0 });
    fa.shouldFail = undefined;
    pt.map(SZ_1G - SZ_4K, 0x1000n, 2n * SZ_4K, { read: true });
    expect(pt.iovaToPhys(SZ_1G)).toBe(0x2000n);
  });
});
