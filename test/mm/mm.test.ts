import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameAllocator } from '../../coordinator/frame-allocator.js';
import { Mm, USER_VA_END, USER_VA_START, type MmNotifier, type MmProt } from '../../coordinator/mm.js';
import { MmRegistry } from '../../coordinator/mm-registry.js';
import { RAM_BASE_PFN, SystemRam } from '../../coordinator/ram.js';
import { PageWalker, WALK_NOT_PRESENT, WALK_OK } from '../../iommu-worker/page-walk.js';
import { FIRST_STAGE, PERM_EXEC, PERM_READ, PERM_USER, PERM_WRITE } from '../../shared/layout/pte-format.js';

const PG = 0x1000n;

async function expectErr(code: string, fn: () => unknown, reason?: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    expect((e as { code?: string }).code).toBe(code);
    if (reason) expect((e as { reason?: string }).reason).toBe(reason);
    return;
  }
  throw new Error(`expected ${code}, call succeeded`);
}

function walk(mm: Mm, va: bigint) {
  const w = new PageWalker(mm.pageTable.view);
  const vpn = va >> 12n;
  const st = w.walk(FIRST_STAGE, mm.pageTable.rootFrame, 4, Number(vpn & 0xffffffffn), Number(vpn >> 32n));
  return { st, pfn: w.pfn, perm: w.perm };
}

function newMm(opts: ConstructorParameters<typeof Mm>[1] = {}) {
  const alloc = new FrameAllocator();
  const ram = opts.ram ?? new SystemRam();
  return { mm: new Mm(alloc, { ...opts, ram }), alloc, ram };
}

const RW: MmProt = { read: true, write: true };
const RO: MmProt = { read: true };

function shape(mm: Mm) {
  return mm.vmas.map((v) => [v.start, v.end, `${v.prot.read ? 'r' : '-'}${v.prot.write ? 'w' : '-'}${v.prot.exec ? 'x' : '-'}`]);
}

describe('mmap placement and errors', () => {
  it('places top-down by default, bottom-up on request, and honours free hints', () => {
    const { mm } = newMm();
    const a = mm.mmap({ length: 2n * PG, prot: RW });
    expect(a).toBe(USER_VA_END - 2n * PG);
    const b = mm.mmap({ length: PG, prot: RO });
    expect(b).toBe(a - PG);
    const h = mm.mmap({ length: PG, prot: RW, addr: 0x1234_5000n });
    expect(h).toBe(0x1234_5000n);
    // An unaligned hint is rounded up to a page.
    expect(mm.mmap({ length: PG, prot: RW, addr: 0x2000_0001n })).toBe(0x2000_1000n);
    // A hint that overlaps falls back to placement.
    expect(mm.mmap({ length: PG, prot: RW, addr: 0x1234_5000n })).toBe(b - PG);
    const up = newMm({ placement: 'bottom-up' }).mm;
    expect(up.mmap({ length: PG, prot: RW })).toBe(USER_VA_START);
    expect(up.mmap({ length: 3n * PG, prot: RW })).toBe(USER_VA_START + PG);
    expect(up.vmas).toHaveLength(1); // same prot, touching: merged
  });

  it('fixed addr: exact, EEXIST on overlap, EINVAL unaligned, EPERM below 0x1000, ENOMEM beyond 2^47', async () => {
    const { mm } = newMm();
    expect(mm.mmap({ length: 4n * PG, prot: RW, addr: 0x10_0000n, fixed: true })).toBe(0x10_0000n);
    await expectErr('EEXIST', () => mm.mmap({ length: PG, prot: RW, addr: 0x10_3000n, fixed: true }), 'overlaps-mapping');
    await expectErr('EEXIST', () => mm.mmap({ length: 2n * PG, prot: RW, addr: 0xf_f000n, fixed: true }));
    await expectErr('EINVAL', () => mm.mmap({ length: PG, prot: RW, addr: 0x20_0800n, fixed: true }), 'unaligned');
    await expectErr('EPERM', () => mm.mmap({ length: PG, prot: RW, addr: 0n, fixed: true }));
    await expectErr('ENOMEM', () => mm.mmap({ length: 2n * PG, prot: RW, addr: USER_VA_END - PG, fixed: true }));
    expect(mm.mmap({ length: PG, prot: RW, addr: USER_VA_END - PG, fixed: true })).toBe(USER_VA_END - PG);
    expect(mm.mmap({ length: PG, prot: RW, addr: USER_VA_START, fixed: true })).toBe(USER_VA_START);
  });

  it('length 0 or unaligned → EINVAL; no space → ENOMEM', async () => {
    const { mm } = newMm();
    await expectErr('EINVAL', () => mm.mmap({ length: 0n, prot: RW }), 'zero-length');
    await expectErr('EINVAL', () => mm.mmap({ length: 0x800n, prot: RW }), 'unaligned');
    await expectErr('EINVAL', () => mm.mmap({ length: -4096, prot: RW }));
    await expectErr('ENOMEM', () => mm.mmap({ length: USER_VA_END, prot: RW }));
    // Fill everything but one page, then ask for two.
    mm.mmap({ length: USER_VA_END - USER_VA_START - PG, prot: RW, addr: USER_VA_START + PG, fixed: true });
    await expectErr('ENOMEM', () => mm.mmap({ length: 2n * PG, prot: RW }), 'no-space');
    expect(mm.mmap({ length: PG, prot: RO })).toBe(USER_VA_START);
    await expectErr('ENOMEM', () => mm.mmap({ length: PG, prot: RO }));
  });

  it('accepts numbers for length and addr', () => {
    const { mm } = newMm();
    expect(mm.mmap({ length: 8192, prot: RW, addr: 0x40_0000, fixed: true })).toBe(0x40_0000n);
  });
});

describe('VMA split and merge', () => {
  it('munmap of the middle splits, of an edge trims, over holes is fine', async () => {
    const { mm } = newMm();
    const a = mm.mmap({ length: 8n * PG, prot: RW, addr: 0x10_0000n, fixed: true });
    await mm.munmap(a + 2n * PG, 2n * PG);
    expect(shape(mm)).toEqual([[a, a + 2n * PG, 'rw-'], [a + 4n * PG, a + 8n * PG, 'rw-']]);
    await mm.munmap(a + 7n * PG, PG);
    expect(shape(mm)).toEqual([[a, a + 2n * PG, 'rw-'], [a + 4n * PG, a + 7n * PG, 'rw-']]);
    await mm.munmap(a - 16n * PG, 64n * PG); // covers everything and holes
    expect(mm.vmas).toEqual([]);
    await mm.munmap(a, PG); // nothing there: fine
  });

  it('munmap errors: unaligned addr, zero length, beyond user space', async () => {
    const { mm } = newMm();
    await expectErr('EINVAL', () => mm.munmap(0x10_0800n, PG), 'unaligned');
    await expectErr('EINVAL', () => mm.munmap(0x10_0000n, 0n), 'zero-length');
    await expectErr('EINVAL', () => mm.munmap(USER_VA_END - PG, 2n * PG));
    await expectErr('EINVAL', () => mm.munmap(0n, PG));
  });

  it('mprotect of part of a VMA splits it; restoring the prot merges again', async () => {
    const { mm } = newMm();
    const a = mm.mmap({ length: 6n * PG, prot: RW, addr: 0x20_0000n, fixed: true });
    await mm.mprotect(a + PG, 2n * PG, RO);
    expect(shape(mm)).toEqual([[a, a + PG, 'rw-'], [a + PG, a + 3n * PG, 'r--'], [a + 3n * PG, a + 6n * PG, 'rw-']]);
    await mm.mprotect(a + 5n * PG, PG, { read: true, exec: true });
    expect(shape(mm)).toHaveLength(4);
    await mm.mprotect(a, 6n * PG, RW);
    expect(shape(mm)).toEqual([[a, a + 6n * PG, 'rw-']]);
    // Adjacent mmap with the same prot merges; a different prot does not.
    mm.mmap({ length: PG, prot: RW, addr: a + 6n * PG, fixed: true });
    mm.mmap({ length: PG, prot: RO, addr: a - PG, fixed: true });
    expect(shape(mm)).toEqual([[a - PG, a, 'r--'], [a, a + 7n * PG, 'rw-']]);
  });

  it('mprotect over a hole → ENOMEM and nothing changes; unaligned → EINVAL; length 0 is a no-op', async () => {
    const { mm } = newMm();
    const a = mm.mmap({ length: 2n * PG, prot: RW, addr: 0x30_0000n, fixed: true });
    mm.mmap({ length: PG, prot: RW, addr: a + 3n * PG, fixed: true });
    const before = shape(mm);
    await expectErr('ENOMEM', () => mm.mprotect(a, 4n * PG, RO), 'unmapped-hole');
    expect(shape(mm)).toEqual(before);
    await expectErr('EINVAL', () => mm.mprotect(a + 1n, PG, RO), 'unaligned');
    await mm.mprotect(a, 0n, RO);
    expect(shape(mm)).toEqual(before);
  });
});

describe('page table', () => {
  it('populate maps every page with U/S, write only if prot.write, XD unless prot.exec', () => {
    const { mm } = newMm();
    const rw = mm.mmap({ length: 3n * PG, prot: RW, populate: true });
    const ro = mm.mmap({ length: PG, prot: RO, populate: true });
    const rx = mm.mmap({ length: PG, prot: { read: true, exec: true }, populate: true });
    const none = mm.mmap({ length: PG, prot: {}, populate: true });
    const lazy = mm.mmap({ length: PG, prot: RW });
    for (let i = 0n; i < 3n; i++) {
      const w = walk(mm, rw + i * PG);
      expect(w.st).toBe(WALK_OK);
      expect(w.perm).toBe(PERM_READ | PERM_WRITE | PERM_USER);
      expect(w.pfn).toBeGreaterThanOrEqual(RAM_BASE_PFN);
      expect(BigInt(w.pfn) << 12n).toBe(mm.physOf(rw + i * PG));
    }
    expect(walk(mm, ro).perm).toBe(PERM_READ | PERM_USER);
    expect(walk(mm, rx).perm).toBe(PERM_READ | PERM_EXEC | PERM_USER);
    expect(walk(mm, none).st).toBe(WALK_NOT_PRESENT);
    expect(walk(mm, lazy).st).toBe(WALK_NOT_PRESENT);
    expect(mm.residentPages).toBe(5);
    const pfns = new Set([0n, 1n, 2n].map((i) => walk(mm, rw + i * PG).pfn));
    expect(pfns.size).toBe(3);
  });

  it('handleFault populates lazily, refuses writes to read-only VMAs and addresses outside VMAs', () => {
    const { mm, ram } = newMm();
    const rw = mm.mmap({ length: 2n * PG, prot: RW });
    const ro = mm.mmap({ length: PG, prot: RO });
    const none = mm.mmap({ length: PG, prot: {} });
    const wo = mm.mmap({ length: PG, prot: { write: true } });
    expect(mm.handleFault(rw + 0x123n, 'write')).toBe('success');
    expect(walk(mm, rw).perm).toBe(PERM_READ | PERM_WRITE | PERM_USER);
    expect(walk(mm, rw + PG).st).toBe(WALK_NOT_PRESENT);
    expect(mm.handleFault(rw + 0x10n, 'read')).toBe('success'); // already populated
    expect(ram.pagesInUse).toBe(1);
    expect(mm.handleFault(rw, 'exec')).toBe('invalid');
    expect(mm.handleFault(ro, 'write')).toBe('invalid');
    expect(walk(mm, ro).st).toBe(WALK_NOT_PRESENT);
    expect(mm.handleFault(ro, 'read')).toBe('success');
    expect(mm.handleFault(none, 'read')).toBe('invalid');
    expect(mm.handleFault(wo, 'read')).toBe('success'); // any permission lets a read in (x86)
    expect(mm.handleFault(0x5000n, 'read')).toBe('invalid');
    expect(mm.handleFault(0n, 'read')).toBe('invalid');
    expect(mm.handleFault(USER_VA_END, 'read')).toBe('invalid');
    expect(ram.pagesInUse).toBe(3);
  });

  it('handleFault out of RAM → invalid, nothing left behind', () => {
    const { mm, ram } = newMm({ ram: new SystemRam({ maxPages: 1 }) });
    const a = mm.mmap({ length: 2n * PG, prot: RW });
    expect(mm.handleFault(a, 'read')).toBe('success');
    expect(mm.handleFault(a + PG, 'read')).toBe('invalid');
    expect(walk(mm, a + PG).st).toBe(WALK_NOT_PRESENT);
    expect(ram.pagesInUse).toBe(1);
  });

  it('mprotect rewrites PTEs of populated pages; PROT_NONE clears them but keeps the page', async () => {
    const { mm, ram } = newMm();
    const a = mm.mmap({ length: 2n * PG, prot: RW, populate: true });
    const pfn = walk(mm, a).pfn;
    await mm.mprotect(a, PG, { read: true, exec: true });
    expect(walk(mm, a)).toMatchObject({ st: WALK_OK, pfn, perm: PERM_READ | PERM_EXEC | PERM_USER });
    expect(walk(mm, a + PG).perm).toBe(PERM_READ | PERM_WRITE | PERM_USER);
    await mm.mprotect(a, 2n * PG, {});
    expect(walk(mm, a).st).toBe(WALK_NOT_PRESENT);
    expect(ram.pagesInUse).toBe(2);
    expect(mm.handleFault(a, 'read')).toBe('invalid');
    await mm.mprotect(a, 2n * PG, RW);
    expect(walk(mm, a)).toMatchObject({ st: WALK_OK, pfn, perm: PERM_READ | PERM_WRITE | PERM_USER });
  });

  it('munmap clears PTEs and frees RAM pages, which are reused', async () => {
    const { mm, ram } = newMm();
    const a = mm.mmap({ length: 4n * PG, prot: RW, populate: true });
    const pfns = [0n, 1n, 2n, 3n].map((i) => walk(mm, a + i * PG).pfn);
    await mm.munmap(a + PG, 2n * PG);
    expect(walk(mm, a + PG).st).toBe(WALK_NOT_PRESENT);
    expect(walk(mm, a + 2n * PG).st).toBe(WALK_NOT_PRESENT);
    expect(walk(mm, a).st).toBe(WALK_OK);
    expect(ram.pagesInUse).toBe(2);
    const b = mm.mmap({ length: 2n * PG, prot: RW, populate: true });
    const again = [walk(mm, b).pfn, walk(mm, b + PG).pfn].sort();
    expect(again).toEqual([pfns[1], pfns[2]].sort());
    expect(ram.pagesInUse).toBe(4);
    expect(ram.peakPages).toBe(4);
  });
});

describe('mm notifier', () => {
  it('munmap calls invalidateRange with the exact range after PTEs are cleared and waits for it', async () => {
    const { mm, ram } = newMm();
    const a = mm.mmap({ length: 4n * PG, prot: RW, populate: true });
    const seen: { start: bigint; end: bigint; present: number }[] = [];
    let release!: () => void;
    const n: MmNotifier = {
      invalidateRange(start, end) {
        seen.push({ start, end, present: walk(mm, a + PG).st });
        return new Promise<void>((r) => { release = r; });
      },
    };
    const fast: MmNotifier = { invalidateRange: async () => {} };
    mm.registerNotifier(n);
    mm.registerNotifier(fast);
    let done = false;
    const p = mm.munmap(a + PG, 2n * PG).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([{ start: a + PG, end: a + 3n * PG, present: WALK_NOT_PRESENT }]);
    expect(done).toBe(false); // the slow notifier holds munmap back
    expect(ram.pagesInUse).toBe(4); // pages are freed only after the invalidation
    release();
    await p;
    expect(done).toBe(true);
    expect(ram.pagesInUse).toBe(2);
  });

  it('mprotect downgrades notify after the PTEs changed; upgrades and unpopulated ranges do not', async () => {
    const { mm } = newMm();
    const a = mm.mmap({ length: 2n * PG, prot: RW, populate: true });
    const lazy = mm.mmap({ length: 2n * PG, prot: RW });
    const calls: [bigint, bigint, number][] = [];
    mm.registerNotifier({ invalidateRange: async (s, e) => { calls.push([s, e, walk(mm, a).perm]); } });
    await mm.mprotect(a, 2n * PG, RO);
    expect(calls).toEqual([[a, a + 2n * PG, PERM_READ | PERM_USER]]);
    await mm.mprotect(a, 2n * PG, { read: true, write: true, exec: true }); // upgrade
    expect(calls).toHaveLength(1);
    await mm.mprotect(lazy, 2n * PG, RO); // nothing present
    expect(calls).toHaveLength(1);
    await mm.mprotect(a + PG, PG, RW); // loses exec
    expect(calls).toHaveLength(2);
    expect(calls[1].slice(0, 2)).toEqual([a + PG, a + 2n * PG]);
  });

  it('a rejecting notifier rejects the call after all settled; unregister stops calls', async () => {
    const { mm, ram } = newMm();
    const a = mm.mmap({ length: 2n * PG, prot: RW, populate: true });
    let other = 0;
    const bad: MmNotifier = { invalidateRange: async () => { throw new Error('boom'); } };
    const good: MmNotifier = { invalidateRange: async () => { other++; } };
    mm.registerNotifier(bad);
    mm.registerNotifier(good);
    await expectErr('EEXIST', () => mm.registerNotifier(good));
    await expect(mm.munmap(a, PG)).rejects.toThrow('boom');
    expect(other).toBe(1);
    expect(ram.pagesInUse).toBe(1);
    expect(mm.unregisterNotifier(bad)).toBe(true);
    expect(mm.unregisterNotifier(bad)).toBe(false);
    await mm.munmap(a + PG, PG);
    expect(other).toBe(2);
  });
});

describe('exit and free', () => {
  it('exit calls release first, then clears everything; free destroys the table', async () => {
    const alloc = new FrameAllocator();
    const reg = new MmRegistry(alloc);
    const mm = reg.create();
    const other = reg.create();
    expect([mm.id, other.id]).toEqual([1, 2]);
    const a = mm.mmap({ length: 4n * PG, prot: RW, populate: true });
    mm.mmap({ length: PG, prot: RO });
    const order: string[] = [];
    let releasePresent = -1;
    mm.registerNotifier({
      invalidateRange: async () => { order.push('invalidate'); },
      release: async () => {
        releasePresent = walk(mm, a).st;
        await new Promise((r) => setTimeout(r, 5));
        order.push('release');
      },
    });
    mm.registerNotifier({ invalidateRange: async () => {} }); // no release(): fine
    expect(reg.ram.pagesInUse).toBe(4);
    const p = mm.exit();
    expect(mm.state).toBe('exited');
    await expectErr('EBUSY', () => mm.free(), 'mm-exiting');
    await p;
    expect(order).toEqual(['release']);
    expect(releasePresent).toBe(WALK_OK); // release runs while the tables are still there
    expect(mm.vmas).toEqual([]);
    expect(mm.residentPages).toBe(0);
    expect(reg.ram.pagesInUse).toBe(0);
    for (let i = 0n; i < 4n; i++) expect(walk(mm, a + i * PG).st).toBe(WALK_NOT_PRESENT);
    expect(mm.notifierCount).toBe(0);
    // Calls on an exited mm.
    await expectErr('EINVAL', () => mm.mmap({ length: PG, prot: RW }), 'mm-exited');
    await expectErr('EINVAL', () => mm.munmap(a, PG), 'mm-exited');
    await expectErr('EINVAL', () => mm.mprotect(a, PG, RO), 'mm-exited');
    await expectErr('EINVAL', () => mm.exit(), 'mm-exited');
    await expectErr('EINVAL', () => mm.registerNotifier({ invalidateRange: async () => {} }), 'mm-exited');
    expect(mm.handleFault(a, 'read')).toBe('invalid');
    // free
    await expectErr('EBUSY', () => other.free(), 'mm-live');
    const tableBytes = alloc.bytesInUse;
    expect(reg.all.map((m) => m.id)).toEqual([1, 2]);
    mm.free();
    expect(mm.state).toBe('freed');
    expect(alloc.bytesInUse).toBeLessThan(tableBytes);
    await expectErr('EINVAL', () => mm.free(), 'mm-freed');
    await expectErr('EINVAL', () => mm.mmap({ length: PG, prot: RW }), 'mm-exited');
    expect(reg.all.map((m) => m.id)).toEqual([2]);
    expect(reg.get(2)).toBe(other);
    expect(reg.get(1)).toBeUndefined();
    // The pasid field is left for SVA to own.
    expect(other.pasid).toBeUndefined();
    other.pasid = 5;
    expect(other.pasid).toBe(5);
  });

  it('RAM pages freed by one mm are reused by another', async () => {
    const reg = new MmRegistry(new FrameAllocator());
    const m1 = reg.create();
    const a = m1.mmap({ length: 3n * PG, prot: RW, populate: true });
    const pfns = [0n, 1n, 2n].map((i) => walk(m1, a + i * PG).pfn).sort();
    await m1.exit();
    const m2 = reg.create();
    const b = m2.mmap({ length: 3n * PG, prot: RW, populate: true });
    expect([0n, 1n, 2n].map((i) => walk(m2, b + i * PG).pfn).sort()).toEqual(pfns);
    expect(reg.ram.peakPages).toBe(3);
  });
});

describe('SystemRam', () => {
  it('hands out pages from 4 GiB up, reuses freed ones, ENOMEM at capacity', async () => {
    const ram = new SystemRam({ maxPages: 2 });
    const a = ram.alloc();
    const b = ram.alloc();
    expect([a, b]).toEqual([RAM_BASE_PFN, RAM_BASE_PFN + 1]);
    expect(BigInt(a) << 12n).toBe(4n << 30n);
    await expectErr('ENOMEM', () => ram.alloc(), 'ram-exhausted');
    ram.free(a);
    expect(ram.alloc()).toBe(a);
    await expectErr('EINVAL', () => ram.free(5));
  });
});

// --- property test against a reference model of pages ---

type Op =
  | { kind: 'mmap'; page: number; pages: number; prot: number; fixed: boolean; populate: boolean }
  | { kind: 'munmap'; page: number; pages: number }
  | { kind: 'mprotect'; page: number; pages: number; prot: number }
  | { kind: 'fault'; page: number; access: 'read' | 'write' | 'exec' };

const WINDOW = 48;
const BASE = 0x7000_0000n;
const protOf = (p: number): MmProt => ({ read: (p & 1) !== 0, write: (p & 2) !== 0, exec: (p & 4) !== 0 });
const protKey = (p: MmProt) => (p.read ? 1 : 0) | (p.write ? 2 : 0) | (p.exec ? 4 : 0);

describe('property: random mmap/munmap/mprotect against a reference model', () => {
  it('VMAs, errors and PTEs match the model', async () => {
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('mmap' as const), page: fc.integer({ min: 0, max: WINDOW - 1 }), pages: fc.integer({ min: 1, max: 8 }),
        prot: fc.integer({ min: 0, max: 7 }), fixed: fc.boolean(), populate: fc.boolean() }),
      fc.record({ kind: fc.constant('munmap' as const), page: fc.integer({ min: 0, max: WINDOW - 1 }), pages: fc.integer({ min: 1, max: 10 }) }),
      fc.record({ kind: fc.constant('mprotect' as const), page: fc.integer({ min: 0, max: WINDOW - 1 }), pages: fc.integer({ min: 1, max: 8 }),
        prot: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('fault' as const), page: fc.integer({ min: 0, max: WINDOW + 8 }),
        access: fc.constantFrom('read' as const, 'write' as const, 'exec' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const { mm, ram } = newMm();
        // Reference: page address → prot key, and the set of populated pages.
        const model = new Map<bigint, number>();
        const populated = new Set<bigint>();
        let invalidations: [bigint, bigint][] = [];
        mm.registerNotifier({ invalidateRange: async (s, e) => { invalidations.push([s, e]); } });
        for (const op of ops) {
          invalidations = [];
          const start = BASE + BigInt(op.page) * PG;
          if (op.kind === 'mmap') {
            const len = BigInt(op.pages) * PG;
            const free = [...Array(op.pages).keys()].every((i) => !model.has(start + BigInt(i) * PG));
            const prot = protOf(op.prot);
            if (op.fixed && !free) {
              await expectErr('EEXIST', () => mm.mmap({ length: len, prot, addr: start, fixed: true }));
              continue;
            }
            const got = mm.mmap({ length: len, prot, addr: start, fixed: op.fixed, populate: op.populate });
            if (free) expect(got).toBe(start);
            for (let i = 0n; i < len; i += PG) {
              expect(model.has(got + i)).toBe(false);
              model.set(got + i, op.prot);
              if (op.populate && op.prot !== 0) populated.add(got + i);
            }
          } else if (op.kind === 'munmap') {
            const end = start + BigInt(op.pages) * PG;
            let any = false;
            for (let va = start; va < end; va += PG) {
              if (model.delete(va)) any = true;
              populated.delete(va);
            }
            await mm.munmap(start, end - start);
            expect(invalidations).toEqual(any ? [[start, end]] : []);
          } else if (op.kind === 'mprotect') {
            const end = start + BigInt(op.pages) * PG;
            const pages: bigint[] = [];
            for (let va = start; va < end; va += PG) pages.push(va);
            if (!pages.every((va) => model.has(va))) {
              await expectErr('ENOMEM', () => mm.mprotect(start, end - start, protOf(op.prot)));
              continue;
            }
            const downgrade = pages.some((va) => {
              const old = model.get(va)!;
              return populated.has(va) && old !== 0 && (op.prot === 0 || (old & ~op.prot & 6) !== 0);
            });
            for (const va of pages) model.set(va, op.prot);
            await mm.mprotect(start, end - start, protOf(op.prot));
            expect(invalidations).toEqual(downgrade ? [[start, end]] : []);
          } else {
            const va = start + 0x10n;
            const p = model.get(start);
            const ok = p !== undefined && (op.access === 'write' ? (p & 2) !== 0 : op.access === 'exec' ? (p & 4) !== 0 : p !== 0);
            expect(mm.handleFault(va, op.access)).toBe(ok ? 'success' : 'invalid');
            if (ok) populated.add(start);
          }
          // VMAs = maximal runs of equal prot in the model.
          const keys = [...model.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
          const expected: [bigint, bigint, number][] = [];
          for (const k of keys) {
            const last = expected[expected.length - 1];
            if (last && last[1] === k && last[2] === model.get(k)) last[1] = k + PG;
            else expected.push([k, k + PG, model.get(k)!]);
          }
          expect(mm.vmas.map((v) => [v.start, v.end, protKey(v.prot)])).toEqual(expected);
          // PTEs: present iff populated and accessible, with the VMA's permissions.
          expect(mm.residentPages).toBe(populated.size);
          expect(ram.pagesInUse).toBe(populated.size);
          for (let i = 0; i < WINDOW + 10; i++) {
            const va = BASE + BigInt(i) * PG;
            const w = walk(mm, va);
            const p = model.get(va);
            if (populated.has(va) && p !== undefined && p !== 0) {
              expect(w.st).toBe(WALK_OK);
              expect(w.perm).toBe(PERM_READ | PERM_USER | (p & 2 ? PERM_WRITE : 0) | (p & 4 ? PERM_EXEC : 0));
            } else {
              expect(w.st).toBe(WALK_NOT_PRESENT);
            }
          }
        }
        await mm.exit();
        expect(ram.pagesInUse).toBe(0);
      }),
      { seed: 0x5eed, numRuns: 150 },
    );
  });
});
