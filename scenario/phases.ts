/**
 * The workload phases of a scenario, each a short script over the public API:
 * dma (sequential/random/zipf over a footprint, by IOVA or by PASID), map-unmap churn
 * (strict or deferred through the DMA-FQ flush queue, per group or one shared domain
 * fanned out over every IOMMU), SVA bind/unbind churn, munmap storms (a process bound to
 * many devices unmaps page by page), fault storms (page requests answered by a fault
 * handler, or unrecoverable faults), kernel PASID allocation, VMs binding guest PASIDs.
 * Round trips are timed on the simulator's modelled clock (sim.clock.now before/after).
 * Does not: model hardware or kernel behaviour — the simulator does; this only drives it.
 */
import type { Device } from 'iommu-sim';
import type { PhaseOf } from './schema.js';
import { runCmdqModel } from 'iommu-sim';
import { BUF_IOVA, CHURN_IOVA, PAGE, PhaseRun, groupSpace, pattern, procSpace, selectDevices, svaBind } from './workspace.js';

type Access = 'read' | 'write';

export async function dmaPhase(run: PhaseRun, p: PhaseOf<'dma'>): Promise<void> {
  const { sim, col, rand } = run.ctx;
  const devs = selectDevices(sim, p.devices, p.via === 'sva' ? { pasid: true } : {});
  const targets: { dev: Device; base: bigint; pasid?: number; next: () => number }[] = [];
  for (const dev of devs) {
    if (run.halt()) return;
    if (p.via === 'sva') {
      const ps = await procSpace(run, dev, p.footprintPages);
      if (ps) targets.push({ dev, base: ps.va, pasid: ps.pasid, next: pattern(p.pattern, p.footprintPages, rand, p.zipfS) });
    } else {
      const gs = await groupSpace(run, dev, 'dma', p.footprintPages, p.stage);
      if (gs) targets.push({ dev, base: BUF_IOVA, next: pattern(p.pattern, p.footprintPages, rand, p.zipfS) });
    }
  }
  const total = targets.length * p.requests;
  let done = 0;
  for (let sent = 0; sent < p.requests; sent += p.batch) {
    for (const t of targets) {
      if (run.halt()) return;
      const n = Math.min(p.batch, p.requests - sent);
      const reqs = Array.from({ length: n }, () => ({
        addr: t.base + BigInt(t.next()) * PAGE + BigInt(Math.floor(rand() * 512) * 8),
        access: (rand() < p.writeShare ? 'write' : 'read') as Access,
        ...(t.pasid === undefined ? {} : { pasid: t.pasid }),
      }));
      const res = await run.op(() => sim.dmaBatch(t.dev, reqs));
      if (res) {
        const ok = res.filter((r) => r.ok).length;
        col.dmaResults(ok, res.length - ok);
      }
      done += n;
      run.ctx.progress(done, total);
    }
  }
}

export async function mapUnmapPhase(run: PhaseRun, p: PhaseOf<'map-unmap'>): Promise<void> {
  const { sim, col } = run.ctx;
  const type = p.mode === 'strict' ? 'dma' : 'dma-fq';
  const devs = selectDevices(sim, p.devices);
  const size = BigInt(p.pages) * PAGE;
  const kind = p.mode === 'strict' ? 'unmap' : 'unmap-deferred';
  // Per group: its own domain; shared: one domain on every selected group (the fan-out).
  const doms: { dev: Device; domain: import('iommu-sim').Domain }[] = [];
  if (p.domain === 'shared') {
    const domain = sim.iommu.domainAlloc(type);
    const seen = new Set<unknown>();
    for (const dev of devs) {
      if (seen.has(dev.group)) continue;
      seen.add(dev.group);
      const ok = await run.op(async () => { await sim.iommu.replaceGroupDomain(dev.group, domain); return true; });
      if (ok) doms.push({ dev, domain });
      run.ctx.groups.delete(dev.group);
    }
    doms.splice(1); // one domain: map and unmap it once per round
  } else {
    for (const dev of devs) {
      const gs = await groupSpace(run, dev, type, 1);
      if (gs && !doms.some((d) => d.domain === gs.domain)) doms.push({ dev, domain: gs.domain });
    }
  }
  const total = p.iterations * doms.length;
  let done = 0;
  for (let it = 0; it < p.iterations; it++) {
    for (const { dev, domain } of doms) {
      if (run.halt()) return;
      const iova = CHURN_IOVA + BigInt(it % 256) * size;
      const mapped = await run.op(async () => { await sim.iommu.map(domain, iova, 0x80_0000_0000n + iova, size, { read: true, write: true }); return true; });
      if (!mapped) continue;
      if (p.dmaEvery > 0 && it % p.dmaEvery === 0) {
        const res = await run.op(() => sim.dma(dev, { addr: iova, access: 'read' }));
        if (res) col.dmaResults(res.ok ? 1 : 0, res.ok ? 0 : 1);
      }
      const t0 = sim.clock.now;
      const bytes = await run.op(() => sim.iommu.unmap(domain, iova, size));
      if (bytes !== undefined) col.roundTrip(kind, sim.clock.now - t0);
      run.ctx.progress(++done, total);
    }
  }
}

export async function unmapPhase(run: PhaseRun, p: PhaseOf<'unmap'>): Promise<void> {
  const { sim, col } = run.ctx;
  const seen = new Set<unknown>();
  const devs = selectDevices(sim, p.devices).filter((d) => run.ctx.groups.has(d.group) && !seen.has(d.group) && seen.add(d.group));
  let done = 0;
  for (const dev of devs) {
    if (run.halt()) return;
    const gs = run.ctx.groups.get(dev.group)!;
    const t0 = sim.clock.now;
    const bytes = await run.op(() => sim.iommu.unmap(gs.domain, BUF_IOVA + BigInt(p.fromPage) * PAGE, BigInt(p.pages) * PAGE));
    if (bytes !== undefined) col.roundTrip(gs.type === 'dma' ? 'unmap' : 'unmap-deferred', sim.clock.now - t0);
    run.ctx.progress(++done, devs.length);
  }
}

export async function svaChurnPhase(run: PhaseRun, p: PhaseOf<'sva-churn'>): Promise<void> {
  const { sim, col, rand } = run.ctx;
  const devs = selectDevices(sim, p.devices, { pasid: true });
  if (!devs.length) return;
  let cursor = 0;
  for (let i = 0; i < p.processes; i++) {
    if (run.halt()) return;
    const mm = sim.mm.create();
    const va = mm.mmap({ length: BigInt(p.pages) * PAGE, prot: { read: true, write: true }, populate: true });
    const bonds = [];
    for (let k = 0; k < Math.min(p.devicesPerProcess, devs.length); k++) {
      const dev = devs[cursor++ % devs.length];
      const h = await svaBind(run, dev, mm);
      if (!h) continue;
      bonds.push(h);
      if (p.dmaPerBind > 0) {
        const pasid = sim.iommu.svaGetPasid(h);
        const reqs = Array.from({ length: p.dmaPerBind }, () => ({ addr: va + BigInt(Math.floor(rand() * p.pages)) * PAGE, access: 'read' as Access, pasid }));
        const res = await run.op(() => sim.dmaBatch(dev, reqs));
        if (res) col.dmaResults(res.filter((r) => r.ok).length, res.filter((r) => !r.ok).length);
      }
    }
    if (!p.keep) {
      for (const h of bonds) {
        const t0 = sim.clock.now;
        await run.op(() => sim.iommu.svaUnbindDevice(h));
        col.roundTrip('sva-unbind', sim.clock.now - t0);
      }
      await run.op(() => mm.exit());
      await run.op(() => mm.free());
    }
    run.ctx.progress(i + 1, p.processes);
  }
}

export async function munmapStormPhase(run: PhaseRun, p: PhaseOf<'munmap-storm'>): Promise<void> {
  const { sim, col } = run.ctx;
  const devs = selectDevices(sim, p.devices, { pasid: true });
  const total = p.processes * Math.ceil(p.pages / p.munmapPages);
  let done = 0;
  for (let i = 0; i < p.processes; i++) {
    const mm = sim.mm.create();
    const len = BigInt(p.pages) * PAGE;
    const va = mm.mmap({ length: len, prot: { read: true, write: true }, populate: true });
    for (const dev of devs) {
      if (run.halt()) return;
      const h = await svaBind(run, dev, mm);
      if (h && p.touchFirst) {
        const pasid = sim.iommu.svaGetPasid(h);
        for (let k = 0; k < p.pages; k += 256) {
          const reqs = Array.from({ length: Math.min(256, p.pages - k) }, (_, j) => ({ addr: va + BigInt(k + j) * PAGE, access: 'read' as Access, pasid }));
          const res = await run.op(() => sim.dmaBatch(dev, reqs));
          if (res) col.dmaResults(res.filter((r) => r.ok).length, res.filter((r) => !r.ok).length);
        }
      }
    }
    for (let k = 0; k < p.pages; k += p.munmapPages) {
      if (run.halt()) return;
      const t0 = sim.clock.now;
      const n = BigInt(Math.min(p.munmapPages, p.pages - k)) * PAGE;
      const ok = await run.op(async () => { await mm.munmap(va + BigInt(k) * PAGE, n); return true; });
      if (ok) col.roundTrip('munmap', sim.clock.now - t0);
      run.ctx.progress(++done, total);
    }
    await run.op(() => mm.exit());
  }
}

export async function faultStormPhase(run: PhaseRun, p: PhaseOf<'fault-storm'>): Promise<void> {
  const { sim, col } = run.ctx;
  const pr = p.kind === 'page-request';
  const devs = selectDevices(sim, p.devices, pr ? { pasid: true, pri: true } : {});
  const total = devs.length * p.faultsPerDevice;
  let done = 0;
  for (const dev of devs) {
    if (run.halt()) return;
    let base: bigint;
    let pasid: number | undefined;
    const answers: Promise<void>[] = [];
    if (pr) {
      const mm = sim.mm.create();
      base = mm.mmap({ length: BigInt(p.faultsPerDevice) * PAGE, prot: { read: true, write: true } }); // not populated
      const h = await svaBind(run, dev, mm);
      if (!h) continue;
      pasid = sim.iommu.svaGetPasid(h);
      // The device's fault handler: pages the process in and answers each group.
      const registered = await run.op(() => sim.iommu.registerDeviceFaultHandler(dev, (f) => {
        if (f.type !== 'page-request') return;
        const g = f.group;
        const code = p.respond === 'success' && g.faults.every((r) => mm.handleFault(r.addr, r.perm.write ? 'write' : 'read') === 'success') ? 'success' : 'invalid';
        answers.push(sim.iommu.pageResponse(g.dev, { pasid: g.pasid, grpid: g.grpid, code }).then(() => col.pageResponse(code), () => col.pageResponse('failure')));
      }) ?? true);
      if (registered === undefined) continue; // another handler owns the device (EBUSY, counted)
    } else {
      const gs = await groupSpace(run, dev, 'dma', 1);
      if (!gs) continue;
      base = 0x7_0000_0000n; // never mapped
    }
    for (let k = 0; k < p.faultsPerDevice; k += p.batch) {
      if (run.halt()) break;
      const reqs = Array.from({ length: Math.min(p.batch, p.faultsPerDevice - k) }, (_, j) => ({
        addr: base + BigInt(k + j) * PAGE, access: 'write' as Access, ...(pasid === undefined ? {} : { pasid }),
      }));
      const res = await run.op(() => sim.dmaBatch(dev, reqs));
      if (res) col.dmaResults(res.filter((r) => r.ok).length, res.filter((r) => !r.ok).length);
      done += reqs.length;
      run.ctx.progress(done, total);
    }
    await Promise.all(answers);
    if (pr) await run.op(() => sim.iommu.unregisterDeviceFaultHandler(dev));
  }
}

export async function pasidAllocPhase(run: PhaseRun, p: PhaseOf<'pasid-alloc'>): Promise<void> {
  const { sim } = run.ctx;
  const devs = selectDevices(sim, p.devices, { pasid: true });
  if (!devs.length) return;
  const want = p.count === 'all' ? Infinity : p.count;
  const got: { pasid: number; dev: Device }[] = [];
  let d = 0;
  let misses = 0;
  while (got.length < want && misses < devs.length) {
    if (got.length % 65536 === 0) {
      run.ctx.col.samplePasids();
      if (run.halt()) break;
      run.ctx.progress(got.length, p.count === 'all' ? 1 << 20 : want);
    }
    const dev = devs[d++ % devs.length];
    const pasid = sim.iommu.allocGlobalPasid(dev);
    if (pasid === 0xffffffff || pasid < 0) {
      misses++; // this device's space is full; try the others before giving up
      continue;
    }
    misses = 0;
    got.push({ pasid, dev });
    run.rec.ops++;
  }
  run.ctx.col.samplePasids();
  if (got.length < want && p.count !== 'all') {
    run.rec.errors.ENOSPC = want - got.length;
    run.rec.reasons['ENOSPC pasid-space-exhausted'] = want - got.length;
  }
  if (p.free) {
    for (const g of got) sim.iommu.freeGlobalPasid(g.pasid, g.dev);
    run.ctx.col.samplePasids();
  }
}

export async function vmsPhase(run: PhaseRun, p: PhaseOf<'vms'>): Promise<void> {
  const { sim } = run.ctx;
  const devs = selectDevices(sim, p.devices).filter((d) => !sim.vms.ownerOf(d));
  let next = 0;
  for (let v = 0; v < p.count; v++) {
    if (run.halt() || next >= devs.length) return;
    const vm = await run.op(() => sim.vms.create({ name: `${p.name}-${v}`, ...(p.ppasidQuota ? { ppasidQuota: p.ppasidQuota } : {}) }));
    if (!vm) continue;
    for (let k = 0; k < p.devicesEach && next < devs.length; k++) {
      const dev = devs[next++];
      if (!(await run.op(() => { vm.assign(dev); return true; }))) continue;
      for (let vp = 1; vp <= p.vpasidsEach; vp++) await run.op(() => vm.bindVpasid(dev, vp));
    }
    run.ctx.progress(v + 1, p.count);
  }
}

/**
 * The CPU side of the command queue (coordinator/cmdq): N CPUs doing map+unmap on one
 * SMMUv3 command queue, for every combination asked; modelled, so deterministic.
 */
export async function cmdqPhase(run: PhaseRun, p: PhaseOf<'cmdq-contention'>): Promise<void> {
  const total = p.cpus.length * p.algorithms.length * p.batching.length * p.modes.length;
  let done = 0;
  for (const mode of p.modes) {
    for (const batching of p.batching) {
      for (const algorithm of p.algorithms) {
        for (const cpus of p.cpus) {
          if (run.halt()) return;
          const r = await run.op(() => runCmdqModel({
            cpus, algorithm, batching, mode, pagesPerUnmap: p.pagesPerUnmap, durationNs: Math.round(p.durationUs * 1000),
            warmupNs: Math.round(p.durationUs * 100), seed: 1,
          }).results);
          if (r) {
            run.ctx.col.cmdq({
              phase: p.name, cpus, algorithm, batching, mode, opsPerCpuPerSec: Math.round(r.opsPerCpuPerSec),
              casSuccessRate: Math.round(r.casSuccessRate * 1e6) / 1e6, smmuBusy: Math.round(r.smmuBusy * 1e6) / 1e6,
              syncWaitNsPerOp: Math.round(r.syncWaitNsPerOp),
            });
          }
          run.ctx.progress(++done, total);
        }
      }
    }
  }
}
