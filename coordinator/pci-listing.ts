/**
 * IOMMU-group listing parser: the text the common "list IOMMU groups" shell loop over
 * /sys/kernel/iommu_groups/N/devices/* prints, one PCI function per line with
 * `lspci -nns` output behind the group number:
 *   IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel Corporation ... [8086:0c01] (rev 06)
 * The variant that prints a header per group ("IOMMU Group 1:") and the functions
 * indented below it is accepted too.
 *
 * Models: group number, BDF (domain optional), class name and code, vendor/device
 * text and ids, trailing "(rev xx)" / "(prog-if …)" notes. Blank lines and '#'
 * comments are skipped.
 * Does not model: non-PCI members (mdev UUIDs, platform device names), which lspci
 * cannot describe; they are rejected with the line number.
 */
import { simError } from '../shared/errors.js';
import { parseBdf } from '../shared/units.js';
import { canonicalBdf } from './topology-spec.js';

export interface ListedFunction {
  /** 1-based line number in the listing. */
  line: number;
  group: number;
  segment: number;
  rid: number;
  /** Canonical 'dddd:bb:dd.f'. */
  bdf: string;
  className: string;
  /** Class and subclass, e.g. 0x0604 for a PCI bridge. */
  classCode: number;
  /** Vendor and device names as lspci printed them. */
  description: string;
  vendorId: number;
  deviceId: number;
}

const OP = 'importTopology';
const BDF = '((?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\\.[0-7])';
const LSPCI = `${BDF} (.+?) \\[([0-9a-fA-F]{4})\\]: (.*) \\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\\]((?: \\((?:[^()]|\\[[^\\]]*\\])*\\))*)\\s*$`;
const ONE_LINE = new RegExp(`^IOMMU [Gg]roup (\\d+) ${LSPCI}`);
const HEADER = /^IOMMU [Gg]roup (\d+):?\s*$/;
const INDENTED = new RegExp(`^\\s+${LSPCI}`);
const EXPECTED = "'IOMMU Group <n> <bb:dd.f> <class name> [<cccc>]: <vendor and device> [<vvvv>:<dddd>]'";

export function listingError(what: string, line: number, msg: string): never {
  throw simError('EINVAL', OP, 'bad-listing', `${what} line ${line}: ${msg}`);
}

function shown(s: string): string {
  return s.length > 80 ? `'${s.slice(0, 77)}...'` : `'${s}'`;
}

/** Parses a listing; EINVAL naming the line and what was expected on a bad one. */
export function parseIommuGroupsListing(text: string): ListedFunction[] {
  if (typeof text !== 'string') throw simError('EINVAL', OP, 'bad-listing', 'iommuGroups: expected the listing text');
  const out: ListedFunction[] = [];
  const seen = new Map<string, number>();
  let current: number | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, k) => {
    const line = k + 1;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) return;
    let group: number;
    let m = ONE_LINE.exec(raw);
    if (m) {
      group = Number(m[1]);
      m = m.slice(1) as RegExpExecArray;
    } else {
      const h = HEADER.exec(raw);
      if (h) { current = Number(h[1]); return; }
      const ind = INDENTED.exec(raw);
      if (ind && current === undefined) listingError('iommuGroups', line, `a function before any 'IOMMU Group <n>:' header: ${shown(raw)}`);
      if (!ind) {
        const tail = /^IOMMU [Gg]roup \d+ (\S+)/.exec(raw);
        if (tail && !parseBdf(tail[1])) listingError('iommuGroups', line, `'${tail[1]}' is not a PCI bus:device.function (only PCI functions can be imported)`);
        listingError('iommuGroups', line, `expected ${EXPECTED}, got ${shown(raw)}`);
      }
      group = current as number;
      m = ind;
    }
    const [, bdfText, className, cls, description, vendor, device] = m;
    const p = parseBdf(bdfText);
    if (!p) listingError('iommuGroups', line, `'${bdfText}' is not a valid bus:device.function (device ≤ 1f)`);
    const bdf = canonicalBdf(p.segment, p.rid);
    const prev = seen.get(bdf);
    if (prev !== undefined) listingError('iommuGroups', line, `${bdfText} is already listed on line ${prev}`);
    seen.set(bdf, line);
    out.push({
      line, group, segment: p.segment, rid: p.rid, bdf, className, classCode: parseInt(cls, 16), description,
      vendorId: parseInt(vendor, 16), deviceId: parseInt(device, 16),
    });
  });
  if (out.length === 0) throw simError('EINVAL', OP, 'bad-listing', 'iommuGroups: no PCI function listed');
  return out;
}
