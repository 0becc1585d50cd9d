/**
 * IOMMU groups from hand-built topologies, one grouping rule of Linux's
 * pci_device_group() at a time: upstream ACS (switches and ports), multi-function ACS,
 * bridge and explicit DMA aliases, VFs, mdevs, platform devices.
 */
import { describe, expect, it } from 'vitest';
import { build, groupOf, groups } from './helpers.js';

describe('switches', () => {
  it('gives each device behind a switch with ACS a group of its own', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'sw', acs: true }],
      devices: [{ bdf: '03:00.0', behind: 'sw' }, { bdf: '04:00.0', behind: 'sw' }, { bdf: '05:00.0', behind: 'sw' }],
    });
    expect(groups(t)).toEqual([['03:00.0'], ['04:00.0'], ['05:00.0']]);
    expect(t.switch('sw').devices.map((d) => d.name)).toEqual(['0000:03:00.0', '0000:04:00.0', '0000:05:00.0']);
    expect(t.device('03:00.0').upstream).toBe(t.switch('sw'));
  });

  it('puts every device behind a switch without ACS in one group, and leaves devices elsewhere alone', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'plain', acs: false }, { id: 'good', acs: true }],
      devices: [
        { bdf: '03:00.0', behind: 'plain' }, { bdf: '06:00.0', behind: 'good' },
        { bdf: '04:00.0', behind: 'plain' }, { bdf: '05:00.0', behind: 'plain' }, { bdf: '07:00.0' },
      ],
    });
    expect(groups(t)).toEqual([['03:00.0', '04:00.0', '05:00.0'], ['06:00.0'], ['07:00.0']]);
  });

  it('shares the group of a switch without ACS with everything below it, switches with ACS included', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'top', acs: false }, { id: 'inner', acs: true, behind: 'top' }],
      devices: [{ bdf: '03:00.0', behind: 'top' }, { bdf: '05:00.0', behind: 'inner' }, { bdf: '06:00.0', behind: 'inner' }],
    });
    expect(groups(t)).toEqual([['03:00.0', '05:00.0', '06:00.0']]);
  });

  it('groups only the devices of a switch without ACS that sits below a switch with ACS', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'top', acs: true }, { id: 'inner', acs: false, behind: 'top' }],
      devices: [{ bdf: '03:00.0', behind: 'top' }, { bdf: '05:00.0', behind: 'inner' }, { bdf: '06:00.0', behind: 'inner' }],
    });
    expect(groups(t)).toEqual([['03:00.0'], ['05:00.0', '06:00.0']]);
    expect(t.switch('inner').upstream).toBe(t.switch('top'));
  });

  it('treats a root port without ACS like a switch without ACS', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'rp', kind: 'root-port', acs: false }],
      devices: [{ bdf: '01:00.0', behind: 'rp' }, { bdf: '01:00.1', behind: 'rp' }, { bdf: '02:00.0' }],
    });
    expect(groups(t)).toEqual([['01:00.0', '01:00.1'], ['02:00.0']]);
  });
});

describe('ports as bridge devices (per-port ACS)', () => {
  it('joins a root port without ACS and the functions below it; one with ACS stays apart', () => {
    const t = build({
      iommus: 1,
      devices: [
        { bdf: '00:01.0', bridge: { type: 'root-port', acs: false, secondaryBus: 1 } },
        { bdf: '00:1c.0', bridge: { type: 'root-port', acs: true, secondaryBus: 2 } },
        { bdf: '01:00.0' }, { bdf: '02:00.0' },
      ],
    });
    expect(groups(t)).toEqual([['00:01.0', '01:00.0'], ['00:1c.0'], ['02:00.0']]);
    expect(t.device('01:00.0').upstream).toBe(t.device('00:01.0'));
    expect(t.device('00:01.0').bridgeType).toBe('root-port');
    expect(t.device('00:01.0').maxPasids).toBe(0); // bridges issue no PASIDs by default
  });

  it('groups a downstream port without ACS with its own subtree only (the classic per-port rule)', () => {
    const t = build({
      iommus: 1,
      devices: [
        { bdf: '00:1c.0', bridge: { type: 'root-port', secondaryBus: 5 } },
        { bdf: '05:00.0', bridge: { type: 'upstream-port', secondaryBus: 6 } },
        { bdf: '06:01.0', bridge: { type: 'downstream-port', acs: false, secondaryBus: 7 } },
        { bdf: '06:02.0', bridge: { type: 'downstream-port', acs: false, secondaryBus: 8 } },
        { bdf: '06:03.0', bridge: { type: 'downstream-port', acs: true, secondaryBus: 9 } },
        { bdf: '07:00.0' }, { bdf: '08:00.0' }, { bdf: '09:00.0' },
      ],
    });
    expect(groups(t)).toEqual([['00:1c.0'], ['05:00.0'], ['06:01.0', '07:00.0'], ['06:02.0', '08:00.0'], ['06:03.0'], ['09:00.0']]);
  });

  it('merges two functions of a root-port slot without ACS and everything below both (the z97 4.14 case)', () => {
    const t = build({
      iommus: 1,
      devices: [
        { bdf: '00:01.0', bridge: { type: 'root-port', acs: false, secondaryBus: 1 } },
        { bdf: '00:01.1', bridge: { type: 'root-port', acs: false, secondaryBus: 2 } },
        { bdf: '01:00.0' }, { bdf: '01:00.1' }, { bdf: '02:00.0' },
      ],
    });
    expect(groups(t)).toEqual([['00:01.0', '00:01.1', '01:00.0', '01:00.1', '02:00.0']]);
    expect(t.device('00:01.0').multifunction).toBe(true);
  });

  it('places a function on a bridge secondary bus behind that bridge without naming it', () => {
    const t = build({ iommus: 1, devices: [{ bdf: '04:00.0' }, { bdf: '00:1c.2', bridge: { type: 'root-port', acs: false, secondaryBus: 4 } }] });
    expect(t.device('04:00.0').upstream).toBe(t.device('00:1c.2'));
    expect(groups(t)).toEqual([['04:00.0', '00:1c.2']]);
  });
});

describe('multi-function devices', () => {
  it('keeps the functions of a multi-function device with ACS in groups of their own (the default)', () => {
    const t = build({ iommus: 1, devices: [{ bdf: '03:00.0' }, { bdf: '03:00.1' }, { bdf: '03:00.2' }] });
    expect(groups(t)).toEqual([['03:00.0'], ['03:00.1'], ['03:00.2']]);
    expect(t.devices.every((d) => d.multifunction && d.acsEnabled)).toBe(true);
  });

  it('puts all functions of a slot without ACS in one group when one function says so', () => {
    const t = build({ iommus: 1, devices: [{ bdf: '03:00.0', multifunctionAcs: false }, { bdf: '03:00.1' }, { bdf: '03:00.2' }, { bdf: '03:01.0' }] });
    expect(groups(t)).toEqual([['03:00.0', '03:00.1', '03:00.2'], ['03:01.0']]);
  });

  it('groups only the functions lacking ACS and leaves a function with ACS alone', () => {
    const t = build({
      iommus: 1,
      devices: [{ bdf: '00:1f.0', multifunctionAcs: false }, { bdf: '00:1f.2', multifunctionAcs: true }, { bdf: '00:1f.3', multifunctionAcs: false }],
    });
    expect(groups(t)).toEqual([['00:1f.0', '00:1f.3'], ['00:1f.2']]);
  });

  it('ignores multifunctionAcs on a single-function device (ACS does not apply to it)', () => {
    const t = build({ iommus: 1, devices: [{ bdf: '03:00.0', multifunctionAcs: false }, { bdf: '04:00.0', multifunctionAcs: false }] });
    expect(groups(t)).toEqual([['03:00.0'], ['04:00.0']]);
    expect(t.device('03:00.0').acsEnabled).toBe(true);
  });
});

describe('DMA aliases', () => {
  it('groups a PCIe-to-PCI bridge with everything behind it, seen by the IOMMU as (secondary bus, 00.0)', () => {
    const t = build({
      iommus: 1,
      devices: [
        { bdf: '00:1e.0', bridge: { type: 'pcie-to-pci', secondaryBus: 5 } },
        { bdf: '05:01.0' }, { bdf: '05:02.0' }, { bdf: '06:00.0' },
      ],
    });
    expect(groups(t)).toEqual([['00:1e.0', '05:01.0', '05:02.0'], ['06:00.0']]);
    const a = t.device('05:01.0');
    expect(a.rid).toBe(0x0500);
    expect(a.ownRid).toBe(0x0508);
    expect(a.dmaAliases).toEqual([0x0508, 0x0500]);
    expect(a.maxPasids).toBe(0); // conventional PCI: no PASID
    expect(t.byRequester(0, 0x0500)).toBe(a); // the first device that uses the alias
    expect(t.byRequester(0, 0x0510)).toBe(t.device('05:02.0'));
  });

  it('does the same for a PCIe-to-PCI bridge declared as a switch', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'p2p', kind: 'pcie-to-pci', acs: false }],
      devices: [{ bdf: '07:00.0', behind: 'p2p' }, { bdf: '07:04.0', behind: 'p2p' }, { bdf: '08:00.0' }],
    });
    expect(groups(t)).toEqual([['07:00.0', '07:04.0'], ['08:00.0']]);
    expect(t.devices.slice(0, 2).map((d) => d.rid)).toEqual([0x0700, 0x0700]);
    expect(t.byRequester(0, 0x0700)).toBe(t.device('07:00.0')); // its own id wins
  });

  it('adds a conventional PCI bridge’s own id below a PCIe-to-PCI bridge, the topmost alias reaching the IOMMU', () => {
    const t = build({
      iommus: 1,
      devices: [
        { bdf: '00:1e.0', bridge: { type: 'pcie-to-pci', secondaryBus: 5 } },
        { bdf: '05:03.0', bridge: { type: 'pci-bridge', secondaryBus: 6 } },
        { bdf: '06:02.0' },
      ],
    });
    const d = t.device('06:02.0');
    expect(d.dmaAliases).toEqual([0x0610, 0x0518, 0x0500]);
    expect(d.rid).toBe(0x0500);
    expect(groups(t)).toEqual([['00:1e.0', '05:03.0', '06:02.0']]);
  });

  it('joins a function to the function whose requester id it aliases; a phantom alias joins nothing', () => {
    const t = build({
      iommus: 1,
      devices: [{ bdf: '03:00.0', aliases: ['00.1'] }, { bdf: '03:00.1' }, { bdf: '04:00.0', aliases: ['0000:04:00.1'] }],
    });
    expect(groups(t)).toEqual([['03:00.0', '03:00.1'], ['04:00.0']]);
    expect(t.byRequester(0, 0x0401)).toBe(t.device('04:00.0'));
    expect(t.byRequester(0, 0x0301)).toBe(t.device('03:00.1')); // the owner, not the aliaser
  });
});

describe('SR-IOV and mediated devices', () => {
  const sriov = (acs: boolean) => build({
    iommus: 1,
    switches: [{ id: 'sw', acs }],
    devices: [
      { bdf: '03:00.0', behind: 'sw', ats: true },
      { bdf: '03:00.1', kind: 'vf', parent: '03:00.0' },
      { bdf: '03:00.2', kind: 'vf', parent: '0000:03:00.0' },
      { bdf: '04:00.0', behind: 'sw' },
    ],
  });

  it('gives each VF its own requester id and group behind ACS', () => {
    const t = sriov(true);
    expect(groups(t)).toEqual([['03:00.0'], ['03:00.1'], ['03:00.2'], ['04:00.0']]);
    const vf = t.device('03:00.1');
    expect(vf.kind).toBe('vf');
    expect(vf.parent).toBe(t.device('03:00.0'));
    expect(vf.rid).toBe(0x0301);
    expect(vf.upstream).toBe(t.switch('sw'));
    expect(vf.multifunction).toBe(false); // VFs do not make the PF multi-function
    expect(t.device('03:00.0').multifunction).toBe(false);
  });

  it('puts VFs in the group of a switch without ACS, with their PF', () => {
    expect(groups(sriov(false))).toEqual([['03:00.0', '03:00.1', '03:00.2', '04:00.0']]);
  });

  it('makes an mdev its own group that DMAs with its parent’s requester id, even in a shared group', () => {
    const t = build({
      iommus: 2,
      switches: [{ id: 'sw', acs: false, iommu: 1 }],
      devices: [
        { bdf: '03:00.0', behind: 'sw', pasidBits: 16, ats: true, pri: true },
        { bdf: '03:00.1', kind: 'vf', parent: '03:00.0' },
        { bdf: 'a1b2c3d4-0000-4000-8000-000000000001', kind: 'mdev', parent: '03:00.0' },
        { bdf: 'vf-mdev', kind: 'mdev', parent: '03:00.1', pasidBits: 0 },
      ],
    });
    expect(groups(t)).toEqual([['03:00.0', '03:00.1'], ['a1b2c3d4-0000-4000-8000-000000000001'], ['vf-mdev']]);
    const m = t.device('a1b2c3d4-0000-4000-8000-000000000001');
    expect(m.kind).toBe('mdev');
    expect(m.iommu).toBe(1);
    expect(m.rid).toBe(0x0300);
    expect(m.ownRid).toBeUndefined();
    expect([m.maxPasids, m.ats, m.pri]).toEqual([1 << 16, true, true]); // inherited from the parent
    expect(m.deviceType).toBe(2);
    expect(m.upstream).toBeUndefined();
    expect(t.byRequester(1, 0x0300)).toBe(t.device('03:00.0'));
    const vm = t.device('vf-mdev');
    expect([vm.rid, vm.maxPasids, vm.deviceType]).toEqual([0x0301, 0, 1]);
    expect(t.byRequester(1, 0x0301)).toBe(t.device('03:00.1'));
  });
});

describe('platform devices', () => {
  it('gives each platform device its own group and a requester id on a bus no PCI function uses', () => {
    const t = build({
      iommus: 2,
      devices: [
        { bdf: '00:02.0' }, { bdf: 'fe200000.usb', kind: 'platform' }, { bdf: 'ff000000.gpu', kind: 'platform', pasidBits: 8 },
        { bdf: 'ff:00.0', iommu: 1 }, { bdf: 'dma@1', kind: 'platform', iommu: 1 },
      ],
    });
    expect(groups(t)).toEqual([['00:02.0'], ['fe200000.usb'], ['ff000000.gpu'], ['ff:00.0'], ['dma@1']]);
    const [usb, gpu, dma] = [t.device('fe200000.usb'), t.device('ff000000.gpu'), t.device('dma@1')];
    expect([usb.rid, gpu.rid]).toEqual([0xff00, 0xff01]);
    expect(dma.rid).toBe(0xfe00); // bus ff is taken behind IOMMU 1
    expect(usb.upstream).toBeUndefined();
    expect(gpu.maxPasids).toBe(256);
    expect(t.byRequester(0, 0xff01)).toBe(gpu);
    expect(usb.ownRid).toBe(0xff00);
  });
});

describe('group numbering and the old minimal spec', () => {
  it('numbers groups densely from 0 in device order', () => {
    const t = build({
      iommus: 1,
      switches: [{ id: 'sw', acs: false }],
      devices: [{ bdf: '05:00.0' }, { bdf: '03:00.0', behind: 'sw' }, { bdf: '06:00.0' }, { bdf: '04:00.0', behind: 'sw' }],
    });
    expect(t.devices.map((d) => d.group.id)).toEqual([0, 1, 2, 1]);
    expect(t.groups.map((g) => g.id)).toEqual([0, 1, 2]);
  });

  it('still builds { bdf, iommu?, pasidBits?, ats?, pri? } devices, one group each', () => {
    const t = build({
      iommus: 2,
      devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:03:00.1', ats: true }, { bdf: '0000:03:01.0', pasidBits: 0 }, { bdf: '0001:03:00.0', iommu: 1, pri: true }],
    }, 16);
    expect(groups(t)).toEqual([['03:00.0'], ['03:00.1'], ['03:01.0'], ['0001:03:00.0']]);
    const [a, b, n, y] = t.devices;
    expect([a.rid, a.iommu, a.maxPasids, a.ats, a.pri, a.index, a.kind]).toEqual([0x300, 0, 1 << 16, false, false, 0, 'pci']);
    expect([b.ats, n.maxPasids, y.iommu, y.pri, y.index]).toEqual([true, 0, 1, true, 3]);
    expect(t.byRequester(1, 0x300)).toBe(y);
    expect(t.device('03:00.1')).toBe(b);
    expect(groupOf(t, '0001:03:00.0')).toEqual(['0001:03:00.0']);
  });
});
