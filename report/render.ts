/**
 * The HTML report: ONE self-contained file (inline CSS and SVG, no scripts from anywhere,
 * no network) for a run or a sweep — latency histograms and CDFs per invalidation kind
 * and per timed round trip, the kernel's decade buckets, scaling curves across sweep
 * points, PASIDs in use over modelled time, cache hit rates, and the scenario, host and
 * machine information.
 * Does not: compute metrics (it reads results objects) or embed the raw results.
 */
import { LOG_BIN_EDGES_NS } from 'iommu-sim';
import { DECADE_LABELS, type LatencyStats } from '../scenario/collect.js';
import type { Results } from '../scenario/results-schema.js';
import { barChart, esc, lineChart } from './svg.js';

export interface ReportInput {
  runs: Results[];
  /** Sweep: the varied paths and their values. */
  vary?: Record<string, unknown[]>;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1320px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600}.grid-charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{margin:0;border:1px solid #e3e3e3;padding:6px;background:#fff;width:400px}figcaption{font-weight:600;margin-bottom:4px}
svg .plot{fill:#fafafa;stroke:#ccc}svg .grid{stroke:#e6e6e6}svg .tick{font-size:10px;fill:#555}svg .lab{font-size:11px;fill:#333}
.legend{font-size:11px}.key{margin-right:10px;white-space:nowrap}.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
.partial{color:#b00;font-weight:700}.note{color:#666;font-size:12px}`;

function kv(rows: [string, unknown][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`).join('')}</table>`;
}

function label(r: Results, i: number, vary?: Record<string, unknown[]>): string {
  if (!vary || !r.point) return `run ${i + 1}`;
  return Object.keys(vary).map((k) => `${k.split('.').pop()}=${String(r.point?.[k])}`).join(' ');
}

/** Histogram, CDF and decade charts of one latency family (invalidation kinds or round trips). */
function latencySection(runs: Results[], labels: string[], pick: (r: Results) => Record<string, LatencyStats> | undefined, what: string, prefix: string): string {
  const kinds = [...new Set(runs.flatMap((r) => Object.keys(pick(r) ?? {})))].sort();
  if (!kinds.length) return `<p class="note">No ${esc(what)} in this run.</p>`;
  const shown = runs.map((r, i) => ({ r, name: labels[i] })).filter((_, i, a) => a.length <= 6 || i % Math.ceil(a.length / 6) === 0 || i === a.length - 1);
  const out: string[] = [];
  for (const kind of kinds) {
    const withKind = shown.filter(({ r }) => (pick(r)?.[kind]?.count ?? 0) > 0);
    if (!withKind.length) continue;
    const attrs = { kind, source: prefix };
    const binSeries = withKind.map(({ r, name }) => ({ name, points: pick(r)![kind].bins }));
    // Every 1-2-5 bin (the core's LOG_BIN_EDGES_NS) between the lowest and highest non-empty one.
    const lows = binSeries.flatMap((s) => s.points.map((p) => p[0]));
    const lo = Math.min(...lows);
    const hi = Math.max(...lows);
    const binXs = LOG_BIN_EDGES_NS.map((e) => Math.max(1, e)).filter((e, i, a) => e >= lo && e <= hi && a.indexOf(e) === i);
    out.push(`<h3>${esc(kind)}</h3><div class="grid-charts">`);
    out.push(barChart({ chart: `${prefix}-histogram`, title: `${kind}: latency histogram (modelled)`, attrs },
      binXs.map((x) => (x >= 1e6 ? `${+(x / 1e6).toPrecision(2)}ms` : x >= 1e3 ? `${+(x / 1e3).toPrecision(2)}µs` : `${x}ns`)),
      binSeries.map((s) => ({ name: s.name, values: binXs.map((x) => s.points.find((p) => p[0] === x)?.[1] ?? 0) })),
      { xLabel: 'latency bin (lower edge)', yLabel: 'count' }));
    out.push(lineChart({ chart: `${prefix}-cdf`, title: `${kind}: latency CDF (modelled)`, attrs },
      withKind.map(({ r, name }) => ({ name, points: pick(r)![kind].cdf })), { logX: true, xLabel: 'latency (ns, log)', yLabel: 'fraction ≤ x', step: true }));
    out.push(barChart({ chart: `${prefix}-decades`, title: `${kind}: decade buckets (intel/perf.h)`, attrs }, [...DECADE_LABELS],
      withKind.map(({ r, name }) => ({ name, values: pick(r)![kind].decades })), { xLabel: 'latency bucket', yLabel: 'count' }));
    out.push('</div>');
    const rows = withKind.map(({ r, name }) => {
      const l = pick(r)![kind];
      return `<tr><td>${esc(name)}</td>${[l.count, l.minNs, l.meanNs, l.p50Ns, l.p90Ns, l.p99Ns, l.maxNs, ...l.decades].map((v) => `<td>${v}</td>`).join('')}</tr>`;
    });
    out.push(`<table><tr><th></th>${['count', 'min ns', 'mean ns', 'p50 ns', 'p90 ns', 'p99 ns', 'max ns', ...DECADE_LABELS].map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.join('')}</table>`);
  }
  return out.join('\n');
}

function scalingSection(runs: Results[], labels: string[], vary: Record<string, unknown[]>): string {
  const key = Object.keys(vary)[0];
  const numeric = runs.every((r) => typeof r.point?.[key] === 'number');
  const xOf = (r: Results, i: number) => (numeric ? (r.point![key] as number) : i + 1);
  const xTicks = numeric ? undefined : runs.map((r, i) => ({ at: i + 1, label: labels[i] }));
  const logX = numeric && runs.every((r) => (r.point![key] as number) > 0) && Math.max(...runs.map((r) => r.point![key] as number)) / Math.max(1, Math.min(...runs.map((r) => r.point![key] as number))) >= 16;
  const fam = (pick: (r: Results) => Record<string, LatencyStats> | undefined) => [...new Set(runs.flatMap((r) => Object.keys(pick(r) ?? {})))].sort().flatMap((k) => [
    { name: `${k} p50`, points: runs.flatMap((r, i) => (pick(r)?.[k] ? [[xOf(r, i), pick(r)![k].p50Ns] as [number, number]] : [])) },
    { name: `${k} p99`, points: runs.flatMap((r, i) => (pick(r)?.[k] ? [[xOf(r, i), pick(r)![k].p99Ns] as [number, number]] : [])) },
  ]);
  const xLabel = numeric ? key : 'sweep point';
  const out = ['<div class="grid-charts">'];
  const inv = fam((r) => r.modelled.invalidation);
  if (inv.length) out.push(lineChart({ chart: 'scaling', title: 'invalidation latency across sweep points (modelled)', attrs: { source: 'invalidation' } }, inv, { logX, logY: true, xLabel, yLabel: 'ns (log)', xTicks }));
  const rt = fam((r) => r.modelled.roundTrips);
  if (rt.length) out.push(lineChart({ chart: 'scaling', title: 'round trips across sweep points (modelled)', attrs: { source: 'round-trip' } }, rt, { logX, logY: true, xLabel, yLabel: 'ns (log)', xTicks }));
  const phaseNames = runs[0].modelled.phases.map((p) => p.name);
  out.push(lineChart({ chart: 'scaling', title: 'modelled time of each phase across sweep points', attrs: { source: 'phases' } },
    phaseNames.map((n) => ({ name: n, points: runs.flatMap((r, i) => {
      const p = r.modelled.phases.find((x) => x.name === n);
      return p ? [[xOf(r, i), Math.max(1, p.endNs - p.startNs)] as [number, number]] : [];
    }) })), { logX, logY: true, xLabel, yLabel: 'modelled ns (log)', xTicks }));
  out.push(lineChart({ chart: 'scaling', title: 'host wall time across sweep points', attrs: { source: 'host' } },
    [{ name: 'wall ms', points: runs.map((r, i) => [xOf(r, i), r.host.wallMs] as [number, number]) }], { logX, xLabel, yLabel: 'host ms', xTicks }));
  out.push('</div>');
  return out.join('\n');
}

export function renderReport(input: ReportInput): string {
  const { runs, vary } = input;
  if (!runs.length) throw new Error('renderReport: no runs');
  const first = runs[0];
  const labels = runs.map((r, i) => label(r, i, vary));
  const partial = runs.some((r) => r.partial);
  const body: string[] = [];
  body.push(`<h1>iommu-sim report: ${esc(first.scenario.name)}</h1>`);
  if (partial) body.push('<p class="partial">PARTIAL RESULTS: the run was interrupted before every phase finished.</p>');
  body.push(`<p class="note">All latencies are modelled time of the simulated machine (deterministic for a scenario and seed); host figures say how fast the simulator ran on this machine.</p>`);
  body.push('<h2>Scenario</h2>');
  body.push(kv([['name', first.scenario.name], ['file', first.scenario.file ?? '—'], ['hash', first.scenario.hash], ['seed', first.seed],
    ['profile', first.config.profile], ['IOMMUs', first.config.iommus], ['semantics', first.config.semantics], ['PASID policy', first.config.pasidPolicy],
    ['default domain', first.config.defaultDomain], ['devices / groups', `${first.modelled.devices} / ${first.modelled.groups}`],
    ...(vary ? [['sweep', Object.entries(vary).map(([k, v]) => `${k} = ${v.join(', ')}`).join('; ')] as [string, unknown], ['points', runs.length] as [string, unknown]] : [])]));
  body.push(`<table><tr><th>phase</th><th>type</th><th>ops</th><th>modelled</th><th>errors</th></tr>${first.modelled.phases.map((p) =>
    `<tr><td>${esc(p.name)}</td><td>${esc(p.type)}</td><td>${p.ops}</td><td>${p.endNs - p.startNs} ns</td><td>${esc(Object.entries(p.reasons).map(([k, v]) => `${k} ×${v}`).join(', ') || '—')}</td></tr>`).join('')}</table>`);
  if (vary && runs.length > 1) {
    body.push('<h2>Scaling across sweep points</h2>');
    body.push(scalingSection(runs, labels, vary));
  }
  body.push('<h2>Invalidation latency by kind</h2>');
  body.push('<p class="note">One sample per invalidation queue: from the submission of the descriptors to the wait descriptor\'s status write.</p>');
  body.push(latencySection(runs, labels, (r) => r.modelled.invalidation, 'invalidations', 'latency'));
  body.push('<h2>Round trips</h2>');
  body.push('<p class="note">Whole API calls timed on the modelled clock: a strict unmap or an munmap resolves when every IOMMU involved is clean.</p>');
  body.push(latencySection(runs, labels, (r) => r.modelled.roundTrips, 'timed round trips', 'round-trip'));
  body.push('<h2>PASIDs and caches</h2><div class="grid-charts">');
  const withPasids = runs.filter((r) => r.modelled.pasids);
  if (withPasids.length) {
    body.push(lineChart({ chart: 'pasid-timeline', title: 'PASIDs in use over modelled time' },
      runs.map((r, i) => ({ name: labels[i], points: r.modelled.pasids?.timeline ?? [] })).filter((s) => s.points.length), { xLabel: 'modelled ns', yLabel: 'PASIDs in use', step: true }));
  }
  const withRates = runs.filter((r) => r.modelled.hitRates);
  if (withRates.length) {
    const caches = ['iotlb', 'devTlb', 'pasidCache', 'contextCache'] as const;
    const shown = runs.map((r, i) => ({ r, name: labels[i] })).filter(({ r }) => r.modelled.hitRates).slice(-6);
    body.push(barChart({ chart: 'hit-rates', title: 'translation cache hit rates' }, [...caches],
      shown.map(({ r, name }) => ({ name, values: caches.map((c) => r.modelled.hitRates![c].rate * 100) })), { xLabel: 'cache', yLabel: 'hit rate %', yMax: 100 }));
  }
  body.push('</div>');
  const m = first.modelled;
  body.push(kv([
    ...(m.dma ? [['DMA requests / translated / faulted', `${m.dma.requests} / ${m.dma.translated} / ${m.dma.faulted}`], ['fault records', JSON.stringify(m.dma.faultsByReason)], ['descriptors', JSON.stringify(m.dma.descriptors)]] as [string, unknown][] : []),
    ...(m.pageRequests ? [['page requests (groups)', `${m.pageRequests.requests} (${m.pageRequests.groups})`], ['page responses', JSON.stringify(m.pageRequests.responses)]] as [string, unknown][] : []),
    ...(m.tables ? [['table memory in use / peak', `${m.tables.bytesInUse} / ${m.tables.peakBytes} bytes`]] as [string, unknown][] : []),
  ]));
  body.push('<h2>Host and machine</h2>');
  const h = first.host;
  const mc = first.machine;
  body.push(kv([['host wall time', `${h.wallMs} ms${runs.length > 1 ? ` (first point; ${runs.reduce((a, r) => a + r.host.wallMs, 0).toFixed(0)} ms all points)` : ''}`],
    ['peak RSS', `${(h.peakRssBytes / 2 ** 20).toFixed(1)} MiB`], ['DMA per host second', h.dmaPerHostSecond], ['invalidation host RTT p50 / p99', `${h.invalidationRttUs.p50} / ${h.invalidationRttUs.p99} µs`],
    ['started', new Date(h.startMs).toISOString()], ['node', mc.node], ['platform', `${mc.platform} ${mc.arch}`], ['CPUs', `${mc.cpus} × ${mc.cpuModel}`],
    ['memory', `${(mc.totalMemBytes / 2 ** 30).toFixed(1)} GiB`], ['iommu-sim', mc.simVersion]]));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iommu-sim: ${esc(first.scenario.name)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>${CSS}</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}
