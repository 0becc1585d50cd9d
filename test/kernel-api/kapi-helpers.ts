/**
 * Shared helpers of the kernel-API suites (SEMANTICS.md §1.1–1.5): starting a simulator
 * with test hooks (every one is closed after its test), what a device's DMA reaches as
 * one comparable string, a snapshot of the kernel-side and hardware-side state of a set
 * of devices, and probes of the topology features the PCI model brings (multi-device
 * groups, untrusted, require_direct) so suites can skip with a reason where one is missing.
 * Not a test file (vitest collects *.test.ts only).
 */
import { afterEach, expect } from 'vitest';
import {
  type Device, type DeviceSpec, type Domain, type Group, type SimEvent, type SimulatorOptions, type TopologySpec, Simulator, Topology,
} from 'iommu-sim';
import { closeSim } from '../e2e/helpers.js';

export { expectRejectsCode, expectThrowsCode, closeSim } from '../e2e/helpers.js';

export const RW = { read: true, write: true } as const;
export const PAGE = 0x1000n;

// --- simulators, closed after each test ---

const open: Simulator[] = [];

afterEach(async () => {
  const sims = open.splice(0);
  for (const s of sims) await closeSim(s);
});

/** Starts a simulator with test hooks; it is closed after the current test. */
export async function startSim(topology: TopologySpec, o: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const sim = await Simulator.start({ testHooks: true, ...o, topology });
  open.push(sim);
  return sim;
}

// --- what DMA reaches ---

/**
 * What one read DMA of `dev` at `addr` (with `pasid`, if given) reaches: 'pa:0x…' for a
 * translation, 'fault:<reason>' for a fault. Strings compare (and print) well.
 */
export async function reach(sim: Simulator, dev: Device, addr: bigint, pasid?: number): Promise<string> {
  const r = await sim.dma(dev, pasid === undefined ? { addr, access: 'read' } : { addr, access: 'read', pasid });
  return r.ok ? pa(r.paddr) : `fault:${r.fault.reason}`;
}

export const pa = (p: bigint): string => `pa:0x${p.toString(16)}`;

/**
 * A domain as a short string ('paging#7', '-' for none). Assertions compare these, never
 * Domain objects: a failing toBe() on a Domain would make vitest print its page table and
 * with it the simulator's table memory.
 */
export const dn = (d: Domain | undefined): string => (d === undefined ? '-' : `${d.type}#${d.id}`);
/** PASID-table entry not present: what the blocking domain looks like to DMA. */
export const BLOCKED = 'fault:bad-pasid-entry';
/** Translation through a paging domain that does not map the address. */
export const UNMAPPED = 'fault:pte-fetch';

/** The 'invalidation-complete' events emitted while `fn` runs. */
export async function invalidationsDuring(sim: Simulator, fn: () => Promise<unknown>): Promise<{ iommu: number; kind: string }[]> {
  const seen: { iommu: number; kind: string }[] = [];
  const sub = sim.events$.subscribe((e: SimEvent) => {
    if (e.type === 'invalidation-complete') seen.push({ iommu: e.iommu, kind: e.kind });
  });
  try {
    await fn();
  } finally {
    sub.unsubscribe();
  }
  return seen;
}

/** Runs `fn` and returns the error it threw (undefined if it did not). */
export async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    return e;
  }
}

// --- state snapshots ---

/** A PASID-table entry reduced to what decides translation: absent/not present → null. */
export function entryOf(sim: Simulator, dev: Device, pasid: number): { did: number; pgtt: number; root: string } | null {
  const e = sim.test.pasidEntry(dev, pasid);
  if (!e || !e.present) return null;
  return { did: e.did, pgtt: e.pgtt, root: `${e.fsptptr.toString(16)}/${e.ssptptr.toString(16)}` };
}

/** A domain's DIDs: [iommu, did, refs][] sorted. */
export function didsOf(d: Domain): [number, number, number][] {
  return [...d.dids.entries()].map(([i, v]): [number, number, number] => [i, v.did, v.refs]).sort((a, b) => a[0] - b[0]);
}

/** Names domains for readable snapshots. */
export function namer(named: Record<string, Domain>): (d: Domain | undefined) => string {
  const byDomain = new Map<Domain, string>(Object.entries(named).map(([k, v]) => [v, k]));
  return (d) => (d === undefined ? '-' : byDomain.get(d) ?? `${d.type}#${d.id}`);
}

/**
 * The kernel-side state of the groups of `devs` and the hardware entries of every
 * (device, PASID) in `pasids` (0 = the RID), with the DIDs of `domains`.
 */
export function snapshot(sim: Simulator, devs: readonly Device[], pasids: readonly number[], domains: Record<string, Domain>): unknown {
  const name = namer(domains);
  const groups = [...new Set(devs.map((d) => d.group))];
  return {
    groups: groups.map((g) => {
      const st = sim.iommu.groupState(g);
      return {
        id: g.id, domain: name(st.domain), owner: st.owner === undefined ? '-' : 'set', ownerCnt: st.ownerCnt,
        pasids: [...st.pasids.entries()].sort((a, b) => a[0] - b[0]).map(([p, d]) => `${p}:${name(d)}`),
        resetting: [...st.resetting].sort(),
      };
    }),
    dev: devs.map((d) => ({
      bdf: d.bdf,
      rid: name(sim.iommu.getDomainForDev(d)),
      pasid: pasids.filter((p) => p > 0).map((p) => `${p}:${name(sim.iommu.getDomainForDevPasid(d, p))}`),
      entries: pasids.map((p) => [p, entryOf(sim, d, p)]),
    })),
    dids: Object.fromEntries(Object.entries(domains).map(([k, d]) => [k, didsOf(d)])),
  };
}

// --- topology features of the PCI model ---

function tryTopology(spec: TopologySpec): Topology | undefined {
  try {
    return new Topology(spec, 2, () => 20);
  } catch {
    return undefined;
  }
}

/** true when a switch without ACS puts the devices behind it into one group. */
export const MULTI_DEVICE_GROUPS: boolean = (() => {
  const t = tryTopology({
    iommus: 1,
    switches: [{ id: 'sw', acs: false }],
    devices: [{ bdf: '0000:05:00.0', behind: 'sw' }, { bdf: '0000:05:01.0', behind: 'sw' }],
  } satisfies TopologySpec);
  return !!t && t.devices.length === 2 && t.devices[0].group === t.devices[1].group && t.devices[0].group.devices.length === 2;
})();

export const UNTRUSTED_FIELD: boolean = (() => {
  const t = tryTopology({ iommus: 1, devices: [{ bdf: '0000:05:00.0', untrusted: true }] } satisfies TopologySpec);
  return !!t && t.devices[0].untrusted === true;
})();

export const REQUIRE_DIRECT_FIELD: boolean = (() => {
  const t = tryTopology({ iommus: 1, devices: [{ bdf: '0000:05:00.0', requireDirect: true }] } satisfies TopologySpec);
  return !!t && t.devices[0].requireDirect === true;
})();

export const RESERVED_REGIONS_FIELD: boolean = (() => {
  const t = tryTopology({
    iommus: 1, devices: [{ bdf: '0000:05:00.0', reservedRegions: [{ start: 0xe000_0000n, last: 0xe000_3fffn, type: 'direct' }] }],
  } satisfies TopologySpec);
  return !!t && (t.devices[0].reservedRegions ?? []).some((x) => x.type === 'direct');
})();

export const SKIP_MULTI = 'TopologySpec.switches / DeviceSpec.behind do not yet put devices behind an ACS-less switch into one group';
export const SKIP_UNTRUSTED = 'DeviceSpec.untrusted is not yet carried to Device.untrusted by the topology';
export const SKIP_REQUIRE_DIRECT = 'DeviceSpec.requireDirect is not yet carried to Device.requireDirect by the topology';
export const SKIP_RESERVED = 'DeviceSpec.reservedRegions is not yet carried to Device.reservedRegions by the topology';

/** A two-device group behind an ACS-less switch (IOMMU 0), plus `extra` devices. */
export function switchTopology(a: Partial<DeviceSpec> = {}, b: Partial<DeviceSpec> = {}, extra: DeviceSpec[] = [], iommus: TopologySpec['iommus'] = 1): TopologySpec {
  return {
    iommus,
    switches: [{ id: 'sw', acs: false, iommu: 0 }],
    devices: [{ bdf: '0000:05:00.0', behind: 'sw', ...a }, { bdf: '0000:05:01.0', behind: 'sw', ...b }, ...extra],
  } satisfies TopologySpec;
}

/** The two devices of `switchTopology`'s group, checked to share it. */
export function groupPair(sim: Simulator): [Device, Device, Group] {
  const [a, b] = sim.topology.devices;
  expect(a.group, 'the two devices behind the ACS-less switch share a group').toBe(b.group);
  expect(a.group.devices).toHaveLength(2);
  return [a, b, a.group];
}
