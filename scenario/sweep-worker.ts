/**
 * The piscina worker of a sweep (compiled to dist/scenario/sweep-worker.js): runs one
 * sweep point — loads the scenario with the point's overrides and runs it — and returns
 * its results object (null when the sweep was interrupted before the point started). An interrupt flag in shared memory (polled every 50 ms) stops the
 * point cleanly: the runner closes its simulator and marks the results partial.
 * Does not: print, write files, or run more than one point per task.
 */
import { loadScenario } from './loader.js';
import { runScenario } from './runner.js';
import type { Results } from './results-schema.js';
import type { SweepTask } from './sweep.js';

export default async function runPoint(task: SweepTask): Promise<Results | null> {
  const flag = new Int32Array(task.stop);
  if (Atomics.load(flag, 0)) return null; // interrupted before this point started: not run
  const prog = new Int32Array(task.progress);
  const ac = new AbortController();
  const poll = setInterval(() => { if (Atomics.load(flag, 0)) ac.abort(); }, 50);
  try {
    const loaded = loadScenario(task.file, { short: task.short, overrides: task.overrides });
    const phases = loaded.scenario.phases.length;
    return await runScenario(loaded, {
      ...(task.threads ? { threads: task.threads } : {}),
      signal: ac.signal,
      point: task.point,
      onProgress: (e) => {
        // Progress of the point as a whole: phases done plus the share of the current one.
        Atomics.store(prog, 0, Math.floor((e.index + (e.total > 0 ? Math.min(1, e.done / e.total) : 1)) * 1000));
        Atomics.store(prog, 1, phases * 1000);
      },
    });
  } finally {
    clearInterval(poll);
  }
}
