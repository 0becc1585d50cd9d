/**
 * The discrete-event kernel of the command-queue model: a modelled-time clock (ns), an
 * event queue ordered by (time, insertion sequence) — the coordinator's EventScheduler — and CPU agents written as generators
 * that yield the step they wait for (a delay, a cache-line access, a condition).
 *
 * Models: nothing of the hardware by itself; it is the gem5-style "coroutine + delay"
 * idiom (STYLE.md §2) in TypeScript. Ties are broken by insertion order, so a run is a
 * pure function of its parameters and seed. Does not model: host time, threads.
 */
import { EventScheduler } from '../event-scheduler.js';

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


export class CmdqSim {
  now = 0;
  events = 0;
  /** Pending events in (time, insertion) order: the coordinator's event queue, one source, one kind. */
  private readonly queue = new EventScheduler();

  /** Schedules fn at modelled time t (never in the past). */
  at(t: number, fn: () => void): void {
    this.queue.schedule(t < this.now ? this.now : t, 0, 0, fn);
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

  /** Runs events in (time, sequence) order until the queue is empty or the next event is after `until`. */
  run(untilNs: number): void {
    const q = this.queue;
    while (q.size > 0 && q.nextTime <= untilNs) {
      const top = q.pop()!;
      this.now = top.t;
      this.events++;
      top.fire();
    }
    if (this.now < untilNs) this.now = untilNs;
  }
}
