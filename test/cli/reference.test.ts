/**
 * docs/scenario-reference.md is generated from the zod schema (scenario/gen-reference.ts);
 * the committed file must be what the generator writes now. Also checks the loader's
 * error format on the example the docs give.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReference } from '../../scenario/gen-reference.js';
import { validateScenario } from '../../scenario/loader.js';
import { InputError } from '../../scenario/errors.js';
import { ROOT } from './helpers.js';

describe('scenario reference', () => {
  it('docs/scenario-reference.md is up to date (regenerate: node dist/scenario/gen-reference.js)', () => {
    expect(readFileSync(join(ROOT, 'docs', 'scenario-reference.md'), 'utf8')).toBe(renderReference());
  });

  it('documents every phase type and the top-level fields', () => {
    const md = renderReference();
    for (const t of ['dma', 'map-unmap', 'unmap', 'sva-churn', 'munmap-storm', 'fault-storm', 'pasid-alloc', 'vms']) expect(md).toContain(`### \`type: ${t}\``);
    for (const f of ['`hardware.profile`', '`topology.generate.devicesPerIommu`', '`pasidPolicy`', '`metrics`', '`short`']) expect(md).toContain(f);
  });

  it('errors name the path and what was expected', () => {
    const doc = { name: 't', topology: { flat: { devices: 1 } }, phases: [{ name: 'a', type: 'dma' }, { name: 'b', type: 'dma' }, { name: 'c', type: 'dma', pattern: 'zipF' }] };
    expect(() => validateScenario(doc, 'x.yaml')).toThrow(InputError);
    expect(() => validateScenario(doc, 'x.yaml')).toThrow('phases[2].pattern: expected one of sequential|random|zipf, got "zipF"');
  });

  it('--short merges phases by name and defaults fill the rest', () => {
    const doc = { name: 't', topology: { flat: { devices: 1 } }, phases: [{ name: 'a', type: 'dma', requests: 100 }], short: { phases: [{ name: 'a', requests: 5 }] } };
    const long = validateScenario(doc, 'x.yaml').scenario;
    const short = validateScenario(doc, 'x.yaml', { short: true }).scenario;
    expect(long.phases[0]).toMatchObject({ type: 'dma', requests: 100, pattern: 'random', footprintPages: 32 });
    expect(short.phases[0]).toMatchObject({ type: 'dma', requests: 5 });
    expect(long.hardware).toEqual({ profile: 'vtd', iommus: 1, iommu: {} });
  });
});
