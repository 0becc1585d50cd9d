/**
 * The control protocol between the coordinator and an IOMMU worker: one typed message
 * union per direction, carried over the worker's MessagePort.
 *
 * Models: start-up handshake (Start → Ready), arena growth, stats snapshots, test-hook
 * queries, shutdown, and fatal errors. Hot traffic (commands, DMA, events) never goes
 * here: it goes through the rings. The worker runs a synchronous loop, so it reads its
 * port with receiveMessageOnPort; the coordinator bumps CTL_SEQ after each post so the
 * worker knows a message waits. Request ids are monotonic integers.
 * Does not model: anything of the hardware (this is the simulator's own plumbing).
 */
import type { ResolvedIommuConfig } from './config.js';

export interface RingHandle {
  sab: SharedArrayBuffer;
  byteOffset: number;
  depth: number;
  entryBytes: number;
}

export interface BellHandle {
  sab: SharedArrayBuffer;
  byteOffset: number;
}

/** Layout of the per-worker control block (Int32 indices). */
export const CTL_SEQ = 0; // control messages posted by the coordinator
export const CTL_BYTES = 64;

export interface StartMessage {
  type: 'start';
  config: ResolvedIommuConfig;
  arenaChunks: SharedArrayBuffer[];
  /** Root-table address register (RTADDR): frame of the root table. */
  rootTableFrame: number;
  rings: { command: RingHandle; dma: RingHandle; dmaResponse: RingHandle; event: RingHandle; pageRequest: RingHandle };
  /** The worker's own doorbell (rung by the coordinator) and the coordinator's (rung by the worker). */
  workerBell: BellHandle;
  coordinatorBell: BellHandle;
  control: SharedArrayBuffer;
}

export type ToWorker =
  | StartMessage
  | { type: 'arena-chunk'; index: number; sab: SharedArrayBuffer }
  | { type: 'stats'; id: number }
  | { type: 'test'; id: number; op: 'iotlb-entries' | 'crash' | 'hang' }
  /** Test hooks: the device sends a page request / the IOMMU records a fault, as hardware would. */
  | { type: 'test'; id: number; op: 'inject-page-request'; reqs: { rid: number; pasid: number; prgIndex: number; last: boolean; addr: bigint; read: boolean; write: boolean; exec: boolean; priv: boolean; stopMarker?: boolean }[] }
  | { type: 'test'; id: number; op: 'inject-fault'; fault: { rid: number; pasid: number; addr: bigint; reason: number; write: boolean } }
  | { type: 'shutdown' };

export interface WorkerStats {
  iommu: number;
  modelledNs: number;
  dma: number;
  translated: number;
  faults: number;
  faultsSuppressed: number;
  walks: number;
  walkReads: number;
  iotlb: { hits: number; misses: number; inserts: number; evictions: number; invalidated: number };
  devTlb: { hits: number; misses: number };
  pasidCache: { hits: number; misses: number };
  contextCache: { hits: number; misses: number };
  descriptors: Record<string, number>;
  waits: number;
  eventsLost: number;
  /** Page request queue: requests written, dropped to overflow, auto-answered, stop markers written. */
  prq: { requests: number; lost: number; autoResponses: number; stopMarkers: number };
  sleeps: number;
}

export type FromWorker =
  | { type: 'ready'; iommu: number }
  | { type: 'stats'; id: number; stats: WorkerStats }
  | { type: 'test'; id: number; result: unknown }
  | { type: 'fatal'; iommu: number; message: string; stack?: string };
