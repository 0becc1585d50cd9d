/**
 * One worker thread on the coordinator side: it starts the thread with the IOMMU
 * instances it hosts, carries control messages (arena growth, stats, test hooks,
 * shutdown) to it, and turns its failures into errors of every instance it hosts.
 *
 * Models: nothing of the hardware: the simulator's own plumbing between threads. The
 * `threads` option decides how many instances share one host; one per IOMMU is the
 * default. Control messages are posted, counted in the thread's control word and the
 * thread's doorbell rung, so a worker that spins or sleeps finds them.
 * Does not model: restarting a crashed thread (the simulator shuts down instead).
 */
import { Worker } from 'node:worker_threads';
import { SimError, simError } from '../shared/errors.js';
import { CTL_BYTES, CTL_SEQ, type FromWorker, type InstanceStart, type ToWorker } from '../shared/protocol.js';
import { Doorbell } from '../shared/ring/doorbell.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type HostRequest = { type: 'stats'; iommu: number } | DistributiveOmit<Extract<ToWorker, { type: 'test' }>, 'id'>;

export class WorkerHost {
  readonly worker: Worker;
  private readonly ctl: Int32Array;
  private nextReq = 1;
  private readonly requests = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  private failedWith: SimError | undefined;
  readonly ready: Promise<void>;
  readonly exitPromise: Promise<void>;
  /** Called once when the thread fails (crash, exit, error): the hosted instances fail with it. */
  onFail: (err: SimError) => void = () => {};
  /** Called before a request's answer is handed over (the coordinator drains the rings first). */
  onAnswer: () => void = () => {};
  /** Host time (performance.now) a control answer last came back. */
  lastAnswer = performance.now();

  constructor(
    readonly name: string,
    instances: InstanceStart[],
    arenaChunks: SharedArrayBuffer[],
    coordBell: Doorbell,
    opts: { spinUs: number; testHooks: boolean },
    workerUrl: URL,
    /** The thread's doorbell: rung when its instances get inputs or control messages. */
    readonly workerBell: Doorbell,
  ) {
    const control = new SharedArrayBuffer(CTL_BYTES);
    this.ctl = new Int32Array(control);
    this.worker = new Worker(workerUrl, {
      workerData: {
        type: 'start', arenaChunks, instances,
        workerBell: { sab: this.workerBell.sab, byteOffset: this.workerBell.byteOffset },
        coordinatorBell: { sab: coordBell.sab, byteOffset: coordBell.byteOffset },
        spinUs: opts.spinUs, testHooks: opts.testHooks, control,
      },
    });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => { readyResolve = res; readyReject = rej; });
    this.ready.catch(() => {});
    this.worker.on('message', (m: FromWorker) => {
      this.lastAnswer = performance.now();
      switch (m.type) {
        case 'ready': readyResolve(); break;
        case 'stats': case 'test': {
          // Whatever the worker put on its rings before answering is drained first.
          this.onAnswer();
          const r = this.requests.get(m.id);
          this.requests.delete(m.id);
          r?.resolve(m.type === 'stats' ? m.stats : m.result);
          break;
        }
        case 'fatal': this.fail(simError('EIO', 'iommu-worker', 'worker-crashed', `${this.name}: ${m.message}`)); break;
      }
    });
    this.worker.on('error', (e) => {
      const err = simError('EIO', 'iommu-worker', 'worker-crashed', `${this.name}: ${e.message}`);
      readyReject(err);
      this.fail(err);
    });
    this.exitPromise = new Promise<void>((res) => this.worker.once('exit', (code) => {
      this.exited = true;
      const err = simError('EIO', 'iommu-worker', 'worker-exited', `${this.name} exited with code ${code}`);
      readyReject(err);
      this.fail(err);
      res();
    }));
  }

  /** Control requests waiting for their answer. */
  get pending(): number {
    return this.requests.size;
  }

  /** Sends a control message and tells the worker's loop it is there. */
  post(m: ToWorker): void {
    if (this.exited) return;
    this.worker.postMessage(m);
    Atomics.add(this.ctl, CTL_SEQ, 1); // seq-cst: counted after the post, so the worker finds it
    this.workerBell.ring();
  }

  request<T>(m: HostRequest): Promise<T> {
    if (this.failedWith) return Promise.reject(this.failedWith);
    const id = this.nextReq++;
    if (this.requests.size === 0) this.lastAnswer = performance.now();
    return new Promise<T>((resolve, reject) => {
      this.requests.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ ...m, id } as ToWorker);
    });
  }

  /** Rejects every pending request and reports the failure once. */
  fail(err: SimError): void {
    if (this.failedWith) return;
    this.failedWith = err;
    for (const r of this.requests.values()) r.reject(err);
    this.requests.clear();
    this.onFail(err);
  }

  /** Asks the thread to stop; terminates it if it does not exit within `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    if (this.exited) return;
    this.post({ type: 'shutdown' });
    const timer = setTimeout(() => void this.worker.terminate(), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }
}
