/**
 * The runner's per-run state that phases share: which devices a phase drives, the DMA
 * domain and mapped buffer of each group, the bound process of each device, seeded
 * address patterns, and the bookkeeping of a phase (ops, errors by errno, stop checks).
 * Everything goes through the public API ('iommu-sim'); calls are awaited one at a time,
 * so the modelled clock — and every modelled figure — is the same on every run.
 * Does not: model anything itself (no hardware or kernel logic lives here).
 */
import { type Device, type Domain, type Group, type Mm, type Simulator, type SvaHandle, isSimError } from 'iommu-sim';
import type { Collector, PhaseRecord } from './collect.js';
import type { DeviceSelect, Phase } from './schema.js';

export const PAGE = 4096n;
/** IOVA where each group's buffer starts, and where churn ranges go (above it). */
export const BUF_IOVA = 0x1000_0000n;
export const CHURN_IOVA = 0x40_0000_0000n;
/** Physical pages handed to maps: each group gets its own 1 GiB window. */
const PADDR_BASE = 0x100_0000_0000n;

export interface GroupSpace { domain: Domain; type: 'dma' | 'dma-fq'; pages: number; paddr: bigint }
export interface ProcSpace { mm: Mm; va: bigint; pages: number; handle: SvaHandle; pasid: number }

export interface RunCtx {
  sim: Simulator;
  col: Collector;
  rand: () => number;
  /** Ctrl-C: phases stop at their next step. */
  interrupted: () => boolean;
  progress: (done: number, total: number) => void;
  groups: Map<Group, GroupSpace>;
  procs: Map<Device, ProcSpace>;
}

/** Simulator-level failures end the run; other SimErrors are counted per phase. */
const FATAL = new Set(['EIO', 'ETIMEDOUT']);

export class PhaseRun {
  readonly rec: PhaseRecord;
  private readonly startNs: number;

  constructor(readonly ctx: RunCtx, readonly phase: Phase) {
    this.startNs = ctx.sim.clock.now;
    this.rec = { name: phase.name, type: phase.type, startNs: this.startNs, endNs: this.startNs, ops: 0, errors: {}, reasons: {} };
  }

  /** True once the phase should stop (interrupt or its modelled-time budget). */
  halt(): boolean {
    if (this.ctx.interrupted()) {
      this.rec.stoppedBy = 'interrupt';
      return true;
    }
    const us = this.phase.modelledUs;
    if (us !== undefined && this.ctx.sim.clock.now - this.startNs >= us * 1000) {
      this.rec.stoppedBy = 'modelled-time';
      return true;
    }
    return false;
  }

  /** Runs one operation; a SimError is counted by code (and returns undefined). */
  async op<T>(f: () => Promise<T> | T): Promise<T | undefined> {
    try {
      const v = await f();
      this.rec.ops++;
      return v;
    } catch (e) {
      if (!isSimError(e) || FATAL.has(e.code)) throw e;
      this.rec.errors[e.code] = (this.rec.errors[e.code] ?? 0) + 1;
      const why = `${e.code} ${e.reason}`;
      this.rec.reasons[why] = (this.rec.reasons[why] ?? 0) + 1;
      return undefined;
    } finally {
      this.ctx.col.samplePasids();
    }
  }

  finish(): PhaseRecord {
    this.rec.endNs = this.ctx.sim.clock.now;
    return this.rec;
  }
}

/** Devices matching `sel`, interleaved across IOMMUs (so fan-out reaches many), then `count`. */
export function selectDevices(sim: Simulator, sel: DeviceSelect, implied: Partial<DeviceSelect> = {}): Device[] {
  const s = { ...implied, ...sel };
  const byIommu = new Map<number, Device[]>();
  for (const d of sim.topology.devices) {
    if (d.bridgeType !== undefined || d.requireDirect || d.kind === 'platform') continue;
    if (s.kind && d.kind !== s.kind) continue;
    if (s.kind === undefined && implied.kind === undefined && d.kind === 'mdev') continue; // mdevs only when asked
    if (s.pasid !== undefined && (d.maxPasids > 0) !== s.pasid) continue;
    if (s.ats !== undefined && d.ats !== s.ats) continue;
    if (s.pri !== undefined && d.pri !== s.pri) continue;
    const l = byIommu.get(d.iommu) ?? [];
    l.push(d);
    byIommu.set(d.iommu, l);
  }
  const lists = [...byIommu.entries()].sort(([a], [b]) => a - b).map(([, l]) => (s.perIommu ? l.slice(0, s.perIommu) : l));
  const out: Device[] = [];
  const want = s.count ?? Infinity;
  for (let i = 0; out.length < want; i++) {
    let any = false;
    for (const l of lists) {
      if (i < l.length) {
        any = true;
        out.push(l[i]);
        if (out.length >= want) break;
      }
    }
    if (!any) break;
  }
  return out;
}

/**
 * The group's DMA domain of `type` with at least `pages` pages mapped at BUF_IOVA; a group
 * on another type is moved to a fresh domain (replaceGroupDomain) and remapped.
 */
export async function groupSpace(run: PhaseRun, dev: Device, type: 'dma' | 'dma-fq', pages: number, stage?: 'first' | 'second'): Promise<GroupSpace | undefined> {
  const { sim, groups } = run.ctx;
  let gs = groups.get(dev.group);
  if (!gs || gs.type !== type) {
    const domain = sim.iommu.domainAlloc(type, stage ? { dev, stage } : { dev });
    let attached = false;
    await run.op(async () => { await sim.iommu.replaceGroupDomain(dev.group, domain); attached = true; });
    if (!attached) {
      sim.iommu.domainFree(domain);
      return undefined;
    }
    if (gs) {
      const old = gs.domain;
      try { sim.iommu.domainFree(old); } catch { /* still referenced elsewhere: leave it */ }
    }
    const paddr = PADDR_BASE + BigInt(dev.group.id) * (1n << 30n);
    gs = { domain, type, pages: 0, paddr };
    groups.set(dev.group, gs);
  }
  if (gs.pages < pages) {
    const from = BigInt(gs.pages) * PAGE;
    const g = gs;
    await run.op(() => sim.iommu.map(g.domain, BUF_IOVA + from, g.paddr + from, BigInt(pages) * PAGE - from, { read: true, write: true }));
    gs.pages = pages;
  }
  return gs;
}

/**
 * svaBindDevice, timed as the 'sva-bind' round trip. Under the v5 semantics the device's
 * IOPF (PRI devices) and SVA features are enabled first, as a v5 driver does.
 */
export async function svaBind(run: PhaseRun, dev: Device, mm: Mm): Promise<SvaHandle | undefined> {
  const { sim, col } = run.ctx;
  if (sim.options.semantics === 'v5' && !sim.iommu.devFeatureEnabled(dev, 'sva')) {
    if (dev.pri && !sim.iommu.devFeatureEnabled(dev, 'iopf')) await run.op(() => sim.iommu.devEnableFeature(dev, 'iopf'));
    await run.op(() => sim.iommu.devEnableFeature(dev, 'sva'));
  }
  const t0 = sim.clock.now;
  const h = await run.op(() => sim.iommu.svaBindDevice(dev, mm));
  if (h) col.roundTrip('sva-bind', sim.clock.now - t0);
  return h;
}

/** A process bound to `dev` with `pages` populated pages (reused across phases). */
export async function procSpace(run: PhaseRun, dev: Device, pages: number): Promise<ProcSpace | undefined> {
  const { sim, procs } = run.ctx;
  const have = procs.get(dev);
  if (have && have.pages >= pages) return have;
  if (have) {
    procs.delete(dev);
    await run.op(() => sim.iommu.svaUnbindDevice(have.handle));
  }
  const mm = sim.mm.create();
  const va = mm.mmap({ length: BigInt(pages) * PAGE, prot: { read: true, write: true }, populate: true });
  const handle = await svaBind(run, dev, mm);
  if (!handle) return undefined;
  const ps = { mm, va, pages, handle, pasid: sim.iommu.svaGetPasid(handle) };
  procs.set(dev, ps);
  return ps;
}

/** Page index generator over `n` pages. */
export function pattern(kind: 'sequential' | 'random' | 'zipf', n: number, rand: () => number, s = 1.1): () => number {
  if (kind === 'sequential') {
    let i = 0;
    return () => i++ % n;
  }
  if (kind === 'random') return () => Math.floor(rand() * n);
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let k = 0; k < n; k++) cdf[k] = acc += 1 / (k + 1) ** s;
  return () => {
    const u = rand() * acc;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
