/**
 * An IDA over the 20-bit PASID space: the global PASID allocator (iommu_global_pasid_ida,
 * and the v5 ioasid space the aux domains draw from).
 *
 * Models: lowest-free allocation within [min, max] (ida_alloc_range), free, and
 * exhaustion reported as PASID_INVALID by the caller; two-level bitmap (a summary bit per
 * 32-id word that is full) so both allocation and free take O(words / 32) at worst and the
 * whole space can be allocated and freed quickly.
 * Does not model: ioasid sets, quotas and private data (the PASID issue adds them).
 */
export const PASID_SPACE = 1 << 20;

export class PasidIda {
  private readonly words = new Uint32Array(PASID_SPACE / 32);
  /** Bit w set when words[w] is full. */
  private readonly full = new Uint32Array(PASID_SPACE / 32 / 32);
  allocated = 0;

  /** Lowest free id in [min, max], marked used; -1 when none. */
  alloc(min: number, max: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max >= PASID_SPACE || min > max) return -1;
    let w = min >>> 5;
    const lastW = max >>> 5;
    while (w <= lastW) {
      // Skip full words 32 at a time through the summary.
      if ((w & 31) === 0 && this.full[w >>> 5] === 0xffffffff) { w += 32; continue; }
      if ((this.full[w >>> 5] & (1 << (w & 31))) !== 0) { w++; continue; }
      let free = ~this.words[w];
      if (w === min >>> 5) free &= -1 << (min & 31); // ids below min in the first word are not free
      if (free !== 0) {
        const bit = 31 - Math.clz32(free & -free);
        const id = (w << 5) | bit;
        if (id > max) return -1;
        this.set(id);
        return id;
      }
      w++;
    }
    return -1;
  }

  /** Marks a specific id used; false if it already was. */
  claim(id: number): boolean {
    if (this.has(id)) return false;
    this.set(id);
    return true;
  }

  free(id: number): void {
    if (!this.has(id)) return;
    const w = id >>> 5;
    this.words[w] &= ~(1 << (id & 31));
    this.full[w >>> 5] &= ~(1 << (w & 31));
    this.allocated--;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < PASID_SPACE && (this.words[id >>> 5] & (1 << (id & 31))) !== 0;
  }

  private set(id: number): void {
    const w = id >>> 5;
    this.words[w] |= 1 << (id & 31);
    if (this.words[w] === 0xffffffff) this.full[w >>> 5] |= 1 << (w & 31);
    this.allocated++;
  }
}
