/**
 * AMD v1 host page-table entries (shared/layout/amd/v1-pte.ts) and the AMD_V1 format:
 * field positions, PDEs naming the level below in Next Level, leaves with Next Level 0 at
 * their level, IR/IW from the mapping, and no execute or user control.
 */
import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { PageTable } from '../../coordinator/page-table.js';
import { AMD_V1, PERM_EXEC, PERM_READ, PERM_USER, PERM_WRITE } from '../../shared/layout/pte-format.js';
import { decodeAmdV1Pte, encodeAmdV1Pte } from '../../shared/layout/amd/v1-pte.js';
import { ArenaView } from '../../shared/memory/arena.js';

const word = (fa: FrameAllocator, frame: number, index: number) => {
  const chunk = fa.view.chunkOf(frame)!;
  const at = ArenaView.frameU32(frame) + 2 * index;
  return (BigInt(chunk[at + 1]) << 32n) | BigInt(chunk[at]);
};

describe('AMD v1 page-table entries', () => {
  it('puts PR, Next Level, the address, U, FC, IR and IW where the AMD IOMMU reads them', () => {
    const w = encodeAmdV1Pte({ pr: true, nextLevel: 3, addr: 0xabcd_e000n, u: false, fc: true, ir: true, iw: false });
    expect(w).toBe(1n | (3n << 9n) | 0xabcd_e000n | (1n << 60n) | (1n << 61n));
    expect(decodeAmdV1Pte(w)).toEqual({ pr: true, nextLevel: 3, addr: 0xabcd_e000n, u: false, fc: true, ir: true, iw: false });
  });

  it('a 4-level table names the level below in each PDE and ends in leaves with Next Level 0', () => {
    const fa = new FrameAllocator();
    const pt = new PageTable(fa, AMD_V1, 4);
    pt.map(0x4000_1000n, 0x9000_0000n, 0x1000n, { read: true, write: true });
    let frame = pt.rootFrame;
    const idx = [(0x4000_1000n >> 39n) & 511n, (0x4000_1000n >> 30n) & 511n, (0x4000_1000n >> 21n) & 511n];
    for (const [i, level] of [[0, 4], [1, 3], [2, 2]] as const) {
      const pde = decodeAmdV1Pte(word(fa, frame, Number(idx[i])));
      expect(pde).toMatchObject({ pr: true, nextLevel: level - 1, ir: true, iw: true });
      frame = Number(pde.addr >> 12n);
    }
    expect(decodeAmdV1Pte(word(fa, frame, 1))).toMatchObject({ pr: true, nextLevel: 0, addr: 0x9000_0000n, fc: true, ir: true, iw: true });
  });

  it('grants read and execute with IR, write with IW, and every request is a user one', () => {
    const lo = AMD_V1.leafLo(5, { read: true }, false);
    expect(AMD_V1.perm(lo, AMD_V1.leafHi(5, { read: true }))).toBe(PERM_READ | PERM_EXEC | PERM_USER);
    expect(AMD_V1.perm(lo, AMD_V1.leafHi(5, { read: true, write: true }))).toBe(PERM_READ | PERM_EXEC | PERM_WRITE | PERM_USER);
    expect(AMD_V1.perm(lo, AMD_V1.leafHi(5, {}))).toBe(PERM_USER);
    expect(AMD_V1.large(AMD_V1.leafLo(5, { read: true }, true))).toBe(true);
    expect(AMD_V1.large(AMD_V1.tableLo(5, 3))).toBe(false);
  });
});
