/**
 * PASID cache: decoded scalable-mode PASID-table entries, keyed by (source id, PASID).
 *
 * Models: a set-associative cache (set-assoc.ts) from (sid, pasid) — a two-part integer
 * key, equivalent to sid * 2^20 + pasid — to a decoded PASID entry of the caller's type
 * `V`, recording the entry's DID so that the granularities of the VT-d PASID-cache invalidation descriptor (type 0x7,
 * HARDWARE.md §1.1.3) can select on it: GRAN 0 (all PASIDs of a DID), GRAN 1 (one PASID
 * of a DID) and GRAN 3 (global). The descriptor carries no source id, so GRAN 0 and 1 hit
 * the matching entries of every device.
 * Does not model: caching of PASID-directory entries, of non-present or faulting PASID
 * entries (the caller decides what to insert), lookup latency, the descriptor's reserved
 * granularity 2.
 */
import { TAG_ID_MAX } from './iotlb.js';
import { KeyedSetAssoc, type CacheConfig, type CacheStats } from './set-assoc.js';

export type PasidCacheConfig = CacheConfig;

const PASID_SPACE = 1 << 20;

function checkSid(op: string, sid: number): void {
  if (!Number.isInteger(sid) || sid < 0 || sid > 0xffff) throw new RangeError(`${op}: sid ${sid} not 16-bit`);
}

function checkPasid(op: string, pasid: number): void {
  if (!Number.isInteger(pasid) || pasid < 0 || pasid >= PASID_SPACE) {
    throw new RangeError(`${op}: pasid ${pasid} not 20-bit`);
  }
}

function checkDid(op: string, did: number): void {
  if (!Number.isInteger(did) || did < 0 || did > TAG_ID_MAX) throw new RangeError(`${op}: did ${did} beyond the tag ids`);
}

export interface PasidCacheEntry<V> {
  sid: number;
  pasid: number;
  did: number;
  value: V;
}

export class PasidCache<V> {
  private readonly c: KeyedSetAssoc<V>;
  /** DID of the entry in each slot. */
  private readonly dids: Uint32Array;

  constructor(cfg: PasidCacheConfig) {
    this.c = new KeyedSetAssoc<V>('pasid-cache', cfg);
    this.dids = new Uint32Array(this.c.sa.entries);
  }

  /** The cached PASID entry of (sid, pasid), or undefined (counts a hit or a miss). */
  lookup(sid: number, pasid: number): V | undefined {
    return this.c.lookup(sid, pasid);
  }

  /** Slot of the last hit or insert, for lookupAt(). */
  get lastSlot(): number {
    return this.c.last;
  }

  /** lookup() of (sid, pasid) last seen in `slot`; undefined (nothing counted) if the slot changed. */
  lookupAt(slot: number, sid: number, pasid: number): V | undefined {
    return this.c.hitAt(slot, sid, pasid);
  }

  /** Caches the decoded PASID entry of (sid, pasid), whose DID is `did`. */
  insert(sid: number, pasid: number, did: number, value: V): void {
    checkSid('pasid-cache.insert', sid);
    checkPasid('pasid-cache.insert', pasid);
    checkDid('pasid-cache.insert', did);
    const slot = this.c.insert(sid, pasid, value);
    this.dids[slot] = did;
  }

  /** PASID-cache invalidation, GRAN 3 (global). */
  invalidateAll(): number {
    return this.c.clear();
  }

  /** PASID-cache invalidation, GRAN 0: every entry whose DID is `did`, any device, any PASID. */
  invalidateDomain(did: number): number {
    checkDid('pasid-cache.invalidateDomain', did);
    return this.invalidateWhere(did, -1);
  }

  /** PASID-cache invalidation, GRAN 1: entries with DID `did` and PASID `pasid`, any device. */
  invalidatePasid(did: number, pasid: number): number {
    checkDid('pasid-cache.invalidatePasid', did);
    checkPasid('pasid-cache.invalidatePasid', pasid);
    return this.invalidateWhere(did, pasid);
  }

  /**
   * Entries of one device: every PASID (`pasid` −1) or one. The SMMUv3 CFGI_CD / CFGI_CD_ALL
   * and AMD INVALIDATE_DEVTAB_ENTRY scopes, which name the stream rather than a tag.
   */
  invalidateDevice(sid: number, pasid = -1): number {
    checkSid('pasid-cache.invalidateDevice', sid);
    const { state } = this.c.sa;
    let removed = 0;
    for (let s = 0; s < state.length; s++) {
      if (state[s] === 0 || this.c.keyA[s] !== sid) continue;
      if (pasid >= 0 && this.c.keyB[s] !== pasid) continue;
      removed += this.c.removeSlot(s);
    }
    return removed;
  }

  private invalidateWhere(did: number, pasid: number): number {
    const { state } = this.c.sa;
    const pasids = this.c.keyB;
    let removed = 0;
    for (let s = 0; s < state.length; s++) {
      if (state[s] === 0 || this.dids[s] !== did) continue;
      if (pasid >= 0 && pasids[s] !== pasid) continue;
      removed += this.c.removeSlot(s);
    }
    return removed;
  }

  /** Every cached entry (allocates; for test hooks). */
  entries(): Array<PasidCacheEntry<V>> {
    const out: Array<PasidCacheEntry<V>> = [];
    const { state } = this.c.sa;
    for (let s = 0; s < state.length; s++) {
      if (state[s] === 0) continue;
      out.push({ sid: this.c.keyA[s], pasid: this.c.keyB[s], did: this.dids[s], value: this.c.values[s] as V });
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
