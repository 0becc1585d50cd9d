/**
 * Context cache: decoded context entries, keyed by source id (VT-d scalable mode).
 *
 * Models: a set-associative cache (set-assoc.ts) from a 16-bit source id (RID:
 * bus << 8 | device << 3 | function) to a decoded context entry of the caller's type `V`,
 * and the three granularities of the VT-d context-cache invalidation descriptor (type 0x1,
 * HARDWARE.md §1.1.3): global, domain-selective and device-selective with a function mask.
 * In scalable mode a context entry carries no domain id (DIDs live in the PASID entries),
 * so a domain-selective invalidation cannot tell entries apart and removes every entry —
 * over-invalidation is allowed by the spec and is what this model does.
 * Does not model: legacy-mode context entries (which carry a DID), the 256-entry root
 * table cache, segment numbers (one cache per IOMMU, one segment per IOMMU), lookup
 * latency. A context-cache invalidation does not reach the PASID cache or the IOTLB here:
 * software sends those descriptors separately, as Linux does.
 */
import { KeyedSetAssoc, type CacheConfig, type CacheStats } from './set-assoc.js';

export type ContextCacheConfig = CacheConfig;

/** Function-mask bits per FM value: FM masks bits 2, 2:1 or 2:0 of the function number. */
const FM_MASK = [0, 0b100, 0b110, 0b111] as const;

function checkSid(op: string, sid: number): void {
  if (!Number.isInteger(sid) || sid < 0 || sid > 0xffff) throw new RangeError(`${op}: sid ${sid} not 16-bit`);
}

export class ContextCache<V> {
  private readonly c: KeyedSetAssoc<V>;

  constructor(cfg: ContextCacheConfig) {
    this.c = new KeyedSetAssoc<V>('context-cache', cfg);
  }

  /** The cached context entry of `sid`, or undefined (counts a hit or a miss). */
  lookup(sid: number): V | undefined {
    return this.c.lookup(sid, 0);
  }

  /** Slot of the last hit or insert, for lookupAt(). */
  get lastSlot(): number {
    return this.c.last;
  }

  /** lookup() of a sid last seen in `slot`; undefined (nothing counted) if the slot changed. */
  lookupAt(slot: number, sid: number): V | undefined {
    return this.c.hitAt(slot, sid, 0);
  }

  insert(sid: number, value: V): void {
    checkSid('context-cache.insert', sid);
    this.c.insert(sid, 0, value);
  }

  /** Context-cache invalidation, global (G = 1). */
  invalidateAll(): number {
    return this.c.clear();
  }

  /**
   * Context-cache invalidation, domain-selective (G = 2). Scalable-mode context entries
   * carry no DID, so every entry is removed whatever `did` is.
   */
  invalidateDomain(did: number): number {
    if (!Number.isInteger(did) || did < 0 || did > 0xffff) {
      throw new RangeError(`context-cache.invalidateDomain: did ${did} not 16-bit`);
    }
    return this.c.clear();
  }

  /**
   * Context-cache invalidation, device-selective (G = 3): the entry of `sid`, and with a
   * function mask `fm` (1: bit 2 of the function ignored, 2: bits 2:1, 3: bits 2:0) the
   * entries of every source id that differs from `sid` only in the masked bits.
   */
  invalidateDevice(sid: number, fm: number): number {
    checkSid('context-cache.invalidateDevice', sid);
    if (fm !== 0 && fm !== 1 && fm !== 2 && fm !== 3) throw new RangeError(`context-cache.invalidateDevice: fm ${fm}`);
    const mask = FM_MASK[fm];
    const base = sid & ~mask;
    let removed = 0;
    for (let v = 0; v <= mask; v++) {
      if ((v & ~mask) === 0) removed += this.c.remove(base | v, 0);
    }
    return removed;
  }

  /** Every cached entry (allocates; for test hooks). */
  entries(): Array<{ sid: number; value: V }> {
    const out: Array<{ sid: number; value: V }> = [];
    const { state } = this.c.sa;
    for (let s = 0; s < state.length; s++) {
      if (state[s] !== 0) out.push({ sid: this.c.keyA[s], value: this.c.values[s] as V });
    }
    return out;
  }

  get size(): number {
    return this.c.sa.live;
  }

  stats(): CacheStats {
    return this.c.sa.stats();
  }
}
