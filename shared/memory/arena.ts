/**
 * The shared-memory arena: every hardware-visible table (page-table pages, PASID
 * directories and tables, root/context tables, completion status words) lives here.
 *
 * Models: a region of simulated physical memory made of 4 KiB frames, starting at
 * ARENA_BASE (1 TiB), backed by SharedArrayBuffer chunks of CHUNK_BYTES created lazily
 * (the OS commits pages only when touched, so a large arena costs nothing until used).
 * Both threads hold an ArenaView over the same chunks: the coordinator writes tables, the
 * workers read them with plain typed-array reads (the walker) and write only the fields
 * hardware writes (status words) with Atomics.
 * Does not model: the data of DMA target pages (devices' DMA is translated, not copied),
 * caches of physical memory, NUMA.
 *
 * Frame numbers are physical addresses >> 12 (JS numbers, exact: the arena ends far below
 * 2^52). Frame ARENA_BASE_FRAME is never handed out, so a zero/base pointer is never valid.
 */

export const FRAME_SHIFT = 12;
export const FRAME_BYTES = 4096;
export const FRAME_U32 = FRAME_BYTES / 4;
/** Frames per chunk (64 MiB chunks). */
export const CHUNK_FRAME_SHIFT = 14;
export const CHUNK_FRAMES = 1 << CHUNK_FRAME_SHIFT;
export const CHUNK_BYTES = CHUNK_FRAMES * FRAME_BYTES;
/** First frame of the arena: physical address 1 TiB. */
export const ARENA_BASE_FRAME = 0x1000_0000;
export const ARENA_BASE = BigInt(ARENA_BASE_FRAME) << 12n;

export class ArenaView {
  /** u32 view of each chunk, by chunk index. */
  readonly chunks: Uint32Array[] = [];
  readonly buffers: SharedArrayBuffer[] = [];

  addChunk(index: number, sab: SharedArrayBuffer): void {
    if (sab.byteLength !== CHUNK_BYTES) throw new RangeError(`arena chunk ${index}: ${sab.byteLength} bytes`);
    this.buffers[index] = sab;
    this.chunks[index] = new Uint32Array(sab);
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  /** True when `frame` lies in a chunk this view holds. */
  holds(frame: number): boolean {
    const rel = frame - ARENA_BASE_FRAME;
    return rel >= 0 && this.chunks[Math.floor(rel / CHUNK_FRAMES)] !== undefined;
  }

  /** The chunk array that holds `frame` (undefined if outside the arena). */
  chunkOf(frame: number): Uint32Array | undefined {
    return this.chunks[(frame - ARENA_BASE_FRAME) >>> CHUNK_FRAME_SHIFT];
  }

  /** u32 index of the frame's first word inside its chunk array. */
  static frameU32(frame: number): number {
    return ((frame - ARENA_BASE_FRAME) & (CHUNK_FRAMES - 1)) << 10;
  }

  /** Byte address → [chunk u32 array, u32 index]; the address must be 4-byte aligned. */
  locate(paddr: bigint): [Uint32Array, number] | undefined {
    const frame = Number(paddr >> 12n);
    const chunk = this.holds(frame) ? this.chunkOf(frame) : undefined;
    if (!chunk) return undefined;
    return [chunk, ArenaView.frameU32(frame) + Number((paddr & 0xfffn) >> 2n)];
  }
}

export function frameToAddr(frame: number): bigint {
  return BigInt(frame) << 12n;
}

export function addrToFrame(addr: bigint): number {
  return Number(addr >> 12n);
}
