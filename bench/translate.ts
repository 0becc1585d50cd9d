/**
 * Question: how many translations per second can one IOMMU worker do, at an IOTLB hit
 * and at an IOTLB miss with a full page walk, against the raw limit of plain typed-array
 * code doing only the memory reads each case needs, measured in the same run?
 *
 * Method: the worker's own Translator (the code each worker thread runs), over tables the
 * coordinator's writers built in a shared arena, driven in a tight loop on this thread.
 * Hit: 32 pages cycled (they stay in the 64-entry IOTLB). Walk: 65 536 pages cycled so
 * every request misses (4-level first-stage walk; context and PASID caches hit).
 * Raw limits: (hit) one set-associative probe of typed arrays per request; (hit, 3
 * probes) the three dependent probes a VT-d scalable-mode hit needs — context cache by
 * source id, PASID cache by (source id, PASID) giving the DID, IOTLB by (DID, PASID,
 * page) — in plain typed arrays; (walk) the same 4 dependent page-table reads through the
 * same arena, nothing else.
 */
import { FrameAllocator } from '../coordinator/frame-allocator.js';
import { PageTable } from '../coordinator/page-table.js';
import { ContextTables } from '../coordinator/context-tables.js';
import { FIRST_STAGE, levelIndex } from '../shared/layout/pte-format.js';
import { FLPM_4LEVEL, PASID_ENTRY_ZERO, PGTT_FL } from '../shared/layout/pasid-entry.js';
import { fsFrame } from '../shared/layout/fs-pte.js';
import { ARENA_BASE_FRAME, CHUNK_FRAME_SHIFT, CHUNK_FRAMES, frameToAddr } from '../shared/memory/arena.js';
import { resolveIommuConfig } from '../shared/config.js';
import { ACCESS_READ } from '../shared/layout/dma-request.js';
import { Translator } from '../iommu-worker/translate.js';
import type { Metric } from './metric.js';

const BENCH = 'translate';
const RID = 0x0300;
const BASE = 0x4000_0000;

function setup(pages: number) {
  const fa = new FrameAllocator();
  const pt = new PageTable(fa, FIRST_STAGE, 4, 4096n); // 4 KiB pages only: every page is its own walk
  pt.map(BigInt(BASE), 0x10_0000_0000n, BigInt(pages) * 4096n, { read: true, write: true });
  const ct = new ContextTables(fa, 1 << 20);
  ct.setupDevice(RID, { maxPasids: 1 << 20, ats: false, pri: false });
  ct.setPasidEntry(RID, 0, { ...PASID_ENTRY_ZERO, present: true, pgtt: PGTT_FL, did: 2, flpm: FLPM_4LEVEL, fsptptr: frameToAddr(pt.rootFrame) });
  const t = new Translator(fa.view, ct.rootFrame, resolveIommuConfig(0));
  return { fa, pt, t };
}

/** Runs `body(n)` for about `ms`, returns operations per second (best of 3 slices). */
function rate(ms: number, body: (n: number) => number): number {
  let best = 0;
  let sink = 0;
  body(10_000); // warm up the JIT
  for (let slice = 0; slice < 3; slice++) {
    let n = 1000;
    let ops = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms / 3) {
      sink += body(n);
      ops += n;
      n = Math.min(n * 2, 1 << 20);
      t = performance.now();
    }
    best = Math.max(best, ops / ((t - t0) / 1000));
  }
  if (sink === 0.5) console.log(sink);
  return best;
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const ms = opts.quick ? 600 : 3000;
  const HIT_PAGES = 32;
  const WALK_PAGES = 65536;

  // --- translator at an IOTLB hit ---
  const a = setup(HIT_PAGES);
  const hit = rate(ms, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      s += a.t.translate(RID, -1, ACCESS_READ, false, (BASE + (i & (HIT_PAGES - 1)) * 4096) >>> 0, 0);
      s += a.t.paLo & 1;
    }
    return s;
  });

  // --- raw hit limit: one set-associative probe of typed arrays ---
  const sets = 8;
  const ways = 8;
  const tagVpn = new Float64Array(sets * ways);
  const tagDid = new Uint16Array(sets * ways);
  const tagPasid = new Uint32Array(sets * ways);
  const dataPfn = new Float64Array(sets * ways);
  for (let p = 0; p < HIT_PAGES; p++) {
    const vpn = BASE / 4096 + p;
    const set = vpn & (sets - 1);
    const slot = set * ways + Math.floor(p / sets);
    tagVpn[slot] = vpn; tagDid[slot] = 2; tagPasid[slot] = 0; dataPfn[slot] = 0x100_0000 + p;
  }
  const rawHit = rate(ms, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const vpn = BASE / 4096 + (i & (HIT_PAGES - 1));
      const base = (vpn & (sets - 1)) * ways;
      for (let w = 0; w < ways; w++) {
        const k = base + w;
        if (tagVpn[k] === vpn && tagDid[k] === 2 && tagPasid[k] === 0) { s += dataPfn[k]; break; }
      }
    }
    return s;
  });

  // --- raw limit of the three dependent probes of a scalable-mode hit ---
  const ctxKey = new Uint32Array(sets * ways);
  const ctxVal = new Uint32Array(sets * ways);
  const pcKey = new Float64Array(sets * ways);
  const pcDid = new Uint16Array(sets * ways);
  ctxKey[(RID & (sets - 1)) * ways + 3] = RID; ctxVal[(RID & (sets - 1)) * ways + 3] = 1;
  pcKey[(RID & (sets - 1)) * ways + 5] = RID * 2 ** 20; pcDid[(RID & (sets - 1)) * ways + 5] = 2;
  const rawHit3 = rate(ms, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      let b = (RID & (sets - 1)) * ways;
      let ok = 0;
      for (let w = 0; w < ways; w++) if (ctxKey[b + w] === RID) { ok = ctxVal[b + w]; break; }
      let did = 0;
      for (let w = 0; w < ways; w++) if (pcKey[b + w] === RID * 2 ** 20 + 0 * ok) { did = pcDid[b + w]; break; }
      const vpn = BASE / 4096 + (i & (HIT_PAGES - 1));
      b = (vpn & (sets - 1)) * ways;
      for (let w = 0; w < ways; w++) {
        const k = b + w;
        if (tagVpn[k] === vpn && tagDid[k] === did && tagPasid[k] === 0) { s += dataPfn[k]; break; }
      }
    }
    return s;
  });

  // --- translator at an IOTLB miss: full walk every time ---
  const b = setup(WALK_PAGES);
  const walk = rate(ms, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      s += b.t.translate(RID, -1, ACCESS_READ, false, (BASE + (i & (WALK_PAGES - 1)) * 4096) >>> 0, 0);
      s += b.t.paLo & 1;
    }
    return s;
  });
  const st = b.t.iotlb.stats();
  if (st.hits > st.misses / 100) throw new Error(`walk bench: IOTLB hit ${st.hits} times; the case is not a miss`);

  // --- raw walk limit: 4 dependent reads through the same table ---
  const chunks = b.fa.view.chunks;
  const root = b.pt.rootFrame;
  const rawWalk = rate(ms, (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const vpnLo = BASE / 4096 + (i & (WALK_PAGES - 1));
      let frame = root;
      for (let level = 4; level >= 1; level--) {
        const rel = frame - ARENA_BASE_FRAME;
        const chunk = chunks[rel >>> CHUNK_FRAME_SHIFT];
        const at = ((rel & (CHUNK_FRAMES - 1)) << 10) + 2 * levelIndex(vpnLo, 0, level);
        frame = fsFrame(chunk[at], chunk[at + 1]);
      }
      s += frame;
    }
    return s;
  });

  return [
    { bench: BENCH, metric: 'translate_hit_mops', value: hit / 1e6, unit: 'Mops/s' },
    { bench: BENCH, metric: 'raw_hit_limit_mops', value: rawHit / 1e6, unit: 'Mops/s' },
    { bench: BENCH, metric: 'translate_hit_vs_limit_ratio', value: hit / rawHit, unit: 'x' },
    { bench: BENCH, metric: 'raw_hit_3probe_limit_mops', value: rawHit3 / 1e6, unit: 'Mops/s' },
    { bench: BENCH, metric: 'translate_hit_vs_3probe_ratio', value: hit / rawHit3, unit: 'x' },
    { bench: BENCH, metric: 'translate_walk_mops', value: walk / 1e6, unit: 'Mops/s' },
    { bench: BENCH, metric: 'raw_walk_limit_mops', value: rawWalk / 1e6, unit: 'Mops/s' },
    { bench: BENCH, metric: 'translate_walk_vs_limit_ratio', value: walk / rawWalk, unit: 'x' },
  ];
}
