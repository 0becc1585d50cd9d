/**
 * The page request queue on the hardware side (iommu-worker/page-requests.ts), one thread:
 * PRQ overflow as VT-d reports it (PRS.PRO), the IOMMU's own SUCCESS answer to a dropped
 * last-in-group request, retries once software acknowledges, Stop Markers, PRI stopped by
 * a FAILURE response.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_REQUEST_BYTES, readPageRequest } from '../../shared/layout/page-request.js';
import { SpscRing } from '../../shared/ring/spsc-ring.js';
import { type ParkedDma, PageRequestQueue, PrqOutcome, RESP_FAILURE, RESP_SUCCESS } from '../../iommu-worker/page-requests.js';

function setup(depth = 4) {
  const producer = SpscRing.create({ depth, entryBytes: PAGE_REQUEST_BYTES }, { role: 'producer' });
  const consumer = SpscRing.attach(producer.handle(), { role: 'consumer' });
  return { prq: new PageRequestQueue(producer), consumer };
}

const dma = (tag: number, rid = 0x300, pasid = 1): ParkedDma => ({ tag, rid, pasid, access: 0, priv: false, addrLo: tag << 12, addrHi: 0, fr: 0x71 });

/** Takes in everything the queue holds, as the coordinator's drain does. */
function drain(consumer: SpscRing) {
  const n = consumer.available();
  const out = [];
  for (let k = 0; k < n; k++) out.push(readPageRequest(consumer.u32, consumer.consSlot(k) * consumer.entryWords));
  consumer.release(n);
  return out;
}

describe('page request queue overflow (VT-d PRS.PRO)', () => {
  it('queues requests until the queue is full, then drops the next one, raises the overflow and answers it SUCCESS itself', () => {
    const { prq, consumer } = setup(4);
    for (let i = 0; i < 4; i++) expect(prq.request(dma(i), 0)).toBe(PrqOutcome.Queued);
    expect(prq.request(dma(4), 0)).toBe(PrqOutcome.AutoResponded);
    expect(consumer.overflowed()).toBe(true);
    expect({ requests: prq.requests, lost: prq.lost, auto: prq.autoResponses, pending: prq.pending }).toEqual({ requests: 4, lost: 1, auto: 1, pending: 5 });
    expect(drain(consumer).map((r) => r.prgIndex)).toEqual([0, 1, 2, 3]);
  });

  it('drops requests while the overflow is unacknowledged even when the queue has room again, and retries them only after the acknowledgement', () => {
    const { prq, consumer } = setup(4);
    for (let i = 0; i < 5; i++) prq.request(dma(i), 0);
    drain(consumer); // software took the entries in but has not cleared PRO yet
    expect(consumer.available()).toBe(0);
    expect(prq.request(dma(5), 0)).toBe(PrqOutcome.AutoResponded);
    expect(prq.retryReady).toBe(false);
    expect(prq.takeRetries()).toEqual([]);
    expect(consumer.takeLost()).toBe(2); // software clears PRO
    expect(consumer.overflowed()).toBe(false);
    expect(prq.retryReady).toBe(true);
    expect(prq.takeRetries().map((d) => d.tag)).toEqual([4, 5]);
    expect(prq.takeRetries()).toEqual([]);
    expect(prq.request(dma(6), 0)).toBe(PrqOutcome.Queued);
  });

  it('drops an injected request without LPIG silently (no auto response) and counts a lost last one as auto-answered', () => {
    const { prq, consumer } = setup(2);
    const r = { rid: 0x300, pasid: 2, prgIndex: 9, addr: 0x1000n, read: true, write: false, exec: false, priv: false };
    expect(prq.inject({ ...r, last: false }, 0)).toBe(true);
    expect(prq.inject({ ...r, last: false }, 0)).toBe(true);
    expect(prq.inject({ ...r, last: false }, 0)).toBe(false);
    expect(prq.autoResponses).toBe(0);
    expect(prq.inject({ ...r, last: true }, 0)).toBe(false);
    expect({ lost: prq.lost, auto: prq.autoResponses }).toEqual({ lost: 2, auto: 1 });
    expect(consumer.takeLost()).toBe(2);
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
