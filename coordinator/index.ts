/**
 * The package entry point: everything users import from 'iommu-sim'.
 */
export { Simulator } from './simulator.js';
export { TestHooks } from './test-hooks.js';
export type { SimulatorOptions, FaultRecord, SimEvent, DmaRequestSpec, DmaResult, Perm, SimStats, MetricSample, TrafficRequestSpec } from './simulator.js';
export type { TrafficResult } from './traffic-slots.js';
export { Metrics, LATENCY_KINDS, DECADE_LABELS, LatencyDistribution, LOG_BIN_EDGES_NS } from './metrics.js';
export { runCmdqModel } from './cmdq/cmdq-model.js';
export type { CmdqResults, CmdqRun } from './cmdq/cmdq-model.js';
export { CMDQ_ALGORITHMS, INVALIDATION_MODES } from './cmdq/cmdq-params.js';
export type { CmdqParams, CmdqAlgorithm, InvalidationMode } from './cmdq/cmdq-params.js';
export type { MetricsSnapshot, LatencyKind, LatencySummary } from './metrics.js';
export { Device, Group, Topology } from './topology.js';
export type { DeviceSpec, TopologySpec } from './topology.js';
export { Switch, IOMMU_DEFAULT_RESERVED_REGIONS, canonicalBdf } from './topology.js';
export type {
  BridgeSpec, BridgeType, DeviceKind, IoasidDeviceType, ReservedRegion, ReservedRegionType, SwitchKind, SwitchSpec,
} from './topology.js';
export { generateTopology } from './topology-generate.js';
export type { GenerateTopologyOptions } from './topology-generate.js';
export { importTopology } from './topology-import.js';
export type { ImportTopologyOptions } from './topology-import.js';
export { parseIommuGroupsListing } from './pci-listing.js';
export type { ListedFunction } from './pci-listing.js';
export { parseLspciTree } from './pci-lspci-tree.js';
export type { TreeFunction } from './pci-lspci-tree.js';
export { Domain } from './domain.js';
export type { DomainType } from './domain.js';
export { IotlbGather } from './iommu-api.js';
export type { DomainAllocOptions } from './iommu-api.js';
export { SimError, isSimError, SIM_ERROR_CODES } from '../shared/errors.js';
export type { SimErrorCode } from '../shared/errors.js';
export { IOMMU_NO_PASID, IOMMU_PASID_INVALID, SZ_4K, SZ_2M, SZ_1G } from '../shared/units.js';
export { VTD_DEFAULTS } from '../shared/config.js';
export type { IommuOptions, CostModel, CacheGeometry } from '../shared/config.js';
export type { WorkerStats } from '../shared/protocol.js';
export { mulberry32 } from '../shared/prng.js';
export { Mm } from './mm.js';
export type { MmProt, MmapOptions, MmNotifier, MmState } from './mm.js';
export { SvaHandle } from './sva.js';
export { Vm, VmManager } from './vm.js';
export type { PageRequest, PageRequestGroup, ResponseCode, IopfHandler, DeviceFault, DeviceFaultHandler } from './iopf.js';
export { Iommufd } from './iommufd/iommufd.js';
export { IommufdContext } from './iommufd/context.js';
export type { IommufdDeps } from './iommufd/context.js';
export { GuestStage1, ArenaRam } from './iommufd/guest-memory.js';
export type { GuestPhysical } from './iommufd/guest-memory.js';
export type { FaultRecordOut } from './iommufd/fault.js';
export type { HwInfo, VpasidTranslation } from './iommufd/hw-info.js';
export type { IovaRange } from './iommufd/ioas.js';
export type { VeventOut } from './iommufd/viommu.js';
export type { NestedStage1 } from './domain.js';
export type { GpasidBindData, CacheInvalidateInfo, InvGranularity } from './gpasid.js';
