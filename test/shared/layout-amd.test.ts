import { describe, expect, it } from 'vitest';
import { type TypedField, fieldMask } from '../../shared/bits.js';
import { type Layout, U64, layout, layoutSuite, maxOf, pad, zeroOf } from './layout-suite.js';
import {
  DTE_FIELDS, DTE_WORDS, DTE_ZERO, type Dte, decodeDte, encodeDte, joinGcr3Root, splitGcr3Root,
} from '../../shared/layout/amd/dte.js';
import {
  GCR3_ENTRY_FIELDS, type Gcr3Entry, decodeGcr3Entry, encodeGcr3Entry, gcr3Glx, gcr3Index,
} from '../../shared/layout/amd/gcr3.js';
import {
  AMD_CMD_FIELDS, AMD_CMD_OP, AMD_CMD_U32, AMD_CMD_WORDS, type AmdCmd, type AmdCmdKind, INV_ALL_PAGES_ADDRESS, PPR_INVALID,
  decodeAmdCmd, decodeInvRange, encodeAmdCmd, encodeInvRange, readAmdCmd, writeAmdCmd,
} from '../../shared/layout/amd/commands.js';
import {
  AMD_EVENT, AMD_EVENT_COMMON_FIELDS, AMD_EVENT_PPR_FIELDS, AMD_EVENT_U32, AMD_EVENT_WORDS, type AmdEvent, IOPF_FLAG,
  amdEventDomainId, amdEventName, decodeAmdEvent, encodeAmdEvent, readAmdEvent, writeAmdEvent,
} from '../../shared/layout/amd/event-log.js';
import {
  PPR_ENTRY_FIELDS, PPR_ENTRY_U32, PPR_ENTRY_WORDS, PPR_REQ_FAULT, type PprEntry, decodePprEntry, encodePprEntry, pprEntryType,
  readPprEntry, writePprEntry,
} from '../../shared/layout/amd/ppr-log.js';
import {
  AMD_RING_LEN_LINUX, amdEmpty, amdFull, amdLinuxCanQueueCmd, amdPtr, amdPtrIndex, amdPtrNext, amdUsed, decodeAmdRingBase,
  encodeAmdRingBase,
} from '../../shared/layout/amd/ring-pointer.js';
import { PROFILE_WIDTHS, tagSpaceCapacity, tagSpaceMax } from '../../shared/layout/profile-widths.js';

const ADDR_51_12 = ((1n << 52n) - 1n) & ~0xfffn;
const ADDR_63_12 = U64 & ~0xfffn;

const GCR3_ROOT = 0x1_2345_6000n;
const DTE_V2: Dte = {
  ...DTE_ZERO, v: true, tv: true, mode: 4, ptRoot: 0x1_0000_0000n, ppr: true, giov: true, gv: true, glx: 1, gcr3Root: GCR3_ROOT,
  ir: true, iw: true, domainId: 0x2a, i: true,
};
const DTE_MAX: Dte = {
  v: true, tv: true, had: 3, mode: 7, ptRoot: ADDR_51_12, ppr: true, gprp: true, giov: true, gv: true, glx: 3,
  gcr3Root: ADDR_51_12, ir: true, iw: true, domainId: 0xffff, i: true, se: true, sa: true, ioctl: 3, cache: true, sd: true,
  ex: true, sysMgt: 3, iv: true, intTabLen: 15, ig: true, intTableRoot: ((1n << 52n) - 1n) & ~0x3fn, guestPagingMode: 3,
  initPass: true, eintPass: true, nmiPass: true, intCtl: 3, lint0Pass: true, lint1Pass: true,
};

const operands = (k: AmdCmdKind) => AMD_CMD_FIELDS[k].filter((f) => f.name !== 'op' && !f.name.startsWith('pasid1') && f.name !== 'pasid7to0');

/** Hand-computed from the positions Linux's build_* helpers use (u32 data[0..3], opcode at data[1] 31:28). */
const CMD_SPOT: { value: AmdCmd; words: bigint[] }[] = [
  // COMPLETION_WAIT with store: data[0] = lo(addr) | S, data[1] = hi(addr) | 1 << 28, data[2..3] = store data.
  { value: { type: 'completion-wait', s: true, i: false, f: false, storeAddr: 0x1_2345_6788n, storeData: 0x42n },
    words: [0x1000_0001_2345_6789n, 0x42n] },
  { value: { type: 'completion-wait', s: false, i: true, f: true, storeAddr: 0n, storeData: U64 }, words: [0x1000_0000_0000_0006n, U64] },
  { value: { type: 'inv-devtab-entry', deviceId: 0xbeef }, words: [0x2000_0000_0000_beefn, 0n] },
  // build_inv_iommu_pages(all pages, domid 0x55, pasid 0x1234, gn): PDE | GN | S.
  { value: { type: 'inv-iommu-pages', pasid: 0x1234, domainId: 0x55, s: true, pde: true, gn: true, addr: INV_ALL_PAGES_ADDRESS },
    words: [0x3000_0055_0000_1234n, 0x7fff_ffff_ffff_f007n] },
  // build_inv_iotlb_pages(devid 0x100, qdep 0x20, pasid 0x1234, gn, one page 0x5000).
  { value: { type: 'inv-iotlb-pages', deviceId: 0x100, pasid: 0x1234, maxPend: 0x20, queueId: 0x100, s: false, gn: true, addr: 0x5000n },
    words: [0x4034_0100_2012_0100n, 0x5004n] },
  { value: { type: 'inv-interrupt-table', deviceId: 0x0010 }, words: [0x5000_0000_0000_0010n, 0n] },
  // build_complete_ppr(devid 0x100, pasid 0x1234, PPR_INVALID, tag 0x1a5, gn).
  { value: { type: 'complete-ppr', deviceId: 0x100, pasid: 0x1234, gn: true, tag: 0x1a5, status: PPR_INVALID },
    words: [0x7000_1234_0000_0100n, 0x0000_11a5_0000_0004n] },
  { value: { type: 'inv-iommu-all' }, words: [0x8000_0000_0000_0000n, 0n] },
];

const CMD_LAYOUTS = (Object.keys(AMD_CMD_OP) as AmdCmdKind[]).map((k) => layout<AmdCmd>({
  name: `${k} command`, table: AMD_CMD_FIELDS[k], words: AMD_CMD_WORDS, encode: encodeAmdCmd, decode: decodeAmdCmd,
  zero: zeroOf(operands(k), { type: k, ...(k === 'inv-iotlb-pages' ? { pasid: 0 } : {}) }) as AmdCmd,
  max: maxOf(operands(k), { type: k, ...(k === 'inv-iotlb-pages' ? { pasid: 0xfffff } : {}) }) as AmdCmd,
  spot: CMD_SPOT.filter((s) => s.value.type === k), fixed: [BigInt(AMD_CMD_OP[k]) << 60n, 0n], skip: ['op'],
  write: writeAmdCmd, read: readAmdCmd,
}));

const ev = (type: number, f: Partial<AmdEvent> = {}): AmdEvent => ({ type, deviceId: 0, pasid: 0, flags: 0, tag: 0, address: 0n, ...f });

const PPR_MAX: PprEntry = {
  type: 0xf, deviceId: 0xffff, pasid: 0xfffff, prgIndex: 0x1ff, last: true, exec: true, read: true, write: true, us: true,
  rvsd: true, gn: true, otherFlags: 0xe19, address: U64,
};
const PPR_ZERO: PprEntry = {
  type: 0, deviceId: 0, pasid: 0, prgIndex: 0, last: false, exec: false, read: false, write: false, us: false, rvsd: false,
  gn: false, otherFlags: 0, address: 0n,
};
const PPR_SPOT: PprEntry = {
  ...PPR_ZERO, type: PPR_REQ_FAULT, deviceId: 0x0100, pasid: 0x54321, prgIndex: 0x1a5, last: true, read: true, write: true, gn: true,
  address: 0x7fff_0000_1000n,
};

const LAYOUTS: Layout[] = [
  layout<Dte>({
    name: 'DTE', table: DTE_FIELDS, words: DTE_WORDS, encode: encodeDte, decode: decodeDte, zero: DTE_ZERO, max: DTE_MAX,
    spot: [{ value: DTE_V2, words: pad([0x79d0_0001_0000_0803n, 0x0000_1001_468a_002an], 4) }],
  }),
  layout<Gcr3Entry>({
    name: 'GCR3 table entry', table: GCR3_ENTRY_FIELDS, words: 1, encode: (v) => [encodeGcr3Entry(v)],
    decode: (w) => decodeGcr3Entry(w[0]), zero: { valid: false, ptr: 0n }, max: { valid: true, ptr: ADDR_51_12 },
    spot: [{ value: { valid: true, ptr: 0xabc_d000n }, words: [0xabc_d001n] }],
  }),
  ...CMD_LAYOUTS,
  layout<AmdEvent>({
    name: 'IO_PAGE_FAULT event (common layout)', table: AMD_EVENT_COMMON_FIELDS, words: AMD_EVENT_WORDS,
    encode: encodeAmdEvent, decode: decodeAmdEvent, zero: ev(AMD_EVENT.IO_PAGE_FAULT),
    max: ev(AMD_EVENT.IO_PAGE_FAULT, { deviceId: 0xffff, pasid: 0xfffff, flags: 0xfff, address: U64 }),
    spot: [
      // Linux iommu_print_event: devid = event[0] & 0xffff, domid = event[1] & 0xffff, flags = event[1] >> 16 & 0xfff.
      { value: ev(AMD_EVENT.IO_PAGE_FAULT, { deviceId: 0x0100, pasid: 0x2a, flags: IOPF_FLAG.RW | IOPF_FLAG.PR, address: 0xdead_b000n }),
        words: [0x2030_002a_0000_0100n, 0xdead_b000n] },
      { value: ev(AMD_EVENT.IO_PAGE_FAULT, { deviceId: 0x0100, pasid: 0x54321, flags: IOPF_FLAG.GN, address: 0x1000n }),
        words: [0x2001_4321_0005_0100n, 0x1000n] },
    ],
    fixed: [2n << 60n, 0n], skip: ['type'], write: writeAmdEvent, read: readAmdEvent,
  }),
  layout<AmdEvent>({
    name: 'INVALID_PPR_REQUEST event (PPR layout)', table: AMD_EVENT_PPR_FIELDS, words: AMD_EVENT_WORDS,
    encode: encodeAmdEvent, decode: decodeAmdEvent, zero: ev(AMD_EVENT.INVALID_PPR_REQUEST),
    max: ev(AMD_EVENT.INVALID_PPR_REQUEST, { deviceId: 0xffff, pasid: 0xfffff, flags: 0xfff, tag: 0x3ff, address: U64 }),
    spot: [{ value: ev(AMD_EVENT.INVALID_PPR_REQUEST, { deviceId: 0x10, pasid: 0x54321, tag: 0x3ff, address: 0x1000n }),
      words: [0x9000_17ff_4321_0010n, 0x1000n] }],
    fixed: [9n << 60n, 0n], skip: ['type'], write: writeAmdEvent, read: readAmdEvent,
  }),
  layout<PprEntry>({
    name: 'PPR log entry', table: PPR_ENTRY_FIELDS, words: PPR_ENTRY_WORDS, encode: encodePprEntry, decode: decodePprEntry,
    zero: PPR_ZERO, max: PPR_MAX,
    // Linux: PPR_PASID1 = x >> 16 & 0xffff, PPR_PASID2 = x >> 42 & 0xf, PPR_TAG = x >> 32 & 0x3ff (bit 9 = last), flags x >> 48.
    spot: [{ value: PPR_SPOT, words: [0x1124_17a5_4321_0100n, 0x7fff_0000_1000n] }],
    write: writePprEntry, read: readPprEntry,
  }),
];

layoutSuite(LAYOUTS);

describe('AMD DTE and GCR3 table', () => {
  it('splits the GCR3 root pointer as Linux DTE_GCR3_VAL_A/B/C and joins it back', () => {
    const x = GCR3_ROOT;
    const a = (x >> 12n) & 0x7n;
    const b = (x >> 15n) & 0xffffn;
    const c = (x >> 31n) & 0x1f_ffffn;
    const w = encodeDte(DTE_V2);
    expect((w[0] >> 58n) & 0x7n).toBe(a);
    expect((w[1] >> 16n) & 0xffffn).toBe(b);
    expect((w[1] >> 43n) & 0x1f_ffffn).toBe(c);
    expect(splitGcr3Root(x)).toEqual({ gcr3Lo: Number(a), gcr3Mid: Number(b), gcr3Hi: Number(c) });
    expect(joinGcr3Root(Number(a), Number(b), Number(c))).toBe(x);
    expect(() => encodeDte({ ...DTE_V2, gcr3Root: 0x1234n })).toThrow(RangeError);
    expect(() => encodeDte({ ...DTE_V2, gcr3Root: 1n << 52n })).toThrow(RangeError);
    expect(() => encodeDte({ ...DTE_V2, domainId: 0x10000 })).toThrow(RangeError);
  });

  it('puts the Linux DTE flags at their bit numbers', () => {
    const bit = (name: keyof Dte) => encodeDte({ ...DTE_ZERO, [name]: true });
    expect(bit('ppr')[0]).toBe(1n << 0x34n);
    expect(bit('giov')[0]).toBe(1n << 54n);
    expect(bit('gv')[0]).toBe(1n << 55n);
    expect(bit('ir')[0]).toBe(1n << 0x3dn);
    expect(bit('iw')[0]).toBe(1n << 0x3en);
    expect(bit('i')[1]).toBe(1n << 32n);
    expect(bit('sa')[1]).toBe(1n << (0x62n - 64n));
    expect(bit('ex')[1]).toBe(1n << (0x67n - 64n));
    expect(bit('iv')[2]).toBe(1n << (0x80n - 128n));
    expect(bit('initPass')[2]).toBe(1n << (0xb8n - 128n));
    expect(bit('lint1Pass')[2]).toBe(1n << (0xbfn - 128n));
    expect(encodeDte({ ...DTE_ZERO, guestPagingMode: 1 })[2]).toBe(1n << 54n);
  });

  it('sizes GCR3 tables as Linux get_gcr3_levels and indexes 9 PASID bits per level', () => {
    expect([1, 2, 512, 513, 1 << 16, 1 << 18, (1 << 18) + 1, 1 << 20].map(gcr3Glx)).toEqual([0, 0, 0, 1, 1, 1, 2, 2]);
    expect([gcr3Index(0x12345, 0), gcr3Index(0x12345, 1), gcr3Index(0x12345, 2)]).toEqual([0x145, 0x91, 0]);
    expect(() => gcr3Glx(0)).toThrow(RangeError);
  });
});

describe('AMD commands', () => {
  it('decodes unknown opcodes and reads the opcode from the slot', () => {
    expect(decodeAmdCmd([0n, 0n])).toEqual({ type: 'unknown', op: 0 });
    expect(decodeAmdCmd([0x6000_0000_0000_0000n, 0n])).toEqual({ type: 'unknown', op: 6 });
    const u32 = new Uint32Array(AMD_CMD_U32 * 2);
    writeAmdCmd(u32, AMD_CMD_U32, { type: 'unknown', op: 0xf });
    expect(readAmdCmd(u32, AMD_CMD_U32)).toEqual({ type: 'unknown', op: 0xf });
    expect(() => encodeAmdCmd({ type: 'unknown', op: 0x10 })).toThrow(RangeError);
  });

  it('rejects operands that do not fit, including a store address that is not 8-byte aligned', () => {
    expect(() => encodeAmdCmd({ type: 'completion-wait', s: true, i: false, f: false, storeAddr: 0x1004n, storeData: 0n })).toThrow(RangeError);
    expect(() => encodeAmdCmd({ type: 'inv-iommu-pages', pasid: 0x100000, domainId: 0, s: false, pde: false, gn: true, addr: 0n }))
      .toThrow(RangeError);
    expect(() => encodeAmdCmd({ type: 'inv-iotlb-pages', deviceId: 0, pasid: 0x100000, maxPend: 0, queueId: 0, s: false, gn: true,
      addr: 0n })).toThrow(RangeError);
    expect(() => encodeAmdCmd({ type: 'complete-ppr', deviceId: 0, pasid: 0, gn: false, tag: 0x200, status: 0 })).toThrow(RangeError);
  });

  it('encodes invalidation ranges as Linux build_inv_address and decodes a covering range', () => {
    expect(encodeInvRange(0x5123n, 0x10n)).toEqual({ addr: 0x5000n, s: false });
    expect(encodeInvRange(0x10000n, 0x2000n)).toEqual({ addr: 0x10000n, s: true });
    expect(encodeInvRange(0x11000n, 0x2000n)).toEqual({ addr: 0x11000n, s: true });
    // Bit 51 is the highest that may differ; beyond it Linux invalidates everything.
    expect(encodeInvRange(0n, 1n << 52n)).toEqual({ addr: 0x7_ffff_ffff_f000n, s: true });
    expect(encodeInvRange(0n, 1n << 53n)).toEqual({ addr: INV_ALL_PAGES_ADDRESS, s: true });
    expect(decodeInvRange(INV_ALL_PAGES_ADDRESS, true)).toEqual({ base: 0n, bytes: 1n << 64n });
    for (const [base, bytes] of [[0x10000n, 0x2000n], [0x11000n, 0x2000n], [0x7000n, 0x9000n], [0x20_0000n, 0x20_0000n]] as const) {
      const { addr, s } = encodeInvRange(base, bytes);
      const r = decodeInvRange(addr, s);
      expect(r.base <= base && r.base + r.bytes >= base + bytes, `${base}+${bytes}`).toBe(true);
    }
    expect(decodeInvRange(0x11000n, true)).toEqual({ base: 0x10000n, bytes: 0x4000n });
    expect(() => encodeInvRange(0n, 0n)).toThrow(RangeError);
  });
});

describe('AMD event and PPR logs', () => {
  it('names event codes and reads the DomainID of an IO_PAGE_FAULT without GN', () => {
    expect(amdEventName(0x7)).toBe('IOTLB_INV_TIMEOUT');
    expect(amdEventName(0xa)).toBeUndefined();
    expect(amdEventDomainId(ev(AMD_EVENT.IO_PAGE_FAULT, { pasid: 0x2a }))).toBe(0x2a);
    expect(amdEventDomainId(ev(AMD_EVENT.IO_PAGE_FAULT, { pasid: 0x2a, flags: IOPF_FLAG.GN }))).toBeUndefined();
    expect(amdEventDomainId(ev(AMD_EVENT.ILLEGAL_COMMAND_ERROR))).toBeUndefined();
  });

  it('encodes the other event codes in the common layout', () => {
    expect(encodeAmdEvent(ev(AMD_EVENT.IOTLB_INV_TIMEOUT, { deviceId: 0x0208, address: 0x1_0000_1230n })))
      .toEqual([0x7000_0000_0000_0208n, 0x1_0000_1230n]);
    expect(encodeAmdEvent(ev(AMD_EVENT.ILLEGAL_COMMAND_ERROR, { address: 0x8000n }))).toEqual([0x5000_0000_0000_0000n, 0x8000n]);
    expect(() => encodeAmdEvent(ev(AMD_EVENT.IO_PAGE_FAULT, { tag: 1 }))).toThrow(RangeError);
    expect(() => encodeAmdEvent(ev(0x10))).toThrow(RangeError);
  });

  it('writes the event code and the PPR type last, after the rest of the entry', () => {
    for (const [write, v, u32n] of [
      [writeAmdEvent, ev(AMD_EVENT.IO_PAGE_FAULT, { deviceId: 1, address: 0x1000n }), AMD_EVENT_U32],
      [writePprEntry, PPR_SPOT, PPR_ENTRY_U32],
    ] as unknown as [(u: Uint32Array, at: number, v: never) => void, never, number][]) {
      const u32 = new Uint32Array(u32n);
      const stores: [number, number][] = [];
      const spy = new Proxy(u32, { set(t, k, x) { stores.push([Number(k), x as number]); (t as unknown as Record<string, number>)[k as string] = x; return true; } });
      write(spy, 0, v);
      const last = stores.at(-1)!;
      expect(last[0]).toBe(1);
      expect(last[1] >>> 28).not.toBe(0);
      expect(stores.slice(0, -1).every(([i, x]) => i !== 1 || x >>> 28 === 0)).toBe(true);
    }
    const u32 = new Uint32Array(PPR_ENTRY_U32);
    writePprEntry(u32, 0, PPR_SPOT);
    expect(pprEntryType(u32, 0)).toBe(PPR_REQ_FAULT);
  });

  it('rejects PPR otherFlags that overlap the named flags', () => {
    expect(() => encodePprEntry({ ...PPR_SPOT, otherFlags: 0x100 })).toThrow(RangeError);
    expect(decodePprEntry([0x0001_0000_0000_0000n, 0n]).otherFlags).toBe(0x001);
  });
});

describe('AMD ring registers', () => {
  it('encodes the base register with the log2 length Linux uses (MMIO_CMD_SIZE_512)', () => {
    expect(encodeAmdRingBase({ base: 0x1_0000_0000n, len: AMD_RING_LEN_LINUX })).toBe(0x0900_0001_0000_0000n);
    expect(decodeAmdRingBase(0x0f00_00ff_ffff_ffffn)).toEqual({ base: 0xff_ffff_f000n, len: 15 });
    expect(() => encodeAmdRingBase({ base: 0n, len: 7 })).toThrow(RangeError);
  });

  it('moves byte-offset head and tail pointers without a wrap bit: N − 1 entries fill a ring of N', () => {
    const len = 8;
    expect([amdPtr(3), amdPtrIndex(0x30), amdPtrIndex(0x8_0030)]).toEqual([0x30, 3, 3]);
    expect(amdPtrNext(0xff0, len)).toBe(0);
    let tail = 0;
    const head = 0;
    expect(amdEmpty(head, tail)).toBe(true);
    for (let i = 0; i < 255; i++) tail = amdPtrNext(tail, len);
    expect([amdUsed(head, tail, len), amdFull(head, tail, len), amdEmpty(head, tail)]).toEqual([255, true, false]);
    expect(amdUsed(0x100, 0x80, len)).toBe(256 - 8);
  });

  it('refuses a command as Linux does once fewer than 0x20 spare bytes would remain', () => {
    const len = 9;
    expect(amdLinuxCanQueueCmd(0, 0, len)).toBe(true);
    // head 0x40, tail 0x10: next_tail 0x20, left 0x20 → wait.
    expect(amdLinuxCanQueueCmd(0x40, 0x10, len)).toBe(false);
    expect(amdLinuxCanQueueCmd(0x40, 0x00, len)).toBe(true);
    // Wrapped: head 0x10, tail at the last slot 0x1ff0: next_tail 0, left 0x10.
    expect(amdLinuxCanQueueCmd(0x10, 0x1ff0, len)).toBe(false);
  });
});

describe('profile widths', () => {
  it('gives the PASID widths of HARDWARE.md §4.1', () => {
    expect([PROFILE_WIDTHS.vtd.pasidBitsMax, PROFILE_WIDTHS.smmuv3.pasidBitsMax, PROFILE_WIDTHS.amd.pasidBitsMax]).toEqual([20, 20, 20]);
    expect([PROFILE_WIDTHS.vtd.pasidBitsDefault, PROFILE_WIDTHS.smmuv3.pasidBitsDefault, PROFILE_WIDTHS.amd.pasidBitsDefault])
      .toEqual([20, 20, 16]);
  });

  it('makes every tag space 16 bits with the kernel\'s first id', () => {
    expect(PROFILE_WIDTHS.smmuv3.tags.asid).toEqual({ bits: 16, first: 1 });
    expect(PROFILE_WIDTHS.smmuv3.tags.vmid).toEqual({ bits: 16, first: 1 });
    expect(PROFILE_WIDTHS.amd.tags.domainId).toEqual({ bits: 16, first: 1 });
    expect(PROFILE_WIDTHS.vtd.tags.did).toEqual({ bits: 16, first: 2 });
    expect([tagSpaceMax(PROFILE_WIDTHS.amd.tags.domainId), tagSpaceCapacity(PROFILE_WIDTHS.amd.tags.domainId)]).toEqual([65535, 65535]);
    expect(tagSpaceCapacity(PROFILE_WIDTHS.vtd.tags.did)).toBe(65534);
  });

  it('sizes queue entries from the layouts and uses power-of-two depths of at least 64', () => {
    const q = (p: 'vtd' | 'smmuv3' | 'amd') => {
      const w = PROFILE_WIDTHS[p];
      return [w.command.entryBytes, w.event.entryBytes, w.pageRequest.entryBytes];
    };
    expect(q('vtd')).toEqual([32, 16, 32]);
    expect(q('smmuv3')).toEqual([16, 32, 16]);
    expect(q('amd')).toEqual([16, 16, 16]);
    expect([PROFILE_WIDTHS.amd.command.depth, PROFILE_WIDTHS.amd.pageRequest.depth, PROFILE_WIDTHS.vtd.pageRequest.depth])
      .toEqual([512, 512, 2048]);
    for (const w of Object.values(PROFILE_WIDTHS)) {
      for (const d of [w.command.depth, w.event.depth, w.pageRequest.depth]) expect(d >= 64 && (d & (d - 1)) === 0).toBe(true);
    }
  });
});
