/**
 * Topology generator: a seeded, deterministic machine description of N IOMMUs with M
 * devices each, for scaling experiments (thousands of functions, VFs and mdevs).
 *
 * Models: per IOMMU one PCI segment (segment = IOMMU index) whose physical functions
 * sit behind switches of `pfsPerSwitch` PFs each; every PF brings `vfsPerPf` VFs (ARI
 * numbering: the VFs follow their PF's requester id, stride 1) and `mdevsPerParent`
 * mdevs carved from it; devices left over when M is not a multiple of that unit are
 * plain PFs. About `noAcsShare` of the devices sit behind switches without ACS (whole
 * switches, picked by the seed), which makes each such switch one group. Capabilities
 * vary by seed: 75 % of PFs can issue PASIDs (20 bits), 60 % have ATS, half of those
 * PRI; VFs take their PF's; device types are the /dev/ioasid taxonomy's (0, 3, 4 for
 * RID devices, 1, 2, 5 for mdevs).
 * Does not model: root-port or bridge devices (the switches' ports are implicit),
 * platform devices, reserved regions beyond the IOMMU's default.
 */
import { simError } from '../shared/errors.js';
import { mulberry32 } from '../shared/prng.js';
import { canonicalBdf, type DeviceSpec, type IoasidDeviceType, type SwitchSpec, type TopologySpec } from './topology-spec.js';

export interface GenerateTopologyOptions {
  iommus: number;
  /** Devices per IOMMU, VFs and mdevs included. */
  devicesPerIommu: number;
  /** Default 0. */
  vfsPerPf?: number;
  /** mdevs carved from each PF. Default 0. */
  mdevsPerParent?: number;
  /** Share (0..1) of devices behind switches without ACS. Default 0. */
  noAcsShare?: number;
  /** Default 1. */
  seed?: number;
  /** PFs (with their VFs and mdevs) behind each switch. Default 8. */
  pfsPerSwitch?: number;
}

const OP = 'generateTopology';

function intOpt(v: unknown, name: string, min: number, max: number, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw simError('EINVAL', OP, 'bad-option', `${name}: expected an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

export function generateTopology(opts: GenerateTopologyOptions): TopologySpec {
  if (typeof opts !== 'object' || opts === null) throw simError('EINVAL', OP, 'bad-option', 'options object required');
  const iommus = intOpt(opts.iommus, 'iommus', 1, 1024);
  const perIommu = intOpt(opts.devicesPerIommu, 'devicesPerIommu', 0, 1 << 24);
  const vfs = intOpt(opts.vfsPerPf, 'vfsPerPf', 0, 255, 0);
  const mdevs = intOpt(opts.mdevsPerParent, 'mdevsPerParent', 0, 1 << 16, 0);
  const pfsPerSwitch = intOpt(opts.pfsPerSwitch, 'pfsPerSwitch', 1, 32, 8);
  const seed = intOpt(opts.seed, 'seed', -(2 ** 31), 2 ** 32 - 1, 1);
  const share = opts.noAcsShare ?? 0;
  if (typeof share !== 'number' || !(share >= 0 && share <= 1)) {
    throw simError('EINVAL', OP, 'bad-option', `noAcsShare: expected a number in 0..1, got ${String(opts.noAcsShare)}`);
  }
  const rnd = mulberry32(seed);
  const unit = 1 + vfs + mdevs;
  const fullUnits = Math.floor(perIommu / unit);
  const pfsPerIommu = fullUnits + (perIommu - fullUnits * unit);
  const switchesPerIommu = Math.ceil(pfsPerIommu / pfsPerSwitch);

  // Which switches lack ACS: walk them in a seeded order, taking each while the share
  // of devices behind ACS-less switches stays nearest the target.
  const sizes: number[] = [];
  for (let s = 0; s < switchesPerIommu; s++) {
    let size = 0;
    for (let p = s * pfsPerSwitch; p < Math.min(pfsPerIommu, (s + 1) * pfsPerSwitch); p++) size += p < fullUnits ? unit : 1;
    sizes.push(size);
  }
  const total = switchesPerIommu * iommus;
  const order = Array.from({ length: total }, (_, k) => k);
  for (let k = total - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    [order[k], order[j]] = [order[j], order[k]];
  }
  const noAcs = new Uint8Array(total);
  const target = share * perIommu * iommus;
  let taken = 0;
  for (const k of order) {
    const size = sizes[k % switchesPerIommu];
    if (taken + size / 2 <= target && size > 0) { noAcs[k] = 1; taken += size; }
  }

  const switches: SwitchSpec[] = [];
  const devices: DeviceSpec[] = [];
  let mdevSerial = 0;
  for (let i = 0; i < iommus; i++) {
    for (let s = 0; s < switchesPerIommu; s++) switches.push({ id: `iommu${i}-sw${s}`, acs: !noAcs[i * switchesPerIommu + s], iommu: i });
    let cursor = 0x0100; // bus 0 is the root bus
    for (let p = 0; p < pfsPerIommu; p++) {
      const full = p < fullUnits;
      const nvf = full ? vfs : 0;
      cursor = (cursor + 7) & ~7; // a PF opens a slot
      if (cursor + 1 + nvf > 0x10000) {
        throw simError('ENOSPC', OP, 'rid-space-exhausted', `IOMMU ${i}: ${pfsPerIommu} PFs with ${vfs} VFs each do not fit in 65536 requester ids`);
      }
      const pf = canonicalBdf(i, cursor);
      const pasid = rnd() < 0.75;
      const ats = rnd() < 0.6;
      const pri = ats && rnd() < 0.5;
      const ridType = (): IoasidDeviceType => (pasid ? (rnd() < 0.8 ? 3 : 4) : 0);
      devices.push({ bdf: pf, behind: `iommu${i}-sw${Math.floor(p / pfsPerSwitch)}`, pasidBits: pasid ? 20 : 0, ats, pri, deviceType: ridType() });
      for (let v = 1; v <= nvf; v++) {
        devices.push({ bdf: canonicalBdf(i, cursor + v), kind: 'vf', parent: pf, pasidBits: pasid ? 20 : 0, ats, pri, deviceType: ridType() });
      }
      cursor += 1 + nvf;
      if (!full) continue;
      for (let m = 0; m < mdevs; m++) {
        const type: IoasidDeviceType = pasid ? (rnd() < 0.5 ? 2 : 5) : 1;
        devices.push({ bdf: mdevName(seed, mdevSerial++), kind: 'mdev', parent: pf, deviceType: type });
      }
    }
  }
  return { iommus, devices, switches };
}

/** A UUID-shaped mdev name, unique per (seed, serial). */
function mdevName(seed: number, serial: number): string {
  const h = (v: number, w: number) => (v >>> 0).toString(16).padStart(w, '0').slice(-w);
  return `${h(seed, 8)}-0000-4000-8000-${h(Math.floor(serial / 2 ** 32), 4)}${h(serial, 8)}`;
}
