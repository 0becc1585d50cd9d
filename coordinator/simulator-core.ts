/**
 * The services the coordinator's API objects use from the simulator: table memory, each
 * IOMMU's device tables and domain ids, queue submission, and the checks every call makes.
 * An interface only, so API files depend on this and not on the Simulator class.
 */
import type { HwCmd } from '../shared/layout/profile-codec.js';
import type { ContextTables } from './context-tables.js';
import type { IdSpace } from './id-space.js';
import type { FrameAllocator } from './frame-allocator.js';
import type { Device } from './topology.js';
import type { FailNth } from './fail-nth.js';
import type { ModelledClock } from './modelled-clock.js';
import type { LatencyKind } from './metrics.js';

export interface SimulatorCore {
  readonly frames: FrameAllocator;
  readonly failNth: FailNth;
  readonly clock: ModelledClock;
  tables(iommu: number): ContextTables;
  dids(iommu: number): IdSpace;
  /** Queues descriptors plus a wait on one IOMMU; resolves when the wait completed. */
  flush(iommu: number, descs: HwCmd[], kind: string): Promise<void>;
  /** Records a modelled latency in the simulator's metrics (and on sim.metrics$). */
  recordLatency(kind: LatencyKind, ns: number): void;
  checkOpen(op: string): void;
  checkDevice(dev: Device, op: string): void;
}
