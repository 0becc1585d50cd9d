/**
 * The Arm AArch64 stage-1 format end to end: tables written by the CPU-side PageTable with
 * ARM64_S1 (4 levels / 48-bit, 3 levels / 39-bit), walked by the hardware PageWalker. Checks
 * results, page sizes, reads, the leaf-only permissions (AP[2] read-only, AP[1] user, UXN
 * exec — never ANDed with the table descriptors, whose bits mean something else), the
 * range checks, unmapping, and the nested walk with an Arm first stage.
 */
import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { PageTable } from '../../coordinator/page-table.js';
import {
  ARM64_S1, FIRST_STAGE, PERM_EXEC, PERM_READ, PERM_USER, PERM_WRITE, SECOND_STAGE,
} from '../../shared/layout/pte-format.js';
import { ARM64_AP_RDONLY, ARM64_HI_UXN, decodeArm64Leaf, decodeArm64Table } from '../../shared/layout/arm64-pte.js';
import { PageWalker, WALK_NOT_PRESENT, WALK_OK, WALK_OUT_OF_RANGE } from '../../iommu-worker/page-walk.js';
import { ARENA_BASE, ArenaView } from '../../shared/memory/arena.js';
import { SZ_1G, SZ_2M, SZ_4K } from '../../shared/units.js';

const RW = { read: true, write: true };
const RO = { read: true };
const RWX = { read: true, write: true, exec: true };
const ROX = { read: true, exec: true };

function table(levels: 3 | 4) {
  const fa = new FrameAllocator();
  const pt = new PageTable(fa, ARM64_S1, levels);
  return { fa, pt, w: new PageWalker(fa.view) };
}

function walk(w: PageWalker, pt: PageTable, iova: bigint) {
  const vpn = iova >> 12n;
  const st = w.walk(ARM64_S1, pt.rootFrame, pt.levels, Number(vpn & 0xffff_ffffn), Number(vpn >> 32n));
  return { st, paddr: (BigInt(w.pfn) << 12n) | (iova & 0xfffn), leaf: BigInt(w.leafPfn) << 12n, shift: w.sizeShift, perm: w.perm, reads: w.reads, level: w.level };
}

/** The raw 64-bit descriptor the walk for iova reads at `level` (following table descriptors). */
function descriptorAt(pt: PageTable, iova: bigint, level: number): { u32: Uint32Array; at: number; word: bigint } {
  let frame = pt.rootFrame;
  for (let l = pt.levels; ; l--) {
    const idx = Number((iova >> BigInt(12 + 9 * (l - 1))) & 511n);
    const u32 = pt.view.chunkOf(frame)!;
    const at = ArenaView.frameU32(frame) + 2 * idx;
    const word = (BigInt(u32[at + 1]) << 32n) | BigInt(u32[at]);
    if (l === level) return { u32, at, word };
    frame = Number(decodeArm64Table(word).addr >> 12n);
  }
}

describe('ARM64_S1 page table (4 levels, 48-bit)', () => {
  it('maps a 4 KiB read-write page that the walk translates in 4 reads with R|W|USER and no exec', () => {
    const { pt, w } = table(4);
    pt.map(0x1000n, 0xabc000n, SZ_4K, RW);
    expect(walk(w, pt, 0x1234n)).toEqual({ st: WALK_OK, paddr: 0xabc234n, leaf: 0xabc000n, shift: 12, perm: PERM_READ | PERM_WRITE | PERM_USER, reads: 4, level: 1 });
    expect(pt.iovaToPhys(0x1234n)).toBe(0xabc234n);
    expect(pt.permAt(0x1000n)).toBe(PERM_READ | PERM_WRITE | PERM_USER);
    // The leaf is a page descriptor (bit 1 set) as Linux writes it; the tables above are table descriptors.
    expect(decodeArm64Leaf(descriptorAt(pt, 0x1000n, 1).word)).toMatchObject({ valid: true, page: true, ap1: true, ap2: false, af: true, ng: true, uxn: true, pxn: true, addr: 0xabc000n });
    for (const l of [4, 3, 2]) expect(decodeArm64Table(descriptorAt(pt, 0x1000n, l).word)).toMatchObject({ valid: true, table: true, pxnTable: false, xnTable: false, apTable: 0 });
  });

  it('a read-only page has no PERM_WRITE; an executable one has PERM_EXEC (leaf bits, not ANDed with tables)', () => {
    const { pt, w } = table(4);
    pt.map(0x10_0000n, 0x20_0000n, SZ_4K, RO);
    pt.map(0x10_1000n, 0x20_1000n, SZ_4K, ROX);
    pt.map(0x10_2000n, 0x20_2000n, SZ_4K, RWX);
    expect(walk(w, pt, 0x10_0000n)).toMatchObject({ st: WALK_OK, paddr: 0x20_0000n, perm: PERM_READ | PERM_USER });
    expect(walk(w, pt, 0x10_1008n)).toMatchObject({ st: WALK_OK, paddr: 0x20_1008n, perm: PERM_READ | PERM_EXEC | PERM_USER });
    expect(walk(w, pt, 0x10_2ff0n)).toMatchObject({ st: WALK_OK, paddr: 0x20_2ff0n, perm: PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER });
    expect(pt.permAt(0x10_0000n)).toBe(PERM_READ | PERM_USER);
    expect(pt.permAt(0x10_1000n)).toBe(PERM_READ | PERM_EXEC | PERM_USER);
    expect(pt.permAt(0x10_2000n)).toBe(PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER);
  });

  it('ignores bits of table descriptors that would deny access in a leaf (AP[2] and UXN positions)', () => {
    const { pt, w } = table(4);
    pt.map(0x4000n, 0x9000n, SZ_4K, RWX);
    // Bits 7 and 54 are ignored in table descriptors (no APTable/XNTable): set them above the leaf.
    const d = descriptorAt(pt, 0x4000n, 2);
    d.u32[d.at + 1] |= ARM64_HI_UXN;
    d.u32[d.at] |= ARM64_AP_RDONLY;
    expect(walk(w, pt, 0x4000n)).toMatchObject({ st: WALK_OK, paddr: 0x9000n, perm: PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER });
    expect(pt.permAt(0x4000n)).toBe(PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER);
  });

  it('maps 2 MiB blocks (bit 1 clear at level 2) read-only and read-write, no exec', () => {
    const { pt, w } = table(4);
    pt.map(0x4000_0000n, 0x8_0020_0000n, SZ_2M, RO);
    pt.map(0x4000_0000n + SZ_2M, 0x8_0040_0000n, SZ_2M, RW);
    const ro = walk(w, pt, 0x4001_2345n);
    expect(ro).toEqual({ st: WALK_OK, paddr: 0x8_0021_2345n, leaf: 0x8_0020_0000n, shift: 21, perm: PERM_READ | PERM_USER, reads: 3, level: 2 });
    expect(walk(w, pt, 0x4000_0000n + SZ_2M + 0x1f_f000n)).toMatchObject({ st: WALK_OK, paddr: 0x8_005f_f000n, shift: 21, perm: PERM_READ | PERM_WRITE | PERM_USER });
    expect(decodeArm64Leaf(descriptorAt(pt, 0x4000_0000n, 2).word)).toMatchObject({ valid: true, page: false, ap2: true, uxn: true, addr: 0x8_0020_0000n });
    expect(pt.stats).toMatchObject({ leaves2m: 2, leaves4k: 0 });
    expect(pt.permAt(0x4000_0000n)).toBe(PERM_READ | PERM_USER);
    expect(pt.iovaToPhys(0x4000_0000n + SZ_2M + 5n)).toBe(0x8_0040_0005n);
  });

  it('maps a 1 GiB block at level 3', () => {
    const { pt, w } = table(4);
    pt.map(0x80_0000_0000n, 0x40_0000_0000n, SZ_1G, RWX);
    expect(walk(w, pt, 0x80_1234_5678n)).toEqual({ st: WALK_OK, paddr: 0x40_1234_5678n, leaf: 0x40_0000_0000n, shift: 30, perm: PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER, reads: 2, level: 3 });
    expect(decodeArm64Leaf(descriptorAt(pt, 0x80_0000_0000n, 3).word)).toMatchObject({ valid: true, page: false, ap2: false, uxn: false });
  });

  it('reports WALK_NOT_PRESENT at the level of the first invalid descriptor and WALK_OUT_OF_RANGE beyond 48 bits', () => {
    const { pt, w } = table(4);
    expect(walk(w, pt, 0x1000n)).toMatchObject({ st: WALK_NOT_PRESENT, reads: 1, level: 4 });
    pt.map(0x1000n, 0x2000n, SZ_4K, RW);
    expect(walk(w, pt, 0x3000n)).toMatchObject({ st: WALK_NOT_PRESENT, reads: 4, level: 1 });
    expect(walk(w, pt, 0x20_0000n)).toMatchObject({ st: WALK_NOT_PRESENT, reads: 3, level: 2 });
    expect(walk(w, pt, 1n << 48n)).toMatchObject({ st: WALK_OUT_OF_RANGE, reads: 0 });
    expect(walk(w, pt, (1n << 48n) - SZ_4K)).toMatchObject({ st: WALK_NOT_PRESENT });
    expect(() => pt.map(1n << 48n, 0n, SZ_4K, RW)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });

  it('unmaps pages and blocks: the walk then faults, and a split of a block is refused', () => {
    const { pt, w } = table(4);
    pt.map(0x1000n, 0x5000n, 2n * SZ_4K, RW);
    pt.map(0x20_0000n, 0x40_0000n, SZ_2M, RO);
    expect(pt.unmap(0x1000n, SZ_4K)).toEqual({ unmapped: SZ_4K, gather: { start: 0x1000n, end: 0x2000n, pgsize: SZ_4K } });
    expect(walk(w, pt, 0x1000n)).toMatchObject({ st: WALK_NOT_PRESENT, level: 1 });
    expect(walk(w, pt, 0x2000n)).toMatchObject({ st: WALK_OK, paddr: 0x6000n });
    expect(pt.unmap(0x20_0000n, SZ_4K)).toEqual({ unmapped: 0n });
    expect(walk(w, pt, 0x20_0000n)).toMatchObject({ st: WALK_OK, shift: 21 });
    expect(pt.unmap(0x20_0000n, SZ_2M).unmapped).toBe(SZ_2M);
    expect(walk(w, pt, 0x20_0000n)).toMatchObject({ st: WALK_NOT_PRESENT, level: 2 });
    expect(pt.permAt(0x20_0000n)).toBe(0);
    expect(pt.iovaToPhys(0x20_0000n)).toBe(0n);
    // Remapped with other permissions, the new leaf's alone count.
    pt.map(0x20_0000n, 0x60_0000n, SZ_2M, RWX);
    expect(walk(w, pt, 0x20_0000n)).toMatchObject({ st: WALK_OK, paddr: 0x60_0000n, perm: PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER });
  });

  it('rejects an output address beyond 48 bits instead of truncating it', () => {
    const { pt, w } = table(4);
    expect(() => pt.map(0x1000n, 1n << 48n, SZ_4K, RW)).toThrow(RangeError);
    expect(walk(w, pt, 0x1000n).st).toBe(WALK_NOT_PRESENT);
  });
});

describe('ARM64_S1 page table (3 levels, 39-bit)', () => {
  it('translates in 3 reads up to the top of the 39-bit range and refuses beyond it', () => {
    const { pt, w } = table(3);
    pt.map(0x7f_ffff_f000n, 0x1234_5000n, SZ_4K, RO);
    pt.map(0x40_0000_0000n, 0x8000_0000n, SZ_1G, RW);
    pt.map(0x20_0000_0000n, 0x1_0000_0000n, SZ_2M, ROX);
    expect(walk(w, pt, 0x7f_ffff_fabcn)).toEqual({ st: WALK_OK, paddr: 0x1234_5abcn, leaf: 0x1234_5000n, shift: 12, perm: PERM_READ | PERM_USER, reads: 3, level: 1 });
    expect(walk(w, pt, 0x40_1000_0000n)).toMatchObject({ st: WALK_OK, paddr: 0x9000_0000n, shift: 30, reads: 1, level: 3, perm: PERM_READ | PERM_WRITE | PERM_USER });
    expect(walk(w, pt, 0x20_0000_1000n)).toMatchObject({ st: WALK_OK, paddr: 0x1_0000_1000n, shift: 21, reads: 2, perm: PERM_READ | PERM_EXEC | PERM_USER });
    expect(walk(w, pt, 1n << 39n)).toMatchObject({ st: WALK_OUT_OF_RANGE });
    expect(walk(w, pt, 0x10_0000_0000n)).toMatchObject({ st: WALK_NOT_PRESENT, reads: 1, level: 3 });
    expect(() => pt.map(1n << 39n, 0n, SZ_4K, RW)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(pt.permAt(0x7f_ffff_f000n)).toBe(PERM_READ | PERM_USER);
  });

  it('accepts 3 and 4 levels only', () => {
    expect(() => new PageTable(new FrameAllocator(), ARM64_S1, 5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => new PageTable(new FrameAllocator(), ARM64_S1, 2)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('honours a 4 KiB-only page-size bitmap (no blocks written)', () => {
    const fa = new FrameAllocator();
    const pt = new PageTable(fa, ARM64_S1, 3, SZ_4K);
    pt.map(0x20_0000n, 0x40_0000n, SZ_2M, RW);
    expect(pt.stats).toMatchObject({ leaves4k: 512, leaves2m: 0 });
    const w = new PageWalker(fa.view);
    expect(walk(w, pt, 0x3f_f123n)).toMatchObject({ st: WALK_OK, paddr: 0x5f_f123n, shift: 12, reads: 3 });
  });
});

describe('nested walk with an Arm first stage', () => {
  it('takes the first stage leaf permissions and ANDs them with the second stage', () => {
    const fa = new FrameAllocator();
    const s1 = new PageTable(fa, ARM64_S1, 4);
    const s2 = new PageTable(fa, SECOND_STAGE, 4);
    // Identity second stage over the arena's first GiB (where the Arm tables live) ...
    s2.map(ARENA_BASE, ARENA_BASE, SZ_1G, RW);
    // ... and the guest pages: 0x5000_0000 → host 0x6000_0000 RW at stage 2, 0x5000_1000 read-only at stage 2.
    s2.map(0x5000_0000n, 0x6000_0000n, SZ_4K, RW);
    s2.map(0x5000_1000n, 0x6000_1000n, SZ_4K, RO);
    s1.map(0x1000n, 0x5000_0000n, SZ_4K, RO); // read-only at stage 1 (AP[2])
    s1.map(0x2000n, 0x5000_1000n, SZ_4K, RWX);
    s1.map(0x3000n, 0x5000_0000n, SZ_4K, RW);
    const w = new PageWalker(fa.view);
    const nested = (iova: bigint) => {
      const st = w.walkNested(ARM64_S1, s1.rootFrame, 4, SECOND_STAGE, s2.rootFrame, 4, Number(iova >> 12n), 0);
      return { st, paddr: BigInt(w.pfn) << 12n, perm: w.perm, reads: w.reads };
    };
    // Stage 2 grants R|W|USER (it has no user bit); stage 1's read-only leaf denies the write.
    expect(nested(0x1000n)).toEqual({ st: WALK_OK, paddr: 0x6000_0000n, perm: PERM_READ | PERM_USER, reads: 4 * (2 + 1) + 4 }); // 1 GiB identity: 2-read host walks per table
    expect(nested(0x2000n)).toMatchObject({ st: WALK_OK, paddr: 0x6000_1000n, perm: PERM_READ | PERM_USER });
    expect(nested(0x3000n)).toMatchObject({ st: WALK_OK, paddr: 0x6000_0000n, perm: PERM_READ | PERM_WRITE | PERM_USER });
    expect(nested(0x4000n).st).toBe(WALK_NOT_PRESENT);
  });
});

describe('format objects', () => {
  it('list their properties in one order, so the walker sees one object shape', () => {
    expect(Object.keys(ARM64_S1)).toEqual(Object.keys(FIRST_STAGE));
    expect(Object.keys(SECOND_STAGE)).toEqual(Object.keys(FIRST_STAGE));
  });

  it('x86 formats still AND permissions over the levels (a table entry without R/W denies write)', () => {
    const fa = new FrameAllocator();
    const pt = new PageTable(fa, FIRST_STAGE, 4);
    pt.map(0x1000n, 0x2000n, SZ_4K, RW);
    const d = descriptorAt(pt, 0x1000n, 3);
    d.u32[d.at] &= ~2; // clear R/W in the level-3 entry
    const w = new PageWalker(fa.view);
    expect(w.walk(FIRST_STAGE, pt.rootFrame, 4, 1, 0)).toBe(WALK_OK);
    expect(w.perm & PERM_WRITE).toBe(0);
    expect(pt.permAt(0x1000n) & PERM_WRITE).toBe(0);
  });
});
