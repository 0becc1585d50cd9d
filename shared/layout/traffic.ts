/**
 * Device traffic bursts: the parameters and results of a burst of DMA a device issues
 * back to back (a workload pattern over a footprint), exchanged through a small table in
 * shared memory; the DMA ring carries one request with the BURST flag and the slot.
 *
 * Models: the simulator's own traffic generator (not a hardware format): sequential,
 * uniform-random and Zipf-distributed page addresses over `footprint` 4 KiB pages from
 * `base`, seeded; per burst the counts, modelled start and end, and the translation
 * latencies as (value, count) pairs — a request's modelled latency is a sum of a few
 * fixed costs, so a burst has few distinct values; beyond T_LAT_PAIRS of them the rest
 * are counted at the nearest kept value and T_APPROX says how many.
 * Does not model: page requests for bursts (faults of a PRI device are recorded like any
 * other), request sizes beyond one address.
 */
export const TRAFFIC_SLOTS = 256;
/** Float64 words per slot. */
export const TRAFFIC_SLOT_F64 = 96;

export const PATTERN_CODE = { sequential: 0, random: 1, zipf: 2 } as const;
export type TrafficPattern = keyof typeof PATTERN_CODE;

// Parameters (written by the coordinator before the request).
export const T_BASE = 0; //       base address (a Number: < 2^53)
export const T_COUNT = 1; //      requests in the burst
export const T_FOOTPRINT = 2; //  pages
export const T_PATTERN = 3; //    PATTERN_CODE
export const T_SEED = 4; //       u32
export const T_ZIPF_S = 5; //     Zipf exponent (> 0)
export const T_TIMING = 6; //     1: cost model on (modelled time advances per request); 0: functional
// Results (written by the worker before the completion).
export const T_TRANSLATED = 8;
export const T_FAULTS = 9;
export const T_CACHED = 10;
export const T_START = 11; //     modelled time of the first request
export const T_END = 12; //       modelled time the last completed
export const T_LAT_SUM = 13;
export const T_LAT_MAX = 14;
export const T_APPROX = 15; //    latencies counted at a nearby value (more distinct values than pairs)
export const T_NPAIRS = 16; //    pairs used
export const T_LAT = 32; //       (value, count) pairs of translation latency
export const T_LAT_PAIRS = 32;
