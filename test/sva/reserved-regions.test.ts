/**
 * Seed 003: reserved windows (a host-bridge MMIO window, the MSI window) never reach the
 * IOMMU — DMA into them is flagged, with or without a PASID — and SVA bind carves them out
 * of the process's address space (PROT_NONE mappings) so it cannot hand such VAs to a device.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator } from 'iommu-sim';
import { expectThrowsCode } from '../e2e/helpers.js';

const RW = { read: true, write: true } as const;
const BRIDGE = { start: 0x8000_0000n, last: 0x8fff_ffffn, type: 'reserved' as const };
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start() {
  sim = await Simulator.start({ topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0', reservedRegions: [BRIDGE] }] } });
  return { sim, dev: sim.topology.devices[0] };
}

describe('reserved windows', () => {
  it('flag DMA into a host-bridge window or the MSI window: it never reaches the IOMMU', async () => {
    const { sim, dev } = await start();
    const def = sim.iommu.getDomainForDev(dev);
    await sim.iommu.map(def, 0x8000_0000n, 0x1_0000_0000n, 0x1000n, RW); // mapped, yet unreachable
    for (const addr of [0x8000_0010n, 0xfee0_0000n]) {
      const r = await sim.dma(dev, { addr, access: 'write' });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.fault.reason).toBe('reserved-region');
      expect(!r.ok && r.fault.recorded).toBe(false);
    }
    expect((await sim.stats()).iommus[0].dma).toBe(0);
  });

  it('are carved out of the process at SVA bind, so mmap cannot place a buffer there', async () => {
    const { sim, dev } = await start();
    const mm = sim.mm.create();
    await sim.iommu.svaBindDevice(dev, mm);
    expect(mm.findVma(0x8000_1000n)?.prot).toEqual({ read: false, write: false, exec: false });
    expect(mm.findVma(0xfee0_0000n)).toBeDefined();
    expectThrowsCode(() => mm.mmap({ addr: 0x8000_0000n, length: 0x1000n, prot: RW, fixed: true }), 'EEXIST');
    // The PASID-tagged DMA of a VA in the window is flagged as well.
    const r = await sim.dma(dev, { addr: 0x8000_0000n, access: 'read', pasid: mm.pasid! });
    expect(!r.ok && r.fault.reason).toBe('reserved-region');
  });

  it('leave a window the process already used mapped (bind succeeds) and flag its DMA', async () => {
    const { sim, dev } = await start();
    const mm = sim.mm.create();
    const va = mm.mmap({ addr: 0x8000_0000n, length: 0x1000n, prot: RW, fixed: true, populate: true });
    await sim.iommu.svaBindDevice(dev, mm);
    expect(mm.findVma(va)?.prot.write).toBe(true);
    const r = await sim.dma(dev, { addr: va, access: 'read', pasid: mm.pasid! });
    expect(!r.ok && r.fault.reason).toBe('reserved-region');
  });
});
