/**
 * Device-TLB (ATS) invalidations in flight (iommu-worker/ats-inv.ts): the response-time
 * distribution, the 32-outstanding limit per function, timeouts, and what a wait waits for.
 */
import { describe, expect, it } from 'vitest';
import { AtsInvalidations } from '../../iommu-worker/ats-inv.js';
import { VTD_DEFAULTS, type CostModel } from '../../shared/config.js';

const costs = (o: Partial<CostModel> = {}): CostModel => ({ ...VTD_DEFAULTS.costs, ...o });

describe('ATS invalidation response times', () => {
  it('draws from a log-normal around the configured median, inside the 1–40 µs bounds, the same for the same seed', () => {
    const a = new AtsInvalidations(costs(), 42);
    const b = new AtsInvalidations(costs(), 42);
    const xs = Array.from({ length: 20_001 }, () => a.draw());
    expect(Array.from({ length: 20_001 }, () => b.draw())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1000);
    expect(Math.max(...xs)).toBeLessThanOrEqual(40_000);
    const median = [...xs].sort((p, q) => p - q)[10_000];
    expect(Math.abs(median - 4000) / 4000).toBeLessThan(0.05);
    expect(new Set(xs).size).toBeGreaterThan(1000); // a distribution, not a constant
    expect(new AtsInvalidations(costs(), 43).draw()).not.toBe(new AtsInvalidations(costs(), 42).draw());
  });

  it('lets a function have 32 invalidations outstanding and stalls the 33rd until the first answers', () => {
    const a = new AtsInvalidations(costs({ devTlbInvSigma: 0, devTlbInvNs: 5000 }), 1);
    for (let i = 0; i < 32; i++) expect(a.issue(0x300, 100)).toBe(100);
    expect(a.stalls).toBe(0);
    expect(a.issue(0x300, 100)).toBe(5100); // waits for the first to answer at 100 + 5000
    expect(a.stalls).toBe(1);
    expect(a.issue(0x301, 100)).toBe(100); // another function is not held up
    expect(a.lastDone).toBe(5100 + 5000);
  });

  it('ends an invalidation the device does not answer in time at the timeout, and counts it', () => {
    const a = new AtsInvalidations(costs({ devTlbInvSigma: 0, devTlbInvNs: 30_000, atsTimeoutNs: 10_000 }), 1);
    a.issue(0x300, 0);
    expect(a.timeouts).toBe(1);
    expect(a.lastDone).toBe(10_000);
  });
});
