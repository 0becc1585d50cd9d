/**
 * Small inline-SVG charts for the HTML report: grouped bar charts and line charts with
 * linear or log10 axes, ticks, a legend. Every drawn datum is an element with class
 * "mark" (rect, circle, or the polyline of a series), and the chart's <figure> carries
 * data-chart (its kind) and data-points (how many data points it drew), so a test can
 * check from the page that each chart drew with data.
 * Does not: fetch anything (no network, no fonts), animate, or handle interaction beyond
 * <title> tooltips.
 */

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
export const color = (i: number): string => PALETTE[i % PALETTE.length];

const W = 400;
const H = 270;
const M = { l: 56, r: 12, t: 10, b: 44 };

export interface Series { name: string; points: [number, number][] }
export interface ChartMeta { chart: string; title: string; attrs?: Record<string, string | number> }

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a < 0.01) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

interface Axis { map: (v: number) => number; ticks: number[] }

function axis(lo: number, hi: number, log: boolean, from: number, to: number): Axis {
  if (log) {
    const a = Math.floor(Math.log10(Math.max(lo, 1e-9)));
    const b = Math.max(a + 1, Math.ceil(Math.log10(Math.max(hi, 1e-9))));
    const ticks: number[] = [];
    for (let e = a; e <= b; e++) ticks.push(10 ** e);
    return { map: (v) => from + ((Math.log10(Math.max(v, 10 ** a)) - a) / (b - a)) * (to - from), ticks };
  }
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? raw;
  const t0 = Math.floor(lo / step) * step;
  const t1 = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let t = t0; t <= t1 + step / 2; t += step) ticks.push(+t.toPrecision(12));
  return { map: (v) => from + ((v - t0) / (t1 - t0)) * (to - from), ticks };
}

function frame(meta: ChartMeta, points: number, body: string, legend: string[], xLabel: string, yLabel: string): string {
  const attrs = Object.entries(meta.attrs ?? {}).map(([k, v]) => ` data-${k}="${esc(String(v))}"`).join('');
  const leg = legend.map((n, i) => `<span class="key"><i style="background:${color(i)}"></i>${esc(n)}</span>`).join(' ');
  return `<figure class="chart" data-chart="${esc(meta.chart)}" data-points="${points}"${attrs}>
<figcaption>${esc(meta.title)}</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(meta.title)}">
${body}
<text class="lab" x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>
<text class="lab" transform="translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
</svg>
<div class="legend">${leg}</div>
</figure>`;
}

function grid(x: Axis | null, y: Axis, xTicks?: { at: number; label: string }[]): string {
  const out: string[] = [`<rect class="plot" x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}"/>`];
  for (const t of y.ticks) {
    const py = y.map(t);
    out.push(`<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}"/><text class="tick" x="${M.l - 4}" y="${(py + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`);
  }
  const xt = xTicks ?? (x ? x.ticks.map((t) => ({ at: x.map(t), label: fmt(t) })) : []);
  for (const t of xt) out.push(`<text class="tick" x="${t.at.toFixed(1)}" y="${H - M.b + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  return out.join('\n');
}

/** Lines (with point markers) over numeric x. */
export function lineChart(meta: ChartMeta, series: Series[], o: { logX?: boolean; logY?: boolean; xLabel: string; yLabel: string; step?: boolean; xTicks?: { at: number; label: string }[] }): string {
  // Log axes: values below 1 (a 0 ns deferred unmap) sit on the axis floor of 1.
  series = series.map((s) => ({ name: s.name, points: s.points.map(([px, py]) => [o.logX ? Math.max(1, px) : px, o.logY ? Math.max(1, py) : py] as [number, number]) }));
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x = axis(Math.min(...xs, o.logX ? Infinity : 0), Math.max(...xs, 1), !!o.logX, M.l, W - M.r);
  const y = axis(o.logY ? Math.min(...ys) : Math.min(0, ...ys), Math.max(...ys, o.logY ? 10 : 1e-9), !!o.logY, H - M.b, M.t);
  const xTicks = o.xTicks?.map((t) => ({ at: x.map(t.at), label: t.label }));
  const body = [grid(x, y, xTicks)];
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const c = color(i);
    const path: string[] = [];
    s.points.forEach(([px, py], k) => {
      const X = x.map(px).toFixed(1);
      const Y = y.map(py).toFixed(1);
      if (o.step && k > 0) path.push(`${X},${y.map(s.points[k - 1][1]).toFixed(1)}`);
      path.push(`${X},${Y}`);
    });
    body.push(`<polyline class="mark series" fill="none" stroke="${c}" stroke-width="2" points="${path.join(' ')}"><title>${esc(s.name)}</title></polyline>`);
    const every = Math.max(1, Math.ceil(s.points.length / 60));
    s.points.forEach(([px, py], k) => {
      if (k % every === 0 || k === s.points.length - 1) {
        body.push(`<circle class="mark" r="2.5" fill="${c}" cx="${x.map(px).toFixed(1)}" cy="${y.map(py).toFixed(1)}"><title>${esc(s.name)}: ${fmt(px)}, ${fmt(py)}</title></circle>`);
      }
    });
  });
  return frame(meta, pts.length, body.join('\n'), series.map((s) => s.name), o.xLabel, o.yLabel);
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(meta: ChartMeta, categories: string[], series: { name: string; values: number[] }[], o: { logY?: boolean; xLabel: string; yLabel: string; yMax?: number }): string {
  const vals = series.flatMap((s) => s.values);
  const y = axis(o.logY ? 1 : 0, Math.max(o.yMax ?? 0, ...vals, o.logY ? 10 : 1e-9), !!o.logY, H - M.b, M.t);
  const bandW = (W - M.l - M.r) / Math.max(1, categories.length);
  const barW = Math.max(1, (bandW * 0.8) / Math.max(1, series.length));
  const xTicks = categories.map((c, i) => ({ at: M.l + bandW * (i + 0.5), label: c }));
  const body = [grid(null, y, categories.length <= 16 ? xTicks : xTicks.filter((_, i) => i % Math.ceil(categories.length / 12) === 0))];
  let n = 0;
  series.forEach((s, si) => s.values.forEach((v, ci) => {
    if (!(v > 0)) return;
    n++;
    const x0 = M.l + bandW * ci + bandW * 0.1 + barW * si;
    const top = y.map(v);
    body.push(`<rect class="mark" fill="${color(si)}" x="${x0.toFixed(1)}" y="${top.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(0.5, H - M.b - top).toFixed(1)}"><title>${esc(s.name)} ${esc(categories[ci])}: ${fmt(v)}</title></rect>`);
  }));
  return frame(meta, n, body.join('\n'), series.map((s) => s.name), o.xLabel, o.yLabel);
}
