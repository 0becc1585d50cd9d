/**
 * IOMMU groups: which devices the IOMMU cannot isolate from each other, derived as
 * Linux's pci_device_group() (drivers/iommu/iommu.c, mainline) does for PCI, one group
 * per platform device (generic_device_group) and one per mdev (vfio-mdev's own group).
 *
 * Models, each rule one union of a union-find (the kernel reaches the same partition by
 * probing devices in bus order and reusing groups it finds):
 * 1. Upstream ACS: a function whose upstream bridge (bus->self) is not on an
 *    ACS-isolated path to the root (pci_acs_path_enabled(bus->self, NULL,
 *    REQ_ACS_FLAGS) false) joins that bridge's group; repeated up the tree, everything
 *    below the topmost non-isolated point shares its group. A VF walks from its PF's bus.
 *    Switches declared as a whole are one node: without ACS, all below them join them.
 * 2. Bridge aliases: devices behind a PCIe-to-PCI or PCI bridge join it
 *    (pci_for_each_dma_alias + get_pci_alias_or_group); covered by rule 1, since such
 *    bridges never have ACS.
 * 3. Explicit DMA aliases: a function joins the function whose requester id it aliases
 *    (get_pci_alias_group: "we alias them or they alias us"). Linux only looks on the
 *    same bus; the model accepts any requester id behind the same IOMMU (AMD IVRS alias
 *    ranges do cross buses).
 * 4. Multi-function: the functions of a slot whose ACS is not enabled share a group
 *    (get_pci_function_alias_group); functions with ACS keep their own.
 * Group ids are dense from 0 in device order (a group takes the position of its first
 * device), which on a listing sorted by BDF is the kernel's own numbering.
 * Does not model: the 2025 proposal that groups every downstream port of a switch whose
 * ports lack ACS (Gunthorpe, "iommu: Compute iommu_groups properly for PCIe switches",
 * v3, not in mainline when read), iommu=group_mf, probe-order artefacts.
 */
import type { CheckedSpec } from './topology-spec-check.js';
import type { PciHierarchy } from './pci-hierarchy.js';

/** Returns each device's group id. */
export function computeIommuGroups(spec: CheckedSpec, pci: PciHierarchy): Int32Array {
  const { devices, switches } = spec;
  const n = devices.length;
  const parent = new Int32Array(n + switches.length);
  for (let i = 0; i < parent.length; i++) parent[i] = i;
  const find = (x: number): number => {
    let r = x;
    while (parent[r] !== r) r = parent[r];
    while (parent[x] !== r) { const next = parent[x]; parent[x] = r; x = next; }
    return r;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a), rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };

  // Rules 1 and 2: every PCI node (function, VF, whole switch) joins a bridge above it
  // that is not on an ACS-isolated path.
  for (let i = 0; i < n; i++) {
    const u = pci.upstreamOf[i];
    if (u >= 0 && !pci.pathAcs[u]) union(i, u);
  }
  for (const s of switches) {
    const u = s.upstream;
    if (u >= 0 && !pci.pathAcs[u]) union(n + s.index, u);
  }

  // Rule 3: explicit aliases join the owner of the aliased requester id.
  const owner = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    if (d.kind === 'pci' || d.kind === 'vf') owner.set(d.iommu * 0x10000 + d.ownRid, i);
  }
  for (let i = 0; i < n; i++) {
    for (const a of devices[i].aliases) {
      const o = owner.get(devices[i].iommu * 0x10000 + a);
      if (o !== undefined) union(i, o);
    }
  }

  // Rule 4: non-isolated functions of one slot.
  for (const slot of pci.slots) {
    let first = -1;
    for (const i of slot) {
      if (pci.acsEnabled[i]) continue;
      if (first < 0) first = i;
      else union(first, i);
    }
  }

  // Dense ids in device order; mdevs and platform devices were never joined to anything.
  const idOfRoot = new Int32Array(n + switches.length).fill(-1);
  const groupOf = new Int32Array(n);
  let next = 0;
  for (let i = 0; i < n; i++) {
    const r = find(i);
    if (idOfRoot[r] < 0) idOfRoot[r] = next++;
    groupOf[i] = idOfRoot[r];
  }
  return groupOf;
}
