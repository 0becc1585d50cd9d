/**
 * Worker entry point: one worker thread hosting one or more hardware IOMMU instances
 * (one by default; several with the `threads` option).
 *
 * Models: the start-up handshake (the StartMessage arrives as workerData; the worker
 * attaches to the arena, the rings and doorbells of each instance, then posts Ready), the
 * synchronous service loop that gives each instance a turn, and the control traffic it
 * reads with receiveMessageOnPort whenever the coordinator's control sequence number moved
 * (arena growth, stats, test hooks, shutdown). Instances never share state: each serves
 * its own inputs in its own order, so how many share a thread does not change results.
 * An exception anywhere is reported as a Fatal message and rethrown, so the coordinator
 * sees both the message and the worker's error/exit.
 * Does not model: hardware registers (the coordinator hands over table and queue
 * addresses directly).
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { FromWorker, InstanceStart, RingHandle, StartMessage, ToWorker } from '../shared/protocol.js';
import { CTL_SEQ, PROG_BYTES } from '../shared/protocol.js';
import { ArenaView } from '../shared/memory/arena.js';
import { SpscRing } from '../shared/ring/spsc-ring.js';
import { Doorbell } from '../shared/ring/doorbell.js';
import { Iommu } from './iommu.js';

/** Longest single sleep; the loop re-checks control traffic after it. */
const SLEEP_TIMEOUT_MS = 1000;

function post(m: FromWorker): void {
  parentPort!.postMessage(m);
}

function main(start: StartMessage): void {
  const view = new ArenaView();
  start.arenaChunks.forEach((sab, i) => view.addChunk(i, sab));
  const workerBell = new Doorbell(start.workerBell.sab, start.workerBell.byteOffset);
  const coordBell = new Doorbell(start.coordinatorBell.sab, start.coordinatorBell.byteOffset);
  const attach = (h: RingHandle, consumer: boolean) =>
    new SpscRing(h.sab, h.byteOffset, { depth: h.depth, entryBytes: h.entryBytes }, consumer
      ? { consumerBell: workerBell, role: 'consumer' }
      : { consumerBell: coordBell, producerBell: workerBell, role: 'producer' });
  const instance = (s: InstanceStart): Iommu => {
    const iommu = new Iommu(s.config, view, s.rootTableFrame, {
      command: attach(s.rings.command, true), dma: attach(s.rings.dma, true), dmaResponse: attach(s.rings.dmaResponse, false),
      event: attach(s.rings.event, false), pageRequest: attach(s.rings.pageRequest, false),
    }, s.progress, PROG_BYTES, s.traffic);
    iommu.onWaitInterrupt = () => coordBell.ring();
    return iommu;
  };
  const instances = start.instances.map(instance);
  const byIndex = new Map(instances.map((i) => [i.cfg.index, i]));
  const ctl = new Int32Array(start.control);

  let seqSeen = 0;
  let stop = false;
  const spinNs = start.spinUs * 1000;
  const isEmpty = () => Atomics.load(ctl, CTL_SEQ) === seqSeen && instances.every((i) => i.idle());

  const control = (m: ToWorker) => {
    switch (m.type) {
      case 'arena-chunk': view.addChunk(m.index, m.sab); break;
      case 'stats': post({ type: 'stats', id: m.id, stats: byIndex.get(m.iommu)!.stats() }); break;
      case 'test': {
        if (!start.testHooks) throw new Error(`test hook '${m.op}' without testHooks`);
        if (m.op === 'crash') throw new Error('crash requested by test hook');
        if (m.op === 'hang') for (;;) { /* stops answering, as a wedged worker would */ }
        const iommu = byIndex.get(m.iommu)!;
        if (m.op === 'inject-page-request') {
          const result = m.reqs.map((r) => iommu.pageRequests.inject(r, iommu.clockNs));
          iommu.publish(); // an overflow it caused is a pending internal event
          post({ type: 'test', id: m.id, result });
        } else if (m.op === 'inject-fault') {
          const f = m.fault;
          const rec = iommu.events.record(f.rid, f.pasid, Number(f.addr & 0xffffffffn), Number(f.addr >> 32n), f.reason, f.write, iommu.clockNs);
          iommu.publish();
          post({ type: 'test', id: m.id, result: rec });
        } else {
          post({ type: 'test', id: m.id, result: iommu.translator.iotlb.entries() });
        }
        break;
      }
      case 'shutdown': stop = true; break;
      case 'start': break;
    }
  };

  /** Handles every control message counted so far; true if there were any. */
  const drainControl = (): boolean => {
    const seq = Atomics.load(ctl, CTL_SEQ);
    if (seq === seqSeen) return false;
    // Every message counted in CTL_SEQ was posted before the count moved.
    for (let got = seqSeen; got !== seq;) {
      const r = receiveMessageOnPort(parentPort!);
      if (r === undefined) continue;
      got = (got + 1) | 0;
      control(r.message as ToWorker);
    }
    seqSeen = seq;
    return true;
  };
  const refresh = () => {
    const before = view.chunkCount;
    drainControl();
    return view.chunkCount !== before;
  };
  for (const i of instances) {
    i.translator.refreshMemory = refresh;
    i.syncMemory = drainControl;
  }

  post({ type: 'ready' });
  while (!stop) {
    if (drainControl()) continue;
    let work = 0;
    for (const i of instances) work += i.serve();
    if (work > 0) {
      coordBell.ring(); // progress published: a coordinator waiting on it re-checks (one load when awake)
    } else if (workerBell.spinThenSleep(isEmpty, spinNs, SLEEP_TIMEOUT_MS) !== 'not-empty') {
      instances[0].sleeps++;
    }
  }
}

const start = workerData as StartMessage;
try {
  main(start);
} catch (e) {
  const err = e as Error;
  post({ type: 'fatal', message: err.message, stack: err.stack });
  throw e;
}
