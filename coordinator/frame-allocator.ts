/**
 * The coordinator's frame allocator: hands out 4 KiB frames (and naturally aligned
 * power-of-two runs of frames, for PASID directories) from the shared arena.
 *
 * Models: the kernel's page allocator as far as IOMMU tables need it — order-n
 * allocations, freed frames reused (zeroed again before reuse), a capacity limit that
 * fails with ENOMEM, and a byte count of what is in use.
 * Does not model: fragmentation policy beyond per-order free lists (a freed run is not
 * merged with its buddy), NUMA, or memory pressure.
 */
import { simError } from '../shared/errors.js';
import { ARENA_BASE_FRAME, ArenaView, CHUNK_BYTES, CHUNK_FRAMES, FRAME_BYTES, FRAME_U32 } from '../shared/memory/arena.js';

export const MAX_ORDER = 10;

export interface FrameAllocatorOptions {
  /** Capacity of the arena in bytes (rounded up to whole chunks). Default 16 GiB. */
  maxBytes?: number;
  /** Called for every new chunk, before any frame of it is handed out. */
  onChunk?: (index: number, sab: SharedArrayBuffer) => void;
}

export class FrameAllocator {
  readonly view = new ArenaView();
  readonly maxChunks: number;
  private nextFrame = ARENA_BASE_FRAME + 1; // the base frame is never handed out
  private readonly free: number[][] = Array.from({ length: MAX_ORDER + 1 }, () => []);
  private framesInUse = 0;
  private peakFrames = 0;
  private readonly onChunk?: (index: number, sab: SharedArrayBuffer) => void;
  /** Test hook: called before each allocation; returning true fails it with ENOMEM. */
  shouldFail?: () => boolean;

  constructor(opts: FrameAllocatorOptions = {}) {
    const maxBytes = opts.maxBytes ?? 16 * 1024 ** 3;
    this.maxChunks = Math.max(1, Math.ceil(maxBytes / CHUNK_BYTES));
    this.onChunk = opts.onChunk;
  }

  /** Allocates 2^order contiguous zeroed frames aligned to their size; returns the first frame. */
  alloc(order = 0, op = 'frame-alloc'): number {
    if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) throw new RangeError(`order ${order}`);
    if (this.shouldFail?.()) throw simError('ENOMEM', op, 'injected-failure');
    const n = 1 << order;
    let frame = this.free[order].pop();
    if (frame !== undefined) {
      this.zero(frame, n);
    } else {
      frame = this.carve(order, op);
    }
    this.framesInUse += n;
    if (this.framesInUse > this.peakFrames) this.peakFrames = this.framesInUse;
    return frame;
  }

  freeFrames(frame: number, order = 0): void {
    this.free[order].push(frame);
    this.framesInUse -= 1 << order;
  }

  get bytesInUse(): number {
    return this.framesInUse * FRAME_BYTES;
  }

  get peakBytes(): number {
    return this.peakFrames * FRAME_BYTES;
  }

  /** Bytes of SharedArrayBuffer created so far (virtual; committed only when touched). */
  get bytesReserved(): number {
    return this.view.chunkCount * CHUNK_BYTES;
  }

  private carve(order: number, op: string): number {
    const n = 1 << order;
    // Align the bump pointer to the run size; the skipped frames go to lower-order lists.
    let start = Math.ceil(this.nextFrame / n) * n;
    for (let f = this.nextFrame; f < start;) {
      let o = 0;
      while (o < order && f % (2 << o) === 0 && f + (2 << o) <= start) o++;
      this.free[o].push(f);
      f += 1 << o;
    }
    // A run never straddles two chunks (chunks are separate buffers).
    const rel = start - ARENA_BASE_FRAME;
    if (Math.floor(rel / CHUNK_FRAMES) !== Math.floor((rel + n - 1) / CHUNK_FRAMES)) {
      start = ARENA_BASE_FRAME + Math.ceil(rel / CHUNK_FRAMES) * CHUNK_FRAMES;
    }
    const lastChunk = Math.floor((start + n - 1 - ARENA_BASE_FRAME) / CHUNK_FRAMES);
    if (lastChunk >= this.maxChunks) {
      throw simError('ENOMEM', op, 'arena-exhausted', `arena of ${this.maxChunks * CHUNK_BYTES} bytes is full`);
    }
    while (this.view.chunkCount <= lastChunk) this.newChunk();
    this.nextFrame = start + n;
    return start;
  }

  private newChunk(): void {
    const index = this.view.chunkCount;
    const sab = new SharedArrayBuffer(CHUNK_BYTES);
    this.view.addChunk(index, sab);
    this.onChunk?.(index, sab);
  }

  private zero(frame: number, n: number): void {
    const chunk = this.view.chunkOf(frame)!;
    const at = ArenaView.frameU32(frame);
    chunk.fill(0, at, at + n * FRAME_U32);
  }
}
