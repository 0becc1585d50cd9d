/**
 * The simulator's seeded pseudo-random generator: mulberry32, a 32-bit state generator
 * that is tiny, fast and identical on every platform, so a seed reproduces a run.
 *
 * Models: nothing of the hardware; it drives workloads, tests and examples.
 * Does not model: cryptographic quality (not needed), streams split per worker (a later
 * issue derives per-IOMMU seeds from the scenario seed).
 */

/** Returns a generator of floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
