/**
 * Topology import: a TopologySpec that reproduces the IOMMU groups of a real machine
 * from its /sys/kernel/iommu_groups listing (pci-listing.ts), optionally helped by its
 * `lspci -tv` tree (pci-lspci-tree.ts).
 *
 * Models:
 * - Hierarchy: from the tree when given; otherwise recovered from the bus numbers the
 *   way firmware and Linux hand them out — depth-first, each bridge (class 0604, 0607,
 *   0609) taking the next free number as its secondary bus, in bus/devfn order.
 * - Bridge types: root port on a root bus, PCIe-to-PCI bridge when the name says so,
 *   PCI bridge below one, switch upstream port (only bridges below it) below a port,
 *   downstream port below an upstream port.
 * - ACS: inferred from the groups so that Linux's rules (iommu-groups.ts) give them
 *   back: a port lacks ACS when a function below it or another function of its slot
 *   shares its group; a function of a multi-function slot lacks ACS when a slot sibling
 *   shares its group.
 * - Check: the spec is built and its groups compared with the listing's. Functions the
 *   rules leave apart are joined with an explicit DMA alias (as firmware alias tables
 *   do); functions the hierarchy forces together although the listing separates them
 *   fail with EINVAL naming both lines.
 * - Devices come out in BDF order, so group ids match the kernel's numbering whenever
 *   the kernel numbered groups in probe (bus) order.
 * Does not model: capabilities (PASID, ATS, PRI: spec defaults; edit the spec), mdevs
 * and platform devices in the listing, firmware-reserved bus ranges without a tree.
 */
import { simError } from '../shared/errors.js';
import { listingError, parseIommuGroupsListing, type ListedFunction } from './pci-listing.js';
import { parseLspciTree } from './pci-lspci-tree.js';
import { Topology } from './topology.js';
import type { BridgeType, DeviceSpec, TopologySpec } from './topology-spec.js';

export interface ImportTopologyOptions {
  /** The listing text (see pci-listing.ts). */
  iommuGroups: string;
  /** `lspci -tv` output of the same machine. */
  lspciTree?: string;
  /** IOMMUs of the spec (default 1); with several, segment s goes to IOMMU s mod count. */
  iommus?: number | Record<string, unknown>[];
}

const OP = 'importTopology';
const BRIDGE_CLASSES = new Set([0x0604, 0x0607, 0x0609]);
const PCIE_TO_PCI = /\bPCI(?:e|\s*Express)\s*(?:-\s*to\s*-|to|-)\s*PCI(?![eE]|\s*Express)/i;

const keyOf = (segment: number, rid: number) => segment * 0x10000 + rid;
const busKey = (segment: number, bus: number) => segment * 256 + bus;

export function importTopology(opts: ImportTopologyOptions): TopologySpec {
  if (typeof opts !== 'object' || opts === null) throw simError('EINVAL', OP, 'bad-option', 'options object required');
  const iommus = opts.iommus ?? 1;
  const iommuCount = typeof iommus === 'number' ? iommus : Array.isArray(iommus) ? iommus.length : NaN;
  if (!Number.isInteger(iommuCount) || iommuCount < 1 || iommuCount > 1024) {
    throw simError('EINVAL', OP, 'bad-option', `iommus: expected 1..1024 or a list, got ${String(opts.iommus)}`);
  }
  const listed = parseIommuGroupsListing(opts.iommuGroups).sort((a, b) => a.segment - b.segment || a.rid - b.rid);
  const secondary = opts.lspciTree === undefined ? inferSecondaryBuses(listed) : treeSecondaryBuses(listed, opts.lspciTree);

  // Who sits behind whom, and what kind of bridge each is.
  const bridgeOfBus = new Map<number, ListedFunction>();
  for (const f of listed) {
    const sec = secondary.get(keyOf(f.segment, f.rid));
    if (sec !== undefined) bridgeOfBus.set(busKey(f.segment, sec), f);
  }
  const onBus = new Map<number, ListedFunction[]>();
  for (const f of listed) {
    const k = busKey(f.segment, f.rid >> 8);
    let l = onBus.get(k);
    if (!l) onBus.set(k, (l = []));
    l.push(f);
  }
  const upstream = (f: ListedFunction) => bridgeOfBus.get(busKey(f.segment, f.rid >> 8));
  const below = (b: ListedFunction) => onBus.get(busKey(b.segment, secondary.get(keyOf(b.segment, b.rid))!)) ?? [];
  const slotmates = (f: ListedFunction) => (onBus.get(busKey(f.segment, f.rid >> 8)) ?? []).filter((g) => g !== f && g.rid >> 3 === f.rid >> 3);
  const types = new Map<ListedFunction, BridgeType>();
  const typeOf = (b: ListedFunction): BridgeType => {
    const known = types.get(b);
    if (known) return known;
    const up = upstream(b);
    const upType = up ? typeOf(up) : undefined;
    let t: BridgeType;
    if (upType === 'pcie-to-pci' || upType === 'pci-bridge') t = 'pci-bridge';
    else if (PCIE_TO_PCI.test(b.description)) t = 'pcie-to-pci';
    else if (!up) t = 'root-port';
    else if (upType === 'upstream-port') t = 'downstream-port';
    else {
      const kids = below(b);
      t = kids.length > 0 && kids.every((c) => secondary.has(keyOf(c.segment, c.rid))) ? 'upstream-port' : 'downstream-port';
    }
    types.set(b, t);
    return t;
  };

  const devices: DeviceSpec[] = listed.map((f) => {
    const d: DeviceSpec = { bdf: f.bdf };
    const up = upstream(f);
    if (up) d.behind = up.bdf;
    else if (iommuCount > 1) d.iommu = f.segment % iommuCount;
    const mates = slotmates(f);
    const sec = secondary.get(keyOf(f.segment, f.rid));
    if (sec !== undefined) {
      const type = typeOf(f);
      d.bridge = { type, secondaryBus: sec };
      if (type !== 'pcie-to-pci' && type !== 'pci-bridge') {
        const shares = below(f).some((c) => c.group === f.group) || mates.some((g) => g.group === f.group);
        d.bridge.acs = !shares;
      }
    } else if (mates.length > 0) {
      d.multifunctionAcs = !mates.some((g) => g.group === f.group);
    }
    return d;
  });
  const spec: TopologySpec = { iommus, devices };
  if (!reproduce(spec, listed, iommuCount)) {
    if (!reproduce(spec, listed, iommuCount)) throw simError('EINVAL', OP, 'groups-not-reproducible', 'the groups still differ after joining split groups with aliases');
  }
  return spec;
}

/** Bridges' secondary buses as the tree draws them; the tree and listing must hold the same functions. */
function treeSecondaryBuses(listed: ListedFunction[], treeText: string): Map<number, number> {
  const tree = parseLspciTree(treeText);
  const byKey = new Map(listed.map((f) => [keyOf(f.segment, f.rid), f]));
  const inTree = new Set<number>();
  const secondary = new Map<number, number>();
  for (const t of tree) {
    const k = keyOf(t.segment, t.rid);
    if (!byKey.has(k)) {
      const h = (v: number, w: number) => v.toString(16).padStart(w, '0');
      listingError('lspciTree', t.line, `${h(t.segment, 4)}:${h(t.bus, 2)}:${h((t.rid >> 3) & 31, 2)}.${t.rid & 7} is not in the iommuGroups listing`);
    }
    inTree.add(k);
    if (t.secondary >= 0) secondary.set(k, t.secondary);
  }
  for (const f of listed) if (!inTree.has(keyOf(f.segment, f.rid))) listingError('iommuGroups', f.line, `${f.bdf} does not appear in lspciTree`);
  return secondary;
}

/** Depth-first bus numbering: each bridge, in bus/devfn order, takes the next free bus. */
function inferSecondaryBuses(listed: ListedFunction[]): Map<number, number> {
  const secondary = new Map<number, number>();
  const segments = [...new Set(listed.map((f) => f.segment))];
  for (const seg of segments) {
    const onBus = new Map<number, ListedFunction[]>();
    for (const f of listed) {
      if (f.segment !== seg) continue;
      const l = onBus.get(f.rid >> 8);
      if (l) l.push(f);
      else onBus.set(f.rid >> 8, [f]);
    }
    const reached = new Set<number>();
    let next = 0;
    const visit = (bus: number): void => {
      reached.add(bus);
      for (const f of onBus.get(bus) ?? []) {
        if (!BRIDGE_CLASSES.has(f.classCode)) continue;
        const sec = next++;
        if (sec > 255) listingError('iommuGroups', f.line, `no bus number left for the bridge ${f.bdf}; pass lspciTree`);
        secondary.set(keyOf(seg, f.rid), sec);
        visit(sec);
      }
    };
    for (const bus of [...onBus.keys()].sort((a, b) => a - b)) {
      if (reached.has(bus)) continue;
      next = Math.max(next, bus + 1); // another root bus (or a range firmware skipped)
      visit(bus);
    }
  }
  return secondary;
}

/**
 * Builds the spec and compares its groups with the listing's. Joins functions the rules
 * left apart with an alias and returns false (call again), or throws when the hierarchy
 * forces together functions the listing separates.
 */
function reproduce(spec: TopologySpec, listed: ListedFunction[], iommuCount: number): boolean {
  const topo = new Topology(spec, iommuCount, () => 20);
  const listedOfComputed = new Map<number, number>();
  for (let i = 0; i < listed.length; i++) {
    const g = topo.devices[i].group.id;
    const other = listedOfComputed.get(g);
    if (other === undefined) { listedOfComputed.set(g, i); continue; }
    if (listed[other].group !== listed[i].group) {
      const a = listed[other], b = listed[i];
      throw simError('EINVAL', OP, 'groups-not-reproducible',
        `iommuGroups line ${a.line} (${a.bdf}, group ${a.group}) and line ${b.line} (${b.bdf}, group ${b.group}) end up in one group in the recovered hierarchy; pass lspciTree (lspci -tv) so the bridges are known`);
    }
  }
  const anchor = new Map<number, number>(); // listed group → first device index
  let same = true;
  for (let i = 0; i < listed.length; i++) {
    const a = anchor.get(listed[i].group);
    if (a === undefined) { anchor.set(listed[i].group, i); continue; }
    if (topo.devices[i].group !== topo.devices[a].group) {
      const d = spec.devices[i];
      if (listed[i].segment !== listed[a].segment) {
        throw simError('EINVAL', OP, 'groups-not-reproducible', `iommuGroups line ${listed[i].line}: ${listed[i].bdf} shares group ${listed[i].group} with ${listed[a].bdf} in another segment`);
      }
      d.aliases = [...(d.aliases ?? []), listed[a].bdf];
      same = false;
    }
  }
  return same;
}
