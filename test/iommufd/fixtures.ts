/**
 * Fixtures of the iommufd suites, after the kernel selftests' FIXTURE_VARIANTs: a
 * simulator (test hooks on, closed after each test) with an open iommufd and an IOAS, in
 * one of four variants — no device, one device, two devices (each in its own group), and
 * a device without PASID — plus a topology with a two-device group. Helpers to map a
 * buffer of the fd's process and to say what a device's DMA reaches.
 * Not a test file (vitest collects *.test.ts only).
 */
import { afterEach } from 'vitest';
import { type Device, type IommufdContext, Simulator, type TopologySpec } from 'iommu-sim';
import { closeSim } from '../e2e/helpers.js';

export { expectRejectsCode, expectThrowsCode } from '../e2e/helpers.js';

export const PAGE = 0x1000n;
export const RW = { readable: true, writeable: true } as const;
export const RO = { readable: true } as const;
export const U64_MAX = (1n << 64n) - 1n;

export type Variant = 'no-device' | 'one-device' | 'two-devices' | 'no-pasid';
export const VARIANTS: readonly Variant[] = ['no-device', 'one-device', 'two-devices', 'no-pasid'];

const TOPOLOGIES: Record<Variant, TopologySpec> = {
  'no-device': { iommus: 1, devices: [{ bdf: '0000:03:00.0' }] },
  'one-device': { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true, ats: true }] },
  'two-devices': { iommus: 1, devices: [{ bdf: '0000:03:00.0', pri: true }, { bdf: '0000:04:00.0', pri: true, ats: true }] },
  'no-pasid': { iommus: 1, devices: [{ bdf: '0000:03:00.0', pasidBits: 0 }] },
};

/** Two devices behind one switch without ACS: one group. */
export const SHARED_GROUP: TopologySpec = {
  iommus: 1,
  switches: [{ id: 'sw', acs: false }],
  devices: [{ bdf: '0000:05:00.0', behind: 'sw' }, { bdf: '0000:05:01.0', behind: 'sw' }],
};

const sims: Simulator[] = [];
afterEach(async () => {
  for (const s of sims.splice(0)) await closeSim(s);
});

export async function startSim(topology: TopologySpec, semantics: 'latest' | 'v5' = 'latest', pasidPolicy: 'global' | 'per-device' = 'global'): Promise<Simulator> {
  const sim = await Simulator.start({ testHooks: true, topology, semantics, pasidPolicy });
  sims.push(sim);
  return sim;
}

export interface Fixture {
  sim: Simulator;
  fd: IommufdContext;
  ioasId: number;
  /** Bound devices of the variant, with their device ids. */
  devs: { dev: Device; devId: number }[];
}

/** The variant's simulator, an iommufd with one IOAS, and its devices bound (not attached). */
export async function fixture(v: Variant): Promise<Fixture> {
  const sim = await startSim(TOPOLOGIES[v]);
  const fd = sim.iommufd.open();
  const { outIoasId: ioasId } = fd.ioasAlloc();
  const devs: Fixture['devs'] = [];
  if (v !== 'no-device') for (const dev of sim.topology.devices) devs.push({ dev, devId: (await fd.bindDevice(dev)).devId });
  return { sim, fd, ioasId, devs };
}

/** A populated, read-write buffer of `pages` pages in the fd's process. */
export function buffer(fd: IommufdContext, pages: number): bigint {
  return fd.mm.mmap({ length: BigInt(pages) * PAGE, prot: { read: true, write: true }, populate: true });
}

/** What a read DMA reaches: 'pa:0x…' or 'fault:<reason>'. */
export async function reach(sim: Simulator, dev: Device, addr: bigint, pasid?: number, access: 'read' | 'write' = 'read'): Promise<string> {
  const r = await sim.dma(dev, pasid === undefined ? { addr, access } : { addr, access, pasid });
  return r.ok ? pa(r.paddr) : `fault:${r.fault.reason}`;
}

export const pa = (p: bigint | undefined): string => (p === undefined ? 'unpopulated' : `pa:0x${p.toString(16)}`);

/** Waits until `pred` holds (polling the event loop), at most `ms`. */
export async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}
