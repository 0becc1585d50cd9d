/**
 * The HTML report in headless Chromium (playwright-core driving Debian's /usr/bin/chromium):
 * a two-point sweep is run through the CLI, its report.html opened from disk with the
 * network cut off, and every chart checked from the page — it drew marks and says how many
 * data points it has; the kinds of chart the report promises are all there. A screenshot
 * goes to test-out/report.png. .ci/run installs Debian's chromium when the machine can reach
 * Debian's packages; where it cannot (CI's network may be the npm registry only), the test
 * is skipped with a loud warning rather than failing the whole run.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { ROOT, runCli, scenario } from './helpers.js';
import { renderReport } from '../../report/render.js';
import { ResultsSchema } from '../../scenario/results-schema.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = !existsSync(CHROMIUM);
if (missing) console.warn(`report.test: SKIPPED — ${CHROMIUM} is not installed (apt-get install -y chromium)`);

describe.skipIf(missing)('report in headless Chromium', () => {
  it('every chart of a sweep report draws with data, offline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-report-'));
    const r = await runCli(['sweep', scenario('invalidation-scaling.yaml'), '--short', '--vary', 'hardware.iommus=1,4', '--out', dir, '--quiet', '--parallel', '2']);
    expect(r.code, r.stderr).toBe(0);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script|https?:\/\/|<link /i); // self-contained: nothing to fetch
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const requests: string[] = [];
      page.on('request', (q) => { if (!q.url().startsWith('file:')) requests.push(q.url()); });
      await page.goto(pathToFileURL(join(dir, 'report.html')).href);
      const charts = await page.$$eval('figure.chart', (figs) => figs.map((f) => ({
        chart: f.getAttribute('data-chart'), points: Number(f.getAttribute('data-points')),
        marks: f.querySelectorAll('svg .mark').length, width: f.querySelector('svg')?.getBoundingClientRect().width ?? 0,
      })));
      expect(requests).toEqual([]);
      const kinds = new Set(charts.map((c) => c.chart));
      for (const k of ['latency-histogram', 'latency-cdf', 'latency-decades', 'round-trip-histogram', 'round-trip-cdf', 'scaling', 'pasid-timeline', 'hit-rates']) {
        expect(kinds.has(k), `chart ${k} present`).toBe(true);
      }
      for (const c of charts) {
        expect(c.points, `${c.chart} data-points`).toBeGreaterThan(0);
        expect(c.marks, `${c.chart} marks`).toBeGreaterThan(0);
        expect(c.width).toBeGreaterThan(100);
      }
      mkdirSync(join(ROOT, 'test-out'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'test-out', 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

describe('report HTML (no browser)', () => {
  it('a single run renders every chart kind it has data for, with data-points > 0', async () => {
    const r = await runCli(['run', scenario('fault-storm.yaml'), '--short', '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const html = renderReport({ runs: [ResultsSchema.parse(JSON.parse(r.stdout))] });
    const figs = [...html.matchAll(/<figure class="chart" data-chart="([\w-]+)" data-points="(\d+)"/g)].map((m) => ({ chart: m[1], points: Number(m[2]) }));
    expect(new Set(figs.map((f) => f.chart))).toEqual(new Set(['latency-histogram', 'latency-cdf', 'latency-decades', 'round-trip-histogram', 'round-trip-cdf', 'round-trip-decades', 'pasid-timeline', 'hit-rates']));
    for (const f of figs) expect(f.points, f.chart).toBeGreaterThan(0);
    expect(html).not.toMatch(/<script|https?:\/\//i);
  });
});
