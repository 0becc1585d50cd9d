/**
 * The control protocol between the coordinator and an IOMMU worker: one typed message
 * union per direction, carried over the worker's MessagePort.
 *
 * Models: start-up handshake (Start → Ready), arena growth, stats snapshots, test-hook
 * queries, shutdown, and fatal errors. A worker thread hosts one or more IOMMU instances
 * (the `threads` option); messages about one instance name it by its IOMMU index. Each
 * instance also has a progress block in shared memory for the conservative time
 * synchronisation (see PROG_* below). Hot traffic (commands, DMA, events) never goes
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

/** Layout of the per-thread control block (Int32 indices). */
export const CTL_SEQ = 0; // control messages posted by the coordinator
export const CTL_BYTES = 64;

/**
 * Layout of an instance's progress block (a seqlock the worker writes, the coordinator
 * reads; the horizon is the other way round). Int32 indices: PROG_VER (odd while the
 * worker writes), PROG_SEQ (input sequence number of the last input fully served).
 * Float64 indices: PROG_CLOCK (the instance's modelled clock after that input: no later
 * output of it is earlier), PROG_TIMER (modelled time of its earliest pending internal
 * event, Infinity if none), PROG_HORIZON (written by the coordinator: no input stamped
 * earlier will come, so internal events up to it may run). The wait descriptors'
 * completion times follow at PROG_BYTES.
 */
export const PROG_VER = 0;
export const PROG_SEQ = 1;
export const PROG_CLOCK = 1;
export const PROG_TIMER = 2;
export const PROG_HORIZON = 3;
export const PROG_BYTES = 64;

/**
 * The input sequence number beside each command-ring entry (SpscRing.seqs) uses 31 bits;
 * the top bit marks the slot's completion command as a software drain point of the
 * page-request queue. SMMUv3 and AMD have no Page Drain bit: their drivers, after the
 * CMD_SYNC / COMPLETION_WAIT that follows a PASID teardown, take in every PRI/PPR entry the
 * IOMMU had written by then (a snapshot of the queue's producer index). The mark stands for
 * that snapshot; VT-d uses the wait descriptor's PD bit instead.
 */
export const SEQ_MASK = 0x7fff_ffff;
export const SEQ_DRAIN_POINT = 0x8000_0000;

/** Kinds of the entries on an output ring (worker → coordinator), in the ring's per-slot tag. */
/** An entry of the queue's own format. */
export const OUT_ENTRY = 0;
/** The end of an overflow episode: word 0 holds how many entries it lost. */
export const OUT_OVERFLOW = 1;
/**
 * A page-request drain point (a wait descriptor with PD = 1 completed): software takes in
 * every request written before it at this time.
 */
export const OUT_DRAIN = 2;

/** One IOMMU instance a worker thread hosts. */
export interface InstanceStart {
  config: ResolvedIommuConfig;
  /** Root-table address register (RTADDR): frame of the root table. */
  rootTableFrame: number;
  rings: { command: RingHandle; dma: RingHandle; dmaResponse: RingHandle; event: RingHandle; pageRequest: RingHandle };
  /** Progress block, then the wait completion times (Float64 per command-queue slot). */
  progress: SharedArrayBuffer;
  /** Traffic-burst slots (shared/layout/traffic.ts). */
  traffic: SharedArrayBuffer;
}

export interface StartMessage {
  type: 'start';
  arenaChunks: SharedArrayBuffer[];
  instances: InstanceStart[];
  /** The thread's own doorbell (rung by the coordinator) and the coordinator's (rung by the worker). */
  workerBell: BellHandle;
  coordinatorBell: BellHandle;
  /** Spin before sleeping when idle (µs), and whether test hooks are on (the thread's setting). */
  spinUs: number;
  testHooks: boolean;
  control: SharedArrayBuffer;
}

export type ToWorker =
  | StartMessage
  | { type: 'arena-chunk'; index: number; sab: SharedArrayBuffer }
  | { type: 'stats'; id: number; iommu: number }
  | { type: 'test'; id: number; iommu: number; op: 'iotlb-entries' | 'crash' | 'hang' }
  /** Test hooks: the device sends a page request / the IOMMU records a fault, as hardware would. */
  | { type: 'test'; id: number; iommu: number; op: 'inject-page-request'; reqs: { rid: number; pasid: number; prgIndex: number; last: boolean; addr: bigint; read: boolean; write: boolean; exec: boolean; priv: boolean; stopMarker?: boolean }[] }
  | { type: 'test'; id: number; iommu: number; op: 'inject-fault'; fault: { rid: number; pasid: number; addr: bigint; reason: number; write: boolean } }
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
  /** Device-TLB invalidations sent, those that waited for a free ITag, those that timed out. */
  ats: { invalidations: number; stalls: number; timeouts: number };
  /** Modelled occupancy of the input queues at each arrival (sums for means; full = arrivals finding it full). */
  queues: Record<'command' | 'dma' | 'event' | 'page-request', { samples: number; sumUsed: number; maxUsed: number; full: number; depth: number }>;
  /** Page request queue: requests written, dropped to overflow, auto-answered, stop markers written. */
  prq: { requests: number; lost: number; autoResponses: number; stopMarkers: number };
  sleeps: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'stats'; id: number; stats: WorkerStats }
  | { type: 'test'; id: number; result: unknown }
  | { type: 'fatal'; message: string; stack?: string };
