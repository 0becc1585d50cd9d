/**
 * The page request queue on the hardware side (iommu-worker/page-requests.ts and
 * sw-drain.ts), one thread, modelled time only: the driver's take-in times, PRQ overflow as
 * VT-d reports it (PRS.PRO), the IOMMU's own SUCCESS answer to a dropped last-in-group
 * request, the overflow notice and the retries when the driver clears PRO, Stop Markers,
 * PRI stopped by a FAILURE response.
 */
import { VTD_CODEC } from '../../shared/layout/vtd-codec.js';
import { describe, expect, it } from 'vitest';
import { PAGE_REQUEST_BYTES, readPageRequest } from '../../shared/layout/page-request.js';
import { SpscRing } from '../../shared/ring/spsc-ring.js';
import { type ParkedDma, PageRequestQueue, PrqOutcome, RESP_FAILURE, RESP_SUCCESS } from '../../iommu-worker/page-requests.js';
import { DROPPED, NEW_OVERFLOW, SoftwareDrain } from '../../iommu-worker/sw-drain.js';
import { OUT_OVERFLOW } from '../../iommu-worker/output-ring.js';

const IRQ = 2000;
const PER = 200;

function setup(depth = 4) {
  const producer = SpscRing.create({ depth: 64, entryBytes: PAGE_REQUEST_BYTES }, { role: 'producer' });
  const consumer = SpscRing.attach(producer.handle(), { role: 'consumer' });
  const timers: { t: number; fire: (t: number) => void }[] = [];
  const prq = new PageRequestQueue(producer, VTD_CODEC, new SoftwareDrain(depth, IRQ, PER), (t, fire) => timers.push({ t, fire }));
  const retried: { tags: number[]; at: number }[] = [];
  prq.onRetry = (list, at) => retried.push({ tags: list.map((d) => d.tag), at });
  return { prq, consumer, timers, retried };
}

const dma = (tag: number, rid = 0x300, pasid = 1): ParkedDma => ({ tag, rid, pasid, access: 0, priv: false, addrLo: tag << 12, addrHi: 0, fr: 0x71 });

/** Takes in everything the ring holds: entries with their take-in time, and overflow notices. */
function drain(consumer: SpscRing) {
  const n = consumer.available();
  const out = [];
  for (let k = 0; k < n; k++) {
    const slot = consumer.consSlot(k);
    out.push(consumer.seqs[slot] === OUT_OVERFLOW
      ? { notice: true, lost: consumer.u32[slot * consumer.entryWords], t: consumer.stamps[slot] }
      : { ...readPageRequest(consumer.u32, slot * consumer.entryWords), t: consumer.stamps[slot] });
  }
  consumer.release(n);
  return out;
}

describe('the driver\'s take-in model (sw-drain)', () => {
  it('takes entries in irqNs after the first lands in an idle queue, then one per perEntryNs, and frees their slots then', () => {
    const d = new SoftwareDrain(2, IRQ, PER);
    expect(d.push(0)).toBe(IRQ + PER);
    expect(d.push(10)).toBe(IRQ + 2 * PER);
    expect(d.push(20)).toBe(NEW_OVERFLOW); // two entries in a 2-deep queue
    expect(d.overflowUntil).toBe(IRQ + 2 * PER); // PRO clears when the driver has emptied it
    expect(d.push(IRQ + PER)).toBe(DROPPED); // room again, but the overflow is still set
    expect(d.endEpisode()).toBe(2);
    expect(d.occupancy(IRQ + 2 * PER)).toBe(0);
    expect(d.push(10_000)).toBe(10_000 + IRQ + PER); // an idle driver is interrupted again
  });
});

describe('page request queue overflow (VT-d PRS.PRO)', () => {
  it('queues requests with their take-in times until the queue is full, then drops and answers SUCCESS itself, with the end of the overflow on a timer', () => {
    const { prq, consumer, timers } = setup(4);
    for (let i = 0; i < 4; i++) expect(prq.request(dma(i), i)).toBe(PrqOutcome.Queued);
    expect(prq.request(dma(4), 4)).toBe(PrqOutcome.AutoResponded);
    expect(prq.request(dma(5), 5)).toBe(PrqOutcome.AutoResponded);
    expect({ requests: prq.requests, lost: prq.lost, auto: prq.autoResponses, pending: prq.pending }).toEqual({ requests: 4, lost: 2, auto: 2, pending: 6 });
    expect(drain(consumer).map((r) => [r.prgIndex, r.t])).toEqual([0, 1, 2, 3].map((i) => [i, IRQ + (i + 1) * PER]));
    expect(timers.map((t) => t.t)).toEqual([IRQ + 4 * PER]);
  });

  it('sends the overflow notice with the lost count when the driver clears PRO, then retries the auto-answered DMAs at that time', () => {
    const { prq, consumer, timers, retried } = setup(4);
    for (let i = 0; i < 6; i++) prq.request(dma(i), 0);
    drain(consumer);
    const end = timers[0];
    end.fire(end.t);
    expect(drain(consumer)).toEqual([{ notice: true, lost: 2, t: end.t }]);
    expect(retried).toEqual([{ tags: [4, 5], at: end.t }]);
    expect(prq.request(dma(9), end.t)).toBe(PrqOutcome.Queued);
    end.fire(end.t); // a stale timer does nothing
    expect(drain(consumer)).toHaveLength(1);
  });

  it('ends the overflow itself when the IOMMU\'s clock has run past it before the timer fired', () => {
    const { prq, consumer, timers, retried } = setup(4);
    for (let i = 0; i < 5; i++) prq.request(dma(i), 0);
    drain(consumer);
    expect(prq.request(dma(7), timers[0].t + 1)).toBe(PrqOutcome.Queued);
    expect(drain(consumer).map((e) => ('notice' in e ? 'notice' : e.prgIndex))).toEqual(['notice', 5]); // PRG 4 went with the dropped request
    expect(retried[0].tags).toEqual([4]);
  });

  it('drops an injected request without LPIG silently (no auto response) and counts a lost last one as auto-answered', () => {
    const { prq } = setup(2);
    const r = { rid: 0x300, pasid: 2, prgIndex: 9, addr: 0x1000n, read: true, write: false, exec: false, priv: false };
    expect(prq.inject({ ...r, last: false }, 0)).toBe(true);
    expect(prq.inject({ ...r, last: false }, 0)).toBe(true);
    expect(prq.inject({ ...r, last: false }, 0)).toBe(false);
    expect(prq.autoResponses).toBe(0);
    expect(prq.inject({ ...r, last: true }, 0)).toBe(false);
    expect({ lost: prq.lost, auto: prq.autoResponses }).toEqual({ lost: 2, auto: 1 });
  });
});

describe('stop markers and responses', () => {
  it('writes a Stop Marker as a PASID-tagged request with LPIG set and no read or write', () => {
    const { prq, consumer } = setup(4);
    expect(prq.inject({ rid: 0x300, pasid: 7, prgIndex: 0, last: true, addr: 0x5000n, read: true, write: true, exec: false, priv: false, stopMarker: true }, 0)).toBe(true);
    const [m] = drain(consumer);
    expect(m).toMatchObject({ pasidPresent: true, pasid: 7, lpig: true, read: false, write: false, addr: 0n });
    expect(prq.stopMarkers).toBe(1);
  });

  it('matches a response to its parked DMA by RID and PRG index, once', () => {
    const { prq } = setup(4);
    prq.request(dma(1), 0);
    prq.request(dma(2), 0);
    expect(prq.respond(0x300, 1, RESP_SUCCESS)?.tag).toBe(2);
    expect(prq.respond(0x300, 1, RESP_SUCCESS)).toBeUndefined();
    expect(prq.respond(0x301, 0, RESP_SUCCESS)).toBeUndefined();
    expect(prq.pending).toBe(1);
  });

  it('stops the function\'s page requests after a FAILURE response (PCIe PRI Response Failure)', () => {
    const { prq } = setup(4);
    prq.request(dma(1), 0);
    prq.respond(0x300, 0, RESP_FAILURE);
    expect(prq.request(dma(2), 0)).toBe(PrqOutcome.Refused);
    expect(prq.request(dma(3, 0x301), 0)).toBe(PrqOutcome.Queued);
  });
});
