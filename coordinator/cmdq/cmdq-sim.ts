/**
 * The discrete-event kernel of the command-queue model: a modelled-time clock (ns), an
 * event heap ordered by (time, insertion sequence), and CPU agents written as generators
 * that yield the step they wait for (a delay, a cache-line access, a condition).
 *
 * Models: nothing of the hardware by itself; it is the gem5-style "coroutine + delay"
 * idiom (STYLE.md §2) in TypeScript. Ties are broken by insertion order, so a run is a
 * pure function of its parameters and seed. Does not model: host time, threads.
 */

/** Something agents can wait on: it re-checks its waiters whenever its state changes. */
export class Watchable {
  private waiters: { pred: () => boolean; wake: () => void }[] = [];

  constructor(protected readonly sim: CmdqSim) {}

  /** Number of agents waiting on this object now. */
  get waiting(): number {
    return this.waiters.length;
  }

  wait(pred: () => boolean, wake: () => void): void {
    this.waiters.push({ pred, wake });
  }

  /** Call after every change: wakes (at the current time, in arrival order) each waiter whose condition now holds. */
  notify(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.pred()) this.sim.at(this.sim.now, w.wake);
      else still.push(w);
    }
    this.waiters = still;
  }
}

/** A cache line as the agents see it (cmdq-cacheline.ts). */
export interface LineLike {
  request(cpu: number, op: 'rmw' | 'read', apply: (() => unknown) | undefined, done: (v: unknown) => void): void;
  /** Spin on the line until pred holds; `wake` runs once this CPU has read the line and seen it. */
  spin(cpu: number, pred: () => boolean, wake: () => void): void;
}

export type Step =
  | { kind: 'delay'; ns: number }
  | { kind: 'access'; line: LineLike; cpu: number; op: 'rmw' | 'read'; apply?: () => unknown }
  | { kind: 'until'; on: Watchable; pred: () => boolean }
  | { kind: 'spin'; line: LineLike; cpu: number; pred: () => boolean };

export type Agent = Generator<Step, void, unknown>;

export const delay = (ns: number): Step => ({ kind: 'delay', ns });
export const rmw = (line: LineLike, cpu: number, apply?: () => unknown): Step => ({ kind: 'access', line, cpu, op: 'rmw', apply });
export const read = (line: LineLike, cpu: number, apply?: () => unknown): Step => ({ kind: 'access', line, cpu, op: 'read', apply });
export const until = (on: Watchable, pred: () => boolean): Step => ({ kind: 'until', on, pred });
export const spin = (line: LineLike, cpu: number, pred: () => boolean): Step => ({ kind: 'spin', line, cpu, pred });

interface Ev { t: number; seq: number; fn: () => void }

export class CmdqSim {
  now = 0;
  events = 0;
  private heap: Ev[] = [];
  private seq = 0;

  /** Schedules fn at modelled time t (never in the past). */
  at(t: number, fn: () => void): void {
    const e: Ev = { t: t < this.now ? this.now : t, seq: this.seq++, fn };
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p], e)) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  start(agent: Agent, t: number): void {
    this.at(t, () => this.resume(agent, undefined));
  }

  private resume(agent: Agent, value: unknown): void {
    const r = agent.next(value);
    if (r.done) return;
    const s = r.value;
    switch (s.kind) {
      case 'delay':
        this.at(this.now + s.ns, () => this.resume(agent, undefined));
        return;
      case 'access':
        s.line.request(s.cpu, s.op, s.apply, (v) => this.at(this.now, () => this.resume(agent, v)));
        return;
      case 'until':
        if (s.pred()) this.at(this.now, () => this.resume(agent, undefined));
        else s.on.wait(s.pred, () => this.resume(agent, undefined));
        return;
      case 'spin':
        s.line.spin(s.cpu, s.pred, () => this.at(this.now, () => this.resume(agent, undefined)));
        return;
    }
  }

  /** Runs events in (time, sequence) order until the heap is empty or the next event is after `until`. */
  run(untilNs: number): void {
    const h = this.heap;
    while (h.length > 0 && h[0].t <= untilNs) {
      const top = h[0];
      const last = h.pop()!;
      if (h.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= h.length) break;
          const r = l + 1;
          const c = r < h.length && less(h[r], h[l]) ? r : l;
          if (less(last, h[c])) break;
          h[i] = h[c];
          i = c;
        }
        h[i] = last;
      }
      this.now = top.t;
      this.events++;
      top.fn();
    }
    if (this.now < untilNs) this.now = untilNs;
  }
}

function less(a: Ev, b: Ev): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
