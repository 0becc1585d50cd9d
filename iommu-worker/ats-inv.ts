/**
 * Device-TLB (PCIe ATS) invalidations in flight from one IOMMU: each device answers after
 * its own response time, a function takes at most a fixed number of outstanding
 * invalidations, and a wait descriptor completes only once every invalidation queued
 * before it has answered.
 *
 * Models: the device's invalidation response time as a log-normal distribution (median
 * `devTlbInvNs`, shape `devTlbInvSigma`) clamped to [devTlbInvMinNs, devTlbInvMaxNs]: the
 * 1–40 µs range HARDWARE.md §3.3 suggests in the absence of a published figure; at most
 * `atsMaxOutstanding` (32: the 5-bit ITag, Linux QI_DEV_IOTLB_MAX_INVS, §3.3 A1) per
 * function, the IOMMU stalling the queue until one answers; a device that has not answered
 * within `atsTimeoutNs` times out (VT-d ITE; the drivers wait 1 s on AMD/SMMU, 10 s on
 * VT-d, §3.3 A2–A4): the invalidation ends at the timeout and is counted. Draws come from a
 * seeded generator per IOMMU, so they are the same on every run.
 * Does not model: the Invalidation Completion message per ITag, ATS invalidations lost or
 * answered twice, Linux's recovery after ITE (the wait simply completes).
 */
import { mulberry32 } from '../shared/prng.js';
import type { CostModel } from '../shared/config.js';

export class AtsInvalidations {
  /** Completion times of the invalidations each function still has outstanding, earliest first. */
  private readonly outstanding = new Map<number, number[]>();
  private readonly rand: () => number;
  /** Latest completion among the invalidations issued so far (what a wait descriptor waits for). */
  lastDone = 0;
  issued = 0;
  stalls = 0;
  timeouts = 0;

  constructor(private readonly costs: CostModel, seed: number) {
    this.rand = mulberry32(seed >>> 0);
  }

  /** One response time from the device's distribution (ns). */
  draw(): number {
    const c = this.costs;
    // Box–Muller: a standard normal from two uniforms (u1 kept away from 0).
    const u1 = Math.max(this.rand(), 1e-12);
    const u2 = this.rand();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const t = Math.round(c.devTlbInvNs * Math.exp(c.devTlbInvSigma * z));
    return Math.min(Math.max(t, c.devTlbInvMinNs), c.devTlbInvMaxNs);
  }

  /**
   * The IOMMU sends an invalidation to function `sid` at `t`: returns when it could send it
   * (later than `t` when the function already has the maximum outstanding).
   */
  issue(sid: number, t: number): number {
    let list = this.outstanding.get(sid);
    if (list === undefined) this.outstanding.set(sid, (list = []));
    while (list.length > 0 && list[0] <= t) list.shift();
    if (list.length >= this.costs.atsMaxOutstanding) {
      this.stalls++;
      t = list.shift()!;
    }
    let resp = this.draw();
    if (resp > this.costs.atsTimeoutNs) {
      resp = this.costs.atsTimeoutNs;
      this.timeouts++;
    }
    const done = t + resp;
    let i = list.length;
    while (i > 0 && list[i - 1] > done) i--;
    list.splice(i, 0, done);
    if (done > this.lastDone) this.lastDone = done;
    this.issued++;
    return t;
  }
}
