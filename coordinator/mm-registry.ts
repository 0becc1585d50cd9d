/**
 * The simulator's process table as far as the IOMMU cares: every Mm (address space), with
 * ids from 1 and one "system RAM" shared by all of them. Becomes `sim.mm`.
 *
 * Models: creation of address spaces (fork/exec of a new process), their ids, one physical
 * page pool for all processes, and the list of address spaces not yet freed.
 * Does not model: processes themselves (threads, credentials, fork's copy of an mm).
 */
import type { FrameAllocator } from './frame-allocator.js';
import { Mm, type MmOptions } from './mm.js';
import { SystemRam } from './ram.js';

export interface MmRegistryOptions {
  /** RAM backing every mm; a new SystemRam if absent. */
  ram?: SystemRam;
  /** Default placement of mmaps for new mms. */
  placement?: MmOptions['placement'];
  /** Format of the CPU page tables (the profile's CPU: x86-64 or AArch64). */
  format?: MmOptions['format'];
  /** Called with every new mm (the simulator hooks SVA's PASID drop into its free()). */
  onCreate?: (mm: Mm) => void;
}

export class MmRegistry {
  readonly ram: SystemRam;
  private readonly mms: Mm[] = [];
  private nextId = 1;
  private readonly placement: MmOptions['placement'];
  private readonly format: MmOptions['format'];
  private readonly onCreate?: (mm: Mm) => void;

  constructor(private readonly alloc: FrameAllocator, opts: MmRegistryOptions = {}) {
    this.ram = opts.ram ?? new SystemRam();
    this.placement = opts.placement;
    this.format = opts.format;
    this.onCreate = opts.onCreate;
  }

  /** A new, empty, live address space. */
  create(opts: Pick<MmOptions, 'placement'> = {}): Mm {
    const mm = new Mm(this.alloc, { id: this.nextId++, ram: this.ram, placement: opts.placement ?? this.placement, format: this.format });
    this.mms.push(mm);
    this.onCreate?.(mm);
    return mm;
  }

  /** Every mm not yet freed (live or exited), in creation order. */
  get all(): Mm[] {
    for (let i = this.mms.length - 1; i >= 0; i--) if (this.mms[i].state === 'freed') this.mms.splice(i, 1);
    return [...this.mms];
  }

  /** The mm with `id`, unless freed. */
  get(id: number): Mm | undefined {
    return this.all.find((m) => m.id === id);
  }
}
