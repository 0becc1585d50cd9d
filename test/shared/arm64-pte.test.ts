/**
 * The Arm AArch64 stage-1 descriptor (4 KiB granule): every field at the bit the Arm ARM
 * (D8) and Linux io-pgtable-arm.c give it, encode/decode round trips, the u32-half hot-path
 * helpers against the bigint encoding, and ARM64_S1's permission mapping and writer.
 */
import { describe, expect, it } from 'vitest';
import {
  ARM64_AF, ARM64_AP_RDONLY, ARM64_AP_UNPRIV, ARM64_HI_CONT, ARM64_HI_DBM, ARM64_HI_NS_TABLE, ARM64_HI_PXN, ARM64_HI_PXN_TABLE,
  ARM64_HI_UXN, ARM64_HI_XN_TABLE, ARM64_LEAF_FIELDS, ARM64_MAIR_IDX_CACHE, ARM64_NG, ARM64_NS, ARM64_SH_IS, ARM64_TABLE_FIELDS,
  ARM64_TYPE, ARM64_VALID, type Arm64Leaf, type Arm64Table, arm64Block, arm64Frame, arm64MakeLeafHi, arm64MakeLeafLo,
  arm64MakeTableHi, arm64MakeTableLo, arm64Pxn, arm64ReadOnly, arm64Unpriv, arm64Uxn, arm64Valid, decodeArm64Leaf,
  decodeArm64Table, encodeArm64Leaf, encodeArm64Table,
} from '../../shared/layout/arm64-pte.js';
import {
  ARM64_S1, FIRST_STAGE, PERM_EXEC, PERM_READ, PERM_USER, PERM_WRITE, SECOND_STAGE, pteFormat,
} from '../../shared/layout/pte-format.js';

const LEAF_ZERO: Arm64Leaf = {
  valid: false, page: false, attrIndx: 0, ns: false, ap1: false, ap2: false, sh: 0, af: false, ng: false, addr: 0n,
  dbm: false, contiguous: false, pxn: false, uxn: false, sw: 0,
};
const TABLE_ZERO: Arm64Table = { valid: false, table: false, addr: 0n, pxnTable: false, xnTable: false, apTable: 0, nsTable: false };

const bit = (n: number) => 1n << BigInt(n);
const halves = (w: bigint) => ({ lo: Number(w & 0xffff_ffffn), hi: Number(w >> 32n) });

describe('Arm64 leaf descriptor fields', () => {
  // [field, value, the descriptor it must encode to] — positions from Arm ARM D8.3 / io-pgtable-arm.c.
  const cases: [keyof Arm64Leaf, Arm64Leaf[keyof Arm64Leaf], bigint][] = [
    ['valid', true, bit(0)],
    ['page', true, bit(1)],
    ['attrIndx', 7, 0b111n << 2n],
    ['attrIndx', 1, bit(2)],
    ['ns', true, bit(5)],
    ['ap1', true, bit(6)],
    ['ap2', true, bit(7)],
    ['sh', 3, 0b11n << 8n],
    ['sh', 2, bit(9)],
    ['af', true, bit(10)],
    ['ng', true, bit(11)],
    ['addr', 0x1000n, bit(12)],
    ['addr', 0xffff_ffff_f000n, ((1n << 48n) - 1n) & ~0xfffn],
    ['dbm', true, bit(51)],
    ['contiguous', true, bit(52)],
    ['pxn', true, bit(53)],
    ['uxn', true, bit(54)],
    ['sw', 0xf, 0xfn << 55n],
    ['sw', 1, bit(55)],
  ];
  it.each(cases)('%s = %s encodes to its bits and decodes back', (name, value, want) => {
    const e = { ...LEAF_ZERO, [name]: value } as Arm64Leaf;
    expect(encodeArm64Leaf(e)).toBe(want);
    expect(decodeArm64Leaf(want)).toEqual(e);
  });

  it('round-trips a full Linux-style 2 MiB block descriptor', () => {
    const e: Arm64Leaf = {
      valid: true, page: false, attrIndx: 1, ns: false, ap1: true, ap2: true, sh: 3, af: true, ng: true, addr: 0x8000_0020_0000n,
      dbm: false, contiguous: false, pxn: true, uxn: true, sw: 0,
    };
    const w = encodeArm64Leaf(e);
    expect(w).toBe(0x0060_8000_0020_0fc5n);
    expect(decodeArm64Leaf(w)).toEqual(e);
  });

  it('leaves reserved bits 50:48 and 63:59 out of the table, and rejects a misaligned address', () => {
    for (const f of ARM64_LEAF_FIELDS) {
      for (const b of [48, 49, 50, 59, 60, 61, 62, 63]) expect(b >= f.lo && b <= f.hi, `${f.name} covers ${b}`).toBe(false);
    }
    expect(() => encodeArm64Leaf({ ...LEAF_ZERO, addr: 0x1800n })).toThrow(RangeError);
    expect(() => encodeArm64Leaf({ ...LEAF_ZERO, addr: 1n << 48n })).toThrow(RangeError);
  });
});

describe('Arm64 table descriptor fields', () => {
  const cases: [keyof Arm64Table, Arm64Table[keyof Arm64Table], bigint][] = [
    ['valid', true, bit(0)],
    ['table', true, bit(1)],
    ['addr', 0xabc_d000n, 0xabc_d000n],
    ['addr', 0xffff_ffff_f000n, ((1n << 48n) - 1n) & ~0xfffn],
    ['pxnTable', true, bit(59)],
    ['xnTable', true, bit(60)],
    ['apTable', 3, 0b11n << 61n],
    ['apTable', 2, bit(62)],
    ['nsTable', true, bit(63)],
  ];
  it.each(cases)('%s = %s encodes to its bits and decodes back', (name, value, want) => {
    const e = { ...TABLE_ZERO, [name]: value } as Arm64Table;
    expect(encodeArm64Table(e)).toBe(want);
    expect(decodeArm64Table(want)).toEqual(e);
  });
  it('has the table fields only (no AP/AF/XN of leaves)', () => {
    expect(ARM64_TABLE_FIELDS.map((f) => f.name)).toEqual(['valid', 'table', 'addr', 'pxnTable', 'xnTable', 'apTable', 'nsTable']);
  });
});

describe('Arm64 hot-path helpers (u32 halves)', () => {
  it('constants sit at the bigint encoding of each field', () => {
    const one = (name: keyof Arm64Leaf, v: Arm64Leaf[keyof Arm64Leaf] = true) => halves(encodeArm64Leaf({ ...LEAF_ZERO, [name]: v } as Arm64Leaf));
    expect(one('valid').lo).toBe(ARM64_VALID);
    expect(one('page').lo).toBe(ARM64_TYPE);
    expect(one('ns').lo).toBe(ARM64_NS);
    expect(one('ap1').lo).toBe(ARM64_AP_UNPRIV);
    expect(one('ap2').lo).toBe(ARM64_AP_RDONLY);
    expect(one('af').lo).toBe(ARM64_AF);
    expect(one('ng').lo).toBe(ARM64_NG);
    expect(one('dbm').hi).toBe(ARM64_HI_DBM);
    expect(one('contiguous').hi).toBe(ARM64_HI_CONT);
    expect(one('pxn').hi).toBe(ARM64_HI_PXN);
    expect(one('uxn').hi).toBe(ARM64_HI_UXN);
    const t = (name: keyof Arm64Table) => halves(encodeArm64Table({ ...TABLE_ZERO, [name]: true } as Arm64Table));
    expect(t('pxnTable').hi).toBe(ARM64_HI_PXN_TABLE);
    expect(t('xnTable').hi).toBe(ARM64_HI_XN_TABLE);
    expect(t('nsTable').hi).toBe(ARM64_HI_NS_TABLE);
  });

  it('a read-only, no-exec 4 KiB page is what arm_lpae_prot_to_pte writes', () => {
    const frame = 0x8_1234_5; // address 0x8_1234_5000: bits 47:32 nonzero
    const lo = arm64MakeLeafLo(frame, { write: false, exec: false, user: true });
    const hi = arm64MakeLeafHi(frame, { write: false, exec: false, user: true });
    expect(decodeArm64Leaf((BigInt(hi) << 32n) | BigInt(lo))).toEqual({
      valid: true, page: true, attrIndx: ARM64_MAIR_IDX_CACHE, ns: false, ap1: true, ap2: true, sh: ARM64_SH_IS, af: true, ng: true,
      addr: 0x8_1234_5000n, dbm: false, contiguous: false, pxn: true, uxn: true, sw: 0,
    });
    expect(arm64Frame(lo, hi)).toBe(frame);
    expect(arm64Valid(lo)).toBe(true);
    expect(arm64Block(lo)).toBe(false);
    expect(arm64ReadOnly(lo)).toBe(true);
    expect(arm64Unpriv(lo)).toBe(true);
    expect(arm64Uxn(hi)).toBe(true);
    expect(arm64Pxn(hi)).toBe(true);
  });

  it('a writable, executable, privileged-only block clears AP[2], XN and AP[1] and bit 1', () => {
    const frame = 0x200; // 2 MiB
    const lo = arm64MakeLeafLo(frame, { write: true, exec: true, user: false, block: true });
    const hi = arm64MakeLeafHi(frame, { write: true, exec: true, user: false, block: true });
    expect(hi).toBe(0);
    expect(lo).toBe(0x20_0000 | ARM64_VALID | (1 << 2) | (3 << 8) | ARM64_AF | ARM64_NG);
    expect(arm64Block(lo)).toBe(true);
    expect(arm64ReadOnly(lo)).toBe(false);
    expect(arm64Unpriv(lo)).toBe(false);
  });

  it('table descriptors carry valid|table and the address only', () => {
    const frame = 0xfff_ffff_ff; // the last frame below 2^48
    const w = (BigInt(arm64MakeTableHi(frame)) << 32n) | BigInt(arm64MakeTableLo(frame));
    expect(w).toBe(0xffff_ffff_f003n);
    expect(decodeArm64Table(w)).toEqual({ ...TABLE_ZERO, valid: true, table: true, addr: 0xffff_ffff_f000n });
    expect(arm64Frame(arm64MakeTableLo(frame), arm64MakeTableHi(frame))).toBe(frame);
  });

  it('frames beyond the 48-bit output address throw rather than wrap', () => {
    expect(() => arm64MakeTableHi(2 ** 36)).toThrow(RangeError);
    expect(() => arm64MakeLeafHi(2 ** 36, { write: true, exec: true, user: true })).toThrow(RangeError);
    expect(() => arm64MakeLeafLo(-1, { write: true, exec: true, user: true })).toThrow(RangeError);
  });

  it('arm64Frame ignores attribute bits in both halves', () => {
    const { lo, hi } = halves(encodeArm64Table({ ...TABLE_ZERO, valid: true, table: true, addr: 0x1234_5678_9000n, pxnTable: true, xnTable: true, apTable: 3, nsTable: true }));
    expect(arm64Frame(lo, hi)).toBe(0x1234_5678_9);
    const l = halves(encodeArm64Leaf({ ...LEAF_ZERO, valid: true, addr: 0xabcd_0000_0000n, sw: 0xf, uxn: true, pxn: true, dbm: true, contiguous: true, sh: 3, attrIndx: 7 }));
    expect(arm64Frame(l.lo, l.hi)).toBe(0xabcd_0000_0);
  });
});

describe('ARM64_S1 PteFormat', () => {
  const leaf = (prot: { read?: boolean; write?: boolean; exec?: boolean }, large = false) => {
    const lo = ARM64_S1.leafLo(0x1234, prot, large);
    const hi = ARM64_S1.leafHi(0x1234, prot);
    return { lo, hi, perm: ARM64_S1.perm(lo, hi) };
  };

  it('is named arm64-s1 with 3 or 4 levels and leaf-only permissions; the x86 formats are not', () => {
    expect(pteFormat('arm64-s1')).toBe(ARM64_S1);
    expect(pteFormat('first-stage')).toBe(FIRST_STAGE);
    expect(pteFormat('second-stage')).toBe(SECOND_STAGE);
    expect(ARM64_S1.name).toBe('arm64-s1');
    expect(ARM64_S1.levels).toEqual([3, 4]);
    expect(ARM64_S1.leafPermOnly).toBe(true);
    expect(FIRST_STAGE.leafPermOnly).toBeFalsy();
    expect(SECOND_STAGE.leafPermOnly).toBeFalsy();
  });

  it('maps AP[2] to write, AP[1] to user and UXN to exec; read whenever valid', () => {
    expect(leaf({ read: true, write: true, exec: true }).perm).toBe(PERM_READ | PERM_WRITE | PERM_EXEC | PERM_USER);
    expect(leaf({ read: true }).perm).toBe(PERM_READ | PERM_USER);
    expect(leaf({ read: true, write: true }).perm).toBe(PERM_READ | PERM_WRITE | PERM_USER);
    expect(leaf({ read: true, exec: true }).perm).toBe(PERM_READ | PERM_EXEC | PERM_USER);
    // Hand-built descriptors: AP[1]=0 → no user; UXN alone denies exec; PXN alone does not.
    const v = ARM64_VALID | ARM64_TYPE;
    expect(ARM64_S1.perm(v, 0)).toBe(PERM_READ | PERM_WRITE | PERM_EXEC);
    expect(ARM64_S1.perm(v | ARM64_AP_RDONLY, 0)).toBe(PERM_READ | PERM_EXEC);
    expect(ARM64_S1.perm(v, ARM64_HI_UXN)).toBe(PERM_READ | PERM_WRITE);
    expect(ARM64_S1.perm(v, ARM64_HI_PXN)).toBe(PERM_READ | PERM_WRITE | PERM_EXEC);
    expect(ARM64_S1.walkPerm(v | ARM64_AP_RDONLY | ARM64_AP_UNPRIV, ARM64_HI_UXN)).toBe(PERM_READ | PERM_USER);
  });

  it('writes pages with bit 1 set and blocks with it clear; large() is bit 1 clear', () => {
    const p = leaf({ read: true }, false);
    const b = leaf({ read: true }, true);
    expect(p.lo & ARM64_TYPE).toBe(ARM64_TYPE);
    expect(b.lo & ARM64_TYPE).toBe(0);
    expect(ARM64_S1.large(b.lo)).toBe(true);
    expect(ARM64_S1.large(ARM64_S1.tableLo(0x1234))).toBe(false);
    expect(ARM64_S1.present(p.lo) && ARM64_S1.present(b.lo) && ARM64_S1.present(ARM64_S1.tableLo(5))).toBe(true);
    expect(ARM64_S1.present(0xffff_fffe)).toBe(false);
    expect(ARM64_S1.frame(p.lo, p.hi)).toBe(0x1234);
    expect(ARM64_S1.largeFrame(b.lo, b.hi)).toBe(0x1234);
  });

  it('sets AF, nG, SH=IS, the cacheable AttrIndx and PXN|UXN without exec, as Linux does', () => {
    const d = decodeArm64Leaf((BigInt(leaf({ read: true, write: true }).hi) << 32n) | BigInt(leaf({ read: true, write: true }).lo));
    expect(d).toMatchObject({ valid: true, page: true, af: true, ng: true, sh: 3, attrIndx: 1, ap1: true, ap2: false, pxn: true, uxn: true, ns: false });
    const x = leaf({ read: true, exec: true });
    expect(x.hi & (ARM64_HI_PXN | ARM64_HI_UXN)).toBe(0);
  });

  it('writes table descriptors without table attributes', () => {
    const t = decodeArm64Table((BigInt(ARM64_S1.tableHi(0x8_0000_1)) << 32n) | BigInt(ARM64_S1.tableLo(0x8_0000_1)));
    expect(t).toEqual({ ...TABLE_ZERO, valid: true, table: true, addr: 0x8_0000_1000n });
  });
});
