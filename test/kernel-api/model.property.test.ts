/**
 * Property-based test of the kernel IOMMU core against a small reference model of
 * SEMANTICS.md §1.1–1.5 written here: random sequences of RID attach / detach / replace,
 * PASID attach / replace / detach, DMA ownership claims and releases, use/unuse of the
 * default domain, device reset, map / unmap and DMA, on two IOMMUs (a two-device group
 * where the topology supports it, a device without PASID, one behind a 4-bit PASID width).
 * Every call must give the model's result or errno; after every call the group state the
 * API reports must match the model; and no DMA may ever reach a physical address its
 * (device, PASID) may not reach according to the model (the domains are strict, so a
 * DMA must reach exactly what the model says, or fault where it says nothing is there).
 * Fixed seed, so a failure reproduces.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { type Device, type Domain, type Simulator, type TopologySpec, isSimError } from 'iommu-sim';
import { MULTI_DEVICE_GROUPS, PAGE, RW, SKIP_MULTI, startSim } from './kapi-helpers.js';

// --- the machine ---

const TOPO = {
  iommus: 2,
  switches: [{ id: 'sw', acs: false, iommu: 0 }],
  devices: [
    { bdf: '0000:05:00.0', behind: 'sw' },                // 0: A
    { bdf: '0000:05:01.0', behind: 'sw', pasidBits: 4 },  // 1: B (16 PASIDs), A's group where switches group
    { bdf: '0000:03:00.0', pasidBits: 0 },                // 2: C, no PASID
    { bdf: '0000:83:00.0', iommu: 1 },                    // 3: D, IOMMU 1
  ],
} satisfies TopologySpec;
const NDEV = 4;

/** Domains callers attach: paging X, Y (any IOMMU), F (IOMMU 1 only), identity I, blocked K. */
const ATTACH = ['X', 'Y', 'F', 'I', 'K'] as const;
/** Domains that map: X, Y, F and the default domains (def0.., by device). */
const MAPPABLE = ['X', 'Y', 'F', 'def:0', 'def:1', 'def:2', 'def:3'] as const;
const PASIDS = [0, 1, 2, 15, 16, 40] as const;
const SLOTS = 4;
const iovaOf = (slot: number): bigint => 0x10_0000n * BigInt(slot + 1);

type Cmd =
  | { t: 'attachDevice' | 'attachGroup' | 'detachDevice' | 'detachGroup' | 'replaceGroup'; dom: (typeof ATTACH)[number]; dev: number }
  | { t: 'attachPasid' | 'replacePasid' | 'detachPasid'; dom: (typeof ATTACH)[number]; dev: number; pasid: number }
  | { t: 'claim' | 'groupClaim'; dev: number; owner: number }
  | { t: 'release' | 'groupRelease' | 'use' | 'unuse' | 'resetPrepare' | 'resetDone'; dev: number }
  | { t: 'map'; dom: (typeof MAPPABLE)[number]; slot: number }
  | { t: 'unmap'; dom: (typeof MAPPABLE)[number]; slot: number }
  | { t: 'dma'; dev: number; pasid: number | undefined; slot: number };

// --- the reference model ---

type Outcome = { ok: true; value?: unknown } | { err: string };
const OK: Outcome = { ok: true };
const err = (code: string): Outcome => ({ err: code });

interface MDomain { name: string; type: 'paging' | 'dma' | 'identity' | 'blocked'; iommu: number | undefined; maps: Map<number, bigint> }
interface MGroup { id: number; devs: number[]; def: MDomain; blk: MDomain; cur: MDomain; owner: number | undefined; cnt: number; pasids: Map<number, MDomain>; resetting: Set<number> }
interface MDev { iommu: number; maxPasids: number; group: MGroup }

class Model {
  readonly domains = new Map<string, MDomain>();
  readonly devs: MDev[] = [];

  constructor(devices: readonly Device[]) {
    const groups = new Map<unknown, MGroup>();
    const dom = (name: string, type: MDomain['type'], iommu: number | undefined): MDomain => {
      const d = { name, type, iommu, maps: new Map<number, bigint>() };
      this.domains.set(name, d);
      return d;
    };
    dom('X', 'paging', undefined);
    dom('Y', 'paging', undefined);
    dom('F', 'paging', 1);
    dom('I', 'identity', undefined);
    dom('K', 'blocked', undefined);
    for (const dev of devices) {
      let g = groups.get(dev.group);
      if (!g) {
        const def = dom(`def${dev.group.id}`, 'dma', dev.iommu);
        g = { id: dev.group.id, devs: [], def, blk: dom(`blk${dev.group.id}`, 'blocked', dev.iommu), cur: def, owner: undefined, cnt: 0, pasids: new Map(), resetting: new Set() };
        groups.set(dev.group, g);
      }
      g.devs.push(this.devs.length);
      this.devs.push({ iommu: dev.iommu, maxPasids: dev.maxPasids, group: g });
    }
  }

  /** paddr a domain maps a slot to (unique per domain and slot). */
  static paddr(domName: string, slot: number): bigint {
    let h = 0;
    for (const ch of domName) h = (h * 31 + ch.charCodeAt(0)) % 997;
    return 0x1_0000_0000n + BigInt(h) * 0x10_0000n + BigInt(slot) * PAGE;
  }

  mappable(name: (typeof MAPPABLE)[number]): MDomain {
    return name.startsWith('def:') ? this.devs[Number(name.slice(4))].group.def : this.domains.get(name)!;
  }

  private foreign(d: MDomain, g: MGroup): boolean {
    return d.iommu !== undefined && d.iommu !== this.devs[g.devs[0]].iommu;
  }

  private core(g: MGroup): MDomain {
    return g.owner !== undefined ? g.blk : g.def;
  }

  private attachGroup(d: MDomain, g: MGroup): Outcome {
    if (g.cur !== g.def && g.cur !== g.blk) return err('EBUSY');
    if (this.foreign(d, g)) return err('EINVAL');
    if (g.resetting.size > 0) return err('EBUSY');
    g.cur = d;
    return OK;
  }

  private take(g: MGroup, owner: number): Outcome {
    if (g.cur !== g.def || g.pasids.size > 0) return err('EBUSY');
    g.cur = g.blk;
    g.owner = owner;
    g.cnt++;
    return OK;
  }

  private releaseOwnership(g: MGroup): void {
    if (g.cnt === 0 || g.owner === undefined || g.pasids.size > 0) return;
    g.cnt = 0;
    g.owner = undefined;
    g.cur = g.def;
  }

  apply(c: Cmd): Outcome {
    switch (c.t) {
      case 'dma':
      case 'map':
      case 'unmap':
        throw new Error('not a state command');
      default:
    }
    const dev = this.devs[c.dev];
    const g = dev.group;
    switch (c.t) {
      case 'attachDevice':
        if (g.devs.length !== 1) return err('EINVAL');
        return this.attachGroup(this.domains.get(c.dom)!, g);
      case 'attachGroup':
        return this.attachGroup(this.domains.get(c.dom)!, g);
      case 'detachDevice':
        if (g.cur === this.domains.get(c.dom) && g.devs.length === 1) g.cur = this.core(g);
        return OK;
      case 'detachGroup':
        if (g.cur === this.domains.get(c.dom)) g.cur = this.core(g);
        return OK;
      case 'replaceGroup': {
        const d = this.domains.get(c.dom)!;
        if (this.foreign(d, g)) return err('EINVAL');
        if (g.resetting.size > 0) return err('EBUSY');
        g.cur = d;
        return OK;
      }
      case 'attachPasid': {
        const d = this.domains.get(c.dom)!;
        if (this.foreign(d, g) || c.pasid === 0) return err('EINVAL');
        if (g.resetting.size > 0) return err('EBUSY');
        if (dev.maxPasids === 0) return err('EINVAL');
        if (g.devs.some((i) => this.devs[i].maxPasids > 0 && c.pasid >= this.devs[i].maxPasids)) return err('EINVAL');
        if (g.pasids.has(c.pasid)) return err('EBUSY');
        g.pasids.set(c.pasid, d);
        return OK;
      }
      case 'replacePasid': {
        const d = this.domains.get(c.dom)!;
        if (this.foreign(d, g) || c.pasid === 0 || !g.pasids.has(c.pasid)) return err('EINVAL');
        if (g.resetting.size > 0) return err('EBUSY');
        g.pasids.set(c.pasid, d);
        return OK;
      }
      case 'detachPasid':
        if (g.pasids.get(c.pasid) === this.domains.get(c.dom)) g.pasids.delete(c.pasid);
        return OK;
      case 'claim':
        if (g.cnt > 0) {
          if (g.owner !== c.owner) return err('EPERM');
          g.cnt++;
          return OK;
        }
        return this.take(g, c.owner);
      case 'groupClaim':
        if (g.cnt > 0) return err('EPERM');
        return this.take(g, c.owner);
      case 'release':
        if (g.cnt > 1) g.cnt--;
        else this.releaseOwnership(g);
        return OK;
      case 'groupRelease':
        this.releaseOwnership(g);
        return OK;
      case 'use':
        if (g.cnt > 0 && (g.cur !== g.def || g.owner !== undefined || g.pasids.size > 0)) return err('EBUSY');
        g.cnt++;
        return OK;
      case 'unuse':
        if (g.cnt > 0 && g.pasids.size === 0) g.cnt--;
        return OK;
      case 'resetPrepare':
        if (g.resetting.has(c.dev)) return err('EBUSY');
        g.resetting.add(c.dev);
        return OK;
      case 'resetDone':
        g.resetting.delete(c.dev);
        return OK;
    }
  }

  map(name: (typeof MAPPABLE)[number], slot: number): Outcome {
    const d = this.mappable(name);
    if (d.maps.has(slot)) return err('EEXIST');
    d.maps.set(slot, Model.paddr(d.name, slot));
    return OK;
  }

  unmap(name: (typeof MAPPABLE)[number], slot: number): Outcome {
    const d = this.mappable(name);
    const had = d.maps.delete(slot);
    return { ok: true, value: had ? PAGE : 0n };
  }

  /** The paddr DMA of (dev, pasid) at slot may reach, or undefined: it must fault. */
  reach(devIndex: number, pasid: number | undefined, slot: number): bigint | undefined {
    const dev = this.devs[devIndex];
    const g = dev.group;
    if (g.resetting.has(devIndex)) return undefined;
    let d: MDomain | undefined;
    if (pasid === undefined) d = g.cur;
    else if (dev.maxPasids === 0 || pasid >= dev.maxPasids) d = undefined;
    else d = g.pasids.get(pasid);
    if (!d || d.type === 'blocked') return undefined;
    if (d.type === 'identity') return iovaOf(slot);
    return d.maps.get(slot);
  }
}

// --- the commands ---

const dev = fc.integer({ min: 0, max: NDEV - 1 });
const attachDom = fc.constantFrom(...ATTACH);
const pasid = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2) }, { weight: 1, arbitrary: fc.constantFrom(...PASIDS) });
const dmaPasid = fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.constantFrom(1, 2) }, { weight: 1, arbitrary: fc.constantFrom(15, 40) });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constantFrom('attachDevice', 'attachGroup', 'detachDevice', 'detachGroup', 'replaceGroup' as const), dom: attachDom, dev }) as fc.Arbitrary<Cmd> },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('attachPasid' as const), dom: attachDom, dev, pasid }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('replacePasid' as const), dom: attachDom, dev, pasid }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('detachPasid' as const), dom: attachDom, dev, pasid }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom('claim', 'groupClaim' as const), dev, owner: fc.integer({ min: 0, max: 1 }) }) as fc.Arbitrary<Cmd> },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom('release', 'groupRelease', 'use', 'unuse', 'resetPrepare', 'resetDone' as const), dev }) as fc.Arbitrary<Cmd> },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('map' as const), dom: fc.constantFrom(...MAPPABLE), slot: fc.integer({ min: 0, max: SLOTS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unmap' as const), dom: fc.constantFrom(...MAPPABLE), slot: fc.integer({ min: 0, max: SLOTS - 1 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('dma' as const), dev, pasid: dmaPasid, slot: fc.integer({ min: 0, max: SLOTS - 1 }) }) as fc.Arbitrary<Cmd> },
);

// --- running one sequence against the simulator and the model ---

async function outcome(p: () => unknown): Promise<Outcome> {
  try {
    const value = await p();
    return value === undefined ? OK : { ok: true, value };
  } catch (e) {
    if (isSimError(e)) return err(e.code);
    throw e;
  }
}

async function dmaReach(sim: Simulator, d: Device, pasid: number | undefined, slot: number): Promise<bigint | undefined> {
  const addr = iovaOf(slot);
  const r = await sim.dma(d, pasid === undefined ? { addr, access: 'read' } : { addr, access: 'read', pasid });
  return r.ok ? r.paddr : undefined;
}

async function runSequence(cmds: Cmd[]): Promise<void> {
  const sim = await startSim(TOPO);
  try {
    const devs = sim.topology.devices;
    const model = new Model(devs);
    const owners = [{ owner: 0 }, { owner: 1 }];
    const doms = new Map<string, Domain>([
      ['X', sim.iommu.domainAlloc('paging')],
      ['Y', sim.iommu.domainAlloc('paging', { stage: 'second' })],
      ['F', sim.iommu.domainAlloc('paging', { dev: devs[3] })],
      ['I', sim.iommu.domainAlloc('identity')],
      ['K', sim.iommu.domainAlloc('blocked')],
    ]);
    const simDomain = (name: string): Domain => (name.startsWith('def:') ? sim.iommu.groupState(devs[Number(name.slice(4))].group).defaultDomain : doms.get(name)!);
    const nameOf = (d: Domain | undefined): string => {
      if (d === undefined) return '-';
      for (const [k, v] of doms) if (v === d) return k;
      for (const g of sim.topology.groups) {
        const st = sim.iommu.groupState(g);
        if (st.defaultDomain === d) return `def${g.id}`;
        if (st.blockingDomain === d) return `blk${g.id}`;
      }
      return `?${d.id}`;
    };
    // Slots 0..2 of every mappable domain start mapped (slot 3 does not), so DMA has something to reach.
    for (const name of MAPPABLE) {
      for (let slot = 0; slot < SLOTS - 1; slot++) {
        if ('ok' in model.map(name, slot)) await sim.iommu.map(simDomain(name), iovaOf(slot), Model.paddr(model.mappable(name).name, slot), PAGE, RW);
      }
    }
    const trace: string[] = [];
    for (const c of cmds) {
      trace.push(JSON.stringify(c));
      const where = () => `after:\n  ${trace.join('\n  ')}`;
      if (c.t === 'dma') {
        const want = model.reach(c.dev, c.pasid, c.slot);
        const got = await dmaReach(sim, devs[c.dev], c.pasid, c.slot);
        // Safety first: a translation the model does not allow is the worst failure.
        if (got !== undefined) expect(got, `DMA reached a paddr it may not ${where()}`).toBe(want);
        expect(got, `DMA should have reached its paddr ${where()}`).toBe(want);
        continue;
      }
      let want: Outcome;
      let got: Outcome;
      if (c.t === 'map') {
        want = model.map(c.dom, c.slot);
        got = await outcome(() => sim.iommu.map(simDomain(c.dom), iovaOf(c.slot), Model.paddr(model.mappable(c.dom).name, c.slot), PAGE, RW));
      } else if (c.t === 'unmap') {
        want = model.unmap(c.dom, c.slot);
        got = await outcome(() => sim.iommu.unmap(simDomain(c.dom), iovaOf(c.slot), PAGE));
      } else {
        want = model.apply(c);
        const d = devs[c.dev];
        const dom = 'dom' in c ? doms.get(c.dom)! : undefined;
        got = await outcome(() => {
          switch (c.t) {
            case 'attachDevice': return sim.iommu.attachDevice(dom!, d);
            case 'attachGroup': return sim.iommu.attachGroup(dom!, d.group);
            case 'detachDevice': return sim.iommu.detachDevice(dom!, d);
            case 'detachGroup': return sim.iommu.detachGroup(dom!, d.group);
            case 'replaceGroup': return sim.iommu.replaceGroupDomain(d.group, dom!);
            case 'attachPasid': return sim.iommu.attachDevicePasid(dom!, d, c.pasid);
            case 'replacePasid': return sim.iommu.replaceDevicePasid(dom!, d, c.pasid);
            case 'detachPasid': return sim.iommu.detachDevicePasid(dom!, d, c.pasid);
            case 'claim': return sim.iommu.deviceClaimDmaOwner(d, owners[c.owner]);
            case 'groupClaim': return sim.iommu.groupClaimDmaOwner(d.group, owners[c.owner]);
            case 'release': return sim.iommu.deviceReleaseDmaOwner(d);
            case 'groupRelease': return sim.iommu.groupReleaseDmaOwner(d.group);
            case 'use': return sim.iommu.deviceUseDefaultDomain(d);
            case 'unuse': return sim.iommu.deviceUnuseDefaultDomain(d);
            case 'resetPrepare': return sim.iommu.deviceResetPrepare(d);
            case 'resetDone': return sim.iommu.deviceResetDone(d);
          }
        });
      }
      expect(got, `result ${where()}`).toEqual(want);
      // The kernel-side state the API reports matches the model's.
      for (const [i, d] of devs.entries()) {
        const mg = model.devs[i].group;
        const st = sim.iommu.groupState(d.group);
        expect({
          dev: i, rid: nameOf(sim.iommu.getDomainForDev(d)), owner: (st.owner as { owner?: number } | undefined)?.owner, cnt: st.ownerCnt,
          pasids: PASIDS.filter((p) => p > 0).map((p) => nameOf(sim.iommu.getDomainForDevPasid(d, p))),
        }, `state ${where()}`).toEqual({
          dev: i, rid: mg.cur.name, owner: mg.owner, cnt: mg.cnt, pasids: PASIDS.filter((p) => p > 0).map((p) => mg.pasids.get(p)?.name ?? '-'),
        });
      }
    }
    // Finally every (device, PASID, slot): nothing reachable the model forbids.
    for (const [i, d] of devs.entries()) {
      for (const p of [undefined, 1, 2, 15, 40]) {
        for (let s = 0; s < SLOTS; s++) {
          expect(await dmaReach(sim, d, p, s), `final DMA dev ${i} pasid ${p} slot ${s} after:\n  ${trace.join('\n  ')}`).toBe(model.reach(i, p, s));
        }
      }
    }
  } finally {
    await sim.close();
  }
}

describe(`the kernel IOMMU core against a reference model${MULTI_DEVICE_GROUPS ? '' : ` (singleton groups only: ${SKIP_MULTI})`}`, () => {
  it('gives the model\'s results and errnos and never lets DMA reach what the model forbids (property-based)', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 20, maxLength: 40 }), async (cmds) => {
        runs++;
        await runSequence(cmds);
      }),
      { seed: 0x10_3a_5e_ed, numRuns: 50 },
    );
    expect(runs).toBeGreaterThanOrEqual(50);
  });
});
