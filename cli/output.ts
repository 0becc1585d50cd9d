/**
 * What `run` and `sweep` print and write: the summary table for the terminal, CSV tables
 * (phases, latencies with decade buckets, hit rates, PASID timeline, sweep points), and
 * the output directory (results.json, *.csv, report.html).
 * Does not: compute metrics (scenario/collect.ts) or draw charts (report/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DECADE_LABELS, type LatencyStats } from '../scenario/collect.js';
import type { Results, SweepFile } from '../scenario/results-schema.js';
import { renderReport } from '../report/render.js';

export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths = all[0] ? all[0].map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length))) : [];
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const out = all.map(line);
  if (header) out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return out.join('\n');
}

export const fmtNs = (ns: number): string =>
  ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${Math.round(ns)} ns`;
const pct = (r: number) => `${(100 * r).toFixed(1)}%`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function latencyRows(title: string, m: Record<string, LatencyStats> | undefined): string[][] {
  return Object.entries(m ?? {}).map(([k, l]) => [`${title} ${k}`, String(l.count), fmtNs(l.p50Ns), fmtNs(l.p99Ns), fmtNs(l.maxNs)]);
}

export function summary(r: Results): string {
  const m = r.modelled;
  const lines: string[] = [];
  lines.push(`iommu-sim ${r.scenario.name}${r.partial ? '  (PARTIAL: interrupted)' : ''}`);
  lines.push(`  ${r.config.profile}, ${m.iommus} IOMMUs, ${m.devices} devices in ${m.groups} groups, ${r.config.semantics} semantics, ${r.config.pasidPolicy} PASIDs, seed ${r.seed}`);
  lines.push(`  modelled time ${fmtNs(m.modelledNs)}; host time ${(r.host.wallMs / 1000).toFixed(2)} s, peak RSS ${mib(r.host.peakRssBytes)}`);
  lines.push('');
  lines.push(table(m.phases.map((p) => [p.name, p.type, String(p.ops), fmtNs(p.endNs - p.startNs),
    Object.entries(p.errors).map(([k, v]) => `${k}×${v}`).join(' ') || '-', p.stoppedBy ?? '']), ['phase', 'type', 'ops', 'modelled', 'errors', 'stopped']));
  const lat = [...latencyRows('inval', m.invalidation), ...latencyRows('round-trip', m.roundTrips)];
  if (lat.length) {
    lines.push('');
    lines.push(table(lat, ['latency (modelled)', 'count', 'p50', 'p99', 'max']));
  }
  if (m.cmdq?.length) {
    lines.push('');
    lines.push(table(m.cmdq.map((c) => [c.phase, c.mode, c.algorithm, c.batching ? 'yes' : 'no', String(c.cpus), `${(c.opsPerCpuPerSec / 1000).toFixed(1)}K`,
      c.casSuccessRate.toFixed(2), pct(c.smmuBusy)]), ['command queue', 'mode', 'insertion', 'batched', 'CPUs', 'map+unmap/CPU/s', 'CAS ok', 'SMMU busy']));
  }
  const rows: string[][] = [];
  if (m.dma) rows.push(['DMA requests / translated / faulted', `${m.dma.requests} / ${m.dma.translated} / ${m.dma.faulted}`]);
  if (m.dma && Object.keys(m.dma.faultsByReason).length) rows.push(['fault records by reason', Object.entries(m.dma.faultsByReason).map(([k, v]) => `${k} ${v}`).join(', ') + (m.dma.eventsLost ? ` (+${m.dma.eventsLost} lost)` : '')]);
  if (m.hitRates) rows.push(['hit rate IOTLB / devTLB / PASID cache', `${pct(m.hitRates.iotlb.rate)} / ${pct(m.hitRates.devTlb.rate)} / ${pct(m.hitRates.pasidCache.rate)}`]);
  if (m.pageRequests) rows.push(['page requests (groups) / responses ok-inv-fail', `${m.pageRequests.requests} (${m.pageRequests.groups}) / ${m.pageRequests.responses.success}-${m.pageRequests.responses.invalid}-${m.pageRequests.responses.failure}`]);
  if (m.pasids) rows.push(['PASIDs in use peak / final', `${m.pasids.peak} / ${m.pasids.final}`]);
  if (m.tables) rows.push(['table memory in use / peak', `${mib(m.tables.bytesInUse)} / ${mib(m.tables.peakBytes)}`]);
  if (rows.length) {
    lines.push('');
    lines.push(table(rows));
  }
  return lines.join('\n');
}

const csv = (rows: (string | number)[][]): string => rows.map((r) => r.map((c) => {
  const s = String(c);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}).join(',')).join('\n') + '\n';

export function csvTables(r: Results): Record<string, string> {
  const m = r.modelled;
  const out: Record<string, string> = {};
  out['phases.csv'] = csv([['phase', 'type', 'ops', 'start_ns', 'end_ns', 'errors', 'reasons', 'stopped_by'],
    ...m.phases.map((p) => [p.name, p.type, p.ops, p.startNs, p.endNs, Object.entries(p.errors).map(([k, v]) => `${k}:${v}`).join(' '),
      Object.entries(p.reasons).map(([k, v]) => `${k}:${v}`).join('; '), p.stoppedBy ?? ''])]);
  if (m.cmdq?.length) {
    out['cmdq.csv'] = csv([['phase', 'mode', 'algorithm', 'batching', 'cpus', 'ops_per_cpu_per_s', 'cas_success_rate', 'smmu_busy', 'sync_wait_ns_per_op'],
      ...m.cmdq.map((c) => [c.phase, c.mode, c.algorithm, String(c.batching), c.cpus, c.opsPerCpuPerSec, c.casSuccessRate, c.smmuBusy, c.syncWaitNsPerOp])]);
  }
  const lat: (string | number)[][] = [['source', 'kind', 'count', 'min_ns', 'mean_ns', 'p50_ns', 'p90_ns', 'p99_ns', 'p999_ns', 'max_ns', ...DECADE_LABELS]];
  for (const [src, set] of [['invalidation', m.invalidation], ['round-trip', m.roundTrips]] as const) {
    for (const [k, l] of Object.entries(set ?? {})) lat.push([src, k, l.count, l.minNs, l.meanNs, l.p50Ns, l.p90Ns, l.p99Ns, l.p999Ns, l.maxNs, ...l.decades]);
  }
  out['latency.csv'] = csv(lat);
  if (m.hitRates) out['hit-rates.csv'] = csv([['cache', 'hits', 'misses', 'rate'], ...Object.entries(m.hitRates).map(([k, v]) => [k, v.hits, v.misses, v.rate])]);
  if (m.pasids) out['pasids.csv'] = csv([['modelled_ns', 'pasids_in_use'], ...m.pasids.timeline]);
  return out;
}

export function sweepCsv(s: SweepFile): string {
  const keys = Object.keys(s.vary);
  const kinds = [...new Set(s.results.flatMap((p) => Object.keys(p.results.modelled.invalidation ?? {})))].sort();
  const trips = [...new Set(s.results.flatMap((p) => Object.keys(p.results.modelled.roundTrips ?? {})))].sort();
  const head = ['index', ...keys, 'modelled_ns', 'host_ms', ...kinds.flatMap((k) => [`inval_${k}_p50_ns`, `inval_${k}_p99_ns`]), ...trips.flatMap((k) => [`rt_${k}_p50_ns`, `rt_${k}_p99_ns`])];
  const rows = s.results.map(({ index, results: r }) => [index, ...keys.map((k) => String(r.point?.[k] ?? '')), r.modelled.modelledNs, r.host.wallMs,
    ...kinds.flatMap((k) => [r.modelled.invalidation?.[k]?.p50Ns ?? '', r.modelled.invalidation?.[k]?.p99Ns ?? '']),
    ...trips.flatMap((k) => [r.modelled.roundTrips?.[k]?.p50Ns ?? '', r.modelled.roundTrips?.[k]?.p99Ns ?? ''])]);
  return csv([head, ...rows]);
}

/** Writes results.json, the CSV tables and report.html into `dir`. */
export function writeRunDir(dir: string, r: Results): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), JSON.stringify(r, null, 2) + '\n');
  for (const [name, text] of Object.entries(csvTables(r))) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'report.html'), renderReport({ runs: [r] }));
}

/** Writes sweep.json, sweep.csv, the first point's CSV tables and report.html into `dir`. */
export function writeSweepDir(dir: string, s: SweepFile, name = 'sweep.json'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), JSON.stringify(s, null, 2) + '\n');
  writeFileSync(join(dir, 'sweep.csv'), sweepCsv(s));
  if (s.results.length) writeFileSync(join(dir, 'report.html'), renderReport({ runs: s.results.map((p) => p.results), vary: s.vary }));
}
