/**
 * The SMMUv3 command-queue and AMD command-buffer executors (iommu-worker/smmu-commands.ts,
 * amd-commands.ts) against a Translator over real tables: entries are cached by translate(),
 * the command is written into a queue slot, decoded and executed, and what stays cached is
 * observed through the caches and the next translation.
 */
import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { SmmuTables } from '../../coordinator/smmu-tables.js';
import { AmdTables } from '../../coordinator/amd-tables.js';
import { PageTable } from '../../coordinator/page-table.js';
import { ARM64_S1, FIRST_STAGE } from '../../shared/layout/pte-format.js';
import { FR } from '../../shared/layout/fault-record.js';
import { RESP_FAILURE, RESP_INVALID, RESP_SUCCESS } from '../../shared/layout/inv-desc.js';
import { frameToAddr } from '../../shared/memory/arena.js';
import { resolveIommuConfig } from '../../shared/config.js';
import { ACCESS_READ } from '../../shared/layout/dma-request.js';
import {
  ATC_INV_SIZE_ALL, CS_NONE, PRI_RESP_DENY, PRI_RESP_FAIL, PRI_RESP_SUCC, type SmmuCmd, cfgiAll, tlbiRangeChunks, tlbiTg, writeSmmuCmd,
} from '../../shared/layout/smmuv3/commands.js';
import { SMMU_CODEC } from '../../shared/layout/smmuv3/codec.js';
import {
  type AmdCmd, INV_ALL_PAGES_ADDRESS, PPR_FAILURE, PPR_INVALID, PPR_SUCCESS, encodeInvRange, writeAmdCmd,
} from '../../shared/layout/amd/commands.js';
import { AMD_CODEC } from '../../shared/layout/amd/codec.js';
import { Translator } from '../../iommu-worker/translate.js';
import { SmmuContextReader } from '../../iommu-worker/smmu-context.js';
import { AmdContextReader } from '../../iommu-worker/amd-context.js';
import { NO_PASID_TAG } from '../../iommu-worker/iotlb.js';
import { SmmuCommandError, SmmuCommandExecutor } from '../../iommu-worker/smmu-commands.js';
import { AmdCommandError, AmdCommandExecutor } from '../../iommu-worker/amd-commands.js';
import { CMD_ATS, CMD_OTHER, CMD_WAIT, type CommandSet, commandSet } from '../../iommu-worker/command-set.js';

const DEV = 0x0300;
const DEV2 = 0x0301;
/** Pages 1..PAGES-1 are mapped (vpn → pfn vpn + 0x100). */
const PAGES = 0x40;

const costs = resolveIommuConfig(0).costs;
/** Fully associative caches large enough that nothing a test caches is evicted. */
const BIG = { entries: 512, ways: 512, policy: 'lru' as const };
const cfg = (profile: 'smmuv3' | 'amd') =>
  resolveIommuConfig(0, { iotlb: BIG, devTlb: BIG, pasidCache: BIG, contextCache: BIG }, 50, false, 1, profile);

function mapped(fa: FrameAllocator, format: typeof ARM64_S1 | typeof FIRST_STAGE): PageTable {
  const pt = new PageTable(fa, format, 4);
  pt.map(0x1000n, 0x10_1000n, BigInt((PAGES - 1) * 0x1000), { read: true });
  return pt;
}

/** Reads (for `pasid`) every mapped page once, so each is cached. */
function touchAll(t: Translator, rid: number, pasid: number): void {
  for (let vpn = 1; vpn < PAGES; vpn++) expect(t.translate(rid, pasid, ACCESS_READ, false, vpn * 0x1000, 0)).toBe(0);
}

function run(ex: CommandSet, write: (u32: Uint32Array, at: number) => void): number {
  const u32 = new Uint32Array(8);
  write(u32, 4);
  return ex.execute(ex.decode(u32, 4));
}

/** Sorted page numbers of the IOTLB entries with this DID and tag. */
function iotlbPages(t: Translator, did: number, tag: number): number[] {
  return t.iotlb.entries().filter((e) => e.did === did && e.pasidTag === tag).map((e) => e.vpn).sort((a, b) => a - b);
}

function devTlbPages(t: Translator, rid: number, tag: number): number[] {
  return (t.devTlbs.get(rid)?.entries() ?? []).filter((e) => e.pasidTag === tag).map((e) => e.vpn).sort((a, b) => a - b);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const without = (xs: number[], drop: number[]) => xs.filter((x) => !drop.includes(x));
const ALL = range(1, PAGES);

// --- SMMUv3. ---

/** DEV: SSIDs 1 (ASID 5) and 2 (ASID 6), CD 0 (ASID 1) for traffic without SSID; DEV2: CD 0, ASID 7. */
function smmu(ats = false) {
  const fa = new FrameAllocator();
  const tables = new SmmuTables(fa, 1 << 20);
  const pt = mapped(fa, ARM64_S1);
  tables.setupDevice(DEV, { maxPasids: 16, ats, pri: true });
  tables.setCd(DEV, 0, { asid: 1, ttbFrame: pt.rootFrame, levels: 4 });
  tables.setCd(DEV, 1, { asid: 5, ttbFrame: pt.rootFrame, levels: 4 });
  tables.setCd(DEV, 2, { asid: 6, ttbFrame: pt.rootFrame, levels: 4 });
  tables.setSte(DEV, { config: 's1', s1dss: 'ssid0' });
  tables.setupDevice(DEV2, { maxPasids: 0, ats: false, pri: false });
  tables.setCd(DEV2, 0, { asid: 7, ttbFrame: pt.rootFrame, levels: 4 });
  tables.setSte(DEV2, { config: 's1', s1dss: 'ssid0' });
  const t = new Translator(fa.view, tables.rootFrame, cfg('smmuv3'), new SmmuContextReader(fa.view, tables.rootFrame));
  const ex = new SmmuCommandExecutor(t, fa.view, costs);
  const exec = (c: SmmuCmd) => run(ex, (u32, at) => writeSmmuCmd(u32, at, c));
  return { fa, tables, t, ex, exec };
}

/** Every mapped page cached for DEV's SSIDs 1, 2 and no SSID and for DEV2 (DEV with an ATC when `ats`). */
function smmuCached(ats = false) {
  const m = smmu(ats);
  touchAll(m.t, DEV, 1);
  touchAll(m.t, DEV, 2);
  touchAll(m.t, DEV, -1);
  touchAll(m.t, DEV2, -1);
  expect(iotlbPages(m.t, 5, NO_PASID_TAG)).toEqual(ALL);
  expect(iotlbPages(m.t, 6, NO_PASID_TAG)).toEqual(ALL);
  return m;
}

const nhVa = (asid: number, addr: bigint, o: Partial<Extract<SmmuCmd, { type: 'tlbi-nh-va' }>> = {}): SmmuCmd => ({
  type: 'tlbi-nh-va', vmid: 0, asid, num: 0, scale: 0, leaf: true, ttl: 0, tg: 0, addr, ...o,
});

describe('SMMUv3 executor: TLB invalidations', () => {
  it('TLBI_NH_VA of one page removes that page of that ASID only', () => {
    const { t, exec } = smmuCached();
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x3000, 0)).toBe(0);
    expect(t.cached).toBe(true);
    exec(nhVa(5, 0x3000n));
    expect(iotlbPages(t, 5, NO_PASID_TAG)).toEqual(without(ALL, [3]));
    expect(iotlbPages(t, 6, NO_PASID_TAG)).toEqual(ALL);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x3abc, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.paLo).toBe(0x10_3abc);
    expect(t.translate(DEV, 2, ACCESS_READ, false, 0x3000, 0)).toBe(0);
    expect(t.cached).toBe(true);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x4000, 0)).toBe(0);
    expect(t.cached).toBe(true);
  });

  it('range TLBI_NH_VA (TG 4 KiB, NUM/SCALE chunks as Linux splits them) removes exactly the covered pages', () => {
    const { t, exec } = smmuCached();
    const first = 5;
    const pages = 33;
    const chunks = tlbiRangeChunks(BigInt(pages));
    expect(chunks.length).toBe(2); // 1 page, then 32 (NUM 0, SCALE 5)
    let vpn = first;
    for (const ch of chunks) {
      exec(nhVa(5, BigInt(vpn) << 12n, { tg: tlbiTg(12), num: ch.num, scale: ch.scale, ttl: 3 }));
      vpn += Number(ch.pages);
    }
    expect(iotlbPages(t, 5, NO_PASID_TAG)).toEqual(without(ALL, range(first, first + pages)));
    expect(iotlbPages(t, 6, NO_PASID_TAG)).toEqual(ALL);
    expect(iotlbPages(t, 1, NO_PASID_TAG)).toEqual(ALL);
  });

  it('one range TLBI covers (NUM + 1) × 2^SCALE pages from its address', () => {
    const { t, exec } = smmuCached();
    exec(nhVa(6, 0x8000n, { tg: 1, num: 2, scale: 1 })); // 6 pages: 8..13
    expect(iotlbPages(t, 6, NO_PASID_TAG)).toEqual(without(ALL, range(8, 14)));
    expect(iotlbPages(t, 5, NO_PASID_TAG)).toEqual(ALL);
  });

  it('TLBI_NH_VAA removes the page in every ASID', () => {
    const { t, exec } = smmuCached();
    exec({ type: 'tlbi-nh-vaa', vmid: 0, num: 0, scale: 0, leaf: true, ttl: 0, tg: 0, addr: 0x7000n });
    for (const asid of [1, 5, 6, 7]) expect(iotlbPages(t, asid, NO_PASID_TAG)).toEqual(without(ALL, [7]));
  });

  it('TLBI_NH_ASID removes every entry of one ASID', () => {
    const { t, exec } = smmuCached();
    exec({ type: 'tlbi-nh-asid', vmid: 0, asid: 5 });
    expect(iotlbPages(t, 5, NO_PASID_TAG)).toEqual([]);
    expect(iotlbPages(t, 6, NO_PASID_TAG)).toEqual(ALL);
    expect(iotlbPages(t, 7, NO_PASID_TAG)).toEqual(ALL);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    expect(t.cached).toBe(false);
  });

  it('TLBI_NH_ALL empties the TLB', () => {
    const { t, exec, ex } = smmuCached();
    exec({ type: 'tlbi-nh-all', vmid: 0 });
    expect(t.iotlb.size).toBe(0);
    expect(ex.counts).toEqual({ 'tlbi-nh-all': 1 });
  });
});

describe('SMMUv3 executor: configuration invalidations', () => {
  it('CFGI_CD drops the cached CD of (sid, ssid): a cleared CD keeps translating until then, and faults after', () => {
    const { t, tables, exec } = smmuCached();
    tables.clearCd(DEV, 1);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0); // the cached CD, the cached translation
    expect(t.cached).toBe(true);
    exec({ type: 'cfgi-cd', sid: DEV, ssid: 2, leaf: true });
    exec({ type: 'cfgi-cd', sid: DEV2, ssid: 1, leaf: true });
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    exec({ type: 'cfgi-cd', sid: DEV, ssid: 1, leaf: true });
    const left = t.pasidCache.entries().map((e) => [e.sid, e.pasid]).sort();
    expect(left).not.toContainEqual([DEV, 1]);
    expect(left).toContainEqual([DEV2, 0]);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
    expect(t.translate(DEV, 2, ACCESS_READ, false, 0x2000, 0)).toBe(0);
  });

  it('CFGI_CD_ALL drops every CD of the stream', () => {
    const { t, exec } = smmuCached();
    exec({ type: 'cfgi-cd-all', sid: DEV });
    expect(t.pasidCache.entries().map((e) => e.sid)).toEqual([DEV2]);
  });

  it('CFGI_STE drops the stream\'s STE and its CDs, so a new STE takes effect', () => {
    const { t, tables, exec } = smmuCached();
    tables.setSte(DEV, { config: 'abort', s1dss: 'ssid0' });
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    exec({ type: 'cfgi-ste', sid: DEV2, leaf: true });
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    expect(t.translate(DEV2, -1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    exec({ type: 'cfgi-ste', sid: DEV, leaf: true });
    expect(t.contextCache.entries().map((e) => e.sid)).toEqual([DEV2]);
    expect(t.pasidCache.entries().map((e) => e.sid)).toEqual([DEV2]);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
  });

  it('CFGI_ALL drops every STE and CD', () => {
    const { t, exec } = smmuCached();
    exec(cfgiAll());
    expect(t.contextCache.size).toBe(0);
    expect(t.pasidCache.size).toBe(0);
    expect(t.iotlb.size).toBeGreaterThan(0);
  });
});

describe('SMMUv3 executor: ATC_INV', () => {
  const atc = (o: Partial<Extract<SmmuCmd, { type: 'atc-inv' }>>): SmmuCmd => ({
    type: 'atc-inv', global: false, ssv: false, ssid: 0, sid: DEV, size: 0, addr: 0n, ...o,
  });

  it('fills the ATC per substream (and without SSID)', () => {
    const { t } = smmuCached(true);
    expect(devTlbPages(t, DEV, 1)).toEqual(ALL);
    expect(devTlbPages(t, DEV, 2)).toEqual(ALL);
    expect(devTlbPages(t, DEV, NO_PASID_TAG)).toEqual(ALL);
  });

  it('SSV/SSID with SIZE 0 removes one page of that substream', () => {
    const { t, exec } = smmuCached(true);
    exec(atc({ ssv: true, ssid: 1, addr: 0x9000n }));
    expect(devTlbPages(t, DEV, 1)).toEqual(without(ALL, [9]));
    expect(devTlbPages(t, DEV, 2)).toEqual(ALL);
    expect(devTlbPages(t, DEV, NO_PASID_TAG)).toEqual(ALL);
    expect(t.iotlb.size).toBe(4 * (PAGES - 1)); // the TLB is not touched
  });

  it('SIZE is log2 of the span in pages, the address aligned down to it', () => {
    const { t, exec } = smmuCached(true);
    exec(atc({ ssv: true, ssid: 2, size: 3, addr: 0xb000n })); // 8 pages: 8..15
    expect(devTlbPages(t, DEV, 2)).toEqual(without(ALL, range(8, 16)));
    expect(devTlbPages(t, DEV, 1)).toEqual(ALL);
    exec(atc({ size: 1, addr: 0x20000n })); // without SSV: the no-PASID entries, 0x20..0x21
    expect(devTlbPages(t, DEV, NO_PASID_TAG)).toEqual(without(ALL, [0x20, 0x21]));
  });

  it('SIZE 52 is the whole address space; with GLOBAL every substream', () => {
    const { t, exec } = smmuCached(true);
    exec(atc({ ssv: true, ssid: 1, size: ATC_INV_SIZE_ALL }));
    expect(devTlbPages(t, DEV, 1)).toEqual([]);
    expect(devTlbPages(t, DEV, 2)).toEqual(ALL);
    exec(atc({ global: true, size: ATC_INV_SIZE_ALL }));
    expect(t.devTlbs.get(DEV)!.size).toBe(0);
  });

  it('a translation after ATC_INV misses the ATC and hits the TLB', () => {
    const { t, exec } = smmuCached(true);
    const misses = t.devTlbMisses;
    exec(atc({ ssv: true, ssid: 1, addr: 0x5000n }));
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x5000, 0)).toBe(0);
    expect(t.devTlbMisses).toBe(misses + 1);
    expect(t.cached).toBe(true);
  });
});

describe('SMMUv3 executor: PRI_RESP, CMD_SYNC, errors, decode', () => {
  it('PRI_RESP hands (sid, grpid, core code) to the device model: SUCC 0, DENY 1, FAIL 0xf', () => {
    const { ex, exec } = smmu();
    const got: number[][] = [];
    ex.onPageResponse = (rid, prg, code) => got.push([rid, prg, code]);
    exec({ type: 'pri-resp', ssv: true, ssid: 3, sid: DEV, grpid: 0x1a5, resp: PRI_RESP_SUCC });
    exec({ type: 'pri-resp', ssv: true, ssid: 3, sid: DEV, grpid: 7, resp: PRI_RESP_DENY });
    exec({ type: 'pri-resp', ssv: false, ssid: 0, sid: DEV2, grpid: 511, resp: PRI_RESP_FAIL });
    expect(got).toEqual([[DEV, 0x1a5, RESP_SUCCESS], [DEV, 7, RESP_INVALID], [DEV2, 511, RESP_FAILURE]]);
    for (const code of [RESP_SUCCESS, RESP_INVALID, RESP_FAILURE] as const) {
      exec(SMMU_CODEC.pageResponseCmd({ rid: DEV, pasid: 3, pasidPresent: true, prgIndex: 9, code }));
      expect(got.at(-1)).toEqual([DEV, 9, code]);
    }
  });

  it('CMD_SYNC with CS = IRQ stores MSIDATA at MSIADDR and counts the wait; CS = NONE stores nothing', () => {
    const { fa, ex, exec } = smmu();
    const addr = frameToAddr(fa.alloc(0, 'x')) + 0x44n;
    const [chunk, idx] = fa.view.locate(addr)!;
    expect(exec(SMMU_CODEC.waitCmd(addr, 0xcafe_f00d))).toBe(costs.waitNs);
    expect(chunk[idx]).toBe(0xcafe_f00d);
    expect(chunk[idx - 1]).toBe(0);
    expect(chunk[idx + 1]).toBe(0);
    expect(ex.waits).toBe(1);
    exec({ ...SMMU_CODEC.waitCmd(addr, 7), cs: CS_NONE } as SmmuCmd);
    expect(chunk[idx]).toBe(0xcafe_f00d);
    expect(ex.waits).toBe(2);
  });

  it('CMD_SYNC whose MSI address is not in memory, an unknown opcode and stall-mode commands are command errors', () => {
    const { exec } = smmu();
    expect(() => exec(SMMU_CODEC.waitCmd(0xfff_ffff_f000n, 1))).toThrow(SmmuCommandError);
    expect(() => exec({ type: 'unknown', op: 0x07 })).toThrow(SmmuCommandError);
    expect(() => exec({ type: 'unknown', op: 0x7f })).toThrow(/opcode 0x7f/);
    expect(() => exec({ type: 'stall-term', sid: DEV })).toThrow(SmmuCommandError);
    expect(() => exec({ type: 'resume', resp: 0, sid: DEV, stag: 1 })).toThrow(SmmuCommandError);
  });

  it('decode: CMD_SYNC is the wait (data, interrupt), ATC_INV goes to its function, the rest is other', () => {
    const { ex } = smmu();
    const dec = (c: SmmuCmd) => {
      const u32 = new Uint32Array(4);
      writeSmmuCmd(u32, 0, c);
      return ex.decode(u32, 0);
    };
    const w = dec(SMMU_CODEC.waitCmd(0x1000n, 0x1234_5678));
    expect(w).toMatchObject({ kind: CMD_WAIT, data: 0x1234_5678, interrupt: true, pageDrain: false });
    expect(w.cmd).toEqual(SMMU_CODEC.waitCmd(0x1000n, 0x1234_5678));
    expect(dec({ ...SMMU_CODEC.waitCmd(0x1000n, 1), cs: CS_NONE } as SmmuCmd)).toMatchObject({ kind: CMD_WAIT, interrupt: false });
    expect(dec({ type: 'atc-inv', global: false, ssv: true, ssid: 1, sid: 0x4567, size: 0, addr: 0n })).toMatchObject({ kind: CMD_ATS, sid: 0x4567 });
    expect(dec(nhVa(1, 0n))).toMatchObject({ kind: CMD_OTHER });
    expect(dec({ type: 'cfgi-cd', sid: 1, ssid: 1, leaf: true })).toMatchObject({ kind: CMD_OTHER });
  });

  it('commandSet picks the executor by profile', () => {
    const { t, fa } = smmu();
    expect(commandSet('smmuv3', t, fa.view, costs)).toBeInstanceOf(SmmuCommandExecutor);
    expect(commandSet('amd', t, fa.view, costs)).toBeInstanceOf(AmdCommandExecutor);
  });
});

// --- AMD. ---

/** DEV (DomainID 10): GCR3[0] for the RID, GCR3[1] and GCR3[2]; DEV2 (DomainID 11): GCR3[0], GCR3[1]. */
function amd(ats = false) {
  const fa = new FrameAllocator();
  const tables = new AmdTables(fa, 1 << 20);
  const pt = mapped(fa, FIRST_STAGE);
  tables.setupDevice(DEV, { maxPasids: 1 << 16, ats, pri: true }, 10);
  for (const p of [0, 1, 2]) tables.setGcr3(DEV, p, pt.rootFrame);
  tables.setRid(DEV, 'translate');
  tables.setupDevice(DEV2, { maxPasids: 1 << 16, ats: false, pri: false }, 11);
  for (const p of [0, 1]) tables.setGcr3(DEV2, p, pt.rootFrame);
  tables.setRid(DEV2, 'translate');
  const t = new Translator(fa.view, tables.rootFrame, cfg('amd'), new AmdContextReader(fa.view, tables.rootFrame));
  const ex = new AmdCommandExecutor(t, fa.view, costs);
  const exec = (c: AmdCmd) => run(ex, (u32, at) => writeAmdCmd(u32, at, c));
  return { fa, tables, t, ex, exec };
}

/** Every mapped page cached for DEV's PASIDs 1, 2 and no PASID and for DEV2's no PASID and 1 (DEV with an ATC when `ats`). */
function amdCached(ats = false) {
  const m = amd(ats);
  for (const p of [-1, 1, 2]) touchAll(m.t, DEV, p);
  for (const p of [-1, 1]) touchAll(m.t, DEV2, p);
  for (const p of [0, 1, 2]) expect(iotlbPages(m.t, 10, p)).toEqual(ALL);
  for (const p of [0, 1]) expect(iotlbPages(m.t, 11, p)).toEqual(ALL);
  return m;
}

const invPages = (domainId: number, base: bigint, bytes: bigint, o: Partial<Extract<AmdCmd, { type: 'inv-iommu-pages' }>> = {}): AmdCmd => ({
  type: 'inv-iommu-pages', pasid: 0, domainId, pde: false, gn: false, ...encodeInvRange(base, bytes), ...o,
});

describe('AMD executor: INVALIDATE_IOMMU_PAGES', () => {
  it('with GN removes one PASID\'s pages in the S-bit range only', () => {
    const { t, exec } = amdCached();
    const r = encodeInvRange(0x8000n, 0x8000n); // pages 8..15
    expect(r.s).toBe(true);
    exec(invPages(10, 0x8000n, 0x8000n, { gn: true, pasid: 1 }));
    expect(iotlbPages(t, 10, 1)).toEqual(without(ALL, range(8, 16)));
    expect(iotlbPages(t, 10, 2)).toEqual(ALL);
    expect(iotlbPages(t, 10, 0)).toEqual(ALL);
    expect(iotlbPages(t, 11, 1)).toEqual(ALL);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x8000, 0)).toBe(0);
    expect(t.cached).toBe(false);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x10000, 0)).toBe(0);
    expect(t.cached).toBe(true);
  });

  it('with GN and S clear removes the one page', () => {
    const { t, exec } = amdCached();
    exec(invPages(10, 0x3000n, 0x1000n, { gn: true, pasid: 2 }));
    expect(iotlbPages(t, 10, 2)).toEqual(without(ALL, [3]));
    expect(iotlbPages(t, 10, 1)).toEqual(ALL);
  });

  it('without GN removes the range in every PASID of the DomainID', () => {
    const { t, exec } = amdCached();
    exec(invPages(10, 0x10000n, 0x10000n, { pasid: 1 })); // pages 16..31; PASID ignored
    for (const p of [0, 1, 2]) expect(iotlbPages(t, 10, p)).toEqual(without(ALL, range(16, 32)));
    for (const p of [0, 1]) expect(iotlbPages(t, 11, p)).toEqual(ALL);
  });

  it('INV_ALL_PAGES_ADDRESS with S removes everything of the DomainID', () => {
    const { t, exec } = amdCached();
    exec({ type: 'inv-iommu-pages', pasid: 0, domainId: 10, s: true, pde: false, gn: false, addr: INV_ALL_PAGES_ADDRESS });
    expect(t.iotlb.entries().filter((e) => e.did === 10)).toEqual([]);
    for (const p of [0, 1]) expect(iotlbPages(t, 11, p)).toEqual(ALL);
    exec({ type: 'inv-iommu-pages', pasid: 1, domainId: 11, s: true, pde: false, gn: true, addr: INV_ALL_PAGES_ADDRESS });
    expect(iotlbPages(t, 11, 1)).toEqual([]);
    expect(iotlbPages(t, 11, 0)).toEqual(ALL);
  });

  it('PDE also drops the cached GCR3 entry: a cleared GCR3 entry faults only after a PDE invalidation', () => {
    const { t, tables, exec } = amdCached();
    tables.clearGcr3(DEV, 1);
    exec(invPages(10, 0n, 0x100000n, { gn: true, pasid: 1 }));
    expect(t.pasidCache.entries().map((e) => [e.sid, e.pasid])).toContainEqual([DEV, 1]);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0); // the cached GCR3 entry, walked again
    expect(t.cached).toBe(false);
    exec(invPages(10, 0n, 0x100000n, { gn: true, pasid: 1, pde: true }));
    const left = t.pasidCache.entries().map((e) => [e.sid, e.pasid]);
    expect(left).not.toContainEqual([DEV, 1]);
    expect(left).toContainEqual([DEV, 2]);
    expect(left).toContainEqual([DEV2, 1]);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(FR.PASID_ENTRY_NOT_PRESENT);
  });

  it('PDE without GN drops the cached GCR3 entries of the DomainID', () => {
    const { t, exec } = amdCached();
    exec(invPages(10, 0x1000n, 0x1000n, { pde: true }));
    expect(t.pasidCache.entries().map((e) => e.sid)).toEqual([DEV2, DEV2]);
  });
});

describe('AMD executor: INVALIDATE_DEVTAB_ENTRY, INVALIDATE_IOMMU_ALL', () => {
  it('INVALIDATE_DEVTAB_ENTRY drops the device\'s DTE and GCR3 entries, so a new DTE takes effect', () => {
    const { t, tables, exec } = amdCached();
    tables.setRid(DEV, 'blocked');
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    exec({ type: 'inv-devtab-entry', deviceId: DEV2 });
    expect(t.contextCache.entries().map((e) => e.sid)).toEqual([DEV]);
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    expect(t.translate(DEV2, -1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
    exec({ type: 'inv-devtab-entry', deviceId: DEV });
    expect(t.contextCache.entries().map((e) => e.sid)).toEqual([DEV2]);
    expect(t.pasidCache.entries().every((e) => e.sid === DEV2)).toBe(true);
    expect(t.iotlb.size).toBe(5 * (PAGES - 1));
    expect(t.translate(DEV, -1, ACCESS_READ, false, 0x2000, 0)).toBe(FR.CONTEXT_ENTRY_INVALID);
    expect(t.translate(DEV, 1, ACCESS_READ, false, 0x2000, 0)).toBe(0);
  });

  it('INVALIDATE_IOMMU_ALL empties every cache but the ATCs', () => {
    const { t, exec } = amdCached(true);
    exec({ type: 'inv-iommu-all' });
    expect([t.iotlb.size, t.contextCache.size, t.pasidCache.size]).toEqual([0, 0, 0]);
    expect(t.devTlbs.get(DEV)!.size).toBeGreaterThan(0);
  });
});

describe('AMD executor: INVALIDATE_IOTLB_PAGES (the ATC)', () => {
  const inv = (o: Partial<Extract<AmdCmd, { type: 'inv-iotlb-pages' }>>, base: bigint, bytes: bigint): AmdCmd => ({
    type: 'inv-iotlb-pages', deviceId: DEV, pasid: 0, maxPend: 32, queueId: DEV, gn: false, ...encodeInvRange(base, bytes), ...o,
  });

  it('with GN removes that PASID\'s range', () => {
    const { t, exec } = amdCached(true);
    expect(devTlbPages(t, DEV, 1)).toEqual(ALL);
    exec(inv({ gn: true, pasid: 1 }, 0x4000n, 0x4000n));
    expect(devTlbPages(t, DEV, 1)).toEqual(without(ALL, range(4, 8)));
    expect(devTlbPages(t, DEV, 2)).toEqual(ALL);
    expect(devTlbPages(t, DEV, NO_PASID_TAG)).toEqual(ALL);
    expect(t.iotlb.size).toBe(5 * (PAGES - 1));
  });

  it('without GN removes the entries of requests without PASID', () => {
    const { t, exec } = amdCached(true);
    exec(inv({ pasid: 1 }, 0x20000n, 0x1000n));
    expect(devTlbPages(t, DEV, NO_PASID_TAG)).toEqual(without(ALL, [0x20]));
    expect(devTlbPages(t, DEV, 1)).toEqual(ALL);
    exec({ type: 'inv-iotlb-pages', deviceId: DEV, pasid: 0, maxPend: 32, queueId: DEV, gn: false, s: true, addr: INV_ALL_PAGES_ADDRESS });
    expect(devTlbPages(t, DEV, NO_PASID_TAG)).toEqual([]);
    expect(devTlbPages(t, DEV, 2)).toEqual(ALL);
  });

  it('a 20-bit PASID reaches the ATC intact', () => {
    const { t, tables, fa, exec } = amd(true);
    tables.setupDevice(0x0400, { maxPasids: 1 << 20, ats: true, pri: false }, 12);
    tables.setGcr3(0x0400, 0xabcde, mapped(fa, FIRST_STAGE).rootFrame);
    expect(t.translate(0x0400, 0xabcde, ACCESS_READ, false, 0x3000, 0)).toBe(0);
    expect(devTlbPages(t, 0x0400, 0xabcde)).toEqual([3]);
    exec(inv({ deviceId: 0x0400, gn: true, pasid: 0xabcde }, 0x3000n, 0x1000n));
    expect(devTlbPages(t, 0x0400, 0xabcde)).toEqual([]);
  });
});

describe('AMD executor: COMPLETE_PPR, COMPLETION_WAIT, errors, decode', () => {
  it('COMPLETE_PPR hands (DeviceID, tag, status) to the device model', () => {
    const { ex, exec } = amd();
    const got: number[][] = [];
    ex.onPageResponse = (rid, prg, code) => got.push([rid, prg, code]);
    exec({ type: 'complete-ppr', deviceId: DEV, pasid: 5, gn: true, tag: 0x1a5, status: PPR_SUCCESS });
    exec({ type: 'complete-ppr', deviceId: DEV, pasid: 5, gn: true, tag: 3, status: PPR_INVALID });
    exec({ type: 'complete-ppr', deviceId: DEV2, pasid: 0, gn: false, tag: 511, status: PPR_FAILURE });
    expect(got).toEqual([[DEV, 0x1a5, RESP_SUCCESS], [DEV, 3, RESP_INVALID], [DEV2, 511, RESP_FAILURE]]);
    exec(AMD_CODEC.pageResponseCmd({ rid: DEV, pasid: 9, pasidPresent: true, prgIndex: 77, code: RESP_FAILURE }));
    expect(got.at(-1)).toEqual([DEV, 77, RESP_FAILURE]);
  });

  it('COMPLETION_WAIT with S stores the low 32 bits of its data and counts the wait; without S stores nothing', () => {
    const { fa, ex, exec } = amd();
    const addr = frameToAddr(fa.alloc(0, 'x')) + 0x88n;
    const [chunk, idx] = fa.view.locate(addr)!;
    expect(exec({ type: 'completion-wait', s: true, i: false, f: false, storeAddr: addr, storeData: 0x1_2345_6789n })).toBe(costs.waitNs);
    expect(chunk[idx]).toBe(0x2345_6789);
    expect(chunk[idx + 1]).toBe(0);
    expect(ex.waits).toBe(1);
    exec(AMD_CODEC.waitCmd(addr, 0xfeed_beef));
    expect(chunk[idx]).toBe(0xfeed_beef);
    exec({ type: 'completion-wait', s: false, i: true, f: false, storeAddr: addr, storeData: 1n });
    expect(chunk[idx]).toBe(0xfeed_beef);
    expect(ex.waits).toBe(3);
    expect(ex.counts['completion-wait']).toBe(3);
  });

  it('a store outside memory and an unknown opcode are command errors; INVALIDATE_INTERRUPT_TABLE is accepted', () => {
    const { exec } = amd();
    expect(() => exec(AMD_CODEC.waitCmd(0xfff_ffff_f000n, 1))).toThrow(AmdCommandError);
    expect(() => exec({ type: 'unknown', op: 0x6 })).toThrow(AmdCommandError);
    expect(() => exec({ type: 'unknown', op: 0xf })).toThrow(/opcode 0xf/);
    expect(exec({ type: 'inv-interrupt-table', deviceId: DEV })).toBe(costs.descriptorNs);
  });

  it('decode: COMPLETION_WAIT is the wait, INVALIDATE_IOTLB_PAGES goes to its function, the rest is other', () => {
    const { ex } = amd();
    const dec = (c: AmdCmd) => {
      const u32 = new Uint32Array(4);
      writeAmdCmd(u32, 0, c);
      return ex.decode(u32, 0);
    };
    expect(dec({ type: 'completion-wait', s: true, i: true, f: false, storeAddr: 0x1000n, storeData: 0xffff_ffff_0000_0001n }))
      .toMatchObject({ kind: CMD_WAIT, data: 1, interrupt: true });
    expect(dec(AMD_CODEC.waitCmd(0x1000n, 0x8000_0000))).toMatchObject({ kind: CMD_WAIT, data: 0x8000_0000, interrupt: false });
    expect(dec({ type: 'inv-iotlb-pages', deviceId: 0x4567, pasid: 0, maxPend: 0, queueId: 0, s: false, gn: false, addr: 0n }))
      .toMatchObject({ kind: CMD_ATS, sid: 0x4567 });
    expect(dec({ type: 'inv-devtab-entry', deviceId: 1 })).toMatchObject({ kind: CMD_OTHER });
    expect(dec({ type: 'complete-ppr', deviceId: 1, pasid: 0, gn: false, tag: 0, status: 0 }).cmd)
      .toEqual({ type: 'complete-ppr', deviceId: 1, pasid: 0, gn: false, tag: 0, status: 0 });
  });
});
