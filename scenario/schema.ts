/**
 * The scenario file schema (zod 4): what a YAML scenario may say, with its defaults.
 *
 * Does: describes the machine (hardware profile, IOMMU count and options, topology
 * generated, imported from listings or laid out flat), the kernel profile (semantics,
 * PASID policy, default domain), the workload as named phases in modelled time, the seed,
 * threads and the metrics to report; a `short:` block (merged over the file by --short)
 * and a `sweep:` block (the default --vary of `iommu-sim sweep`).
 * Does not: run anything (runner.ts), read files (loader.ts), or check what only the
 * simulator can check (a topology that does not build fails at run time, exit code 1).
 * Every field carries a description: scenario/gen-reference.ts turns them into
 * docs/scenario-reference.md.
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const share = () => z.number().min(0).max(1);

const cache = z.strictObject({
  entries: int(1, 1 << 20).describe('entries (power of two)'),
  ways: int(1, 1 << 20).describe('associativity (power of two, ≤ entries)'),
  policy: z.enum(['lru', 'rr']).optional().describe('replacement policy'),
});

export const IommuOptionsSchema = z.strictObject({
  pasidBits: int(0, 20).optional().describe('PASID width of the IOMMU (default 20)'),
  iotlb: cache.optional().describe('IOTLB geometry (default 64 entries, 8-way)'),
  pasidCache: cache.optional().describe('PASID cache geometry'),
  contextCache: cache.optional().describe('context cache geometry'),
  devTlb: cache.optional().describe('device TLB (ATC) geometry of each ATS device'),
  queues: z.strictObject({
    command: int(2, 65536).optional().describe('invalidation queue depth (power of two; default 256)'),
    event: int(2, 65536).optional().describe('fault event queue depth (default 256)'),
    dma: int(2, 65536).optional().describe('device DMA request ring depth (default 1024)'),
    pageRequest: int(2, 65536).optional().describe('page request queue depth (default 2048)'),
  }).optional().describe('queue depths'),
  costs: z.strictObject({
    iotlbHitNs: z.number().min(0).optional().describe('IOTLB hit, ns (default 10)'),
    walkReadNs: z.number().min(0).optional().describe('one page-table read during a walk, ns (default 70)'),
    tableReadNs: z.number().min(0).optional().describe('one context/PASID table read, ns (default 70)'),
    descriptorNs: z.number().min(0).optional().describe('one invalidation descriptor, ns (default 400)'),
    waitNs: z.number().min(0).optional().describe('one wait descriptor, ns (default 400)'),
    devTlbInvNs: z.number().min(0).optional().describe('device-TLB invalidation round trip, ns (default 4000)'),
    faultNs: z.number().min(0).optional().describe('recording one fault, ns (default 100)'),
  }).optional().describe('modelled costs'),
});

const Hardware = z.strictObject({
  profile: z.enum(['vtd', 'smmuv3', 'amd']).default('vtd').describe('hardware profile: VT-d scalable mode, Arm SMMUv3 or AMD (v2 page tables); v5 semantics need vtd'),
  iommus: int(1, 1024).default(1).describe('number of IOMMUs'),
  iommu: IommuOptionsSchema.default({}).describe('options applied to every IOMMU'),
});

const Topology = z.strictObject({
  generate: z.strictObject({
    devicesPerIommu: int(0, 1 << 24).describe('devices per IOMMU, VFs and mdevs included'),
    vfsPerPf: int(0, 255).default(0).describe('VFs of each PF'),
    mdevsPerParent: int(0, 65536).default(0).describe('mdevs carved from each PF'),
    noAcsShare: share().default(0).describe('share of devices behind switches without ACS'),
    pfsPerSwitch: int(1, 32).default(8).describe('PFs behind each switch'),
    seed: z.number().int().optional().describe('topology seed (default: the scenario seed)'),
  }).optional().describe('a generated machine (generateTopology); capabilities vary by seed'),
  import: z.strictObject({
    iommuGroups: z.string().min(1).describe('/sys/kernel/iommu_groups listing, path relative to the scenario file'),
    lspciTree: z.string().min(1).optional().describe('`lspci -tv` of the same machine, relative path'),
  }).optional().describe("a real machine's listings (importTopology)"),
  flat: z.strictObject({
    devices: int(1, 1 << 20).describe('devices, dealt round-robin over the IOMMUs, one per bus slot'),
    atsEvery: int(0, 1 << 20).default(0).describe('every n-th device has ATS (0: none)'),
    priEvery: int(0, 1 << 20).default(0).describe('every n-th device has ATS and PRI (0: none)'),
    pasidBits: int(0, 20).default(20).describe('PASID width of every device'),
    deviceType: int(0, 5).optional().describe('the /dev/ioasid device type (0–5) of every device'),
  }).optional().describe('one PF per bus, no switches (the quickstart machine)'),
}).refine((t) => [t.generate, t.import, t.flat].filter((x) => x !== undefined).length === 1, {
  message: 'expected exactly one of generate|import|flat',
});

/** Which devices a phase drives: filters, then `count` picked round-robin across IOMMUs. */
const Select = z.strictObject({
  count: int(1, 1 << 24).optional().describe('how many (default: all that match)'),
  perIommu: int(1, 1 << 24).optional().describe('at most this many behind each IOMMU'),
  kind: z.enum(['pci', 'vf', 'mdev']).optional().describe('only this kind'),
  pasid: z.boolean().optional().describe('only devices that can (true) or cannot (false) issue PASIDs'),
  ats: z.boolean().optional().describe('only devices with (true) or without (false) ATS'),
  pri: z.boolean().optional().describe('only devices with (true) or without (false) PRI'),
}).default({});

const base = {
  name: z.string().min(1).describe('phase name (unique)'),
  devices: Select.describe('the devices this phase drives'),
  modelledUs: z.number().positive().optional().describe('stop the phase once this much modelled time has passed (µs)'),
};

const Dma = z.strictObject({
  type: z.literal('dma'),
  ...base,
  pattern: z.enum(['sequential', 'random', 'zipf']).default('random').describe('address pattern over the footprint'),
  footprintPages: int(1, 1 << 20).default(32).describe('4 KiB pages mapped per device'),
  requests: int(0, 1 << 30).default(1024).describe('DMA requests per device'),
  batch: int(1, 4096).default(64).describe('requests per dmaBatch call'),
  writeShare: share().default(0.3).describe('share of writes'),
  zipfS: z.number().positive().default(1.1).describe('zipf exponent'),
  via: z.enum(['iova', 'sva']).default('iova').describe('iova: a DMA domain per device; sva: a process bound per device (PASID DMA)'),
  stage: z.enum(['first', 'second']).default('first').describe('page-table stage of the iova domains'),
});

const MapUnmap = z.strictObject({
  type: z.literal('map-unmap'),
  ...base,
  mode: z.enum(['strict', 'deferred']).default('strict').describe('strict: dma domain, flush per unmap; deferred: dma-fq flush queue'),
  iterations: int(1, 1 << 24).default(64).describe('map+unmap rounds per device'),
  pages: int(1, 1 << 16).default(1).describe('4 KiB pages per map'),
  domain: z.enum(['per-group', 'shared']).default('per-group').describe('per-group: a domain per group; shared: one domain attached to every selected group (unmaps fan out to all their IOMMUs)'),
  dmaEvery: int(0, 1 << 20).default(1).describe('one DMA into the range before every n-th unmap (0: none), so caches hold it'),
});

const Unmap = z.strictObject({
  type: z.literal('unmap'),
  ...base,
  fromPage: int(0, 1 << 20).default(0).describe("first page of each group's DMA buffer to unmap"),
  pages: int(1, 1 << 20).default(1).describe('pages to unmap (one strict unmap call per group)'),
});

const SvaChurn = z.strictObject({
  type: z.literal('sva-churn'),
  ...base,
  processes: int(1, 1 << 20).default(8).describe('processes created, bound, used, unbound and freed'),
  devicesPerProcess: int(1, 1 << 16).default(2).describe('devices each process binds'),
  dmaPerBind: int(0, 1 << 16).default(8).describe('DMA requests per bond'),
  pages: int(1, 1 << 16).default(8).describe('pages each process maps'),
  keep: z.boolean().default(false).describe('leave the processes bound at the end of the phase'),
});

const MunmapStorm = z.strictObject({
  type: z.literal('munmap-storm'),
  ...base,
  processes: int(1, 1 << 16).default(1).describe('processes, each bound to every selected device'),
  pages: int(1, 1 << 20).default(64).describe('pages each process maps and populates'),
  munmapPages: int(1, 1 << 16).default(1).describe('pages per munmap call'),
  touchFirst: z.boolean().default(true).describe('DMA every page once before the storm so IOTLBs hold it'),
});

const FaultStorm = z.strictObject({
  type: z.literal('fault-storm'),
  ...base,
  kind: z.enum(['page-request', 'unrecoverable']).default('page-request').describe('page-request: PRI devices touch unpopulated SVA pages; unrecoverable: DMA to unmapped IOVAs'),
  faultsPerDevice: int(1, 1 << 24).default(256).describe('faulting DMA requests per device'),
  batch: int(1, 4096).default(64).describe('requests per dmaBatch call'),
  respond: z.enum(['success', 'invalid']).default('success').describe('how the fault handler answers page requests'),
});

const PasidAlloc = z.strictObject({
  type: z.literal('pasid-alloc'),
  ...base,
  count: z.union([int(1, 1 << 20), z.literal('all')]).default('all').describe("kernel PASIDs to allocate with allocGlobalPasid ('all': until the space is exhausted)"),
  free: z.boolean().default(false).describe('free them again at the end of the phase'),
});

const Vms = z.strictObject({
  type: z.literal('vms'),
  ...base,
  count: int(1, 1 << 16).default(4).describe('VMs created'),
  devicesEach: int(1, 1 << 16).default(1).describe('devices assigned to each VM'),
  vpasidsEach: int(1, 1 << 20).default(16).describe('guest vPASIDs bound on each device'),
  ppasidQuota: int(1, 1 << 20).optional().describe("a quota'd set of host PASIDs per VM"),
});

const CmdqContention = z.strictObject({
  type: z.literal('cmdq-contention'),
  ...base,
  cpus: z.array(int(1, 4096)).min(1).default([8, 16, 32, 64]).describe('CPU counts sharing one SMMUv3 command queue'),
  algorithms: z.array(z.enum(['lockfree', 'locked', 'percpu'])).min(1).default(['lockfree', 'locked', 'percpu'])
    .describe('insertion: arm-smmu-v3 lock-free, pre-5.5 spinlock, per-CPU (ECMDQ) queues'),
  batching: z.array(z.boolean()).min(1).default([true]).describe('commands of one unmap inserted as one batch'),
  modes: z.array(z.enum(['strict', 'deferred'])).min(1).default(['strict']).describe('strict or deferred (flush-queue) invalidation'),
  pagesPerUnmap: int(1, 4096).default(1).describe('pages each unmap invalidates'),
  durationUs: z.number().positive().max(1e7).default(2000).describe('modelled run length of each point (µs)'),
});

export const PhaseSchema = z.discriminatedUnion('type', [Dma, MapUnmap, Unmap, SvaChurn, MunmapStorm, FaultStorm, PasidAlloc, Vms, CmdqContention]);

export const METRICS = ['invalidation', 'round-trips', 'dma', 'hit-rates', 'page-requests', 'pasids', 'tables'] as const;

export const ScenarioSchema = z.strictObject({
  name: z.string().min(1).describe('scenario name'),
  description: z.string().default('').describe('what the scenario asks'),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1).describe('seed of every random choice'),
  threads: int(1, 1024).optional().describe('worker threads for the IOMMUs (default and maximum: one per IOMMU; results do not change)'),
  hardware: Hardware.default({ profile: 'vtd', iommus: 1, iommu: {} }).describe('the IOMMUs'),
  topology: Topology.describe('the devices'),
  semantics: z.enum(['latest', 'v5']).default('latest').describe('kernel semantics profile'),
  pasidPolicy: z.enum(['global', 'per-device']).default('global').describe('PASID allocation policy'),
  defaultDomain: z.enum(['dma', 'dma-fq', 'identity']).default('dma').describe("every group's default domain"),
  phases: z.array(PhaseSchema).min(1).describe('the workload, run in order').refine(
    (ps) => new Set(ps.map((p) => p.name)).size === ps.length, { message: 'phase names must be unique' }),
  metrics: z.array(z.enum(METRICS)).default([...METRICS]).describe('metric groups to report'),
  samples: int(2, 100000).default(200).describe('points of the PASIDs-in-use timeline'),
  short: z.record(z.string(), z.unknown()).optional().describe('overrides merged over the file by --short (CI variant)'),
  sweep: z.strictObject({
    vary: z.record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1))
      .describe('path → values: the default --vary of `iommu-sim sweep`'),
  }).optional().describe('default sweep'),
});

export type Scenario = z.output<typeof ScenarioSchema>;
export type Phase = z.output<typeof PhaseSchema>;
export type PhaseOf<T extends Phase['type']> = Extract<Phase, { type: T }>;
export type DeviceSelect = z.output<typeof Select>;
export type MetricName = (typeof METRICS)[number];
