/**
 * Worker entry point: one hardware IOMMU per worker thread.
 *
 * Models: the start-up handshake (the StartMessage arrives as workerData; the worker
 * attaches to the arena, its rings and doorbells, then posts Ready), the synchronous
 * service loop, and the control traffic it reads with receiveMessageOnPort whenever the
 * coordinator's control sequence number moved (arena growth, stats, test hooks, shutdown).
 * An exception anywhere is reported as a Fatal message and rethrown, so the coordinator
 * sees both the message and the worker's error/exit.
 * Does not model: hardware registers (the coordinator hands over table and queue
 * addresses directly).
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { FromWorker, StartMessage, ToWorker } from '../shared/protocol.js';
import { CTL_SEQ } from '../shared/protocol.js';
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
  const attach = (h: StartMessage['rings']['command'], consumer: boolean) =>
    new SpscRing(h.sab, h.byteOffset, { depth: h.depth, entryBytes: h.entryBytes }, consumer
      ? { consumerBell: workerBell, role: 'consumer' }
      : { consumerBell: coordBell, producerBell: workerBell, role: 'producer' });
  const cmd = attach(start.rings.command, true);
  const dma = attach(start.rings.dma, true);
  const resp = attach(start.rings.dmaResponse, false);
  const evt = attach(start.rings.event, false);
  const prq = attach(start.rings.pageRequest, false);
  const ctl = new Int32Array(start.control);
  const waitTimes = new Float64Array(start.control, 64, start.config.queues.command);
  const iommu = new Iommu(start.config, view, start.rootTableFrame, cmd, dma, resp, evt, waitTimes, prq);
  iommu.onWaitInterrupt = () => coordBell.ring();

  let seqSeen = 0;
  let stop = false;
  const spinNs = start.config.spinUs * 1000;
  const isEmpty = () => iommu.idle() && Atomics.load(ctl, CTL_SEQ) === seqSeen;

  const control = (m: ToWorker) => {
    switch (m.type) {
      case 'arena-chunk': view.addChunk(m.index, m.sab); break;
      case 'stats': post({ type: 'stats', id: m.id, stats: iommu.stats() }); break;
      case 'test':
        if (!start.config.testHooks) throw new Error(`test hook '${m.op}' without testHooks`);
        if (m.op === 'crash') throw new Error('crash requested by test hook');
        if (m.op === 'hang') for (;;) { /* stops answering, as a wedged worker would */ }
        if (m.op === 'inject-page-request') {
          post({ type: 'test', id: m.id, result: m.reqs.map((r) => iommu.pageRequests.inject(r, iommu.clockNs)) });
        } else if (m.op === 'inject-fault') {
          const f = m.fault;
          const rec = iommu.events.record(f.rid, f.pasid, Number(f.addr & 0xffffffffn), Number(f.addr >> 32n), f.reason, f.write, iommu.clockNs);
          post({ type: 'test', id: m.id, result: rec });
        } else {
          post({ type: 'test', id: m.id, result: iommu.translator.iotlb.entries() });
        }
        break;
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
  iommu.translator.refreshMemory = () => {
    const before = view.chunkCount;
    drainControl();
    return view.chunkCount !== before;
  };

  post({ type: 'ready', iommu: start.config.index });
  while (!stop) {
    if (drainControl()) continue;
    const work = iommu.serveCommands() + iommu.serveDma() + (iommu.pageRequests.retryReady ? iommu.retryAfterOverflow() : 0);
    if (work === 0) {
      if (workerBell.spinThenSleep(isEmpty, spinNs, SLEEP_TIMEOUT_MS) !== 'not-empty') iommu.sleeps++;
    }
  }
}

const start = workerData as StartMessage;
try {
  main(start);
} catch (e) {
  const err = e as Error;
  post({ type: 'fatal', iommu: start.config.index, message: err.message, stack: err.stack });
  throw e;
}
