/**
 * The services the coordinator's API objects use from the simulator: table memory, each
 * IOMMU's device tables and domain ids, queue submission, and the checks every call makes.
 * An interface only, so API files depend on this and not on the Simulator class.
 */
import type { HwCmd } from '../shared/layout/profile-codec.js';
import type { ContextTables } from './context-tables.js';
import type { SmmuTables } from './smmu-tables.js';
import type { AmdTables } from './amd-tables.js';
import type { IdSpace, IdSpaceKind } from './id-space.js';
import type { ProfileName } from '../shared/config.js';

/** One IOMMU's device tables: VT-d root/context/PASID tables, SMMUv3 stream/CD tables, AMD DTE/GCR3. */
export type DeviceTables = ContextTables | SmmuTables | AmdTables;
import type { FrameAllocator } from './frame-allocator.js';
import type { Device } from './topology.js';
import type { FailNth } from './fail-nth.js';
import type { ModelledClock } from './modelled-clock.js';
import type { LatencyKind } from './metrics.js';

export interface SimulatorCore {
  readonly frames: FrameAllocator;
  readonly failNth: FailNth;
  readonly clock: ModelledClock;
  /** The hardware profile of every IOMMU. */
  readonly profile: ProfileName;
  tables(iommu: number): DeviceTables;
  /** VT-d: the DID space of one IOMMU. */
  dids(iommu: number): IdSpace;
  /**
   * A tag space of the SMMUv3/AMD drivers, with Linux's scope: SMMUv3 ASIDs and AMD domain
   * ids are system-wide (`iommu` ignored), SMMUv3 VMIDs per SMMU.
   */
  idSpace(kind: Exclude<IdSpaceKind, 'vtd-did'>, iommu?: number): IdSpace;
  /** Queues descriptors plus a wait on one IOMMU; resolves when the wait completed. */
  flush(iommu: number, descs: HwCmd[], kind: string): Promise<void>;
  /** Records a modelled latency in the simulator's metrics (and on sim.metrics$). */
  recordLatency(kind: LatencyKind, ns: number): void;
  checkOpen(op: string): void;
  checkDevice(dev: Device, op: string): void;
}
