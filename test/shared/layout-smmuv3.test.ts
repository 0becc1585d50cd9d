import { describe, expect, it } from 'vitest';
import { type TypedField, checkFieldTable, fieldMask } from '../../shared/bits.js';
import { type Layout, U64, layout, layoutSuite, maxOf, pad, zeroOf } from './layout-suite.js';
import {
  EATS_TRANS, S1DSS_SSID0, STE_CFG_S1_TRANS, STE_CFG_S2_TRANS, STE_FIELDS, STE_L1_DESC_FIELDS, STE_WORDS, STE_ZERO, type Ste,
  decodeSte, decodeSteL1Desc, encodeSte, encodeSteL1Desc, steIndex2l, steStage1, steStage2,
} from '../../shared/layout/smmuv3/ste.js';
import {
  CD_FIELDS, CD_L1_DESC_FIELDS, CD_WORDS, CD_ZERO, type Cd, cdIndex, decodeCd, decodeCdL1Desc, encodeCd, encodeCdL1Desc,
} from '../../shared/layout/smmuv3/cd.js';
import {
  ATC_INV_SIZE_ALL, CFGI_RANGE_ALL, CS_IRQ, MEMATTR_OIWB, PRI_RESP_SUCC, RESUME_RETRY, SH_ISH, SMMU_CMD_FIELDS, SMMU_CMD_OP,
  SMMU_CMD_U32, SMMU_CMD_WORDS, type SmmuCmd, type SmmuCmdKind, cfgiAll, decodeSmmuCmd, encodeSmmuCmd, readSmmuCmd,
  tlbiGranuleShift, tlbiRangeBytes, tlbiRangeChunks, tlbiTg, writeSmmuCmd,
} from '../../shared/layout/smmuv3/commands.js';
import {
  EVT_CLASS_TT, EVT_ID, SMMU_EVENT_FIELDS, SMMU_EVENT_U32, SMMU_EVENT_WORDS, type SmmuEvent, decodeSmmuEvent, encodeSmmuEvent,
  eventFetchAddr, eventIpa, readSmmuEvent, smmuEvent, smmuEventName, writeSmmuEvent,
} from '../../shared/layout/smmuv3/event.js';
import {
  SMMU_PRI_FIELDS, SMMU_PRI_U32, SMMU_PRI_WORDS, type SmmuPriRecord, decodeSmmuPri, encodeSmmuPri, readSmmuPri, writeSmmuPri,
} from '../../shared/layout/smmuv3/pri.js';
import {
  CERROR_ATC_INV_SYNC, CERROR_ILL, IDR1_FIELDS, Q_BASE_FIELDS, STRTAB_BASE_CFG_FIELDS, STRTAB_BASE_FIELDS, cmdqConsErr,
  cmdqConsWithErr, decodeIdr1, decodeQBase, decodeStrtabBaseCfg, encodeIdr1, encodeQBase, encodeStrtabBase, encodeStrtabBaseCfg,
} from '../../shared/layout/smmuv3/queue-base.js';
import { qIdx, qInc, qMake, qOvf, qWrap } from '../../shared/layout/queue-pointer.js';


/** Strips the opcode row so the generic max/zero builders see only a command's operands. */
const operands = (k: SmmuCmdKind) => SMMU_CMD_FIELDS[k].filter((f) => f.name !== 'op');

const STE_S1: Ste = {
  ...STE_ZERO, v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: 0x8000_0000n, s1CdMax: 10,
  s1dss: S1DSS_SSID0, s1cir: 1, s1cor: 1, s1csh: 3, eats: EATS_TRANS,
};
const STE_S2: Ste = {
  ...STE_ZERO, v: true, config: STE_CFG_S2_TRANS, s2vmid: 0x1234, s2t0sz: 25, s2sl0: 1, s2ir0: 1, s2or0: 1, s2sh0: 3,
  s2ps: 5, s2aa64: true, s2r: true, s2ttb: 0x1_2340_0000n,
};
const CD_SVA: Cd = {
  ...CD_ZERO, t0sz: 16, epd1: true, v: true, ips: 5, aa64: true, r: true, a: true, aset: true, asid: 0x1234,
  ttb0: 0x4000_0000n, mair: 0x4_ff44n,
};

/** Hand-computed encodings (positions from arm-smmu-v3.h / the architecture), one or more per opcode. */
const CMD_SPOT: { value: SmmuCmd; words: bigint[] }[] = [
  // CMD_SYNC, CS = SIG_IRQ, MSI to the command's own slot (Linux ARM_SMMU_OPT_MSIPOLL).
  { value: { type: 'cmd-sync', cs: CS_IRQ, msh: SH_ISH, msiattr: MEMATTR_OIWB, msiData: 0, msiAddr: 0x1000_0040n },
    words: [0x0fc0_1046n, 0x1000_0040n] },
  { value: { type: 'cmd-sync', cs: 0, msh: 0, msiattr: 0, msiData: 0xdead_beef, msiAddr: 0n }, words: [0xdead_beef_0000_0046n, 0n] },
  { value: { type: 'tlbi-nh-va', vmid: 0, asid: 0x42, num: 3, scale: 1, leaf: true, ttl: 3, tg: 1, addr: 0x7f12_3456_7000n },
    words: [0x0042_0000_0010_3012n, 0x7f12_3456_7701n] },
  { value: { type: 'tlbi-nh-asid', vmid: 0, asid: 0xffff }, words: [0xffff_0000_0000_0011n, 0n] },
  { value: { type: 'tlbi-s12-vmall', vmid: 0x8001 }, words: [0x0000_8001_0000_0028n, 0n] },
  { value: { type: 'tlbi-s2-ipa', vmid: 7, num: 0, scale: 0, leaf: false, ttl: 0, tg: 0, addr: 0x8_0000_0000n },
    words: [0x0000_0007_0000_002an, 0x8_0000_0000n] },
  { value: { type: 'tlbi-nsnh-all' }, words: [0x30n, 0n] },
  { value: { type: 'atc-inv', global: false, ssv: true, ssid: 0x12345, sid: 0x0100, size: ATC_INV_SIZE_ALL, addr: 0n },
    words: [0x0000_0100_1234_5840n, 0x34n] },
  { value: { type: 'pri-resp', ssv: true, ssid: 5, sid: 0x200, grpid: 0x1ff, resp: PRI_RESP_SUCC },
    words: [0x0000_0200_0000_5841n, 0x21ffn] },
  { value: { type: 'cfgi-cd', ssid: 0xfffff, sid: 0xffff_ffff, leaf: true }, words: [0xffff_ffff_ffff_f005n, 1n] },
  { value: { type: 'cfgi-ste', sid: 0x1234, leaf: true }, words: [0x0000_1234_0000_0003n, 1n] },
  { value: { type: 'cfgi-cd-all', sid: 9 }, words: [0x0000_0009_0000_0006n, 0n] },
  { value: { type: 'prefetch-config', ssv: false, ssid: 0, sid: 0x42 }, words: [0x0000_0042_0000_0001n, 0n] },
  { value: { type: 'resume', resp: RESUME_RETRY, sid: 0x33, stag: 0xbeef }, words: [0x0000_0033_0000_1044n, 0xbeefn] },
];

const CMD_LAYOUTS = (Object.keys(SMMU_CMD_OP) as SmmuCmdKind[]).map((k) => layout<SmmuCmd>({
  name: `${k} command`, table: SMMU_CMD_FIELDS[k], words: SMMU_CMD_WORDS, encode: encodeSmmuCmd, decode: decodeSmmuCmd,
  zero: zeroOf(operands(k), { type: k }) as SmmuCmd, max: maxOf(operands(k), { type: k }) as SmmuCmd,
  spot: CMD_SPOT.filter((s) => s.value.type === k), fixed: [BigInt(SMMU_CMD_OP[k]), 0n], skip: ['op'],
  write: writeSmmuCmd, read: readSmmuCmd,
}));

const EVT_SPOT: { value: SmmuEvent; words: bigint[] }[] = [
  { value: smmuEvent(EVT_ID.F_TRANSLATION, { ssv: true, ssid: 0x12, sid: 0x0300, rnw: true, class: EVT_CLASS_TT,
    inputAddr: 0xffff_0000_1234_5000n, addr2: 0x4000_0000n }),
  words: [0x0000_0300_0001_2810n, 0x0000_0108_0000_0000n, 0xffff_0000_1234_5000n, 0x4000_0000n] },
  { value: smmuEvent(EVT_ID.C_BAD_STREAMID, { sid: 0xffff }), words: pad([0x0000_ffff_0000_0002n], 4) },
  { value: smmuEvent(EVT_ID.F_PERMISSION, { stall: true, stag: 0x7, pnu: true, ind: true, s2: true, ttrnw: true }),
    words: [0x13n, 0x0000_1086_8000_0007n, 0n, 0n] },
];

const LAYOUTS: Layout[] = [
  layout<Ste>({
    name: 'STE', table: STE_FIELDS, words: STE_WORDS, encode: encodeSte, decode: decodeSte, zero: STE_ZERO,
    max: maxOf(STE_FIELDS) as unknown as Ste,
    spot: [
      { value: STE_S1, words: pad([0x5000_0000_8000_000bn, 0x1000_00d6n], 8) },
      { value: STE_S2, words: pad([0xdn, 0n, 0x040d_3559_0000_1234n, 0x1_2340_0000n], 8) },
    ],
  }),
  layout<Cd>({
    name: 'CD', table: CD_FIELDS, words: CD_WORDS, encode: encodeCd, decode: decodeCd, zero: CD_ZERO,
    max: maxOf(CD_FIELDS) as unknown as Cd,
    spot: [{ value: CD_SVA, words: pad([0x1234_e205_c000_0010n, 0x4000_0000n, 0n, 0x4_ff44n], 8) }],
  }),
  ...CMD_LAYOUTS,
  layout<SmmuEvent>({
    name: 'event record', table: SMMU_EVENT_FIELDS, words: SMMU_EVENT_WORDS, encode: encodeSmmuEvent, decode: decodeSmmuEvent,
    zero: smmuEvent(0), max: maxOf(SMMU_EVENT_FIELDS) as unknown as SmmuEvent, spot: EVT_SPOT,
    write: writeSmmuEvent, read: readSmmuEvent,
  }),
  layout<SmmuPriRecord>({
    name: 'PRI record', table: SMMU_PRI_FIELDS, words: SMMU_PRI_WORDS, encode: encodeSmmuPri, decode: decodeSmmuPri,
    zero: zeroOf(SMMU_PRI_FIELDS) as unknown as SmmuPriRecord, max: maxOf(SMMU_PRI_FIELDS) as unknown as SmmuPriRecord,
    spot: [{
      value: { sid: 0x0100, ssid: 0x42, priv: false, exec: false, read: true, write: true, last: true, ssv: true,
        prgIndex: 0x1a5, addr: 0x7fff_dead_b000n },
      words: [0xf000_0042_0000_0100n, 0x7fff_dead_b1a5n],
    }],
    write: writeSmmuPri, read: readSmmuPri,
  }),
];

layoutSuite(LAYOUTS);

describe('SMMUv3 STE and CD specifics', () => {
  it('reads the stage bits of Config as QEMU does', () => {
    expect([0, 4, 5, 6, 7].map((c) => [steStage1(c), steStage2(c)])).toEqual([
      [false, false], [false, false], [true, false], [false, true], [true, true]]);
  });

  it('rejects misaligned pointers and values wider than their fields', () => {
    expect(() => encodeSte({ ...STE_S1, s1ContextPtr: 0x8000_0020n })).toThrow(RangeError);
    expect(() => encodeSte({ ...STE_S1, s1CdMax: 32 })).toThrow(RangeError);
    expect(() => encodeCd({ ...CD_SVA, asid: 0x10000 })).toThrow(RangeError);
    expect(() => encodeCd({ ...CD_SVA, ttb0: 0x4000_0008n })).toThrow(RangeError);
  });

  it('encodes the level-1 descriptors and indexes 2-level tables as Linux does', () => {
    expect(checkFieldTable('l1', STE_L1_DESC_FIELDS, 1)).toBeUndefined();
    expect(encodeSteL1Desc({ span: 9, l2Ptr: 0x1_0000_0040n })).toBe(0x1_0000_0049n);
    expect(decodeSteL1Desc(0x1_0000_0049n)).toEqual({ span: 9, l2Ptr: 0x1_0000_0040n });
    expect(checkFieldTable('cdl1', CD_L1_DESC_FIELDS, 1)).toBeUndefined();
    expect(encodeCdL1Desc({ v: true, l2Ptr: 0xabc_d000n })).toBe(0xabc_d001n);
    expect(decodeCdL1Desc(0xabc_dfffn)).toEqual({ v: true, l2Ptr: 0xabc_d000n });
    expect(steIndex2l(0x1234)).toEqual({ l1: 0x12, l2: 0x34 });
    expect(cdIndex(0xfffff, true)).toEqual({ l1: 1023, l2: 1023 });
    expect(cdIndex(700, false)).toEqual({ l1: 0, l2: 700 });
  });
});

describe('SMMUv3 commands', () => {
  it('encodes CFGI_ALL as CFGI_STE_RANGE with Range 31', () => {
    expect(encodeSmmuCmd(cfgiAll())).toEqual([0x04n, BigInt(CFGI_RANGE_ALL)]);
  });

  it('decodes opcodes it does not list as unknown, including QEMU\'s 0x07', () => {
    expect(decodeSmmuCmd([0x07n, 0n])).toEqual({ type: 'unknown', op: 0x07 });
    expect(decodeSmmuCmd([0xffff_ffff_0000_00ffn, U64])).toEqual({ type: 'unknown', op: 0xff });
    expect(encodeSmmuCmd({ type: 'unknown', op: 0x99 })).toEqual([0x99n, 0n]);
    const u32 = new Uint32Array(SMMU_CMD_U32);
    writeSmmuCmd(u32, 0, { type: 'unknown', op: 0x18 });
    expect(readSmmuCmd(u32, 0)).toEqual({ type: 'unknown', op: 0x18 });
    expect(() => encodeSmmuCmd({ type: 'unknown', op: 0x100 })).toThrow(RangeError);
  });

  it('rejects operands that do not fit', () => {
    expect(() => encodeSmmuCmd({ type: 'tlbi-nh-asid', vmid: 0x10000, asid: 0 })).toThrow(RangeError);
    expect(() => encodeSmmuCmd({ type: 'cmd-sync', cs: 4, msh: 0, msiattr: 0, msiData: 0, msiAddr: 0n })).toThrow(RangeError);
    expect(() => encodeSmmuCmd({ type: 'cmd-sync', cs: 1, msh: 0, msiattr: 0, msiData: 0, msiAddr: 0x1002n })).toThrow(RangeError);
  });

  it('maps granules to TG and back, and sizes range TLBIs as (NUM + 1) << SCALE granules', () => {
    expect([12, 14, 16].map(tlbiTg)).toEqual([1, 2, 3]);
    expect([1, 2, 3].map(tlbiGranuleShift)).toEqual([12, 14, 16]);
    expect(() => tlbiTg(13)).toThrow(RangeError);
    expect(() => tlbiGranuleShift(0)).toThrow(RangeError);
    expect(tlbiRangeBytes(31, 0, 1)).toBe(32n * 4096n);
    expect(tlbiRangeBytes(0, 20, 3)).toBe(1n << 36n);
  });

  it('splits page counts into range chunks as Linux does, covering exactly the range', () => {
    expect(tlbiRangeChunks(1n)).toEqual([{ num: 0, scale: 0, pages: 1n }]);
    expect(tlbiRangeChunks(32n)).toEqual([{ num: 0, scale: 5, pages: 32n }]);
    // 0x41 pages: scale 0 takes the 5 bits 0b00001, then scale 6 the rest.
    expect(tlbiRangeChunks(0x41n)).toEqual([{ num: 0, scale: 0, pages: 1n }, { num: 0, scale: 6, pages: 64n }]);
    for (const n of [3n, 31n, 33n, 1000n, 0x12345n, (1n << 40n) - 1n]) {
      const chunks = tlbiRangeChunks(n);
      expect(chunks.reduce((s, c) => s + c.pages, 0n)).toBe(n);
      for (const c of chunks) expect(c.num >= 0 && c.num <= 31 && BigInt(c.num + 1) << BigInt(c.scale) === c.pages).toBe(true);
    }
    expect(() => tlbiRangeChunks(0n)).toThrow(RangeError);
  });
});

describe('SMMUv3 events', () => {
  it('names the event IDs and returns DW3 as IPA or fetch address by ID', () => {
    expect(smmuEventName(0x10)).toBe('F_TRANSLATION');
    expect(smmuEventName(0x24)).toBe('E_PAGE_REQUEST');
    expect(smmuEventName(0x0c)).toBeUndefined();
    const t = smmuEvent(EVT_ID.F_TRANSLATION, { addr2: 0x1234_5ff8n });
    expect([eventIpa(t), eventFetchAddr(t)]).toEqual([0x1234_5000n, undefined]);
    const f = smmuEvent(EVT_ID.F_STE_FETCH, { addr2: 0x1_0000_0048n });
    expect([eventIpa(f), eventFetchAddr(f)]).toEqual([undefined, 0x1_0000_0048n]);
    expect(eventIpa(smmuEvent(EVT_ID.C_BAD_STE))).toBeUndefined();
  });

  it('writes the event ID last so a poller never sees a half-written record', () => {
    const u32 = new Uint32Array(SMMU_EVENT_U32);
    const order: number[] = [];
    const spy = new Proxy(u32, { set(t, k, v) { order.push(Number(k)); (t as unknown as Record<string, number>)[k as string] = v; return true; } });
    writeSmmuEvent(spy, 0, EVT_SPOT[0].value);
    expect(order.at(-1)).toBe(0);
    const p = new Uint32Array(SMMU_PRI_U32);
    writeSmmuPri(p, 0, LAYOUTS.at(-1)!.spot[0].value as SmmuPriRecord);
    expect(p[1] >>> 31).toBe(1);
  });
});

describe('SMMUv3 queue registers', () => {
  it('encodes Q_BASE with LOG2SIZE, ADDR and RWA', () => {
    expect(checkFieldTable('q', Q_BASE_FIELDS, 1)).toBeUndefined();
    expect(encodeQBase({ log2size: 8, addr: 0x1_2345_6000n, rwa: true })).toBe(0x4000_0001_2345_6008n);
    expect(decodeQBase(U64)).toEqual({ log2size: 31, addr: ((1n << 52n) - 1n) & ~0x1fn, rwa: true });
    expect(() => encodeQBase({ log2size: 31, addr: 0n, rwa: false })).toThrow(RangeError);
    expect(() => encodeQBase({ log2size: 8, addr: 0x10n, rwa: false })).toThrow(RangeError);
  });

  it('sets and reads CMDQ_CONS.ERR without touching index, wrap or bit 31', () => {
    const log2 = 8;
    const cons = qMake(0x45, 1, log2, 1);
    const withErr = cmdqConsWithErr(cons, CERROR_ATC_INV_SYNC);
    expect(withErr).toBe(0x8300_0145);
    expect([cmdqConsErr(withErr), qIdx(withErr, log2), qWrap(withErr, log2), qOvf(withErr)]).toEqual([3, 0x45, 1, 1]);
    expect(cmdqConsErr(cmdqConsWithErr(withErr, CERROR_ILL))).toBe(CERROR_ILL);
    // queue-pointer.ts arithmetic keeps index, wrap and bit 31 only: moving CONS on clears ERR.
    expect(cmdqConsErr(qInc(withErr, log2, 3))).toBe(0);
    expect(qIdx(qInc(withErr, log2, 3), log2)).toBe(0x48);
    expect(() => cmdqConsWithErr(0, 0x80)).toThrow(RangeError);
  });

  it('decodes IDR1 (gem5 default 0x00e00000 = 128 command entries) and the stream-table registers', () => {
    expect(checkFieldTable('idr1', IDR1_FIELDS, 1)).toBeUndefined();
    expect(decodeIdr1(0x00e0_0000)).toEqual({ sidsize: 0, ssidsize: 0, priqs: 0, evtqs: 0, cmdqs: 7 });
    expect(encodeIdr1({ sidsize: 32, ssidsize: 20, priqs: 19, evtqs: 19, cmdqs: 19 })).toBe(0x0273_9d20);
    expect(checkFieldTable('sb', STRTAB_BASE_FIELDS, 1)).toBeUndefined();
    expect(checkFieldTable('sbc', STRTAB_BASE_CFG_FIELDS, 1)).toBeUndefined();
    expect(encodeStrtabBase({ addr: 0x8000_0040n, ra: true })).toBe(0x4000_0000_8000_0040n);
    expect(encodeStrtabBaseCfg({ log2size: 16, split: 8, fmt: 1 })).toBe(0x1_0210);
    expect(decodeStrtabBaseCfg(0xffff_ffff)).toEqual({ log2size: 63, split: 31, fmt: 3 });
  });
});
