/**
 * The PASID-policy study on its bundled mixes: the modelled results are deterministic, so
 * the comparison the study exists to show is asserted exactly.
 */
import { describe, expect, it } from 'vitest';
// The built study: its simulator starts workers from dist/, as every user of the package does.
import { PASID_MIXES } from '../../dist/study/pasid-mixes.js';
import { runStudy } from '../../dist/study/pasid-study.js';

describe('PASID policy study', () => {
  it('shows where each policy runs out on the bundled mixes', async () => {
    const results = await runStudy(PASID_MIXES.map((m) => m()));
    const get = (mix: string, policy: string) => results.find((r) => r.mix === mix)!.results.find((p) => p.policy === policy)!;

    // ENQCMD processes need one PASID on every device: per-device spaces collide with the
    // devices' own kernel PASIDs at once; the global space fits them all.
    expect(get('dsa-enqcmd-host', 'global').processesFit).toBe(400);
    expect(get('dsa-enqcmd-host', 'per-device').processFailure).toMatchObject({ at: 0, code: 'EBUSY', reason: 'pasid-conflict' });
    expect(get('dsa-enqcmd-host', 'global').munmap).toMatchObject({ iommus: 2 });

    // Type-3 VFs take the guest's PASID as is: a global space lets only one guest use each number.
    expect(get('cloud-sriov-vms', 'global').vmsFit).toBe(1);
    expect(get('cloud-sriov-vms', 'global').vmFailure).toMatchObject({ code: 'EBUSY', reason: 'ppasid-conflict' });
    expect(get('cloud-sriov-vms', 'per-device').vmsFit).toBe(32);

    // A narrow device: the global space was pushed beyond its width by other users.
    expect(get('narrow-width-mix', 'global').processFailure).toMatchObject({ at: 0, code: 'EOVERFLOW' });
    expect(get('narrow-width-mix', 'per-device').processesFit).toBeGreaterThan(0);
  }, 120_000);
});
