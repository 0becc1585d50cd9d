/**
 * Property: any sequence of fixed-IOVA maps and unmaps on an IOAS with a device attached
 * behaves like a reference model of areas — over-maps fail with EEXIST, unmaps of nothing
 * or of part of an area with ENOENT, others return the bytes of the whole areas inside —
 * and afterwards the device's DMA reaches exactly the pages the model says are mapped
 * (SEMANTICS.md §5.3). Seeded; one-device variant.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SimError } from 'iommu-sim';
import { PAGE, RW, fixture, pa, reach } from './fixtures.js';

const SLOTS = 16; // IOVA pages 0x100..0x10f
const BASE = 0x10_0000n;
type Op = { kind: 'map' | 'unmap'; at: number; pages: number };

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('map' as const, 'unmap' as const),
  at: fc.integer({ min: 0, max: SLOTS - 1 }),
  pages: fc.integer({ min: 1, max: 4 }),
});

describe('IOAS map/unmap against a reference model (one device)', () => {
  it('agrees on every result and on what DMA reaches', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), async (ops) => {
        const { sim, fd, ioasId, devs: [{ dev, devId }] } = await fixture('one-device');
        await fd.attach({ devId, ptId: ioasId });
        const va = fd.mm.mmap({ length: BigInt(SLOTS + 4) * PAGE, prot: { read: true, write: true }, populate: true });
        const model: { at: number; pages: number }[] = [];
        const owner = (slot: number) => model.find((a) => slot >= a.at && slot < a.at + a.pages);
        for (const op of ops) {
          const iova = BASE + BigInt(op.at) * PAGE;
          const len = BigInt(op.pages) * PAGE;
          let got: string;
          try {
            got = op.kind === 'map'
              ? `ok:${(await fd.ioasMap({ ioasId, flags: { ...RW, fixedIova: true }, userVa: va + BigInt(op.at) * PAGE, length: len, iova })).iova}`
              : `ok:${(await fd.ioasUnmap({ ioasId, iova, length: len })).length}`;
          } catch (e) {
            got = (e as SimError).code;
          }
          let want: string;
          const slots = Array.from({ length: op.pages }, (_, i) => op.at + i);
          if (op.kind === 'map') {
            if (slots.some((s) => owner(s))) want = 'EEXIST';
            else {
              model.push({ at: op.at, pages: op.pages });
              want = `ok:${iova}`;
            }
          } else {
            const hit = model.filter((a) => a.at < op.at + op.pages && op.at < a.at + a.pages);
            if (hit.length === 0 || hit.some((a) => a.at < op.at || a.at + a.pages > op.at + op.pages)) want = 'ENOENT';
            else {
              for (const a of hit) model.splice(model.indexOf(a), 1);
              want = `ok:${BigInt(hit.reduce((n, a) => n + a.pages, 0)) * PAGE}`;
            }
          }
          expect(got, `${op.kind} at ${op.at} × ${op.pages}`).toBe(want);
        }
        for (let s = 0; s < SLOTS + 3; s++) {
          const a = owner(s);
          const expected = a ? pa(fd.mm.physOf(va + BigInt(s) * PAGE)) : 'fault:pte-fetch';
          expect(await reach(sim, dev, BASE + BigInt(s) * PAGE), `slot ${s}`).toBe(expected);
        }
        await sim.close();
      }),
      { seed: 6, numRuns: 12 },
    );
  });
});
