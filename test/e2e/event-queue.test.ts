/**
 * The fault event queue end to end (SEMANTICS.md §3.4, non-recoverable faults): every
 * reason of the v5 iommu_fault_reason list reaches faults$, faultsOf$ and events$ through
 * the hardware queue; a burst of faulting DMA larger than the queue loses records to a
 * modelled overflow, and every record is either delivered or counted as lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type FaultRecord, Simulator, type SimEvent } from 'iommu-sim';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const REASONS = ['pasid-fetch', 'bad-pasid-entry', 'pasid-invalid', 'walk-abort', 'pte-fetch', 'permission', 'access', 'out-of-range', 'unknown'] as const;

describe('fault reasons through the event queue', () => {
  it('delivers a record of every reason with its device, PASID, address and access, on faults$, faultsOf$ and events$', async () => {
    sim = await Simulator.start({ testHooks: true, topology: { iommus: 1, devices: [{ bdf: '0000:03:00.0' }, { bdf: '0000:04:00.0' }] } });
    const [dev, other] = sim.topology.devices;
    const all: FaultRecord[] = [];
    const mine: FaultRecord[] = [];
    const events: SimEvent[] = [];
    const subs = [
      sim.faults$.subscribe((f) => all.push(f)),
      sim.faultsOf$(dev).subscribe((f) => mine.push(f)),
      sim.events$.subscribe((e) => { if (e.type === 'fault') events.push(e); }),
    ];
    for (const [i, reason] of REASONS.entries()) {
      await sim.test.injectFault(dev, { type: 'dma-unrecov', reason, pasid: i + 1, addr: BigInt(i + 1) * 0x1000n, perm: i % 2 ? { write: true } : { read: true } });
    }
    await sim.test.injectFault(other, { type: 'dma-unrecov', reason: 'pte-fetch', addr: 0x9000n, perm: { read: true } });
    subs.forEach((s) => s.unsubscribe());
    expect(mine.map((f) => f.reason)).toEqual([...REASONS]);
    expect(all).toHaveLength(REASONS.length + 1);
    expect(events).toHaveLength(REASONS.length + 1);
    mine.forEach((f, i) => {
      expect(f).toMatchObject({ dev, iommu: 0, pasid: i + 1, addr: BigInt(i + 1) * 0x1000n, perm: i % 2 ? { write: true } : { read: true } });
      expect(f.code).toBeGreaterThanOrEqual(0);
    });
    expect(all.at(-1)).toMatchObject({ dev: other, reason: 'pte-fetch', addr: 0x9000n });
    expect(all.at(-1)).not.toHaveProperty('pasid');
    await expect(sim.test.injectFault(dev, { type: 'dma-unrecov', reason: 'nonsense' as never, addr: 0n, perm: {} })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(sim.test.injectFault(dev, { type: 'page-req' as never, reason: 'unknown', addr: 0n, perm: {} })).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
  });
});

describe('event queue overflow', () => {
  it('keeps every record for a slow subscriber: it sees each one in order, late but not lost (or counted as lost by the hardware queue)', async () => {
    sim = await Simulator.start({ topology: { iommus: [{ queues: { event: 1024 } }], devices: [{ bdf: '0000:03:00.0' }] } });
    const dev = sim.topology.devices[0];
    const seen: bigint[] = [];
    const sub = sim.faultsOf$(dev).subscribe((f) => {
      const until = performance.now() + 0.2;
      while (performance.now() < until) { /* a subscriber that takes its time */ }
      seen.push(f.addr);
    });
    const res = await sim.dmaBatch(dev, Array.from({ length: 300 }, (_, k) => ({ addr: BigInt(k) * 0x1000n, access: 'read' as const })));
    const st = await sim.stats();
    sub.unsubscribe();
    const recorded = res.filter((r) => !r.ok && r.fault.recorded).map((r) => (r.ok ? 0n : r.fault.addr));
    expect(seen).toEqual(recorded);
    expect(seen.length + st.eventsLost).toBe(300);
  });

  it('delivers or counts every fault record of a burst larger than the queue: recorded + lost = faulting DMAs', async () => {
    sim = await Simulator.start({ topology: { iommus: [{ queues: { event: 4 } }], devices: [{ bdf: '0000:03:00.0' }] } });
    const dev = sim.topology.devices[0];
    const faults: FaultRecord[] = [];
    let lostReported = 0;
    const subs = [
      sim.faults$.subscribe((f) => faults.push(f)),
      sim.events$.subscribe((e) => { if (e.type === 'overflow') { expect(e.queue).toBe('event'); lostReported += e.lost; } }),
    ];
    // The device's default DMA domain maps nothing: every DMA faults at the page table.
    const res = await sim.dmaBatch(dev, Array.from({ length: 400 }, (_, k) => ({ addr: BigInt(k) * 0x1000n, access: 'read' as const })));
    const st = await sim.stats();
    subs.forEach((s) => s.unsubscribe());
    expect(res.every((r) => !r.ok)).toBe(true);
    const recorded = res.filter((r) => !r.ok && r.fault.recorded).length;
    expect(recorded).toBe(faults.length);
    expect(recorded + st.eventsLost).toBe(400);
    expect(st.eventsLost).toBe(lostReported);
    expect(st.iommus[0].eventsLost).toBe(st.eventsLost);
    expect(st.eventsLost, 'a 4-deep queue must overflow under 400 faults for this test to mean anything').toBeGreaterThan(0);
    const q = (await sim.metrics()).queues.event;
    expect(q.samples).toBe(400); // the modelled occupancy the IOMMU found at every write
    expect(q.fullSamples).toBe(st.eventsLost);
    expect(q.maxUsed).toBe(4);
  });
});
