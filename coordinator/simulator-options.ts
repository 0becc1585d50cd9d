/**
 * The options of Simulator.start and their checks: the hardware profile and topology, the
 * kernel semantics and PASID policy, threads, seed, the host-side knobs (spin, watchdog,
 * arena size), and their resolution into one configuration per IOMMU.
 *
 * Models: nothing of the machine itself — what a user may ask for, and EINVAL (or
 * EOPNOTSUPP for a combination not modelled: v5 semantics off VT-d) with the field named
 * when it is wrong.
 * Does not model: scenario files (scenario/ validates those before they get here).
 */
import { simError } from '../shared/errors.js';
import { type IommuOptions, type ResolvedIommuConfig, resolveIommuConfig } from '../shared/config.js';
import type { DefaultDomainType } from './iommu-api.js';
import type { TopologySpec } from './topology.js';

export interface SimulatorOptions {
  profile?: 'vtd' | 'smmuv3' | 'amd';
  semantics?: 'latest' | 'v5';
  pasidPolicy?: 'global' | 'per-device';
  topology: TopologySpec;
  /**
   * Worker threads to run the IOMMUs on (at most one per IOMMU, the default). Fewer threads
   * host several IOMMU instances each; modelled results are the same either way.
   */
  threads?: number;
  seed?: number;
  testHooks?: boolean;
  /** How long an idle worker spins before sleeping (µs). Default 200 with fewer IOMMUs than cores, 10 up to twice the cores, else 0. */
  spinUs?: number;
  /** Host-time limit for a worker to answer while work is pending (ms). Default 30000. */
  hostTimeoutMs?: number;
  /** Capacity of table memory in bytes. Default 16 GiB (committed only as used). */
  arenaBytes?: number;
  /** Seed 002's page-response timeout in host ms (off by default, as in mainline). */
  iopfResponseTimeoutMs?: number;
  /**
   * Type of every group's default domain, as iommu.passthrough / iommu.strict choose it:
   * 'dma' (strict, the default), 'dma-fq' (lazy) or 'identity'. Untrusted devices get 'dma'.
   */
  defaultDomain?: DefaultDomainType;
}

/** Checks the options and resolves one configuration per IOMMU. */
export function resolveOptions(o: SimulatorOptions): ResolvedIommuConfig[] {
  const op = 'Simulator.start';
  if (typeof o !== 'object' || o === null) throw simError('EINVAL', op, 'bad-options', 'options object required');
  if (o.profile !== undefined && o.profile !== 'vtd' && o.profile !== 'smmuv3' && o.profile !== 'amd') {
    throw simError('EINVAL', op, 'bad-profile', `profile '${String(o.profile)}': expected 'vtd', 'smmuv3' or 'amd'`);
  }
  // The v5 API (aux domains, guest PASID-table bind, the ioasid allocator) is Intel's.
  if (o.semantics === 'v5' && (o.profile ?? 'vtd') !== 'vtd') {
    throw simError('EOPNOTSUPP', op, 'v5-vtd-only', `semantics 'v5' is modelled with the 'vtd' profile only`);
  }
  if (o.semantics !== undefined && o.semantics !== 'latest' && o.semantics !== 'v5') throw simError('EINVAL', op, 'bad-semantics', `semantics '${String(o.semantics)}'`);
  if (o.pasidPolicy !== undefined && o.pasidPolicy !== 'global' && o.pasidPolicy !== 'per-device') throw simError('EINVAL', op, 'bad-pasid-policy', String(o.pasidPolicy));
  if (o.defaultDomain !== undefined && !['dma', 'dma-fq', 'identity'].includes(o.defaultDomain)) throw simError('EINVAL', op, 'bad-default-domain', String(o.defaultDomain));
  if (o.iopfResponseTimeoutMs !== undefined && !(o.iopfResponseTimeoutMs > 0 && Number.isFinite(o.iopfResponseTimeoutMs))) {
    throw simError('EINVAL', op, 'bad-iopf-timeout', `iopfResponseTimeoutMs: ${o.iopfResponseTimeoutMs}`);
  }
  const t = o.topology;
  if (typeof t !== 'object' || t === null) throw simError('EINVAL', op, 'bad-topology', 'topology is required');
  const specs: IommuOptions[] = typeof t.iommus === 'number' ? Array.from({ length: t.iommus }, () => ({})) : (t.iommus as IommuOptions[]);
  if (!Array.isArray(specs) || specs.length < 1 || specs.length > 1024 || (typeof t.iommus === 'number' && !Number.isInteger(t.iommus))) {
    throw simError('EINVAL', op, 'bad-iommu-count', `topology.iommus: expected 1..1024 or a list, got ${String(t.iommus)}`);
  }
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= specs.length)) {
    throw simError('EINVAL', op, 'bad-threads', `threads: expected 1..${specs.length} (one per IOMMU at most), got ${String(o.threads)}`);
  }
  const cores = 2;
  // An idle worker must spin longer than the coordinator takes to come back from a
  // waitAsync wake-up (~60–100 µs here), or every call pays a sleeping-thread wake-up.
  const threads = o.threads ?? specs.length;
  const spinUs = o.spinUs ?? (threads < cores ? 200 : threads <= 2 * cores ? 10 : 0);
  if (!Number.isFinite(spinUs) || spinUs < 0) throw simError('EINVAL', op, 'bad-spin', `spinUs: ${spinUs}`);
  // NaN would disable the watchdog and 0 or less would time out every request at once.
  if (o.hostTimeoutMs !== undefined && !(o.hostTimeoutMs > 0)) throw simError('EINVAL', op, 'bad-host-timeout', `hostTimeoutMs: ${o.hostTimeoutMs}`);
  if (o.arenaBytes !== undefined && !(o.arenaBytes > 0)) throw simError('EINVAL', op, 'bad-arena-size', `arenaBytes: ${o.arenaBytes}`);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff)) throw simError('EINVAL', op, 'bad-seed', `seed: expected an integer 0..2^32-1, got ${String(o.seed)}`);
  try {
    return specs.map((s, i) => resolveIommuConfig(i, s, spinUs, !!o.testHooks, o.seed ?? 1, o.profile ?? 'vtd'));
  } catch (e) {
    throw simError('EINVAL', op, 'bad-iommu-config', (e as Error).message);
  }
}
