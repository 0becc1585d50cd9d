import { describe, expect, it } from 'vitest';
import { PASID_SPACE, PasidIda } from '../../coordinator/pasid-ida.js';

describe('PASID IDA', () => {
  it('hands out the lowest free id in range, and reuses freed ids lowest first', () => {
    const ida = new PasidIda();
    expect(ida.alloc(1, 100)).toBe(1);
    expect(ida.alloc(1, 100)).toBe(2);
    expect(ida.alloc(40, 100)).toBe(40);
    expect(ida.alloc(33, 100)).toBe(33);
    ida.free(1);
    expect(ida.alloc(1, 100)).toBe(1);
    expect(ida.alloc(1, 100)).toBe(3);
    expect(ida.allocated).toBe(5);
  });

  it('reports exhaustion of a range with -1 and rejects bad ranges', () => {
    const ida = new PasidIda();
    expect(ida.alloc(5, 6)).toBe(5);
    expect(ida.alloc(5, 6)).toBe(6);
    expect(ida.alloc(5, 6)).toBe(-1);
    expect(ida.alloc(7, 6)).toBe(-1);
    expect(ida.alloc(0, PASID_SPACE)).toBe(-1);
    expect(ida.alloc(-1, 3)).toBe(-1);
  });

  it('allocates and frees the whole 20-bit space in order', () => {
    const ida = new PasidIda();
    for (let i = 1; i < PASID_SPACE; i++) if (ida.alloc(1, PASID_SPACE - 1) !== i) throw new Error(`alloc ${i}`);
    expect(ida.alloc(1, PASID_SPACE - 1)).toBe(-1);
    expect(ida.allocated).toBe(PASID_SPACE - 1);
    ida.free(777_777);
    expect(ida.alloc(1, PASID_SPACE - 1)).toBe(777_777);
    for (let i = 1; i < PASID_SPACE; i++) ida.free(i);
    expect(ida.allocated).toBe(0);
    expect(ida.alloc(1, PASID_SPACE - 1)).toBe(1);
  });

  it('claims a given id once', () => {
    const ida = new PasidIda();
    expect(ida.claim(9)).toBe(true);
    expect(ida.claim(9)).toBe(false);
    expect(ida.alloc(9, 10)).toBe(10);
  });
});
