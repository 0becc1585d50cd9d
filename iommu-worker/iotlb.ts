/**
 * IOTLB: the IOMMU's cache of completed translations (VT-d scalable mode, HARDWARE.md §1.1).
 *
 * Models: a set-associative IOTLB (set-assoc.ts) whose entries map one page of 4 KiB,
 * 2 MiB or 1 GiB, tagged by (DID, pasidTag, page base). First-stage, nested and
 * pass-through translations are PASID-tagged (pasidTag = the PASID); second-stage-only
 * translations are not (pasidTag = NO_PASID_TAG) and are shared by every PASID whose
 * PASID entry uses that DID. Outputs: the output page number, permission bits, page size
 * and the PGTT the entry was filled under. Invalidation scopes are exactly those of the
 * VT-d descriptors: IOTLB global / domain-selective (DSI) / page-selective-within-domain
 * (PSI), and PASID-based IOTLB granularity 2 (all of one PASID) and 3 (PSI within PASID).
 * Does not model: paging-structure caches (so the IH hint and the PSI "invalidate
 * paging-structure caches" effect are no-ops), the drain bits DR/DW, caching of faults or
 * of non-present entries, lookup latency (timing.ts), ATS (dev-tlb.ts).
 *
 * Addresses are page numbers: vpn = IOVA / 4096 and pfn = PA / 4096, as JS numbers (exact
 * below 2^53; checked < 2^52, i.e. a 64-bit address space). The hot path — `lookup` and
 * the accessors — allocates nothing and compares tags in typed arrays. `lookup` is kept
 * small enough for V8 to inline into its caller (its bytecode must stay under the ~460-byte
 * inlining limit): the 4 KiB probe is inline, the 2 MiB / 1 GiB probes are out of line.
 *
 * Set index: the page number at the entry's size (vpn >> (sizeShift - 12)), low 32 bits,
 * XOR a cheap hash of (did, pasidTag), masked to the set count. Consecutive pages of one
 * address space fill distinct sets, and address spaces that use the same IOVAs (SVA
 * processes) do not all collide.
 * A lookup probes one set per page size that has at least one entry cached (per-size
 * counts), smallest size first, so a 4 KiB-only IOTLB does a single probe.
 *
 * Overlapping entries of different sizes (e.g. 4 KiB entries left cached after the
 * mapping was promoted to a 2 MiB page) may coexist, as in hardware; the smallest wins.
 */
import { PERM_EXEC, PERM_READ, PERM_USER, PERM_WRITE } from '../shared/layout/pte-format.js';
import { SetAssoc, type CacheConfig, type CacheStats } from './set-assoc.js';

/** pasidTag of entries that are not PASID-tagged (second-stage-only translations). */
export const NO_PASID_TAG = 0xffffffff;
/**
 * Largest tag id: the 16-bit DIDs, ASIDs and DomainIDs, and one more bit for SMMUv3's
 * stage-2 tags (STAGE2_TAG + VMID), which share the TLB with the ASIDs but not their space.
 */
export const TAG_ID_MAX = 0x1ffff;
export const STAGE2_TAG = 0x10000;

/**
 * Permission bits of an entry (`perm`): the ones shared/layout/pte-format.ts defines for
 * the walker, re-exported so cache users need one import. Bit 8 is the user/supervisor
 * information: set = user-accessible (first stage: U/S = 1 at every level; always set for
 * second-stage and pass-through translations), clear = supervisor-only.
 */
export { PERM_READ, PERM_WRITE, PERM_EXEC, PERM_USER } from '../shared/layout/pte-format.js';
/** Alias of PERM_USER (bit value 8); set means user-accessible, clear supervisor-only. */
export const PERM_PRIV = PERM_USER;
export const PERM_MASK = PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER;

/** PASID-entry PGTT values (HARDWARE.md §1.1.2). */
export const PGTT_FIRST_STAGE = 1;
export const PGTT_SECOND_STAGE = 2;
export const PGTT_NESTED = 3;
export const PGTT_PASS_THROUGH = 4;

/** log2 of the page sizes an entry can map. */
export type PageSizeShift = 12 | 21 | 30;
export const PAGE_SIZE_SHIFTS: readonly PageSizeShift[] = [12, 21, 30];

/** Wildcards for `invalidateRange`. */
export const ANY_DID = -1;
export const ANY_PASID_TAG = -1;

/** Page numbers are checked to lie below this (a 64-bit byte address space). */
export const PAGE_NUMBER_LIMIT = 2 ** 52;

export type IotlbConfig = CacheConfig;

/** One cached translation, as `entries()` reports it (test hooks, debugging). */
export interface IotlbEntry {
  did: number;
  pasidTag: number;
  /** Page number of the base of the page (aligned to the size). */
  vpn: number;
  sizeShift: PageSizeShift;
  /** Output page number of the base of the page. */
  pfn: number;
  perm: number;
  pgtt: number;
}

const TWO_9 = 512;
const TWO_18 = 262144;

/**
 * The whole tag of a slot in one float64, so a probe does two compares (page base, tag):
 * did (16 bits) · 2^34 + pasidTag (32 bits) · 4 + size code (0: 4 KiB, 1: 2 MiB, 2: 1 GiB).
 * 50 bits, exact. Invalid slots hold NaN, which equals nothing.
 */
const TAG_DID_MUL = 2 ** 34;

function sizeCode(sizeShift: number): number {
  return sizeShift === 12 ? 0 : sizeShift === 21 ? 1 : 2;
}

/**
 * Hash of (did, pasidTag) XORed into the set index: the PASID with its high 10 bits folded
 * onto the low ones, XOR the DID times the golden ratio (a bijection on every low-bit
 * window, so consecutive DIDs spread). Deliberately cheap: it is on the hit path.
 */
function tagHash(did: number, pasidTag: number): number {
  return pasidTag ^ (pasidTag >>> 10) ^ Math.imul(did, 0x9e3779b1);
}

function checkPageNumber(op: string, what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n >= PAGE_NUMBER_LIMIT) {
    throw new RangeError(`${op}: ${what} ${n} is not a page number in [0, 2^52)`);
  }
}

function checkAm(op: string, am: number): void {
  if (!Number.isInteger(am) || am < 0 || am > 63) throw new RangeError(`${op}: am ${am} not in [0, 63]`);
}

export class Iotlb {
  readonly sa: SetAssoc;
  readonly entriesCount: number;
  readonly sets: number;
  readonly ways: number;

  // TAGS (state byte in sa.state = sizeShift, 0 = invalid). `tagKeys` is the lookup's copy
  // of (did, pasidTag, size) in one number; `dids` / `pasidTags` serve scans and entries().
  private readonly state: Uint8Array;
  private readonly vpns: Float64Array;
  private readonly tagKeys: Float64Array;
  private readonly pasidTags: Uint32Array;
  private readonly dids: Uint32Array;
  // OUTPUTS
  private readonly pfns: Float64Array;
  private readonly perms: Uint8Array;
  private readonly pgtts: Uint8Array;

  private readonly setMask: number;
  /** Valid entries per page size. */
  private n4k = 0;
  private n2m = 0;
  private n1g = 0;

  constructor(cfg: IotlbConfig, what = 'iotlb') {
    this.sa = new SetAssoc(what, cfg);
    this.entriesCount = this.sa.entries;
    this.sets = this.sa.sets;
    this.ways = this.sa.ways;
    this.setMask = this.sa.setMask;
    this.state = this.sa.state;
    const n = this.sa.entries;
    this.vpns = new Float64Array(n);
    this.tagKeys = new Float64Array(n).fill(NaN);
    this.pasidTags = new Uint32Array(n);
    this.dids = new Uint32Array(n);
    this.pfns = new Float64Array(n);
    this.perms = new Uint8Array(n);
    this.pgtts = new Uint8Array(n);
  }

  /**
   * Finds the entry translating 4 KiB page `vpn` for (did, pasidTag). Returns a handle
   * (≥ 0) for the accessors, valid until the next insert or invalidation, or -1 on a miss.
   * Counts a hit or a miss; a hit updates LRU. Arguments are not validated here.
   */
  lookup(did: number, pasidTag: number, vpn: number): number {
    // Keep this small: V8 inlines it only under its bytecode-size limit (see header).
    if (this.n4k !== 0) {
      const vpns = this.vpns;
      const keys = this.tagKeys;
      const tk = did * TAG_DID_MUL + pasidTag * 4; // size code 0
      let s = (((vpn >>> 0) ^ tagHash(did, pasidTag)) & this.setMask) * this.ways;
      const end = s + this.ways;
      for (; s < end; s++) {
        if (vpns[s] === vpn && keys[s] === tk) return this.hit(s);
      }
    }
    return this.lookupLarge(did, pasidTag, vpn);
  }

  /** The 2 MiB and 1 GiB probes of `lookup`, and the miss. */
  private lookupLarge(did: number, pasidTag: number, vpn: number): number {
    if (this.n2m !== 0) {
      const s = this.probe(did, pasidTag, Math.floor(vpn / TWO_9), TWO_9, 21);
      if (s >= 0) return this.hit(s);
    }
    if (this.n1g !== 0) {
      const s = this.probe(did, pasidTag, Math.floor(vpn / TWO_18), TWO_18, 30);
      if (s >= 0) return this.hit(s);
    }
    this.sa.misses++;
    return -1;
  }

  /** Slot of the valid entry (did, pasidTag, size sizeShift, base pn * pages), or -1. */
  private probe(did: number, pasidTag: number, pn: number, pages: number, sizeShift: number): number {
    const base = pn * pages;
    const tk = did * TAG_DID_MUL + pasidTag * 4 + sizeCode(sizeShift);
    let s = (((pn >>> 0) ^ tagHash(did, pasidTag)) & this.setMask) * this.ways;
    const end = s + this.ways;
    for (; s < end; s++) {
      if (this.vpns[s] === base && this.tagKeys[s] === tk) return s;
    }
    return -1;
  }

  private hit(s: number): number {
    this.sa.hits++;
    this.sa.touch(s);
    return s;
  }

  /** Output page number of the entry's base page. */
  pfnOf(h: number): number {
    return this.pfns[h];
  }

  permOf(h: number): number {
    return this.perms[h];
  }

  sizeShiftOf(h: number): PageSizeShift {
    return this.state[h] as PageSizeShift;
  }

  pgttOf(h: number): number {
    return this.pgtts[h];
  }

  /** Page number of the entry's base page (input side). */
  vpnOf(h: number): number {
    return this.vpns[h];
  }

  /** Output page number for 4 KiB page `vpn`, which must lie inside entry `h`. */
  translatePfn(h: number, vpn: number): number {
    return this.pfns[h] + (vpn - this.vpns[h]);
  }

  /**
   * Caches a translation of the page at `vpn` (its base, aligned to the size) to `pfn`
   * (aligned likewise). An entry with the same tag and size is rewritten in place;
   * otherwise the set's victim is replaced. Throws RangeError on a malformed entry.
   */
  insert(did: number, pasidTag: number, vpn: number, sizeShift: number, pfn: number, perm: number, pgtt: number): void {
    const op = 'iotlb.insert';
    if (!Number.isInteger(did) || did < 0 || did > TAG_ID_MAX) throw new RangeError(`${op}: did ${did} beyond the tag ids`);
    if (!Number.isInteger(pasidTag) || pasidTag < 0 || pasidTag > 0xffffffff) {
      throw new RangeError(`${op}: pasidTag ${pasidTag} not a u32`);
    }
    if (sizeShift !== 12 && sizeShift !== 21 && sizeShift !== 30) throw new RangeError(`${op}: sizeShift ${sizeShift}`);
    checkPageNumber(op, 'vpn', vpn);
    checkPageNumber(op, 'pfn', pfn);
    const pages = sizeShift === 12 ? 1 : sizeShift === 21 ? TWO_9 : TWO_18;
    if (vpn % pages !== 0 || pfn % pages !== 0) {
      throw new RangeError(`${op}: vpn ${vpn} / pfn ${pfn} not aligned to a 2^${sizeShift}-byte page`);
    }
    if (!Number.isInteger(perm) || perm < 0 || perm > PERM_MASK) throw new RangeError(`${op}: perm ${perm}`);
    if (!Number.isInteger(pgtt) || pgtt < 1 || pgtt > 4) throw new RangeError(`${op}: pgtt ${pgtt} not in 1..4`);
    this.fillEntry(did, pasidTag, vpn, sizeShift, pfn, perm, pgtt);
  }

  /**
   * insert() without argument checks, for the translation hot path whose arguments come
   * from the walker (already well formed). Same effect as insert().
   */
  fillEntry(did: number, pasidTag: number, vpn: number, sizeShift: number, pfn: number, perm: number, pgtt: number): void {
    const pages = sizeShift === 12 ? 1 : sizeShift === 21 ? TWO_9 : TWO_18;
    const slot = this.probe(did, pasidTag, vpn / pages, pages, sizeShift);
    if (slot < 0) {
      this.fillAbsent(did, pasidTag, vpn, sizeShift, pfn, perm, pgtt);
      return;
    }
    this.sa.refresh(slot);
    this.pfns[slot] = pfn;
    this.perms[slot] = perm;
    this.pgtts[slot] = pgtt;
  }

  /**
   * fillEntry() for a tag known not to be cached at that size — the caller's lookup() of
   * a page inside it just missed — so no probe for an entry to rewrite is needed.
   */
  fillAbsent(did: number, pasidTag: number, vpn: number, sizeShift: number, pfn: number, perm: number, pgtt: number): void {
    const pn = sizeShift === 12 ? vpn : vpn / (sizeShift === 21 ? TWO_9 : TWO_18);
    const slot = this.sa.victim(((pn >>> 0) ^ tagHash(did, pasidTag)) & this.setMask);
    const old = this.state[slot];
    if (old !== 0) this.count(old, -1);
    this.vpns[slot] = vpn;
    this.pasidTags[slot] = pasidTag;
    this.dids[slot] = did;
    this.tagKeys[slot] = did * TAG_DID_MUL + pasidTag * 4 + sizeCode(sizeShift);
    this.sa.fill(slot, sizeShift);
    this.count(sizeShift, 1);
    this.pfns[slot] = pfn;
    this.perms[slot] = perm;
    this.pgtts[slot] = pgtt;
  }


  private count(sizeShift: number, d: number): void {
    if (sizeShift === 12) this.n4k += d;
    else if (sizeShift === 21) this.n2m += d;
    else this.n1g += d;
  }

  private dropSlot(s: number): number {
    this.count(this.state[s], -1);
    this.tagKeys[s] = NaN;
    return this.sa.drop(s);
  }

  // ---- invalidation: the VT-d descriptor scopes --------------------------------------

  /** IOTLB invalidation, global granularity: every entry. */
  invalidateAll(): number {
    this.n4k = this.n2m = this.n1g = 0;
    this.tagKeys.fill(NaN);
    return this.sa.clear();
  }

  /** IOTLB invalidation, domain-selective (DSI): every entry of `did`, PASID-tagged or not. */
  invalidateDomain(did: number): number {
    return this.invalidateRange(did, ANY_PASID_TAG, 0, Infinity);
  }

  /**
   * IOTLB invalidation, page-selective-within-domain (PSI): entries of `did` that are not
   * PASID-tagged (pasidTag === NO_PASID_TAG) and overlap pages [vpn, vpn + 2^am), where
   * the low `am` bits of vpn are ignored (as hardware ignores ADDR bits below the mask).
   * A large page that overlaps the range only partly is removed too.
   */
  invalidateDomainRange(did: number, vpn: number, am: number): number {
    return this.invalidateAligned('iotlb.invalidateDomainRange', did, NO_PASID_TAG, vpn, am);
  }

  /** PASID-based IOTLB invalidation, granularity 2: every entry of (did, pasid). */
  invalidatePasid(did: number, pasid: number): number {
    return this.invalidateRange(did, pasid, 0, Infinity);
  }

  /**
   * PASID-based IOTLB invalidation, granularity 3 (PSI within PASID): entries of
   * (did, pasid) overlapping pages [vpn, vpn + 2^am), low `am` bits of vpn ignored.
   */
  invalidatePasidRange(did: number, pasid: number, vpn: number, am: number): number {
    return this.invalidateAligned('iotlb.invalidatePasidRange', did, pasid, vpn, am);
  }

  private invalidateAligned(op: string, did: number, pasidTag: number, vpn: number, am: number): number {
    checkPageNumber(op, 'vpn', vpn);
    checkAm(op, am);
    const size = 2 ** am;
    const start = vpn - (vpn % size);
    return this.invalidateRange(did, pasidTag, start, size);
  }

  /**
   * The general form every scope reduces to: removes the entries whose did matches
   * (`ANY_DID` matches all), whose pasidTag matches (`ANY_PASID_TAG` matches all) and
   * that overlap pages [vpn, vpn + npages) (`npages = Infinity` for the whole space).
   * Returns the number removed. Small ranges with an exact tag probe the candidate sets
   * for each cached page size; anything else scans every slot.
   */
  invalidateRange(did: number, pasidTag: number, vpn: number, npages: number): number {
    checkPageNumber('iotlb.invalidateRange', 'vpn', vpn);
    if (!(npages === Infinity || (Number.isSafeInteger(npages) && npages >= 1))) {
      throw new RangeError(`iotlb.invalidateRange: npages ${npages} is not a positive integer`);
    }
    if (this.sa.live === 0) return 0;
    const start = vpn;
    const end = vpn + npages;
    if (did !== ANY_DID && pasidTag !== ANY_PASID_TAG && end !== Infinity) {
      let probes = 0;
      if (this.n4k !== 0) probes += end - start;
      if (this.n2m !== 0) probes += Math.floor((end - 1) / TWO_9) - Math.floor(start / TWO_9) + 1;
      if (this.n1g !== 0) probes += Math.floor((end - 1) / TWO_18) - Math.floor(start / TWO_18) + 1;
      if (probes < this.sets) return this.invalidateByProbe(did, pasidTag, start, end);
    }
    return this.invalidateByScan(did, pasidTag, start, end);
  }

  private invalidateByProbe(did: number, pasidTag: number, start: number, end: number): number {
    let removed = 0;
    for (const shift of PAGE_SIZE_SHIFTS) {
      if ((shift === 12 ? this.n4k : shift === 21 ? this.n2m : this.n1g) === 0) continue;
      const pages = 2 ** (shift - 12);
      const lastPn = Math.floor((end - 1) / pages);
      for (let pn = Math.floor(start / pages); pn <= lastPn; pn++) {
        const s = this.probe(did, pasidTag, pn, pages, shift);
        if (s >= 0) removed += this.dropSlot(s);
      }
    }
    return removed;
  }

  private invalidateByScan(did: number, pasidTag: number, start: number, end: number): number {
    let removed = 0;
    const n = this.entriesCount;
    for (let s = 0; s < n; s++) {
      const st = this.state[s];
      if (st === 0) continue;
      if (did !== ANY_DID && this.dids[s] !== did) continue;
      if (pasidTag !== ANY_PASID_TAG && this.pasidTags[s] !== pasidTag) continue;
      const v = this.vpns[s];
      if (v < end && v + 2 ** (st - 12) > start) removed += this.dropSlot(s);
    }
    return removed;
  }

  // ---- introspection -----------------------------------------------------------------

  /** Every valid entry, in slot order (allocates; for test hooks and debugging). */
  entries(): IotlbEntry[] {
    const out: IotlbEntry[] = [];
    for (let s = 0; s < this.entriesCount; s++) {
      const st = this.state[s];
      if (st === 0) continue;
      out.push({
        did: this.dids[s],
        pasidTag: this.pasidTags[s],
        vpn: this.vpns[s],
        sizeShift: st as PageSizeShift,
        pfn: this.pfns[s],
        perm: this.perms[s],
        pgtt: this.pgtts[s],
      });
    }
    return out;
  }

  /** Valid entries right now. */
  get size(): number {
    return this.sa.live;
  }

  stats(): CacheStats {
    return this.sa.stats();
  }
}
