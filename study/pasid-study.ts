/**
 * The global-vs-per-device PASID study (`npm run study [-- mix… --out FILE]`): runs every
 * bundled mix (study/pasid-mixes.ts) under each PASID policy and compares them side by
 * side — how many processes (SVA binds) and VMs (guest PASID binds) fit before the first
 * allocation failure or conflict, PASID-table memory, the invalidation work of one munmap,
 * and allocator time. Prints a table and writes the results as JSON.
 *
 * Models: everything through the public simulator API (kernel PASIDs with
 * allocGlobalPasid, processes with sim.mm and svaBindDevice, VMs with sim.vms); modelled
 * results are deterministic; the allocator time is host time (machine dependent).
 * Does not model: ENQCMD submission itself, the cost of PASID-table walks at DMA time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Device, Simulator, isSimError } from '../coordinator/index.js';
import { ContextTables } from '../coordinator/context-tables.js';
import { PASID_MIXES, type PasidMix } from './pasid-mixes.js';

type Policy = 'global' | 'per-device';
const POLICIES: readonly Policy[] = ['global', 'per-device'];

interface Failure { at: number; device: string; code: string; reason: string }

export interface PolicyResult {
  policy: Policy;
  processesFit: number;
  processFailure?: Failure;
  vmsFit: number;
  vmFailure?: Failure;
  /** Bytes of PASID directories and tables of every device with tables. */
  pasidTableBytes: number;
  pasidTableBytesPerDevice: number;
  /** All table memory (I/O and CPU page tables included). */
  tableBytes: number;
  /** One 4 KiB munmap of the first process: descriptors other than waits, waits, IOMMUs involved. */
  munmap: { descriptors: number; waits: number; iommus: number; modelledNs: number } | undefined;
  allocNsPerOp: number;
}

export interface MixResult { mix: string; description: string; results: PolicyResult[] }

function failure(e: unknown, at: number, dev: Device): Failure {
  if (!isSimError(e)) throw e;
  return { at, device: dev.bdf, code: e.code, reason: e.reason };
}

async function runPolicy(mix: PasidMix, policy: Policy): Promise<PolicyResult> {
  const sim = await Simulator.start({ topology: mix.topology, pasidPolicy: policy });
  try {
    const dev = (b: string) => sim.topology.device(b);
    for (const [b, n] of Object.entries(mix.kernelPasids)) for (let i = 0; i < n; i++) sim.iommu.allocGlobalPasid(dev(b));

    // Processes: each binds its set of devices (one PASID per process on all of them).
    let processesFit = 0;
    let processFailure: Failure | undefined;
    let probe: { mm: ReturnType<Simulator['mm']['create']>; va: bigint } | undefined;
    outer: for (let i = 0; i < mix.processes.count; i++) {
      const mm = sim.mm.create();
      const va = mm.mmap({ length: BigInt(mix.processes.pagesEach) * 4096n, prot: { read: true, write: true }, populate: true });
      for (const b of mix.processes.bindSets[i % mix.processes.bindSets.length]) {
        try {
          await sim.iommu.svaBindDevice(dev(b), mm);
        } catch (e) {
          processFailure = failure(e, i, dev(b));
          break outer;
        }
      }
      probe ??= { mm, va };
      processesFit++;
    }

    // The invalidation work of one munmap of the first process.
    let munmap: PolicyResult['munmap'];
    if (probe) {
      const before = await sim.stats();
      const t0 = sim.clock.now;
      await probe.mm.munmap(probe.va, 4096n);
      const after = await sim.stats();
      let descriptors = 0;
      let waits = 0;
      let iommus = 0;
      after.iommus.forEach((s, i) => {
        const b = before.iommus[i];
        const d = Object.entries(s.descriptors).reduce((n, [k, v]) => n + (k === 'wait' ? 0 : v - (b.descriptors[k] ?? 0)), 0);
        const w = s.waits - b.waits;
        descriptors += d;
        waits += w;
        if (w > 0) iommus++;
      });
      munmap = { descriptors, waits, iommus, modelledNs: sim.clock.now - t0 };
    }

    // VMs: one device each, every guest binding vPASIDs 1..k.
    let vmsFit = 0;
    let vmFailure: Failure | undefined;
    vms: for (let v = 0; v < mix.vms.count; v++) {
      const vm = sim.vms.create();
      const d = dev(mix.vms.devices[v % mix.vms.devices.length]);
      try {
        vm.assign(d);
        for (let k = 1; k <= mix.vms.vpasidsEach; k++) vm.bindVpasid(d, k);
      } catch (e) {
        vmFailure = failure(e, v, d);
        break vms;
      }
      vmsFit++;
    }

    // PASID-table memory of every device that has tables.
    let pasidTableBytes = 0;
    let withTables = 0;
    for (const d of sim.topology.devices) {
      const tables = sim.tables(d.iommu);
      const st = tables instanceof ContextTables ? tables.device(d.rid) : undefined;
      if (!st) continue;
      withTables++;
      pasidTableBytes += ((1 << st.dirOrder) + st.leafTables.size) * 4096;
    }
    const stats = await sim.stats();

    // Allocator time: allocate and free a block of PASIDs on one device.
    const d0 = sim.topology.devices.find((d) => d.maxPasids > 2048) ?? sim.topology.devices[0];
    const n = 2000;
    const t0 = performance.now();
    const got: number[] = [];
    for (let i = 0; i < n; i++) got.push(sim.iommu.allocGlobalPasid(d0));
    for (const p of got) sim.iommu.freeGlobalPasid(p, d0);
    const allocNsPerOp = ((performance.now() - t0) * 1e6) / (2 * n);

    return {
      policy, processesFit, processFailure, vmsFit, vmFailure, pasidTableBytes,
      pasidTableBytesPerDevice: withTables ? Math.round(pasidTableBytes / withTables) : 0,
      tableBytes: stats.tables.bytesInUse, munmap, allocNsPerOp,
    };
  } finally {
    await sim.close();
  }
}

export async function runStudy(mixes: readonly PasidMix[]): Promise<MixResult[]> {
  const out: MixResult[] = [];
  for (const mix of mixes) {
    const results: PolicyResult[] = [];
    for (const p of POLICIES) results.push(await runPolicy(mix, p));
    out.push({ mix: mix.name, description: mix.description, results });
  }
  return out;
}

function fmtFail(f: Failure | undefined): string {
  return f ? `#${f.at} ${f.code} ${f.reason}` : '—';
}

export function formatStudy(results: readonly MixResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`\n${r.mix}: ${r.description}`);
    const rows: [string, (p: PolicyResult) => string][] = [
      ['processes fitted', (p) => String(p.processesFit)],
      ['first process failure', (p) => fmtFail(p.processFailure)],
      ['VMs fitted', (p) => String(p.vmsFit)],
      ['first VM failure', (p) => fmtFail(p.vmFailure)],
      ['PASID-table KiB (all devices)', (p) => (p.pasidTableBytes / 1024).toFixed(0)],
      ['PASID-table KiB per device', (p) => (p.pasidTableBytesPerDevice / 1024).toFixed(0)],
      ['munmap: descriptors / waits / IOMMUs', (p) => (p.munmap ? `${p.munmap.descriptors} / ${p.munmap.waits} / ${p.munmap.iommus}` : '—')],
      ['munmap: modelled ns', (p) => (p.munmap ? String(p.munmap.modelledNs) : '—')],
      ['allocator ns/op (host)', (p) => p.allocNsPerOp.toFixed(0)],
    ];
    const w0 = Math.max(...rows.map(([k]) => k.length));
    const cols = r.results.map((p) => rows.map(([, f]) => f(p)));
    const widths = r.results.map((p, i) => Math.max(p.policy.length, ...cols[i].map((c) => c.length)));
    lines.push(`  ${''.padEnd(w0)}  ${r.results.map((p, i) => p.policy.padEnd(widths[i])).join('  ')}`);
    rows.forEach(([k], j) => lines.push(`  ${k.padEnd(w0)}  ${cols.map((c, i) => c[j].padEnd(widths[i])).join('  ')}`));
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let out = 'study-out/pasid-study.json';
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') {
      out = args[++i] ?? '';
      if (!out) { console.error('study: --out needs a file'); process.exit(2); }
    } else if (args[i].startsWith('-')) {
      console.error(`study: unknown flag ${args[i]}\nusage: npm run study -- [mix …] [--out FILE]`);
      process.exit(2);
    } else names.push(args[i]);
  }
  const all = PASID_MIXES.map((m) => m());
  for (const n of names) {
    if (!all.some((m) => m.name === n)) {
      console.error(`study: unknown mix '${n}' (bundled: ${all.map((m) => m.name).join(', ')})`);
      process.exit(2);
    }
  }
  const mixes = names.length ? all.filter((m) => names.includes(m.name)) : all;
  const results = await runStudy(mixes);
  console.log(`PASID policy study — ${mixes.length} mix(es), policies: ${POLICIES.join(', ')}`);
  console.log(formatStudy(results));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2));
  console.log(`\nresults written to ${out}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
}
