/**
 * A device's traffic burst, served whole by its IOMMU: `count` requests back to back over
 * a footprint, each translated as a single DMA would be (caches, walk, faults recorded on
 * the event queue), with the counts and a latency histogram written back to the burst's
 * slot.
 *
 * Models: the address patterns of shared/layout/traffic.ts from a seeded generator;
 * requests issued one after another (request k starts when k−1 completed, as one in-order
 * DMA engine would); in functional mode (timing off) the modelled clock does not move and
 * no latency is kept — translation results only.
 * Does not model: page requests (a PRI device's faults are recorded as faults here),
 * several outstanding requests of one device.
 */
import { mulberry32 } from '../shared/prng.js';
import {
  T_APPROX, T_BASE, T_CACHED, T_COUNT, T_END, T_FAULTS, T_FOOTPRINT, T_LAT, T_LAT_MAX, T_LAT_PAIRS, T_LAT_SUM, T_NPAIRS,
  T_PATTERN, T_SEED, T_START, T_TIMING, T_TRANSLATED, T_ZIPF_S,
} from '../shared/layout/traffic.js';
import { ACCESS_WRITE } from '../shared/layout/dma-request.js';
import type { Translator } from './translate.js';
import type { EventQueue } from './event-queue.js';

const PAGE = 4096;
const TWO32 = 0x1_0000_0000; // 2^32

/** Serves the burst in `table` at `at` (slot offset) starting at modelled time `start`; returns the clock after it. */
export function serveBurst(t: Translator, events: EventQueue, table: Float64Array, at: number,
  rid: number, pasid: number, access: number, priv: boolean, start: number): number {
  const count = table[at + T_COUNT];
  const footprint = table[at + T_FOOTPRINT];
  const base = table[at + T_BASE];
  const pattern = table[at + T_PATTERN];
  const timing = table[at + T_TIMING] !== 0;
  const s = table[at + T_ZIPF_S];
  const rand = mulberry32(table[at + T_SEED] >>> 0);
  // Zipf by the continuous inverse CDF of a power law over [1, footprint + 1).
  const oneMinusS = 1 - s;
  const zmax = oneMinusS === 0 ? Math.log(footprint + 1) : Math.pow(footprint + 1, oneMinusS) - 1;
  let clock = start;
  let translated = 0;
  let faults = 0;
  let cached = 0;
  let latSum = 0;
  let latMax = 0;
  for (let i = T_TRANSLATED; i < T_LAT + 2 * T_LAT_PAIRS; i++) table[at + i] = 0;
  let pairs = 0;
  let approx = 0;
  const write = access === ACCESS_WRITE;
  for (let k = 0; k < count; k++) {
    let page: number;
    if (pattern === 0) page = k % footprint;
    else if (pattern === 1) page = Math.floor(rand() * footprint);
    else {
      const u = rand();
      const r = oneMinusS === 0 ? Math.exp(u * zmax) : Math.pow(u * zmax + 1, 1 / oneMinusS);
      page = Math.min(Math.floor(r) - 1, footprint - 1);
    }
    const addr = base + page * PAGE;
    const hi = Math.floor(addr / TWO32);
    const lo = addr - hi * TWO32;
    const st = t.translate(rid, pasid, access, priv, lo >>> 0, hi >>> 0);
    if (st === 0) {
      translated++;
      if (t.cached) cached++;
    } else {
      faults++;
      if (t.suppressed) events.suppressed++;
      else events.record(rid, pasid, lo >>> 0, hi >>> 0, st, write, clock + t.costNs);
    }
    if (timing) {
      const lat = t.costNs;
      clock += lat;
      latSum += lat;
      if (lat > latMax) latMax = lat;
      let j = 0;
      while (j < pairs && table[at + T_LAT + 2 * j] !== lat) j++;
      if (j === pairs) {
        if (pairs < T_LAT_PAIRS) {
          table[at + T_LAT + 2 * pairs] = lat;
          pairs++;
        } else {
          // More distinct values than pairs: count it at the nearest kept value.
          let best = 0;
          for (let q = 1; q < pairs; q++) {
            if (Math.abs(table[at + T_LAT + 2 * q] - lat) < Math.abs(table[at + T_LAT + 2 * best] - lat)) best = q;
          }
          j = best;
          approx++;
        }
      }
      table[at + T_LAT + 2 * j + 1]++;
    }
  }
  table[at + T_TRANSLATED] = translated;
  table[at + T_FAULTS] = faults;
  table[at + T_CACHED] = cached;
  table[at + T_START] = start;
  table[at + T_END] = clock;
  table[at + T_LAT_SUM] = latSum;
  table[at + T_LAT_MAX] = latMax;
  table[at + T_NPAIRS] = pairs;
  table[at + T_APPROX] = approx;
  return clock;
}
