/**
 * Paging-structure caches (optional, off by default): the IOMMU's cache of upper-level
 * page-table entries, so that a walk after an IOTLB miss starts below the levels it has
 * already seen instead of at the root.
 *
 * Models: one cache per IOMMU of non-leaf entries, keyed by (root table, level, the address
 * bits that select the entry), `entries` of them with FIFO replacement; a walk is charged
 * only the reads below the deepest cached level (HARDWARE.md §5.4: "with optional
 * gem5-style walk caches"); every IOTLB, PASID-IOTLB, PASID-cache or context-cache
 * invalidation empties it (VT-d invalidates paging-structure caches with the IOTLB unless
 * the invalidation hint says the upper levels did not change, which Linux rarely uses).
 * Does not model: per-level or per-stage sizes, the invalidation hint, serving the walk from
 * the cached entry (the walker still reads memory; only the cost changes), nested walks.
 */
export class PagingStructureCache {
  private readonly byRoot = new Map<number, Map<number, true>>();
  private readonly order: [number, number][] = [];
  private size = 0;
  hits = 0;
  lookups = 0;

  constructor(readonly entries: number) {}

  get enabled(): boolean {
    return this.entries > 0;
  }

  /**
   * Reads a walk of `levels` levels can skip for `vpn` (as a Number below 2^36) under
   * `root`: the levels above the deepest cached one, and that one.
   */
  skippable(root: number, levels: number, vpn: number): number {
    const m = this.byRoot.get(root);
    this.lookups++;
    if (m === undefined) return 0;
    // The entry read at level L is selected by vpn >> 9(L-1); it points at level L-1's table.
    for (let level = 2; level <= levels; level++) {
      if (m.has(key(level, vpn))) {
        this.hits++;
        return levels - level + 1;
      }
    }
    return 0;
  }

  /** Caches the non-leaf entries a walk of `vpn` read down to `leafLevel`. */
  fill(root: number, levels: number, vpn: number, leafLevel: number): void {
    let m = this.byRoot.get(root);
    if (m === undefined) this.byRoot.set(root, (m = new Map()));
    for (let level = levels; level > leafLevel; level--) {
      const k = key(level, vpn);
      if (m.has(k)) continue;
      if (this.size >= this.entries) this.evict();
      m.set(k, true);
      this.order.push([root, k]);
      this.size++;
    }
  }

  /** Empties the cache. */
  clear(): void {
    if (this.size === 0) return;
    this.byRoot.clear();
    this.order.length = 0;
    this.size = 0;
  }

  private evict(): void {
    const [root, k] = this.order.shift()!;
    const m = this.byRoot.get(root);
    if (m?.delete(k)) this.size--;
    if (m && m.size === 0) this.byRoot.delete(root);
  }
}

function key(level: number, vpn: number): number {
  return Math.floor(vpn / 2 ** (9 * (level - 1))) * 8 + level;
}
