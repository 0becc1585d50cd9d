/**
 * PCI hierarchy: what follows from where each function sits — multi-function slots,
 * whether Linux considers a function's ACS enabled, whether the path up to the root is
 * ACS-isolated, the DMA aliases and the requester id the IOMMU sees, conventional-PCI
 * restrictions, untrusted inheritance, platform devices' synthetic requester ids, and the
 * final capabilities (PASID width, ATS, PRI, device type) after defaults and inheritance.
 *
 * Models (Linux, drivers/pci/pci.c and search.c, read at v6.6 and mainline):
 * - pci_acs_enabled(dev, REQ_ACS_FLAGS): root and downstream ports need ACS; upstream
 *   ports and endpoints only when multi-function; VFs never (single function);
 *   PCIe-to-PCI bridges and conventional PCI functions never have it.
 * - pci_acs_path_enabled(start, NULL): the node and every bridge above it have ACS.
 * - pci_for_each_dma_alias(): a PCIe-to-PCI bridge above a device adds the alias
 *   (secondary bus, 00.0); a conventional PCI bridge adds its own requester id; root and
 *   switch ports add nothing. The IOMMU sees the last (topmost) alias.
 * - set_pcie_untrusted(): a device below an external-facing or untrusted port is untrusted.
 * - SR-IOV: a VF sits where its PF sits (pci_physfn), single-function, own requester id.
 * - vfio-mdev: an mdev has no requester id; it DMAs with its parent's.
 * Does not model: PCI-X bridges' split-completion ids (PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS is
 * not settable), PCI-X-to-PCIe reverse bridges, phantom functions beyond `aliases`.
 */
import { simError } from '../shared/errors.js';
import type { CheckedDevice, CheckedSpec } from './topology-spec-check.js';

export interface PciHierarchy {
  /** Per device: the node it sits behind (a VF: its PF's), -1 for none. */
  upstreamOf: Int32Array;
  /** Nodes (devices, then device count + switch index) parents first. */
  creationOrder: Int32Array;
  multifunction: Uint8Array;
  /** Per device: pci_acs_enabled(dev, REQ_ACS_FLAGS). */
  acsEnabled: Uint8Array;
  /** Per node: pci_acs_path_enabled(node, NULL). */
  pathAcs: Uint8Array;
  /** Functions sharing a slot, per slot with at least two (VFs are never in one). */
  slots: number[][];
  rid: Int32Array;
  dmaAliases: (readonly number[])[];
  untrusted: Uint8Array;
  pasidBits: Uint8Array;
  ats: boolean[];
  pri: boolean[];
  deviceType: Uint8Array;
}

const OP = 'topology';
const dpath = (i: number, field: string) => `topology.devices[${i}].${field}`;

export function buildPciHierarchy(spec: CheckedSpec): PciHierarchy {
  const { devices, switches } = spec;
  const n = devices.length;
  const nodes = n + switches.length;
  const up = (node: number) => (node < n ? devices[node].upstream : switches[node - n].upstream);
  const upstreamOf = new Int32Array(n);
  for (let i = 0; i < n; i++) upstreamOf[i] = devices[i].kind === 'mdev' || devices[i].kind === 'platform' ? -1 : devices[i].upstream;

  // Which nodes have a conventional PCI bus below them (their children are PCI, not PCIe).
  const pciBusBelow = (node: number): boolean => {
    if (node < 0) return false;
    if (node >= n) return switches[node - n].kind === 'pcie-to-pci';
    const t = devices[node].bridge?.type;
    return t === 'pcie-to-pci' || t === 'pci-bridge';
  };
  checkPlacement(spec, pciBusBelow);
  const secondaryBus = secondaryBuses(spec);

  // Multi-function slots: physical functions (not VFs) on one bus and device number.
  const multifunction = new Uint8Array(n);
  const firstInSlot = new Map<number, number>();
  const slotsByKey = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    if (d.kind !== 'pci') continue;
    const key = (d.upstream + 1) * 2 ** 29 + d.segment * 2 ** 13 + (d.ownRid >> 3);
    const first = firstInSlot.get(key);
    if (first === undefined) { firstInSlot.set(key, i); continue; }
    let list = slotsByKey.get(key);
    if (!list) slotsByKey.set(key, (list = [first]));
    list.push(i);
  }
  const slots = [...slotsByKey.values()];
  const mfAcs = new Uint8Array(n).fill(1);
  for (const list of slots) {
    // A function that says nothing takes the slot's word (ACS is usually the device's, not the function's).
    const said = list.find((i) => devices[i].mfAcs !== undefined);
    const dflt = said === undefined ? true : devices[said].mfAcs;
    for (const i of list) {
      multifunction[i] = 1;
      mfAcs[i] = (devices[i].mfAcs ?? dflt) ? 1 : 0;
    }
  }

  // pci_acs_enabled() per function.
  const acsEnabled = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    if (d.kind === 'vf') acsEnabled[i] = 1;
    if (d.kind !== 'pci') continue;
    if (pciBusBelow(d.upstream)) continue; // conventional PCI: no ACS
    const t = d.bridge?.type;
    if (t === 'root-port' || t === 'downstream-port') acsEnabled[i] = d.bridge!.acs ? 1 : 0;
    else if (t === 'upstream-port') acsEnabled[i] = !multifunction[i] || d.bridge!.acs ? 1 : 0;
    else if (t === undefined) acsEnabled[i] = !multifunction[i] || mfAcs[i] ? 1 : 0;
  }

  // pci_acs_path_enabled(node, NULL), memoised.
  const pathAcs = new Uint8Array(nodes);
  const known = new Uint8Array(nodes);
  const pathOf = (node: number): number => {
    if (known[node]) return pathAcs[node];
    const self = node < n ? acsEnabled[node] : switches[node - n].kind !== 'pcie-to-pci' && switches[node - n].acs ? 1 : 0;
    const u = up(node);
    const v = self && (u < 0 || pathOf(u)) ? 1 : 0;
    known[node] = 1;
    pathAcs[node] = v;
    return v;
  };
  for (let node = 0; node < nodes; node++) pathOf(node);

  // Capabilities after defaults; parents (never mdevs) before mdevs.
  const pasidBits = new Uint8Array(n);
  const ats: boolean[] = new Array(n);
  const pri: boolean[] = new Array(n);
  const deviceType = new Uint8Array(n);
  const untrusted = new Uint8Array(n);
  const nodeUntrusted = untrustedBelow(spec, up);
  for (const pass of [false, true]) {
    for (let i = 0; i < n; i++) {
      const d = devices[i];
      if ((d.kind === 'mdev') !== pass) continue;
      const conventional = d.kind === 'pci' && pciBusBelow(d.upstream);
      if (conventional) {
        if (d.pasidBits) fail('conventional-pci', dpath(i, 'pasidBits'), `${d.name} is on a conventional PCI bus: no PASID`);
        if (d.ats || d.pri) fail('conventional-pci', dpath(i, d.ats ? 'ats' : 'pri'), `${d.name} is on a conventional PCI bus: no ATS/PRI`);
      }
      if (d.kind === 'vf' && pciBusBelow(d.upstream)) fail('conventional-pci', dpath(i, 'parent'), `the PF of ${d.name} is on a conventional PCI bus: no SR-IOV`);
      const p = d.parent;
      const mdev = d.kind === 'mdev';
      pasidBits[i] = d.pasidBits ?? (mdev ? pasidBits[p] : d.bridge || conventional ? 0 : 20);
      ats[i] = d.ats ?? (mdev ? ats[p] : false);
      pri[i] = d.pri ?? (mdev ? pri[p] : false);
      deviceType[i] = d.deviceType ?? (mdev ? (pasidBits[i] > 0 ? 2 : 1) : pasidBits[i] > 0 ? 3 : 0);
      const inherited = mdev ? untrusted[p] === 1 : d.upstream >= 0 && d.kind !== 'platform' && nodeUntrusted[d.upstream] === 1;
      untrusted[i] = d.untrusted || inherited ? 1 : 0;
    }
  }

  const { rid, dmaAliases } = requesterIds(spec, secondaryBus);
  return {
    upstreamOf, creationOrder: creationOrder(spec), multifunction, acsEnabled, pathAcs, slots,
    rid, dmaAliases, untrusted, pasidBits, ats, pri, deviceType,
  };
}

function fail(reason: string, path: string, msg: string, code: 'EINVAL' | 'ENOSPC' = 'EINVAL'): never {
  throw simError(code, OP, reason, `${path}: ${msg}`);
}

/** What may sit where: no PCIe port below a conventional PCI bus, root ports only at the top. */
function checkPlacement(spec: CheckedSpec, pciBusBelow: (node: number) => boolean): void {
  const { devices, switches } = spec;
  for (const d of devices) {
    const t = d.bridge?.type;
    if (t === 'root-port' && d.upstream >= 0) fail('bad-placement', dpath(d.index, 'behind'), `root port ${d.name} sits directly below the root complex`);
    if (t && t !== 'pci-bridge' && pciBusBelow(d.upstream)) fail('conventional-pci', dpath(d.index, 'bridge.type'), `a ${t} cannot sit on a conventional PCI bus`);
  }
  for (const s of switches) {
    const path = `topology.switches[${s.index}].behind`;
    if (s.kind === 'root-port' && s.upstream >= 0) fail('bad-placement', path, `root port '${s.id}' sits directly below the root complex`);
    if (pciBusBelow(s.upstream)) fail('conventional-pci', path, `a PCIe ${s.kind} cannot sit on a conventional PCI bus`);
  }
}

/**
 * The secondary bus of every bridge (explicit, or the one bus all functions directly
 * behind it share) and of implicit PCIe-to-PCI bridges; -1 when unknown. Functions
 * directly behind one bridge must share a bus.
 */
function secondaryBuses(spec: CheckedSpec): Int32Array {
  const { devices, switches } = spec;
  const n = devices.length;
  const sec = new Int32Array(n + switches.length).fill(-1);
  for (const d of devices) if (d.bridge) sec[d.index] = d.bridge.secondaryBus;
  for (const d of devices) {
    const u = d.upstream;
    if (d.kind !== 'pci' || u < 0) continue;
    const checked = u < n || switches[u - n].kind === 'pcie-to-pci';
    if (!checked) continue;
    if (u < n && devices[u].segment !== d.segment) fail('bus-mismatch', dpath(d.index, 'bdf'), `${d.name} is in another segment than the bridge ${devices[u].name} it sits behind`);
    if (sec[u] < 0) sec[u] = d.bus;
    else if (sec[u] !== d.bus) {
      const who = u < n ? `bridge ${devices[u].name}` : `PCIe-to-PCI bridge '${switches[u - n].id}'`;
      fail('bus-mismatch', dpath(d.index, 'bdf'), `${d.name} is not on bus ${sec[u].toString(16).padStart(2, '0')}, the secondary bus of ${who}`);
    }
  }
  return sec;
}

/** Own id, the aliases bridges above add (pci_for_each_dma_alias order), explicit aliases; platform ids; mdevs borrow. */
function requesterIds(spec: CheckedSpec, secondaryBus: Int32Array): { rid: Int32Array; dmaAliases: (readonly number[])[] } {
  const { devices, switches } = spec;
  const n = devices.length;
  const rid = new Int32Array(n);
  const dmaAliases: (readonly number[])[] = new Array(n);
  const usedBuses = new Map<number, Set<number>>();
  const useBus = (iommu: number, bus: number) => {
    let s = usedBuses.get(iommu);
    if (!s) usedBuses.set(iommu, (s = new Set()));
    s.add(bus);
  };
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    if (d.kind !== 'pci' && d.kind !== 'vf') continue;
    let list: number[] | undefined;
    let last = d.ownRid;
    for (let u = d.upstream; u >= 0; u = u < n ? devices[u].upstream : switches[u - n].upstream) {
      let alias = -1;
      if (u >= n) {
        if (switches[u - n].kind === 'pcie-to-pci' && secondaryBus[u] >= 0) alias = secondaryBus[u] << 8;
      } else if (devices[u].bridge?.type === 'pcie-to-pci') {
        if (secondaryBus[u] >= 0) alias = secondaryBus[u] << 8;
      } else if (devices[u].bridge?.type === 'pci-bridge') {
        alias = devices[u].ownRid;
      }
      if (alias < 0) continue;
      (list ??= [d.ownRid]).push(alias);
      last = alias;
    }
    for (const a of d.aliases) (list ??= [d.ownRid]).push(a);
    const all = list ? [...new Set(list)] : [d.ownRid];
    rid[i] = last;
    dmaAliases[i] = all;
    for (const r of all) useBus(d.iommu, r >> 8);
  }
  for (let i = 0; i < n; i++) if (devices[i].bridge && secondaryBus[i] >= 0) useBus(devices[i].iommu, secondaryBus[i]);
  for (const s of switches) if (secondaryBus[n + s.index] >= 0) useBus(s.iommu, secondaryBus[n + s.index]);

  // Platform devices: consecutive ids on the highest buses no PCI function uses.
  const cursor = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    if (d.kind !== 'platform') continue;
    const used = usedBuses.get(d.iommu);
    let c = cursor.get(d.iommu) ?? 0xff00;
    while (c >= 0 && used?.has(c >> 8)) c = ((c >> 8) - 1) << 8;
    if (c < 0) fail('no-free-bus', dpath(i, 'bdf'), `no bus left behind IOMMU ${d.iommu} for a platform device's requester id`, 'ENOSPC');
    rid[i] = c;
    dmaAliases[i] = [c];
    cursor.set(d.iommu, (c & 0xff) === 0xff ? ((c >> 8) - 1) << 8 : c + 1);
  }
  for (let i = 0; i < n; i++) {
    if (devices[i].kind !== 'mdev') continue;
    rid[i] = rid[devices[i].parent];
    dmaAliases[i] = dmaAliases[devices[i].parent];
  }
  return { rid, dmaAliases };
}

/** Per node: is a device below it untrusted (the node is external-facing or itself untrusted)? */
function untrustedBelow(spec: CheckedSpec, up: (node: number) => number): Uint8Array {
  const { devices, switches } = spec;
  const n = devices.length;
  const out = new Uint8Array(n + switches.length);
  const known = new Uint8Array(n + switches.length);
  const get = (node: number): number => {
    if (known[node]) return out[node];
    const facing = node < n ? !!devices[node].bridge?.externalFacing : switches[node - n].externalFacing;
    const self = node < n && devices[node].untrusted;
    const u = up(node);
    const v = facing || self || (u >= 0 && get(u) === 1) ? 1 : 0;
    known[node] = 1;
    out[node] = v;
    return v;
  };
  for (let node = 0; node < n + switches.length; node++) get(node);
  return out;
}

/** Nodes ordered so that a node's upstream and parent come before it. */
function creationOrder(spec: CheckedSpec): Int32Array {
  const { devices, switches } = spec;
  const n = devices.length;
  const total = n + switches.length;
  const depth = new Int32Array(total).fill(-1);
  const depthOf = (node: number): number => {
    if (depth[node] >= 0) return depth[node];
    let d = 0;
    if (node < n) {
      const dev: CheckedDevice = devices[node];
      if (dev.upstream >= 0 && dev.kind !== 'mdev' && dev.kind !== 'platform') d = depthOf(dev.upstream) + 1;
      if (dev.parent >= 0) d = Math.max(d, depthOf(dev.parent) + 1);
    } else if (switches[node - n].upstream >= 0) {
      d = depthOf(switches[node - n].upstream) + 1;
    }
    depth[node] = d;
    return d;
  };
  let maxDepth = 0;
  for (let node = 0; node < total; node++) maxDepth = Math.max(maxDepth, depthOf(node));
  const counts = new Int32Array(maxDepth + 2);
  for (let node = 0; node < total; node++) counts[depth[node] + 1]++;
  for (let k = 1; k < counts.length; k++) counts[k] += counts[k - 1];
  const order = new Int32Array(total);
  for (let node = 0; node < total; node++) order[counts[depth[node]]++] = node;
  return order;
}
