/**
 * Runs the end-to-end VMM example (examples/iommufd-vmm.ts, described in the README): every
 * DMA step must reach the host page the example expects, one fault is read and answered,
 * and the guest's invalidation is passed down.
 */
import { describe, expect, it } from 'vitest';
import { runVmmExample } from '../../examples/iommufd-vmm.js';

describe('the iommufd VMM example', () => {
  it('nested DMA, a page fault through the fault object and an invalidation all behave as the example says', async () => {
    const lines: string[] = [];
    const r = await runVmmExample((s) => lines.push(s));
    expect(r.steps.map((s) => s.step)).toEqual(['nested DMA', 'after page fault', 'stale before invalidate', 'after hwptInvalidate']);
    for (const s of r.steps) expect(s.got, s.step).toBe(s.want);
    expect(r.steps[2].got).not.toBe(r.steps[3].got); // the invalidation changed what the device reaches
    expect(r.faultsRead).toBe(1);
    expect(r.invalidatedEntries).toBe(1);
    expect(lines.length).toBeGreaterThan(5);
  });
});
