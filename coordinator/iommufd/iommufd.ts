/**
 * `sim.iommufd`: the /dev/iommu character device — each open() gives an independent
 * context (its own object table and DMA-ownership cookie), as open("/dev/iommu") does.
 *
 * Models: open({mm}) for a given process, or a new VMM process whose RAM is table memory
 * (ArenaRam, so guest page tables placed in it are readable by the IOMMUs); the contexts
 * still open; closing the simulator does not close them (their calls then fail with the
 * simulator's EIO).
 * Does not model: file descriptors, fork, passing an iommufd to another process.
 */
import { simError } from '../../shared/errors.js';
import type { FrameAllocator } from '../frame-allocator.js';
import { Mm } from '../mm.js';
import { IommufdContext, type IommufdDeps } from './context.js';
import { ArenaRam } from './guest-memory.js';

export class Iommufd {
  private readonly open_ = new Set<IommufdContext>();

  constructor(private readonly deps: IommufdDeps, private readonly frames: FrameAllocator) {}

  open(opts: { mm?: Mm } = {}): IommufdContext {
    const op = 'iommufd.open';
    this.deps.checkOpen(op);
    if (typeof opts !== 'object' || opts === null) throw simError('EINVAL', op, 'bad-options');
    if (opts.mm !== undefined && (!(opts.mm instanceof Mm) || opts.mm.state !== 'live')) throw simError('EINVAL', op, 'bad-mm', 'a live Mm is needed');
    const mm = opts.mm ?? new Mm(this.frames, { ram: new ArenaRam(this.frames), placement: 'bottom-up' });
    const ctx: IommufdContext = new IommufdContext(this.deps, mm, () => this.open_.delete(ctx));
    this.open_.add(ctx);
    return ctx;
  }

  /** Contexts not yet closed. */
  get contexts(): IommufdContext[] {
    return [...this.open_];
  }
}
