/**
 * The fail-nth sweep (the kernel selftests' fail_nth idea): a scenario of attach_group,
 * attach_device, PASID attach / replace / detach, RID replace, detach, map and ownership
 * release on devices behind two IOMMUs, starting from existing state (caller domains on
 * RIDs and PASIDs, an owned group). For N = 1, 2, … the N-th hardware-programming step
 * fails with ENOMEM, until a run completes without reaching step N. The call that hits N
 * must reject with ENOMEM and leave everything exactly as before it: the kernel-side state
 * of every group, the PASID-table entry of every (device, PASID), every domain's DIDs and
 * mappings, and what a fixed set of DMA probes reaches. Retrying that call (nothing is
 * armed any more) and finishing the scenario must end in the same state as a run without
 * failures. Detach and release paths must never fail.
 */
import { describe, expect, it } from 'vitest';
import { type Device, type Domain, type Group, type Simulator, SZ_1G, type TopologySpec } from 'iommu-sim';
import { MULTI_DEVICE_GROUPS, PAGE, RW, SKIP_MULTI, caught, startSim, snapshot } from './kapi-helpers.js';

const IOVA = 0x10_0000n;
/** A two-page map across a 1 GiB boundary (new tables at two levels). */
const MAP_IOVA = SZ_1G - PAGE;
const PASIDS = [0, 7, 9, 300];

/** A, B behind an ACS-less switch (one group where the topology supports it), C on IOMMU 0; D, E (no PASID) on IOMMU 1. */
const TOPO = {
  iommus: 2,
  switches: [{ id: 'sw', acs: false, iommu: 0 }],
  devices: [
    { bdf: '0000:05:00.0', behind: 'sw' },
    { bdf: '0000:05:01.0', behind: 'sw' },
    { bdf: '0000:03:00.0', iommu: 0 },
    { bdf: '0000:83:00.0', iommu: 1 },
    { bdf: '0000:84:00.0', iommu: 1, pasidBits: 0 },
  ],
} satisfies TopologySpec;

interface World {
  sim: Simulator;
  devs: Device[];
  A: Device; B: Device; C: Device; D: Device; E: Device;
  X: Domain; Y: Domain; Z: Domain;
  domains: Record<string, Domain>;
  owner: object;
}

async function build(): Promise<World> {
  const sim = await startSim(TOPO);
  const devs = sim.topology.devices;
  const [A, B, C, D, E] = devs;
  const X = sim.iommu.domainAlloc('paging');
  const Y = sim.iommu.domainAlloc('paging');
  const Z = sim.iommu.domainAlloc('paging', { stage: 'second' });
  const domains: Record<string, Domain> = { X, Y, Z };
  let p = 0x1_0000_0000n;
  for (const [k, d] of Object.entries(domains)) {
    await sim.iommu.map(d, IOVA, (p += 0x100_0000n), PAGE, RW);
    void k;
  }
  for (const g of new Set(devs.map((d) => d.group))) {
    const st = sim.iommu.groupState(g);
    domains[`def${g.id}`] = st.defaultDomain;
    domains[`blk${g.id}`] = st.blockingDomain;
    await sim.iommu.map(st.defaultDomain, IOVA, (p += 0x100_0000n), PAGE, RW);
  }
  const owner = {};
  // Existing state: caller domains on RIDs and PASIDs of both IOMMUs, an owned group.
  await sim.iommu.attachGroup(X, A.group);
  await sim.iommu.attachDevicePasid(Y, A, 7);
  await sim.iommu.attachDevice(X, D);
  await sim.iommu.attachDevicePasid(Y, D, 7);
  await sim.iommu.deviceClaimDmaOwner(C, owner);
  await sim.iommu.attachDevice(Z, C);
  return { sim, devs, A, B, C, D, E, X, Y, Z, domains, owner };
}

type Call = [label: string, run: () => Promise<unknown>, canFail: boolean];

function scenario(w: World): Call[] {
  const { sim, A, C, D, E, X, Y, Z } = w;
  const g = (d: Device): Group => d.group;
  return [
    ['attachDevicePasid(Z, A, 9)', () => sim.iommu.attachDevicePasid(Z, A, 9), true],
    ['attachDevicePasid(X, D, 9)', () => sim.iommu.attachDevicePasid(X, D, 9), true],
    ['replaceDevicePasid(Z, A, 7)', () => sim.iommu.replaceDevicePasid(Z, A, 7), true],
    ['replaceDevicePasid(Z, D, 7)', () => sim.iommu.replaceDevicePasid(Z, D, 7), true],
    ['replaceGroupDomain(A, Y)', () => sim.iommu.replaceGroupDomain(g(A), Y), true],
    ['replaceGroupDomain(D, Z)', () => sim.iommu.replaceGroupDomain(g(D), Z), true],
    ['detachDevicePasid(Z, A, 9)', () => sim.iommu.detachDevicePasid(Z, A, 9), false],
    ['detachGroup(Z, C)', () => sim.iommu.detachGroup(Z, g(C)), false],
    ['attachGroup(X, C)', () => sim.iommu.attachGroup(X, g(C)), true],
    ['attachDevicePasid(Y, A, 300)', () => sim.iommu.attachDevicePasid(Y, A, 300), true],
    ['map(Y, 1G-4K, 2 pages)', () => sim.iommu.map(Y, MAP_IOVA, 0x3_0000_0000n, 2n * PAGE, RW), true],
    ['detachGroup(Y, A)', () => sim.iommu.detachGroup(Y, g(A)), false],
    ['attachDevice(Y, E)', () => sim.iommu.attachDevice(Y, E), true],
    ['attachGroup(X, A)', () => sim.iommu.attachGroup(X, g(A)), true],
    ['detachDevicePasid(Z, D, 7)', () => sim.iommu.detachDevicePasid(Z, D, 7), false],
    ['detachDevice(Z, D)', () => sim.iommu.detachDevice(Z, D), false],
    ['detachGroup(X, C)', () => sim.iommu.detachGroup(X, g(C)), false],
    ['deviceReleaseDmaOwner(C)', () => sim.iommu.deviceReleaseDmaOwner(C), false],
    ['attachDevicePasid(Y, C, 9)', () => sim.iommu.attachDevicePasid(Y, C, 9), true],
  ];
}

/** Everything the failed call must not have changed. */
function state(w: World): unknown {
  return {
    ...(snapshot(w.sim, w.devs, PASIDS, w.domains) as object),
    maps: Object.fromEntries(Object.entries(w.domains).filter(([, d]) => d.pt).map(([k, d]) => [
      k, [IOVA, MAP_IOVA, SZ_1G].map((i) => w.sim.iommu.iovaToPhys(d, i).toString(16)),
    ])),
  };
}

/**
 * What a fixed set of DMAs reaches: every device × RID and PASIDs × addresses. A PASID
 * with no present entry faults either at the directory (no PASID table yet:
 * 'pasid-invalid') or at the table ('bad-pasid-entry'); both are "no entry for this
 * PASID". They are not told apart, because a group-wide attach that is rolled back
 * keeps the PASID table it allocated for the first device (as Linux keeps PASID tables
 * once allocated), with the entry cleared again.
 */
async function probe(w: World): Promise<string[]> {
  const out: string[] = [];
  for (const dev of w.devs) {
    const reqs = PASIDS.flatMap((p) => [IOVA, MAP_IOVA, SZ_1G].map((addr) => (p === 0 ? { addr, access: 'read' as const } : { addr, access: 'read' as const, pasid: p })));
    const res = await w.sim.dmaBatch(dev, reqs);
    const reason = (f: string): string => (f === 'pasid-invalid' || f === 'bad-pasid-entry' ? 'no-pasid-entry' : f);
    res.forEach((r, i) => out.push(`${dev.bdf} p${reqs[i].pasid ?? '-'} ${reqs[i].addr.toString(16)} → ${r.ok ? r.paddr.toString(16) : reason(r.fault.reason)}`));
  }
  return out;
}

describe(`fail-nth sweep over attach / replace / detach on two IOMMUs${MULTI_DEVICE_GROUPS ? '' : ` (singleton groups only: ${SKIP_MULTI})`}`, () => {
  it('leaves state, PASID entries, DIDs, mappings and DMA exactly as before the call that fails, at every step', async () => {
    // The reference: the scenario without failures.
    const ref = await build();
    if (MULTI_DEVICE_GROUPS) expect(ref.A.group).toBe(ref.B.group);
    await probe(ref); // programs every device, as the sweep below does
    ref.sim.test.failNth(0);
    for (const [label, run] of scenario(ref)) {
      const err = await caught(run);
      expect(err, label).toBeUndefined();
    }
    const totalSteps = ref.sim.test.failNthSteps();
    const refState = state(ref);
    const refProbe = await probe(ref);
    await ref.sim.close();
    expect(totalSteps).toBeGreaterThan(10);

    const failedAt = new Map<string, number>();
    let n = 1;
    for (; ; n++) {
      const w = await build();
      await probe(w); // every device programmed (lazily, on first use) before the sweep starts
      w.sim.test.failNth(n);
      let fired: string | undefined;
      for (const [label, run, canFail] of scenario(w)) {
        if (fired) {
          expect(await caught(run), `${label} after the failure at step ${n}`).toBeUndefined();
          continue;
        }
        const before = state(w);
        const dmaBefore = await probe(w);
        const err = await caught(run);
        if (err === undefined) continue;
        fired = label;
        expect(canFail, `${label} must never fail (step ${n})`).toBe(true);
        expect(err, `${label} at step ${n}`).toMatchObject({ code: 'ENOMEM', reason: 'injected-failure' });
        expect(state(w), `state after ${label} failed at step ${n}`).toEqual(before);
        expect(await probe(w), `DMA after ${label} failed at step ${n}`).toEqual(dmaBefore);
        failedAt.set(label, (failedAt.get(label) ?? 0) + 1);
        // Nothing is armed any more: the same call now succeeds, and the scenario goes on.
        expect(await caught(run), `${label} retried after step ${n}`).toBeUndefined();
      }
      const steps = w.sim.test.failNthSteps();
      if (!fired) {
        expect(steps, `no call failed with N = ${n}`).toBeLessThan(n);
        expect(state(w)).toEqual(refState);
        await w.sim.close();
        break;
      }
      expect(state(w), `final state after the failure at step ${n}`).toEqual(refState);
      expect(await probe(w), `final DMA after the failure at step ${n}`).toEqual(refProbe);
      await w.sim.close();
    }
    expect(n).toBe(totalSteps + 1);
    // Every call that programs something was made to fail at least once.
    const mustFail = scenario({} as World).filter(([, , canFail]) => canFail).map(([label]) => label);
    expect([...failedAt.keys()].sort()).toEqual(mustFail.sort());
  });
});
