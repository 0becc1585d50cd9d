/**
 * Topology spec checking: turns a TopologySpec into checked, resolved records (names,
 * parents, switches, bridges and IOMMU indexes resolved to numbers), or throws a
 * SimError whose message names the field path (`topology.devices[3].parent: …`).
 *
 * Models: the rules a machine description must obey — unique names and BDFs, one
 * requester id per function behind an IOMMU, a VF's parent is a PF, an mdev's parent is
 * not an mdev, `behind` names a switch or a bridge, no loops, a device's IOMMU is its
 * switch's, bridge's or parent's. Errors: EINVAL for a bad value, ENOENT for a name that
 * does not exist, EEXIST for a duplicate.
 * Does not model: unknown-field rejection (extra fields are ignored), PCI bus-range
 * checks for implicit switch ports.
 */
import { simError } from '../shared/errors.js';
import { parseBdf, U64_MAX } from '../shared/units.js';
import {
  canonicalBdf, IOMMU_DEFAULT_RESERVED_REGIONS,
  type BridgeType, type DeviceKind, type ReservedRegion, type SwitchKind, type TopologySpec,
} from './topology-spec.js';

const OP = 'topology';
const KINDS: readonly string[] = ['pci', 'vf', 'mdev', 'platform'];
const BRIDGE_TYPES: readonly string[] = ['root-port', 'upstream-port', 'downstream-port', 'pcie-to-pci', 'pci-bridge'];
const SWITCH_KINDS: readonly string[] = ['switch', 'root-port', 'pcie-to-pci'];
const REGION_TYPES: readonly string[] = ['msi', 'reserved', 'direct'];

export interface CheckedBridge {
  type: BridgeType;
  acs: boolean;
  /** -1 when not given. */
  secondaryBus: number;
  externalFacing: boolean;
}

export interface CheckedDevice {
  index: number;
  kind: DeviceKind;
  /** Canonical BDF for PCI functions and VFs, the given name otherwise. */
  name: string;
  segment: number;
  /** -1 for mdevs and platform devices. */
  bus: number;
  ownRid: number;
  iommu: number;
  /** Device index of the PF / mdev parent, or -1. */
  parent: number;
  /** Node (device index, or device count + switch index) it sits behind, or -1; a VF: its PF's. */
  upstream: number;
  pasidBits: number | undefined;
  ats: boolean | undefined;
  pri: boolean | undefined;
  mfAcs: boolean | undefined;
  requireDirect: boolean;
  untrusted: boolean;
  reservedRegions: readonly ReservedRegion[];
  deviceType: number | undefined;
  /** Explicit alias requester ids. */
  aliases: readonly number[];
  bridge: CheckedBridge | undefined;
}

export interface CheckedSwitch {
  index: number;
  id: string;
  kind: SwitchKind;
  acs: boolean;
  iommu: number;
  upstream: number;
  externalFacing: boolean;
}

export interface CheckedSpec {
  devices: CheckedDevice[];
  switches: CheckedSwitch[];
  iommuCount: number;
}

const NO_ALIASES: readonly number[] = Object.freeze([]);

function fail(code: 'EINVAL' | 'ENOENT' | 'EEXIST', reason: string, path: string, msg: string): never {
  throw simError(code, OP, reason, `${path}: ${msg}`);
}

const dpath = (i: number, field?: string) => `topology.devices[${i}]${field ? `.${field}` : ''}`;
const spath = (j: number, field?: string) => `topology.switches[${j}]${field ? `.${field}` : ''}`;

function optBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  return fail('EINVAL', 'bad-flag', path, `expected a boolean, got ${String(v)}`);
}

export function checkTopologySpec(spec: TopologySpec, iommuCount: number): CheckedSpec {
  if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.devices)) {
    throw simError('EINVAL', OP, 'bad-devices', 'topology.devices must be an array');
  }
  const rawSwitches: unknown = spec.switches ?? [];
  if (!Array.isArray(rawSwitches)) fail('EINVAL', 'bad-switches', 'topology.switches', 'expected an array');
  const n = spec.devices.length;
  const switches = checkSwitchShapes(rawSwitches as unknown[], iommuCount);
  const switchIndex = new Map<string, number>();
  switches.forEach((s) => {
    if (switchIndex.has(s.id)) fail('EEXIST', 'duplicate-switch', spath(s.index, 'id'), `'${s.id}' appears twice`);
    switchIndex.set(s.id, s.index);
  });

  // Pass 1: each device on its own.
  const devices: CheckedDevice[] = new Array(n);
  const byName = new Map<string, number>();
  const bridgeBySecondary = new Map<number, number>();
  const behindText: (string | undefined)[] = new Array(n);
  const parentText: (string | undefined)[] = new Array(n);
  const iommuGiven: (number | undefined)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const d = checkDeviceShape(spec.devices[i], i, iommuCount);
    devices[i] = d.device;
    behindText[i] = d.behind;
    parentText[i] = d.parent;
    iommuGiven[i] = d.iommu;
    const prev = byName.get(d.device.name);
    if (prev !== undefined) {
      const pci = d.device.kind === 'pci' || d.device.kind === 'vf';
      fail('EEXIST', pci ? 'duplicate-bdf' : 'duplicate-name', dpath(i, 'bdf'), `'${spec.devices[i].bdf}' is also topology.devices[${prev}]`);
    }
    byName.set(d.device.name, i);
    const br = d.device.bridge;
    if (br && br.secondaryBus >= 0) {
      const key = d.device.segment * 256 + br.secondaryBus;
      const other = bridgeBySecondary.get(key);
      if (other !== undefined) fail('EEXIST', 'duplicate-secondary-bus', dpath(i, 'bridge.secondaryBus'), `bus ${hex2(br.secondaryBus)} is also the secondary bus of ${devices[other].name}`);
      if (br.secondaryBus === d.device.bus) fail('EINVAL', 'bad-bridge', dpath(i, 'bridge.secondaryBus'), `a bridge on bus ${hex2(d.device.bus)} cannot have it as its secondary bus`);
      bridgeBySecondary.set(key, i);
    }
  }
  for (const s of switches) {
    if (byName.has(s.id)) fail('EEXIST', 'duplicate-name', spath(s.index, 'id'), `'${s.id}' is also the name of topology.devices[${byName.get(s.id)}]`);
  }

  const lookupDevice = (text: string): number | undefined => {
    const i = byName.get(text);
    if (i !== undefined) return i;
    const p = parseBdf(text);
    return p ? byName.get(canonicalBdf(p.segment, p.rid)) : undefined;
  };
  const lookupBehind = (text: string, path: string): number => {
    const j = switchIndex.get(text);
    if (j !== undefined) return n + j;
    const i = lookupDevice(text);
    if (i === undefined) return fail('ENOENT', 'unknown-switch', path, `no switch or bridge named '${text}'`);
    if (!devices[i].bridge) return fail('EINVAL', 'not-a-bridge', path, `'${text}' is not a bridge (give it a bridge: { type })`);
    return i;
  };

  // Pass 2: references.
  switches.forEach((s, j) => {
    if (s.behindText !== undefined) s.upstream = lookupBehind(s.behindText, spath(j, 'behind'));
  });
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    const pt = parentText[i];
    if (d.kind === 'vf' || d.kind === 'mdev') {
      if (pt === undefined) fail('EINVAL', 'missing-parent', dpath(i, 'parent'), `a ${d.kind === 'vf' ? 'VF needs its PF' : 'mdev needs the device it is carved from'}`);
      const p = lookupDevice(pt);
      if (p === undefined) fail('ENOENT', 'unknown-parent', dpath(i, 'parent'), `no device named '${pt}'`);
      if (p === i) fail('EINVAL', 'bad-parent', dpath(i, 'parent'), 'a device cannot be its own parent');
      const pk = devices[p];
      if (d.kind === 'vf' && (pk.kind !== 'pci' || pk.bridge)) {
        fail('EINVAL', 'vf-parent-not-pf', dpath(i, 'parent'), `'${pt}' is ${pk.bridge ? 'a bridge' : `a ${pk.kind} device`}, not a PF`);
      }
      if (d.kind === 'mdev' && pk.kind === 'mdev') fail('EINVAL', 'mdev-of-mdev', dpath(i, 'parent'), `'${pt}' is itself an mdev`);
      if (d.kind === 'vf' && pk.segment !== d.segment) fail('EINVAL', 'bad-parent', dpath(i, 'bdf'), `a VF sits in its PF's segment (${hex4(pk.segment)})`);
      d.parent = p;
    } else if (pt !== undefined) {
      fail('EINVAL', 'unexpected-parent', dpath(i, 'parent'), `only VFs and mdevs have a parent (this is a ${d.kind} device)`);
    }
    const bt = behindText[i];
    if (bt !== undefined) {
      if (d.kind !== 'pci') fail('EINVAL', 'unexpected-behind', dpath(i, 'behind'), d.kind === 'vf' ? 'a VF sits where its PF sits' : `a ${d.kind} device is not on a PCI bus`);
      d.upstream = lookupBehind(bt, dpath(i, 'behind'));
      if (d.upstream === i) fail('EINVAL', 'cycle', dpath(i, 'behind'), 'a bridge cannot sit behind itself');
      const up = d.upstream < n ? devices[d.upstream] : undefined;
      if (up?.bridge && up.bridge.secondaryBus >= 0 && (up.segment !== d.segment || up.bridge.secondaryBus !== d.bus)) {
        fail('EINVAL', 'bus-mismatch', dpath(i, 'bdf'), `${d.name} is not on the secondary bus ${hex4(up.segment)}:${hex2(up.bridge.secondaryBus)} of ${up.name}`);
      }
    } else if (d.kind === 'pci') {
      const b = bridgeBySecondary.get(d.segment * 256 + d.bus);
      if (b !== undefined) d.upstream = b;
    }
  }
  // VFs sit where their PF sits.
  for (let i = 0; i < n; i++) if (devices[i].kind === 'vf') devices[i].upstream = devices[devices[i].parent].upstream;

  checkNoLoops(devices, switches);

  // IOMMU indexes: given, else inherited (upstream, or parent for VFs and mdevs), else 0.
  const done = new Uint8Array(n + switches.length);
  const resolve = (node: number): number => {
    if (done[node]) return node < n ? devices[node].iommu : switches[node - n].iommu;
    const isDev = node < n;
    const given = isDev ? iommuGiven[node] : switches[node - n].iommuGiven;
    const from = isDev ? (devices[node].kind === 'vf' || devices[node].kind === 'mdev' ? devices[node].parent : devices[node].upstream) : switches[node - n].upstream;
    const inherited = from < 0 ? undefined : resolve(from);
    if (given !== undefined && inherited !== undefined && given !== inherited) {
      const what = from < n ? devices[from].name : switches[from - n].id;
      fail('EINVAL', 'iommu-mismatch', isDev ? dpath(node, 'iommu') : spath(node - n, 'iommu'), `${given}, but ${what} is behind IOMMU ${inherited}`);
    }
    const v = given ?? inherited ?? 0;
    if (isDev) devices[node].iommu = v;
    else switches[node - n].iommu = v;
    done[node] = 1;
    return v;
  };
  for (let node = 0; node < n + switches.length; node++) resolve(node);

  // One requester id per PCI function behind an IOMMU, whatever the segment.
  const ridOwner = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    if (d.kind !== 'pci' && d.kind !== 'vf') continue;
    const key = d.iommu * 0x10000 + d.ownRid;
    const other = ridOwner.get(key);
    if (other !== undefined) fail('EEXIST', 'duplicate-requester-id', dpath(i, 'bdf'), `'${spec.devices[i].bdf}' has the requester id of ${devices[other].name} behind IOMMU ${d.iommu}`);
    ridOwner.set(key, i);
  }

  return {
    devices,
    switches: switches.map(({ index, id, kind, acs, iommu, upstream, externalFacing }) => ({ index, id, kind, acs, iommu, upstream, externalFacing })),
    iommuCount,
  };
}

interface SwitchDraft extends CheckedSwitch {
  behindText: string | undefined;
  iommuGiven: number | undefined;
}

function checkIommu(v: unknown, iommuCount: number, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= iommuCount) {
    return fail('EINVAL', 'bad-iommu', path, `expected 0..${iommuCount - 1}, got ${String(v)}`);
  }
  return v;
}

function checkSwitchShapes(raw: unknown[], iommuCount: number): SwitchDraft[] {
  return raw.map((x, j) => {
    if (typeof x !== 'object' || x === null) return fail('EINVAL', 'bad-switch', spath(j), 'expected an object');
    const s = x as Record<string, unknown>;
    if (typeof s.id !== 'string' || s.id === '') fail('EINVAL', 'bad-switch', spath(j, 'id'), 'expected a non-empty string');
    const kind = s.kind ?? 'switch';
    if (typeof kind !== 'string' || !SWITCH_KINDS.includes(kind)) fail('EINVAL', 'bad-switch', spath(j, 'kind'), `expected one of ${SWITCH_KINDS.join(', ')}, got ${String(s.kind)}`);
    if (typeof s.acs !== 'boolean') fail('EINVAL', 'bad-switch', spath(j, 'acs'), `expected a boolean, got ${String(s.acs)}`);
    if (kind === 'pcie-to-pci' && s.acs) fail('EINVAL', 'bad-switch', spath(j, 'acs'), 'a PCIe-to-PCI bridge has no ACS');
    if (s.behind !== undefined && typeof s.behind !== 'string') fail('EINVAL', 'bad-switch', spath(j, 'behind'), 'expected a switch id or a bridge BDF');
    return {
      index: j, id: s.id as string, kind: kind as SwitchKind, acs: s.acs as boolean, iommu: 0, upstream: -1,
      externalFacing: optBool(s.externalFacing, spath(j, 'externalFacing')) ?? false,
      behindText: s.behind as string | undefined, iommuGiven: checkIommu(s.iommu, iommuCount, spath(j, 'iommu')),
    };
  });
}

interface DeviceDraft {
  device: CheckedDevice;
  behind: string | undefined;
  parent: string | undefined;
  iommu: number | undefined;
}

function checkDeviceShape(x: unknown, i: number, iommuCount: number): DeviceDraft {
  if (typeof x !== 'object' || x === null || typeof (x as { bdf?: unknown }).bdf !== 'string') {
    fail('EINVAL', 'bad-device', dpath(i, 'bdf'), 'expected a string');
  }
  const d = x as Record<string, unknown> & { bdf: string };
  const kind = d.kind ?? 'pci';
  if (typeof kind !== 'string' || !KINDS.includes(kind)) fail('EINVAL', 'bad-kind', dpath(i, 'kind'), `expected one of ${KINDS.join(', ')}, got ${String(d.kind)}`);
  const pci = kind === 'pci' || kind === 'vf';
  let segment = 0, bus = -1, ownRid = -1, name = d.bdf;
  if (pci) {
    const p = parseBdf(d.bdf);
    if (!p) fail('EINVAL', 'bad-bdf', dpath(i, 'bdf'), `'${d.bdf}' is not dddd:bb:dd.f`);
    segment = p.segment;
    ownRid = p.rid;
    bus = p.rid >> 8;
    name = canonicalBdf(segment, ownRid);
  } else if (d.bdf.trim() === '' || d.bdf !== d.bdf.trim()) {
    fail('EINVAL', 'bad-name', dpath(i, 'bdf'), `a ${kind} device needs a non-empty name without surrounding spaces`);
  } else {
    const p = parseBdf(d.bdf);
    if (p) name = canonicalBdf(p.segment, p.rid); // a BDF-looking name collides with that BDF
  }
  const bits = d.pasidBits;
  if (bits !== undefined && (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 0 || bits > 20)) {
    fail('EINVAL', 'bad-pasid-bits', dpath(i, 'pasidBits'), `expected 0..20, got ${String(bits)}`);
  }
  if (d.behind !== undefined && typeof d.behind !== 'string') fail('EINVAL', 'bad-behind', dpath(i, 'behind'), 'expected a switch id or a bridge BDF');
  if (d.parent !== undefined && typeof d.parent !== 'string') fail('EINVAL', 'bad-parent', dpath(i, 'parent'), 'expected a device name');
  const dt = d.deviceType;
  if (dt !== undefined) {
    const mdevTypes = [1, 2, 5], ridTypes = [0, 3, 4];
    if (typeof dt !== 'number' || !Number.isInteger(dt) || dt < 0 || dt > 5) fail('EINVAL', 'bad-device-type', dpath(i, 'deviceType'), `expected 0..5, got ${String(dt)}`);
    if (!(kind === 'mdev' ? mdevTypes : ridTypes).includes(dt as number)) {
      fail('EINVAL', 'bad-device-type', dpath(i, 'deviceType'), `${dt} is ${kind === 'mdev' ? 'not an mdev type (1, 2 or 5)' : 'an mdev type; a RID device is 0, 3 or 4'}`);
    }
  }
  const bridge = d.bridge === undefined ? undefined : checkBridge(d.bridge, i, kind);
  const regions = checkRegions(d.reservedRegions, i);
  const aliases = d.aliases === undefined ? NO_ALIASES : checkAliases(d.aliases, i, kind, segment, bus, ownRid);
  return {
    device: {
      index: i, kind: kind as DeviceKind, name, segment, bus, ownRid, iommu: 0, parent: -1, upstream: -1,
      pasidBits: bits as number | undefined,
      ats: optBool(d.ats, dpath(i, 'ats')), pri: optBool(d.pri, dpath(i, 'pri')),
      mfAcs: optBool(d.multifunctionAcs, dpath(i, 'multifunctionAcs')),
      requireDirect: (optBool(d.requireDirect, dpath(i, 'requireDirect')) ?? false) || regions.some((r) => r.type === 'direct'),
      untrusted: optBool(d.untrusted, dpath(i, 'untrusted')) ?? false,
      reservedRegions: regions, deviceType: dt as number | undefined, aliases, bridge,
    },
    behind: d.behind as string | undefined,
    parent: d.parent as string | undefined,
    iommu: checkIommu(d.iommu, iommuCount, dpath(i, 'iommu')),
  };
}

function checkBridge(x: unknown, i: number, kind: string): CheckedBridge {
  if (kind !== 'pci') fail('EINVAL', 'bad-bridge', dpath(i, 'bridge'), `a ${kind} device cannot be a bridge`);
  if (typeof x !== 'object' || x === null) fail('EINVAL', 'bad-bridge', dpath(i, 'bridge'), 'expected { type, acs?, secondaryBus?, externalFacing? }');
  const b = x as Record<string, unknown>;
  if (typeof b.type !== 'string' || !BRIDGE_TYPES.includes(b.type)) fail('EINVAL', 'bad-bridge', dpath(i, 'bridge.type'), `expected one of ${BRIDGE_TYPES.join(', ')}, got ${String(b.type)}`);
  const acs = optBool(b.acs, dpath(i, 'bridge.acs'));
  if (acs && (b.type === 'pcie-to-pci' || b.type === 'pci-bridge')) fail('EINVAL', 'bad-bridge', dpath(i, 'bridge.acs'), `a ${b.type} bridge has no ACS`);
  const sb = b.secondaryBus;
  if (sb !== undefined && (typeof sb !== 'number' || !Number.isInteger(sb) || sb < 1 || sb > 255)) {
    fail('EINVAL', 'bad-bridge', dpath(i, 'bridge.secondaryBus'), `expected 1..255, got ${String(sb)}`);
  }
  const conventional = b.type === 'pcie-to-pci' || b.type === 'pci-bridge';
  return {
    type: b.type as BridgeType, acs: conventional ? false : acs ?? true, secondaryBus: (sb as number | undefined) ?? -1,
    externalFacing: optBool(b.externalFacing, dpath(i, 'bridge.externalFacing')) ?? false,
  };
}

function checkRegions(x: unknown, i: number): readonly ReservedRegion[] {
  if (x === undefined) return IOMMU_DEFAULT_RESERVED_REGIONS;
  if (!Array.isArray(x)) return fail('EINVAL', 'bad-reserved-region', dpath(i, 'reservedRegions'), 'expected an array');
  const own = x.map((r: unknown, k) => {
    const path = dpath(i, `reservedRegions[${k}]`);
    if (typeof r !== 'object' || r === null) return fail('EINVAL', 'bad-reserved-region', path, 'expected { start, last, type }');
    const { start, last, type } = r as Record<string, unknown>;
    if (typeof start !== 'bigint' || start < 0n || start > U64_MAX) fail('EINVAL', 'bad-reserved-region', `${path}.start`, 'expected a bigint in 0..2^64-1');
    if (typeof last !== 'bigint' || last < (start as bigint) || last > U64_MAX) fail('EINVAL', 'bad-reserved-region', `${path}.last`, 'expected a bigint in start..2^64-1');
    if (typeof type !== 'string' || !REGION_TYPES.includes(type)) fail('EINVAL', 'bad-reserved-region', `${path}.type`, `expected one of ${REGION_TYPES.join(', ')}, got ${String(type)}`);
    return Object.freeze({ start: start as bigint, last: last as bigint, type: type as ReservedRegion['type'] });
  });
  if (own.length === 0) return IOMMU_DEFAULT_RESERVED_REGIONS;
  return Object.freeze([...own, ...IOMMU_DEFAULT_RESERVED_REGIONS].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)));
}

function checkAliases(x: unknown, i: number, kind: string, segment: number, bus: number, ownRid: number): readonly number[] {
  if (kind !== 'pci' && kind !== 'vf') fail('EINVAL', 'bad-alias', dpath(i, 'aliases'), `a ${kind} device has no requester id to alias`);
  if (!Array.isArray(x)) return fail('EINVAL', 'bad-alias', dpath(i, 'aliases'), 'expected an array of BDFs or dd.f');
  const out: number[] = [];
  x.forEach((a: unknown, k) => {
    const path = dpath(i, `aliases[${k}]`);
    if (typeof a !== 'string') return fail('EINVAL', 'bad-alias', path, 'expected a BDF or dd.f');
    let rid: number;
    const m = /^([0-1]?[0-9a-f])\.([0-7])$/i.exec(a);
    if (m) {
      const dev = parseInt(m[1], 16);
      if (dev > 31) fail('EINVAL', 'bad-alias', path, `'${a}': device ${dev} > 31`);
      rid = (bus << 8) | (dev << 3) | parseInt(m[2], 10);
    } else {
      const p = parseBdf(a);
      if (!p) return fail('EINVAL', 'bad-alias', path, `'${a}' is neither a BDF nor dd.f`);
      if (p.segment !== segment) fail('EINVAL', 'bad-alias', path, `'${a}' is in another segment than the device`);
      rid = p.rid;
    }
    if (rid !== ownRid && !out.includes(rid)) out.push(rid);
  });
  return out;
}

/** Rejects `behind` chains that loop (a → b → a). */
function checkNoLoops(devices: CheckedDevice[], switches: SwitchDraft[]): void {
  const n = devices.length;
  const state = new Uint8Array(n + switches.length); // 0 new, 1 on the current walk, 2 known good
  const up = (node: number) => (node < n ? devices[node].upstream : switches[node - n].upstream);
  const trail: number[] = [];
  for (let start = 0; start < state.length; start++) {
    if (state[start]) continue;
    trail.length = 0;
    let node = start;
    while (node >= 0 && state[node] === 0) {
      state[node] = 1;
      trail.push(node);
      node = up(node);
    }
    if (node >= 0 && state[node] === 1) {
      const loop = trail.slice(trail.indexOf(node)).map((v) => (v < n ? devices[v].name : switches[v - n].id));
      const path = node < n ? dpath(node, 'behind') : spath(node - n, 'behind');
      fail('EINVAL', 'cycle', path, `${[...loop, loop[0]].map((s) => `'${s}'`).join(' → ')} forms a loop`);
    }
    for (const v of trail) state[v] = 2;
  }
}

const hex2 = (v: number) => v.toString(16).padStart(2, '0');
const hex4 = (v: number) => v.toString(16).padStart(4, '0');
