/**
 * VMs and the device types 0–5 of seed 001 (SEMANTICS.md §2.4): how a guest's vPASID
 * becomes the pPASID its device's DMA carries, and the conflicts each policy runs into.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator } from 'iommu-sim';
import { expectThrowsCode } from '../e2e/helpers.js';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(pasidPolicy: 'global' | 'per-device' = 'global') {
  sim = await Simulator.start({
    pasidPolicy,
    topology: {
      iommus: 1,
      devices: [
        { bdf: '0000:01:00.0', pasidBits: 0, deviceType: 0 },
        { bdf: '0000:02:00.0', deviceType: 3 },
        { bdf: '0000:03:00.0', deviceType: 3 },
        { bdf: '0000:04:00.0', deviceType: 4 },
        { bdf: '0000:05:00.0', deviceType: 4 },
        { bdf: '0000:06:00.0', deviceType: 4 },
        { bdf: 'dsa-wq-0', kind: 'mdev', parent: '0000:06:00.0', deviceType: 5 },
        { bdf: 'dsa-wq-1', kind: 'mdev', parent: '0000:06:00.0', deviceType: 5 },
        { bdf: 'adi-0', kind: 'mdev', parent: '0000:05:00.0', deviceType: 2 },
      ],
    },
  } as Parameters<typeof Simulator.start>[0]);
  const d = sim.topology.devices;
  return { sim, t0: d[0], t3a: d[1], t3b: d[2], t4a: d[3], t4b: d[4], t5a: d[6], t5b: d[7], t2: d[8] };
}

describe('VMs', () => {
  it('own each device at most once (EBUSY for a second VM) and only bind PASIDs of assigned devices', async () => {
    const { sim, t3a, t3b } = await start();
    const v1 = sim.vms.create({ name: 'v1' });
    const v2 = sim.vms.create({ name: 'v2' });
    v1.assign(t3a);
    expect(() => v2.assign(t3a)).toThrow();
    expectThrowsCode(() => v2.assign(t3a), 'EBUSY');
    expectThrowsCode(() => v1.bindVpasid(t3b, 5), 'EINVAL');
    expect(sim.vms.ownerOf(t3a)).toBe(v1);
  });

  it('give every VM its own vPASID space, within its quota', async () => {
    const { sim } = await start();
    const v1 = sim.vms.create({ quota: 2 });
    const v2 = sim.vms.create();
    expect([v1.allocVpasid(), v1.allocVpasid(), v2.allocVpasid()]).toEqual([1, 2, 1]);
    expectThrowsCode(() => v1.allocVpasid(), 'ENOSPC');
  });
});

describe('device types', () => {
  it('0/1: a device that cannot issue PASIDs has no vPASID (EOPNOTSUPP)', async () => {
    const { sim, t0 } = await start();
    const vm = sim.vms.create();
    vm.assign(t0);
    const e = expectThrowsCode(() => vm.bindVpasid(t0, 1), 'EOPNOTSUPP');
    expect(e.reason).toBe('no-vpasid');
  });

  it('2: an mdev uses one fixed pPASID allocated at bind, whatever the guest\'s vPASID', async () => {
    const { sim, t2 } = await start();
    const vm = sim.vms.create();
    vm.assign(t2);
    const p = vm.bindVpasid(t2, 7);
    expect(vm.bindVpasid(t2, 9)).toBe(p);
    vm.unbindVpasid(t2, 7);
    expect(vm.ppasidOf(t2, 9)).toBe(p);
  });

  it('3: pPASID == vPASID; two VMs wanting the same number conflict under the global policy', async () => {
    const { sim, t3a, t3b } = await start('global');
    const v1 = sim.vms.create({ name: 'v1' });
    const v2 = sim.vms.create({ name: 'v2' });
    v1.assign(t3a);
    v2.assign(t3b);
    expect(v1.bindVpasid(t3a, 5)).toBe(5);
    const e = expectThrowsCode(() => v2.bindVpasid(t3b, 5), 'EBUSY');
    expect(e.reason).toBe('ppasid-conflict');
    expect(e.message).toContain('VM v1');
    v1.unbindVpasid(t3a, 5);
    expect(v2.bindVpasid(t3b, 5)).toBe(5);
  });

  it('3: under the per-device policy each device has its own space, so the two VMs coexist', async () => {
    const { sim, t3a, t3b } = await start('per-device');
    const v1 = sim.vms.create();
    const v2 = sim.vms.create();
    v1.assign(t3a);
    v2.assign(t3b);
    expect(v1.bindVpasid(t3a, 5)).toBe(5);
    expect(v2.bindVpasid(t3b, 5)).toBe(5);
  });

  it('4: the device translates: any free pPASID, so equal vPASIDs of two VMs get different pPASIDs', async () => {
    const { sim, t4a, t4b } = await start('global');
    const v1 = sim.vms.create();
    const v2 = sim.vms.create();
    v1.assign(t4a);
    v2.assign(t4b);
    const p1 = v1.bindVpasid(t4a, 1);
    const p2 = v2.bindVpasid(t4b, 1);
    expect(p1).not.toBe(p2);
  });

  it('5: ENQCMD needs a global pPASID (EINVAL under the per-device policy); KVM maps each VM\'s vPASID to its own', async () => {
    const g = await start('global');
    const v1 = g.sim.vms.create();
    const v2 = g.sim.vms.create();
    v1.assign(g.t5a);
    v2.assign(g.t5b);
    const p1 = v1.bindVpasid(g.t5a, 1);
    const p2 = v2.bindVpasid(g.t5b, 1);
    expect(new Set([p1, p2]).size).toBe(2);
    await g.sim.close();
    const d = await start('per-device');
    const vm = d.sim.vms.create();
    vm.assign(d.t5a);
    const e = expectThrowsCode(() => vm.bindVpasid(d.t5a, 1), 'EINVAL');
    expect(e.reason).toBe('needs-global-pasid');
  });

  it('3 and the host: a host PASID already taken makes a guest\'s identical vPASID conflict', async () => {
    const { sim, t3a } = await start('global');
    expect(sim.iommu.allocGlobalPasid(t3a)).toBe(1);
    const vm = sim.vms.create();
    vm.assign(t3a);
    const e = expectThrowsCode(() => vm.bindVpasid(t3a, 1), 'EBUSY');
    expect(e.message).toContain('the host');
  });
});

describe('quota\'d host PASID sets per VM', () => {
  it('limit a VM\'s pPASIDs to its quota (ENOSPC ppasid-quota) and refuse quotas beyond the capacity (ENOSPC)', async () => {
    const { sim, t4a, t4b } = await start('global');
    const v1 = sim.vms.create({ name: 'small', ppasidQuota: 2 });
    v1.assign(t4a);
    v1.bindVpasid(t4a, 1);
    v1.bindVpasid(t4a, 2);
    const e = expectThrowsCode(() => v1.bindVpasid(t4a, 3), 'ENOSPC');
    expect(e.reason).toBe('ppasid-quota');
    v1.unbindVpasid(t4a, 1);
    v1.bindVpasid(t4a, 3);
    expectThrowsCode(() => sim.vms.create({ ppasidQuota: sim.vms.capacity.available + 1 }), 'ENOSPC');
    const before = sim.vms.capacity.available;
    const v2 = sim.vms.create({ ppasidQuota: 10 });
    expect(sim.vms.capacity.available).toBe(before - 10);
    v2.assign(t4b);
    v2.bindVpasid(t4b, 1);
    v2.destroy();
    expect(sim.vms.capacity.available).toBe(before);
  });
});
