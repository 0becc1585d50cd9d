/**
 * The coordinator's side of traffic bursts: the shared table of burst slots of one IOMMU,
 * where a burst's parameters are written before its request goes out and its results are
 * read after it completes (layout in shared/layout/traffic.ts).
 *
 * Models: nothing of the machine — the simulator's own workload generator's plumbing: at
 * most TRAFFIC_SLOTS bursts in flight per IOMMU (EBUSY beyond), slots taken and given back.
 * Does not model: the burst itself (iommu-worker/traffic.ts serves it).
 */
import { simError } from '../shared/errors.js';
import {
  PATTERN_CODE, TRAFFIC_SLOTS, TRAFFIC_SLOT_F64, T_APPROX, T_BASE, T_CACHED, T_COUNT, T_END, T_FAULTS, T_FOOTPRINT, T_LAT,
  T_LAT_MAX, T_LAT_SUM, T_NPAIRS, T_PATTERN, T_SEED, T_START, T_TIMING, T_TRANSLATED, T_ZIPF_S, type TrafficPattern,
} from '../shared/layout/traffic.js';

export interface TrafficSpec {
  base: number;
  count: number;
  footprint: number;
  pattern: TrafficPattern;
  seed: number;
  zipfS: number;
  timing: boolean;
}

export interface TrafficResult {
  count: number;
  translated: number;
  faults: number;
  cached: number;
  startNs: number;
  endNs: number;
  latencySumNs: number;
  latencyMaxNs: number;
  /** Translation latencies as [modelled ns, how many] pairs (empty in functional mode). */
  latencies: [number, number][];
  /** Latencies counted at a nearby value (the burst had more distinct values than kept). */
  latenciesApproximated: number;
}

export class TrafficSlots {
  /** The table the worker reads parameters from and writes results to. */
  readonly table = new Float64Array(new SharedArrayBuffer(TRAFFIC_SLOTS * TRAFFIC_SLOT_F64 * 8));
  private readonly free = Array.from({ length: TRAFFIC_SLOTS }, (_, i) => TRAFFIC_SLOTS - 1 - i);

  /** Takes a slot and writes the burst's parameters into it; EBUSY when every slot is in use. */
  take(spec: TrafficSpec, iommu: number): number {
    const slot = this.free.pop();
    if (slot === undefined) throw simError('EBUSY', 'dmaTraffic', 'too-many-bursts', `${TRAFFIC_SLOTS} bursts in flight on IOMMU ${iommu}`);
    const at = slot * TRAFFIC_SLOT_F64;
    const tb = this.table;
    tb[at + T_BASE] = spec.base;
    tb[at + T_COUNT] = spec.count;
    tb[at + T_FOOTPRINT] = spec.footprint;
    tb[at + T_PATTERN] = PATTERN_CODE[spec.pattern];
    tb[at + T_SEED] = spec.seed >>> 0;
    tb[at + T_ZIPF_S] = spec.zipfS;
    tb[at + T_TIMING] = spec.timing ? 1 : 0;
    return slot;
  }

  /** Reads the results the worker wrote into `slot` and gives the slot back. */
  results(slot: number): TrafficResult {
    const at = slot * TRAFFIC_SLOT_F64;
    const tb = this.table;
    const res: TrafficResult = {
      count: tb[at + T_COUNT], translated: tb[at + T_TRANSLATED], faults: tb[at + T_FAULTS], cached: tb[at + T_CACHED],
      startNs: tb[at + T_START], endNs: tb[at + T_END], latencySumNs: tb[at + T_LAT_SUM], latencyMaxNs: tb[at + T_LAT_MAX],
      latencies: Array.from({ length: tb[at + T_NPAIRS] }, (_, j): [number, number] => [tb[at + T_LAT + 2 * j], tb[at + T_LAT + 2 * j + 1]]),
      latenciesApproximated: tb[at + T_APPROX],
    };
    this.release(slot);
    return res;
  }

  /** Gives a slot back without reading it (the burst failed). */
  release(slot: number): void {
    this.free.push(slot);
  }
}
