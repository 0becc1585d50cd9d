/**
 * Set-associative storage shared by the worker's translation caches (IOTLB, device TLB,
 * context cache, PASID cache).
 *
 * Models: `sets` × `ways` slots (slot = set * ways + way); one state byte per slot (0 =
 * invalid, anything else = valid: owners may keep a small tag there, the IOTLB keeps the
 * page-size shift); replacement 'lru' (true LRU by a per-slot use stamp) or 'rr' (round
 * robin per set: an invalid way if there is one, else the way after the last one replaced,
 * which is FIFO order while nothing in the set is invalidated); hit / miss / insert /
 * evict / invalidate counters.
 * Does not model: lookup latency or port contention (timing.ts), pseudo-LRU trees, random
 * replacement, fully associative "assoc 0" (use ways === entries), parity/ECC errors.
 *
 * Ownership: `SetAssoc` keeps slot state and replacement only. Tags and outputs live in
 * the owner's typed arrays, indexed by slot, so the owner's lookup compares tags inline
 * without allocating. Owners count hits and misses themselves (`hits++` / `misses++`);
 * `fill`, `refresh`, `drop` and `clear` count inserts, evictions and invalidations.
 * `KeyedSetAssoc<V>` below is the ready-made owner for caches keyed by a pair of u32.
 */

export type ReplacementPolicy = 'lru' | 'rr';

/** The shape every cache's config shares (STYLE.md §6 habit 8). */
export interface CacheConfig {
  /** Total number of entries; a power of two. */
  entries: number;
  /** Associativity; a power of two ≤ entries (ways === entries is fully associative). */
  ways: number;
  /** Replacement policy; default 'lru'. */
  policy?: ReplacementPolicy;
}

/** Counters as a plain object (copied, safe to post across threads). */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Entries written: new fills, plus re-inserts of an entry already cached. */
  inserts: number;
  /** Valid entries displaced by a fill (capacity/conflict evictions). */
  evictions: number;
  /** Valid entries removed by invalidations (all scopes). */
  invalidations: number;
  /** Valid entries right now. */
  valid: number;
  entries: number;
  sets: number;
  ways: number;
}

function isPow2(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

/** Validates a cache config; throws RangeError on a bad one. Returns the resolved policy. */
export function checkCacheConfig(what: string, cfg: CacheConfig): ReplacementPolicy {
  if (cfg === null || typeof cfg !== 'object') throw new RangeError(`${what}: config must be an object`);
  const { entries, ways } = cfg;
  if (!isPow2(entries)) throw new RangeError(`${what}: entries ${entries} is not a power of two in [1, 2^30]`);
  if (!isPow2(ways)) throw new RangeError(`${what}: ways ${ways} is not a power of two`);
  if (ways > entries) throw new RangeError(`${what}: ways ${ways} > entries ${entries}`);
  const policy = cfg.policy ?? 'lru';
  if (policy !== 'lru' && policy !== 'rr') throw new RangeError(`${what}: unknown policy ${String(policy)}`);
  return policy;
}

export class SetAssoc {
  readonly entries: number;
  readonly sets: number;
  readonly ways: number;
  /** sets - 1 (sets is a power of two). */
  readonly setMask: number;
  /** log2(sets). */
  readonly setBits: number;
  readonly policy: ReplacementPolicy;
  /** Per slot: 0 = invalid; nonzero = valid (the value is the owner's). */
  readonly state: Uint8Array;

  hits = 0;
  misses = 0;
  inserts = 0;
  evictions = 0;
  invalidations = 0;
  /** Number of valid slots. */
  live = 0;

  private readonly lru: boolean;
  /** LRU: last-use stamp per slot (a float64 counter stays exact for 2^53 uses). */
  private readonly stamp: Float64Array;
  private clock = 0;
  /** RR: next way to replace, per set. */
  private readonly rrNext: Uint32Array;

  constructor(what: string, cfg: CacheConfig) {
    this.policy = checkCacheConfig(what, cfg);
    this.entries = cfg.entries;
    this.ways = cfg.ways;
    this.sets = cfg.entries / cfg.ways;
    this.setMask = this.sets - 1;
    this.setBits = Math.log2(this.sets);
    this.lru = this.policy === 'lru';
    this.state = new Uint8Array(this.entries);
    this.stamp = new Float64Array(this.lru ? this.entries : 0);
    this.rrNext = new Uint32Array(this.lru ? 0 : this.sets);
  }

  /** Records a use of `slot` (a hit) for LRU; no-op under round robin. */
  touch(slot: number): void {
    if (this.lru) this.stamp[slot] = ++this.clock;
  }

  /**
   * The slot a fill of `set` should use: the first invalid way, else the policy's victim.
   * A valid victim is still intact when this returns, so the owner can read its tags
   * before `fill` replaces it.
   */
  victim(set: number): number {
    const state = this.state;
    const base = set * this.ways;
    const end = base + this.ways;
    if (!this.lru) {
      for (let s = base; s < end; s++) if (state[s] === 0) return s;
      return base + this.rrNext[set];
    }
    // One pass: the first invalid way, else the least recently used.
    const stamp = this.stamp;
    let best = base;
    let bestStamp = Infinity;
    for (let s = base; s < end; s++) {
      if (state[s] === 0) return s;
      if (stamp[s] < bestStamp) {
        bestStamp = stamp[s];
        best = s;
      }
    }
    return best;
  }


  /** Marks `slot` valid with state byte `tag` (nonzero, < 256); counts an eviction if it was valid. */
  fill(slot: number, tag = 1): void {
    if (this.state[slot] !== 0) {
      this.evictions++;
      if (!this.lru) {
        const set = (slot / this.ways) | 0;
        this.rrNext[set] = (slot - set * this.ways + 1) & (this.ways - 1);
      }
    } else {
      this.live++;
    }
    this.state[slot] = tag;
    this.inserts++;
    this.touch(slot);
  }

  /** An insert that found its entry already cached and rewrote it in place. */
  refresh(slot: number): void {
    this.inserts++;
    this.touch(slot);
  }

  /** Invalidates one slot; returns 1 if it was valid, else 0. */
  drop(slot: number): number {
    if (this.state[slot] === 0) return 0;
    this.state[slot] = 0;
    this.live--;
    this.invalidations++;
    return 1;
  }

  /** Invalidates every slot; returns how many were valid. */
  clear(): number {
    const n = this.live;
    this.state.fill(0);
    this.live = 0;
    this.invalidations += n;
    return n;
  }

  stats(): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      inserts: this.inserts,
      evictions: this.evictions,
      invalidations: this.invalidations,
      valid: this.live,
      entries: this.entries,
      sets: this.sets,
      ways: this.ways,
    };
  }
}

/**
 * A set-associative cache from a two-part integer key (a, b), each part a u32, to a JS
 * value `V` (the context cache uses (sid, 0), the PASID cache (sid, pasid)). The set index
 * is a multiplicative hash of both parts, taken from the product's high bits, so keys that
 * differ only in `a` (another device's PASID 0) do not pile into one set. Integer math
 * only: no bigint, no float division, no allocation on lookup.
 */
export class KeyedSetAssoc<V> {
  readonly sa: SetAssoc;
  readonly keyA: Uint32Array;
  readonly keyB: Uint32Array;
  readonly values: (V | undefined)[];
  private readonly shift: number;

  constructor(what: string, cfg: CacheConfig) {
    this.sa = new SetAssoc(what, cfg);
    this.keyA = new Uint32Array(this.sa.entries);
    this.keyB = new Uint32Array(this.sa.entries);
    this.values = new Array<V | undefined>(this.sa.entries).fill(undefined);
    this.shift = 32 - this.sa.setBits; // setBits 0 → shift 32 ≡ 0, then masked to set 0
  }

  /** Set index of key (a, b). */
  setOf(a: number, b: number): number {
    const h = Math.imul(b ^ Math.imul(a, 0x85ebca6b), 0x9e3779b1);
    return (h >>> this.shift) & this.sa.setMask;
  }

  /** Slot holding (a, b), or -1; no statistics, no LRU update. */
  find(a: number, b: number): number {
    const sa = this.sa;
    const state = sa.state;
    let s = this.setOf(a, b) * sa.ways;
    const end = s + sa.ways;
    for (; s < end; s++) if (this.keyB[s] === b && this.keyA[s] === a && state[s] !== 0) return s;
    return -1;
  }

  /** Slot of the last successful lookup() or insert() (-1 before any). */
  last = -1;

  /** Looks (a, b) up, counting a hit or a miss and updating LRU on a hit. */
  lookup(a: number, b: number): V | undefined {
    const s = this.find(a, b);
    if (s < 0) {
      this.sa.misses++;
      return undefined;
    }
    this.last = s;
    this.sa.hits++;
    this.sa.touch(s);
    return this.values[s];
  }

  /**
   * lookup() for a key the caller saw in slot `s` before: if the slot still holds (a, b)
   * it is a hit, counted and touched exactly as lookup() would (a key is never cached in
   * two slots); otherwise undefined and nothing is counted — the caller then lookup()s.
   */
  hitAt(s: number, a: number, b: number): V | undefined {
    if (s < 0 || this.sa.state[s] === 0 || this.keyA[s] !== a || this.keyB[s] !== b) return undefined;
    this.sa.hits++;
    this.sa.touch(s);
    return this.values[s];
  }

  /** Caches `value` under (a, b), replacing a value cached for the same key; returns the slot. */
  insert(a: number, b: number, value: V): number {
    if (!isU32(a) || !isU32(b)) throw new RangeError(`cache key (${a}, ${b}) is not a pair of u32`);
    let s = this.find(a, b);
    if (s >= 0) {
      this.sa.refresh(s);
    } else {
      s = this.sa.victim(this.setOf(a, b));
      this.keyA[s] = a;
      this.keyB[s] = b;
      this.sa.fill(s);
    }
    this.values[s] = value;
    this.last = s;
    return s;
  }

  /** Invalidates (a, b) if cached; returns 1 if removed, else 0. */
  remove(a: number, b: number): number {
    const s = this.find(a, b);
    return s < 0 ? 0 : this.removeSlot(s);
  }

  removeSlot(slot: number): number {
    const n = this.sa.drop(slot);
    this.values[slot] = undefined; // let the decoded entry be collected
    return n;
  }

  clear(): number {
    this.values.fill(undefined);
    return this.sa.clear();
  }
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
