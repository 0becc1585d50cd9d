/**
 * `lspci -tv` tree parser: recovers which bus each PCI function sits on and which
 * buses each bridge leads to, from the tree lspci draws:
 *   -[0000:00]-+-00.0  Intel Corporation ...
 *              +-01.0-[01]--+-00.0  Advanced Micro Devices ...
 *              |            \-00.1  ...
 *              +-1c.3-[05-0a]----00.0-[06-0a]--+-01.0-[07]--
 * A function is `dd.f`; a bridge adds `-[sec]` or `-[sec-sub]` and its children follow
 * on the same line (`----dd.f` for one, `--+-dd.f` for the first of several) or on
 * later lines at the column of the `+` / `\` that opened the list.
 *
 * Models: one or several root buses (`[dddd:bb]` or `[bb]`), plain `lspci -t` (no
 * names) and `-tv` / `-tvnn`. Blank lines are skipped.
 * Does not model: the names (only kept as text), bus numbers lspci could not resolve.
 */
import { listingError } from './pci-listing.js';

export interface TreeFunction {
  /** 1-based line number in the tree text. */
  line: number;
  segment: number;
  bus: number;
  rid: number;
  /** A bridge's secondary and subordinate bus; -1 for other functions. */
  secondary: number;
  subordinate: number;
  description: string;
}

interface BusRef {
  segment: number;
  bus: number;
}

const DEVFN = /^([0-9a-fA-F]{2})\.([0-7])/;
const RANGE = /^-\[([0-9a-fA-F]{2})(?:-([0-9a-fA-F]{2}))?\]/;
const ROOT = /^\[(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2})\]/;

/** Parses `lspci -tv` text; EINVAL naming the line and what was expected on a bad one. */
export function parseLspciTree(text: string): TreeFunction[] {
  if (typeof text !== 'string') listingError('lspciTree', 0, 'expected the tree text');
  const out: TreeFunction[] = [];
  const openLists = new Map<number, BusRef>(); // column of a '+' → the bus its siblings are on
  text.split(/\r?\n/).forEach((line, k) => {
    const ln = k + 1;
    const bad = (pos: number, what: string): never =>
      listingError('lspciTree', ln, `column ${pos + 1}: expected ${what}, got '${line.slice(pos, pos + 12) || 'end of line'}'`);

    const node = (pos: number, at: BusRef): void => {
      const m = DEVFN.exec(line.slice(pos));
      if (!m) bad(pos, 'a device.function like 00.0');
      const dev = parseInt(m![1], 16);
      if (dev > 31) bad(pos, 'a device number 00..1f');
      const f: TreeFunction = {
        line: ln, segment: at.segment, bus: at.bus, rid: (at.bus << 8) | (dev << 3) | Number(m![2]),
        secondary: -1, subordinate: -1, description: '',
      };
      out.push(f);
      pos += 4;
      const r = RANGE.exec(line.slice(pos));
      if (r) {
        f.secondary = parseInt(r[1], 16);
        f.subordinate = r[2] ? parseInt(r[2], 16) : f.secondary;
        children(pos + r[0].length, { segment: at.segment, bus: f.secondary });
        return;
      }
      const rest = line.slice(pos);
      if (rest !== '' && !/^\s/.test(rest)) bad(pos, "a bus range '-[bb]', a name after spaces, or the end of the line");
      f.description = rest.trim();
    };

    const children = (pos: number, at: BusRef): void => {
      while (line[pos] === '-') pos++;
      const c = line[pos];
      if (c === undefined || c === ' ' || c === '\t') return; // no children
      if (c === '+' || c === '\\') {
        if (line[pos + 1] !== '-') bad(pos + 1, "'-' after the list connector");
        if (c === '+') openLists.set(pos, at);
        node(pos + 2, at);
        return;
      }
      node(pos, at);
    };

    let p = 0;
    while (line[p] === ' ' || line[p] === '|') p++;
    if (p >= line.length) return;
    let q = p;
    while (line[q] === '-' || line[q] === '+' || line[q] === '\\') q++;
    if (line[q] === '[') {
      const r = ROOT.exec(line.slice(q));
      if (!r) bad(q, "a root bus '[dddd:bb]'");
      children(q + r![0].length, { segment: r![1] ? parseInt(r![1], 16) : 0, bus: parseInt(r![2], 16) });
      return;
    }
    const c = line[p];
    if (c !== '+' && c !== '\\') bad(p, "a tree connector '+-' or '\\-'");
    const at = openLists.get(p);
    if (!at) listingError('lspciTree', ln, `column ${p + 1}: '${c}-' continues no open list of a bridge or root bus above`);
    if (c === '\\') openLists.delete(p);
    if (line[p + 1] !== '-') bad(p + 1, "'-' after the list connector");
    node(p + 2, at!);
  });
  if (out.length === 0) listingError('lspciTree', 1, 'expected at least one root bus line like -[0000:00]-+-00.0');
  return out;
}
