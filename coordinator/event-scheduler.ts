/**
 * The coordinator's pending deliveries in modelled-time order: completions, fault
 * records, page requests and overflow notices the workers produced, each held until the
 * conservative synchronisation says nothing earlier can still come (time-sync.ts), then
 * handed to the code waiting on it.
 *
 * Models: a discrete-event queue ordered by (modelled time, source IOMMU, kind, arrival
 * order); ties are broken the same way on every run: the source and kind are fixed, and
 * entries of one kind come from one ring of one source, in the order the worker wrote them.
 * Does not model: cancellation (a delivery whose waiter is gone simply does nothing).
 */

/** Tie-break rank of what is delivered at the same time by the same IOMMU. */
export const DeliveryKind = {
  Fault: 0,
  PageRequest: 1,
  Completion: 2,
  Wait: 3,
  Internal: 4,
} as const;

export interface Delivery {
  t: number;
  src: number;
  kind: number;
  order: number;
  fire: () => void;
}

export class EventScheduler {
  private readonly heap: Delivery[] = [];
  private order = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Modelled time of the earliest pending delivery, Infinity when none. */
  get nextTime(): number {
    return this.heap.length > 0 ? this.heap[0].t : Infinity;
  }

  /** Holds `fire` until modelled time `t` (from IOMMU `src`) is safe to deliver. */
  schedule(t: number, src: number, kind: number, fire: () => void): void {
    const d: Delivery = { t, src, kind, order: this.order++, fire };
    const h = this.heap;
    h.push(d);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(d, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = d;
  }

  /** Removes and returns the earliest delivery. */
  pop(): Delivery | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && before(h[r], h[l]) ? r : l;
        if (!before(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }

  /** Removes the deliveries `which` selects and returns them in delivery order. */
  take(which: (d: Delivery) => boolean): Delivery[] {
    const keep: Delivery[] = [];
    const out: Delivery[] = [];
    for (const d of this.heap) (which(d) ? out : keep).push(d);
    if (out.length === 0) return out;
    this.heap.length = 0;
    for (const d of keep.sort((x, y) => (before(x, y) ? -1 : 1))) this.heap.push(d); // a sorted array is a heap
    return out.sort((x, y) => (before(x, y) ? -1 : 1));
  }

  /** Drops everything (the simulator is closing). */
  clear(): void {
    this.heap.length = 0;
  }
}

function before(a: Delivery, b: Delivery): boolean {
  if (a.t !== b.t) return a.t < b.t;
  if (a.src !== b.src) return a.src < b.src;
  if (a.kind !== b.kind) return a.kind < b.kind;
  return a.order < b.order;
}
