import { describe, expect, it } from 'vitest';
import { readWords, reservedMasks, writeWords } from '../../shared/bits.js';
import { mulberry32 } from '../../shared/prng.js';
import {
  PAGE_REQUEST_BYTES, PAGE_REQUEST_FIELDS, PAGE_REQUEST_TYPE, PAGE_REQUEST_U32, PAGE_REQUEST_WORDS, PRG_INDEX_BITS,
  PRG_INDEX_MAX, PRQ_DEPTH_LINUX, type PageRequestDesc, decodePageRequest, encodePageRequest, pageRequestType,
  readPageRequest, writePageRequest,
} from '../../shared/layout/page-request.js';

const U64 = (1n << 64n) - 1n;

const ZERO: PageRequestDesc = {
  pasidPresent: false, privDataPresent: false, rid: 0, pasid: 0, exe: false, pm: false,
  read: false, write: false, lpig: false, prgIndex: 0, addr: 0n, privData0: 0n, privData1: 0n,
};

const MAX: PageRequestDesc = {
  pasidPresent: true, privDataPresent: true, rid: 0xffff, pasid: 0xfffff, exe: true, pm: true,
  read: true, write: true, lpig: true, prgIndex: 0x1ff, addr: U64 & ~0xfffn, privData0: U64, privData1: U64,
};

const MIXED: PageRequestDesc = {
  pasidPresent: true, privDataPresent: false, rid: 0x1234, pasid: 0xabcde, exe: true, pm: false,
  read: true, write: false, lpig: true, prgIndex: 0x1a5, addr: 0x7f12_3456_7000n,
  privData0: 0x0123_4567_89ab_cdefn, privData1: 0xfedc_ba98_7654_3210n,
};

function viaU32(d: PageRequestDesc, at = 0): Uint32Array {
  const u32 = new Uint32Array(at + PAGE_REQUEST_U32);
  writePageRequest(u32, at, d);
  return u32;
}

/** A random descriptor from a seeded generator. */
function randomDesc(next: () => number): PageRequestDesc {
  const u = (bits: number) => Math.floor(next() * 2 ** bits);
  const u64 = () => (BigInt(u(32)) << 32n) | BigInt(u(32));
  const flag = () => next() < 0.5;
  return {
    pasidPresent: flag(), privDataPresent: flag(), rid: u(16), pasid: u(20), exe: flag(), pm: flag(),
    read: flag(), write: flag(), lpig: flag(), prgIndex: u(9), addr: u64() & ~0xfffn, privData0: u64(), privData1: u64(),
  };
}

describe('page request descriptor layout', () => {
  it('has the documented sizes and constants', () => {
    expect(PAGE_REQUEST_BYTES).toBe(32);
    expect(PAGE_REQUEST_WORDS * 8).toBe(PAGE_REQUEST_BYTES);
    expect(PAGE_REQUEST_U32 * 4).toBe(PAGE_REQUEST_BYTES);
    expect(PAGE_REQUEST_TYPE).toBe(1);
    expect(PRG_INDEX_BITS).toBe(9);
    expect(PRG_INDEX_MAX).toBe(511);
    expect(PRQ_DEPTH_LINUX).toBe(2048);
  });

  it('places every field where the spec, Linux page_req_dsc and QEMU VTD_PRD_* do', () => {
    const at = (name: string) => PAGE_REQUEST_FIELDS.find((f) => f.name === name);
    expect(at('type')).toEqual({ name: 'type', word: 0, hi: 7, lo: 0 });
    expect(at('pasidPresent')).toMatchObject({ word: 0, hi: 8, lo: 8 });
    expect(at('privDataPresent')).toMatchObject({ word: 0, hi: 9, lo: 9 });
    expect(at('rid')).toMatchObject({ word: 0, hi: 31, lo: 16 });
    expect(at('pasid')).toMatchObject({ word: 0, hi: 51, lo: 32 });
    expect(at('exe')).toMatchObject({ word: 0, hi: 52, lo: 52 });
    expect(at('pm')).toMatchObject({ word: 0, hi: 53, lo: 53 });
    expect(at('read')).toMatchObject({ word: 1, hi: 0, lo: 0 });
    expect(at('write')).toMatchObject({ word: 1, hi: 1, lo: 1 });
    expect(at('lpig')).toMatchObject({ word: 1, hi: 2, lo: 2 });
    expect(at('prgIndex')).toMatchObject({ word: 1, hi: 11, lo: 3 });
    expect(at('addr')).toMatchObject({ word: 1, hi: 63, lo: 12 });
    expect(at('privData0')).toMatchObject({ word: 2, hi: 63, lo: 0 });
    expect(at('privData1')).toMatchObject({ word: 3, hi: 63, lo: 0 });
    // Reserved: QW0 bits 15:10 and 63:54; QW1–QW3 fully used.
    expect(reservedMasks(PAGE_REQUEST_FIELDS, PAGE_REQUEST_WORDS)).toEqual([0xffc0_0000_0000_fc00n, 0n, 0n, 0n]);
  });

  it('round-trips the all-zero descriptor (type 1 only)', () => {
    const w = encodePageRequest(ZERO);
    expect(w).toEqual([1n, 0n, 0n, 0n]);
    expect(decodePageRequest(w)).toEqual(ZERO);
    expect(readPageRequest(viaU32(ZERO), 0)).toEqual(ZERO);
  });

  it('round-trips every field at its maximum', () => {
    const w = encodePageRequest(MAX);
    expect(w).toEqual([0x003f_ffff_ffff_0301n, U64, U64, U64]);
    expect(decodePageRequest(w)).toEqual(MAX);
    expect(readPageRequest(viaU32(MAX), 0)).toEqual(MAX);
  });

  it('round-trips mixed values', () => {
    expect(decodePageRequest(encodePageRequest(MIXED))).toEqual(MIXED);
    const flipped: PageRequestDesc = {
      ...MIXED, pasidPresent: false, privDataPresent: true, exe: false, pm: true, read: false, write: true, lpig: false,
    };
    expect(decodePageRequest(encodePageRequest(flipped))).toEqual(flipped);
    expect(readPageRequest(viaU32(flipped), 0)).toEqual(flipped);
  });

  it('encodes literal words at the spec positions', () => {
    // QW0: type 1 | PP (bit 8) | RID 0x1234 << 16 | PASID 0xabcde << 32 | EXE (bit 52).
    // QW1: RD (bit 0) | LPIG (bit 2) | PRGI 0x1a5 << 3 | ADDR 0x7f12_3456_7000.
    expect(encodePageRequest(MIXED)).toEqual([
      0x001a_bcde_1234_0101n, 0x0000_7f12_3456_7d2dn, 0x0123_4567_89ab_cdefn, 0xfedc_ba98_7654_3210n,
    ]);
    const single = (d: Partial<PageRequestDesc>) => encodePageRequest({ ...ZERO, ...d });
    expect(single({ pasidPresent: true })[0]).toBe(0x101n);
    expect(single({ privDataPresent: true })[0]).toBe(0x201n);
    expect(single({ rid: 1 })[0]).toBe(0x1_0001n);
    expect(single({ pasid: 1 })[0]).toBe((1n << 32n) | 1n);
    expect(single({ exe: true })[0]).toBe((1n << 52n) | 1n);
    expect(single({ pm: true })[0]).toBe((1n << 53n) | 1n);
    expect(single({ read: true })[1]).toBe(1n);
    expect(single({ write: true })[1]).toBe(2n);
    expect(single({ lpig: true })[1]).toBe(4n);
    expect(single({ prgIndex: 1 })[1]).toBe(8n);
    expect(single({ addr: 0x1000n })[1]).toBe(0x1000n);
    // The u32 view: little-endian halves, word i at u32 2i (low) and 2i+1 (high).
    expect(Array.from(viaU32(MIXED))).toEqual([
      0x1234_0101, 0x001a_bcde, 0x3456_7d2d, 0x0000_7f12, 0x89ab_cdef, 0x0123_4567, 0x7654_3210, 0xfedc_ba98,
    ]);
  });

  it('drops reserved bits and the type byte when decoding', () => {
    const ones = [U64, U64, U64, U64];
    const d = decodePageRequest(ones);
    expect(d).toEqual(MAX);
    // Re-encoding clears QW0 bits 15:10 and 63:54 and writes type 1.
    expect(encodePageRequest(d)).toEqual([0x003f_ffff_ffff_0301n, U64, U64, U64]);
    const reservedOnly = [0xffc0_0000_0000_fc00n | 0xfen, 0n, 0n, 0n];
    expect(decodePageRequest(reservedOnly)).toEqual(ZERO);
    const u32 = new Uint32Array(PAGE_REQUEST_U32);
    writeWords(u32, 0, reservedOnly);
    expect(readPageRequest(u32, 0)).toEqual(ZERO);
    expect(pageRequestType(u32, 0)).toBe(0xfe);
    u32.fill(0xffffffff);
    expect(readPageRequest(u32, 0)).toEqual(MAX);
  });

  it('u32 writer and reader agree with the bigint encoder and decoder', () => {
    const next = mulberry32(0x5eed_0001);
    const at = 3 * PAGE_REQUEST_U32;
    for (let i = 0; i < 500; i++) {
      const d = randomDesc(next);
      const u32 = new Uint32Array(at + PAGE_REQUEST_U32).fill(0xdeadbeef);
      writePageRequest(u32, at, d);
      expect(readWords(u32, at, PAGE_REQUEST_WORDS)).toEqual(encodePageRequest(d));
      expect(readPageRequest(u32, at)).toEqual(d);
      expect(decodePageRequest(readWords(u32, at, PAGE_REQUEST_WORDS))).toEqual(d);
      expect(pageRequestType(u32, at)).toBe(PAGE_REQUEST_TYPE);
      expect(u32[at - 1]).toBe(0xdeadbeef);
    }
  });

  it('accepts PRG index 511 and rejects 512', () => {
    const top = { ...ZERO, prgIndex: PRG_INDEX_MAX };
    expect(encodePageRequest(top)[1]).toBe(0xff8n);
    expect(decodePageRequest(encodePageRequest(top)).prgIndex).toBe(511);
    expect(readPageRequest(viaU32(top), 0).prgIndex).toBe(511);
    const over = { ...ZERO, prgIndex: 1 << PRG_INDEX_BITS };
    expect(() => encodePageRequest(over)).toThrow(RangeError);
    expect(() => viaU32(over)).toThrow(RangeError);
  });

  it('rejects values that do not fit', () => {
    for (const bad of [
      { rid: 0x1_0000 }, { pasid: 0x10_0000 }, { addr: 0x1234n }, { addr: 1n << 64n }, { addr: -4096n },
      { privData0: 1n << 64n }, { privData1: -1n },
    ] as Partial<PageRequestDesc>[]) {
      const d = { ...ZERO, ...bad };
      expect(() => encodePageRequest(d)).toThrow(RangeError);
      expect(() => viaU32(d)).toThrow(RangeError);
    }
  });
});
