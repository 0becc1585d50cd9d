/**
 * The bundled machine mixes of the PASID-policy study: each describes IOMMUs, devices
 * (PASID widths, device types of seed 001), the kernel's own PASID users, processes with
 * their SVA binds, and VMs with their guest PASIDs.
 *
 * Models: three situations argued on the iommu list (seeds 000, 001, 003; HARDWARE.md §4):
 * a DSA-style host whose processes submit with ENQCMD to every work queue (one PASID per
 * process on every device), a cloud host with many VMs on SR-IOV VFs whose guests number
 * their own PASIDs, and a host with one narrow-width device in the mix.
 * Does not model: real device counts of any product (the numbers are small enough to run in
 * seconds; the shape of the result, not its scale, is the point).
 */
import type { DeviceSpec, TopologySpec } from '../coordinator/index.js';

export interface PasidMix {
  name: string;
  description: string;
  topology: TopologySpec;
  /** Kernel PASIDs per device taken first (e.g. DSA kernel work queues with ENQCMDS), by BDF. */
  kernelPasids: Record<string, number>;
  /** Processes that bind SVA: how many; process i binds the devices of bindSets[i mod n] (BDFs). */
  processes: { count: number; bindSets: string[][]; pagesEach: number };
  /** VMs: how many, the devices each gets (one per VM, round robin over `devices`), guest PASIDs each binds. */
  vms: { count: number; devices: string[]; vpasidsEach: number };
}

const bdf = (bus: number, dev = 0, fn = 0) => `0000:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${fn}`;

function dsaHost(): PasidMix {
  const devices: DeviceSpec[] = [];
  for (let i = 0; i < 4; i++) devices.push({ bdf: bdf(0x6a + i), iommu: i % 2, deviceType: 4, ats: true, pri: true });
  return {
    name: 'dsa-enqcmd-host',
    description: '4 DSA-style devices on 2 IOMMUs; each keeps 8 kernel PASIDs (ENQCMDS work queues) of its own; processes submit with ENQCMD to all 4 (one PASID per process on every device)',
    topology: { iommus: 2, devices },
    kernelPasids: Object.fromEntries(devices.map((d, i) => [d.bdf, 8 + 4 * i])),
    processes: { count: 400, bindSets: [devices.map((d) => d.bdf)], pagesEach: 2 },
    vms: { count: 0, devices: [], vpasidsEach: 0 },
  };
}

function cloudHost(): PasidMix {
  const devices: DeviceSpec[] = [];
  const vfs: string[] = [];
  for (let pf = 0; pf < 2; pf++) {
    devices.push({ bdf: bdf(0x3b + pf), iommu: pf, deviceType: 3 });
    for (let v = 0; v < 16; v++) {
      const b = bdf(0x3b + pf, 1 + (v >> 3), v & 7);
      devices.push({ bdf: b, iommu: pf, kind: 'vf', parent: bdf(0x3b + pf), deviceType: 3 });
      vfs.push(b);
    }
  }
  return {
    name: 'cloud-sriov-vms',
    description: '2 PFs with 16 VFs each (type 3: the device takes the guest PASID as is, so pPASID == vPASID); 32 VMs with one VF each, every guest numbering its PASIDs from 1',
    topology: { iommus: 2, devices },
    kernelPasids: {},
    processes: { count: 0, bindSets: [], pagesEach: 0 },
    vms: { count: 32, devices: vfs, vpasidsEach: 8 },
  };
}

function narrowDevice(): PasidMix {
  const devices: DeviceSpec[] = [
    { bdf: bdf(0x10), deviceType: 3 },
    { bdf: bdf(0x11), deviceType: 3 },
    { bdf: bdf(0x12), deviceType: 3, pasidBits: 5 },
  ];
  return {
    name: 'narrow-width-mix',
    description: 'two 20-bit devices and one with 5-bit PASIDs (32); processes bind one of the wide devices each, every fourth also the narrow one',
    topology: { iommus: 1, devices },
    kernelPasids: { [bdf(0x11)]: 40 },
    processes: { count: 120, bindSets: [[bdf(0x10), bdf(0x12)], [bdf(0x11)], [bdf(0x10)], [bdf(0x11)]], pagesEach: 1 },
    vms: { count: 0, devices: [], vpasidsEach: 0 },
  };
}

export const PASID_MIXES: readonly (() => PasidMix)[] = [dsaHost, cloudHost, narrowDevice];
