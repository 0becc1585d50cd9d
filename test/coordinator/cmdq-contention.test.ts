/**
 * The command-queue contention model (coordinator/cmdq/): the scaling experiment of issue 7
 * (shape of HARDWARE.md §3.2 I5 and I7), determinism, parameter checks, and the invariants
 * of the lock-free insertion (reservation order, no gaps, no overflow, sync after all
 * earlier commands). Modelled results are deterministic, so comparisons are exact.
 */
import { describe, expect, it } from 'vitest';
import { type CmdqRun, runCmdqModel } from '../../coordinator/cmdq/cmdq-model.js';
import type { CmdqAlgorithm, CmdqParams, InvalidationMode } from '../../coordinator/cmdq/cmdq-params.js';
import { CmdQueue, type QueueTrace, SmmuConsumer } from '../../coordinator/cmdq/cmdq-smmu.js';
import { CmdqSim } from '../../coordinator/cmdq/cmdq-sim.js';
import { isSimError } from '../../shared/errors.js';
import { code } from '../helpers/errno.js';

const SCALE = [8, 16, 32, 64] as const;
const cache = new Map<string, CmdqRun>();
function run(cpus: number, algorithm: CmdqAlgorithm, mode: InvalidationMode = 'strict', batching = true): CmdqRun {
  const key = `${cpus}/${algorithm}/${mode}/${batching}`;
  let r = cache.get(key);
  if (!r) cache.set(key, (r = runCmdqModel({ cpus, algorithm, mode, batching })));
  return r;
}
const rate = (cpus: number, a: CmdqAlgorithm, mode: InvalidationMode = 'strict', batching = true) =>
  run(cpus, a, mode, batching).results.opsPerCpuPerSec;

describe('command-queue contention experiment (I5 shape)', () => {
  it('map+unmap per CPU per second on the shared lock-free queue falls monotonically 8→16→32→64, by at least 5×', () => {
    const r = SCALE.map((n) => rate(n, 'lockfree'));
    for (let i = 1; i < r.length; i++) expect(r[i]).toBeLessThan(r[i - 1]);
    expect(r[0] / r[3]).toBeGreaterThanOrEqual(5);
  });

  it('the lock-free insertion beats the spinlock insertion at every N ≥ 8', () => {
    for (const n of SCALE) expect(rate(n, 'lockfree')).toBeGreaterThan(rate(n, 'locked'));
  });

  it('CAS failures appear only under contention', () => {
    const one = run(1, 'lockfree').results;
    expect(one.casFailures).toBe(0);
    expect(one.casSuccessRate).toBe(1);
    const many = run(64, 'lockfree').results;
    expect(many.casFailures).toBeGreaterThan(0);
    expect(many.casSuccessRate).toBeLessThan(run(8, 'lockfree').results.casSuccessRate);
  });

  it('per-CPU queues gain less than 15 % over the shared lock-free queue once invalidations are batched (flush queue)', () => {
    for (const n of SCALE) {
      const gain = rate(n, 'percpu', 'deferred') / rate(n, 'lockfree', 'deferred') - 1;
      expect(gain).toBeLessThan(0.15);
    }
  });

  it('per-CPU queues gain less than 15 % when each batched strict unmap carries 8 TLBIs (the SMMU rate is the limit)', () => {
    for (const n of SCALE) {
      const p = { cpus: n, mode: 'strict' as const, batching: true, pagesPerUnmap: 8 };
      const shared = runCmdqModel({ ...p, algorithm: 'lockfree' }).results;
      const percpu = runCmdqModel({ ...p, algorithm: 'percpu' }).results;
      expect(percpu.opsPerCpuPerSec / shared.opsPerCpuPerSec - 1).toBeLessThan(0.15);
      expect(shared.smmuBusy).toBeGreaterThan(0.95);
    }
  });

  it('deferred invalidation beats strict invalidation', () => {
    for (const n of [1, ...SCALE]) {
      expect(rate(n, 'lockfree', 'deferred')).toBeGreaterThan(rate(n, 'lockfree', 'strict'));
      expect(rate(n, 'locked', 'deferred')).toBeGreaterThan(rate(n, 'locked', 'strict'));
    }
  });

  it('per-CPU queues are bounded by the SMMU command rate, not by CPU-side contention', () => {
    const r = run(64, 'percpu').results;
    expect(r.casFailures).toBe(0);
    expect(r.smmuBusy).toBeGreaterThan(0.95);
  });
});

describe('determinism and parameters', () => {
  it('the same seed gives an identical results object; another seed a different one', () => {
    const p: CmdqParams = { cpus: 16, algorithm: 'lockfree', durationNs: 1_500_000, warmupNs: 200_000, seed: 7, trace: true };
    const a = runCmdqModel(p);
    const b = runCmdqModel(p);
    expect(b).toEqual(a);
    const c = runCmdqModel({ ...p, seed: 8 });
    expect(c.results).not.toEqual(a.results);
  });

  it('bad parameters throw SimError EINVAL', () => {
    const bad: CmdqParams[] = [
      { cpus: 0 }, { cpus: -4 }, { cpus: 2.5 }, { cpus: NaN },
      { cpus: 4, mapCpuNs: -1 }, { cpus: 4, smmuSyncNs: -10 }, { cpus: 4, lineTransferNs: Infinity },
      { cpus: 4, batchSize: 0 }, { cpus: 4, batchSize: 1.5 }, { cpus: 4, pagesPerUnmap: 0 },
      { cpus: 4, queueEntries: 8, batchSize: 64 }, { cpus: 4, durationNs: 100, warmupNs: 200 },
      { cpus: 4, jitter: 1 }, { cpus: 4, algorithm: 'spin' as CmdqAlgorithm }, { cpus: 4, mode: 'lazy' as InvalidationMode },
      { cpus: 4, lineOccupancyNs: 100, lineTransferNs: 50 }, { cpus: 4, lockfreeReserve: 'xadd' as 'cas' },
      { cpus: 4, lineSpinnerNs: 2 } as CmdqParams,
    ];
    for (const p of bad) expect(code(() => runCmdqModel(p)), JSON.stringify(p)).toBe('EINVAL');
  });
});

/** Checks a trace: reservations tile [0, total) in order; PROD moves forward over whole
 *  reservations; commands are consumed in index order, each from the reservation that
 *  covers it; each CMD_SYNC completes after every earlier command of its queue. */
function checkTrace(t: QueueTrace, queues: number[]): string[] {
  const errors: string[] = [];
  const fail = (m: string) => { if (errors.length < 5) errors.push(m); };
  for (const qid of queues) {
    const res = t.reservations.filter((r) => r.queue === qid);
    let next = 0;
    const owner = new Map<number, { cpu: number; insertion: number }>();
    for (const r of res) {
      if (r.start !== next) fail(`q${qid}: reservation at ${r.start}, expected ${next}`); // order, no gap, no overlap
      for (let i = r.start; i < r.start + r.n; i++) owner.set(i, { cpu: r.cpu, insertion: r.insertion });
      next += r.n;
    }
    const bounds = new Set(res.map((r) => r.start + r.n));
    let prod = 0;
    for (const p of t.publishes.filter((x) => x.queue === qid)) {
      if (p.prod < prod) fail(`q${qid}: PROD ${prod} -> ${p.prod}`);
      if (!bounds.has(p.prod)) fail(`q${qid}: PROD ${p.prod} splits a reservation`);
      prod = p.prod;
    }
    const cons = t.consumed.filter((c) => c.queue === qid);
    let lastT = -1;
    cons.forEach((c, i) => {
      if (c.idx !== i) fail(`q${qid}: consumed ${c.idx} at position ${i}`);
      if (c.idx >= prod) fail(`q${qid}: consumed unpublished ${c.idx}`);
      const o = owner.get(c.idx);
      if (!o || o.cpu !== c.cpu || o.insertion !== c.insertion) fail(`q${qid}: slot ${c.idx} is not its reserver's command`);
      // In-order completion times: every command before a CMD_SYNC completed no later than it.
      if (c.t < lastT) fail(`q${qid}: ${c.kind} ${c.idx} completed at ${c.t} before an earlier command (${lastT})`);
      lastT = c.t;
    });
  }
  return errors;
}

describe('lock-free insertion invariants', () => {
  // A 16-entry queue with 6-page unmaps in batches of 8: producers run into a full queue.
  // Slow command writes (200 ns each) leave reserved slots unwritten long enough that an
  // owner publishing without waiting for the valid map would publish a gap (checked: the
  // queue model then throws EIO publish-gap).
  const small: CmdqParams = {
    cpus: 12, queueEntries: 16, batchSize: 8, pagesPerUnmap: 6, cmdWriteNs: 200,
    durationNs: 600_000, warmupNs: 100_000, trace: true,
  };

  for (const batching of [true, false]) {
    it(`publishes in reservation order with no gaps, never overflows, syncs complete last (batching ${batching ? 'on' : 'off'})`, () => {
      const { results, trace } = runCmdqModel({ ...small, algorithm: 'lockfree', batching });
      expect(trace!.consumed.length).toBeGreaterThan(100);
      expect(checkTrace(trace!, [0])).toEqual([]);
      expect(results.queueOccupancyMax).toBeLessThanOrEqual(16);
      expect(results.fullPolls).toBeGreaterThan(0); // the overflow path was exercised
      expect(results.ownerPublishes).toBeLessThan(results.insertions); // owners gathered others' work
    });
  }

  it('the fetch-add reservation (I5 "after") keeps the invariants, never fails, and is faster at 64 CPUs', () => {
    // 12 CPUs can hold 12 × 7 = 84 entries reserved at once: a 128-entry queue.
    const { results, trace } = runCmdqModel({ ...small, queueEntries: 128, algorithm: 'lockfree', lockfreeReserve: 'fetch-add' });
    expect(checkTrace(trace!, [0])).toEqual([]);
    expect(trace!.consumed.length).toBeGreaterThan(100);
    expect(results.casFailures).toBe(0);
    const add = runCmdqModel({ cpus: 64, algorithm: 'lockfree', lockfreeReserve: 'fetch-add' }).results;
    expect(add.opsPerCpuPerSec).toBeGreaterThan(rate(64, 'lockfree'));
  });

  it('the fetch-add reservation stalls in a queue smaller than what CPUs reserve at once; the CAS loop does not', () => {
    // An owner waits for the valid bits of a producer that reserved past the queue's end
    // and waits for space that only the owner's publication can free.
    const add = runCmdqModel({ ...small, algorithm: 'lockfree', lockfreeReserve: 'fetch-add' }).results;
    expect(add.ops).toBe(0);
    expect(add.queueOccupancyMax).toBeGreaterThan(16);
    expect(runCmdqModel({ ...small, algorithm: 'lockfree' }).results.ops).toBeGreaterThan(100);
  });

  it('the spinlock and per-CPU inserters keep the same invariants', () => {
    const locked = runCmdqModel({ ...small, algorithm: 'locked' });
    expect(checkTrace(locked.trace!, [0])).toEqual([]);
    expect(locked.trace!.consumed.length).toBeGreaterThan(100);
    expect(locked.results.queueOccupancyMax).toBeLessThanOrEqual(16);
    const percpu = runCmdqModel({ ...small, algorithm: 'percpu' });
    expect(checkTrace(percpu.trace!, Array.from({ length: 12 }, (_, i) => i))).toEqual([]);
    expect(percpu.results.ops).toBeGreaterThan(100);
  });

  it('the queue model itself rejects overflow, unwritten publishes and PROD going backwards', () => {
    const sim = new CmdqSim();
    const q = new CmdQueue(0, 4);
    const smmu = new SmmuConsumer(sim, [q], { smmuTlbiNs: 10, smmuSyncNs: 10 }, undefined, () => {});
    const err = (f: () => void) => { try { f(); } catch (e) { return isSimError(e) ? e.reason : 'other'; } return 'none'; };
    expect(err(() => smmu.publish(q, 1))).toBe('publish-gap');
    for (let i = 0; i < 4; i++) q.write(i, 'tlbi', 0, 0);
    expect(err(() => q.write(4, 'tlbi', 0, 1))).toBe('queue-overflow');
    smmu.publish(q, 4);
    expect(err(() => smmu.publish(q, 3))).toBe('prod-backwards');
    sim.run(1000);
    expect(q.cons).toBe(4);
    q.write(4, 'sync', 0, 1);
  });
});
