/**
 * The AMD IOMMU command-buffer consumer: executes the 16-byte commands the driver queues,
 * in order, against this IOMMU's caches.
 *
 * Models: INVALIDATE_DEVTAB_ENTRY (the device's cached DTE and the GCR3 entries read
 * through it), INVALIDATE_IOMMU_PAGES (entries of a DomainID — with GN only those of one
 * PASID — over the S-bit range, INV_ALL_PAGES_ADDRESS for everything; with PDE the cached
 * directory entries too, the GCR3 entry among them), INVALIDATE_IOTLB_
 * PAGES (a function's ATC, with GN per PASID), INVALIDATE_IOMMU_ALL, COMPLETE_PPR to the
 * device model (SUCCESS retries, INVALID refuses, FAILURE also stops the function's PRI)
 * and COMPLETION_WAIT, whose store (the low 32 bits of its data) is the completion Linux
 * polls (cmd_sem). Each command costs modelled time; the paging-structure caches are
 * emptied with DTE and page invalidations.
 * Does not model: the interrupt remapping table (INVALIDATE_INTERRUPT_TABLE is a no-op),
 * PREFETCH_IOMMU_PAGES, the ILLEGAL_COMMAND_ERROR event (an unknown command stops the
 * simulation, as an invalidation-queue error does on VT-d).
 */
import type { ArenaView } from '../shared/memory/arena.js';
import type { CostModel } from '../shared/config.js';
import { type AmdCmd, decodeInvRange, readAmdCmd } from '../shared/layout/amd/commands.js';
import { ANY_PASID_TAG, NO_PASID_TAG } from './iotlb.js';
import type { Translator } from './translate.js';
import { CMD_ATS, CMD_OTHER, CMD_WAIT, type CommandSet, type DecodedCommand, storeStatus } from './command-set.js';

export class AmdCommandError extends Error {
  constructor(readonly command: AmdCmd) {
    super(`AMD command buffer error (ILLEGAL_COMMAND_ERROR): command ${command.type === 'unknown' ? `opcode 0x${command.op.toString(16)}` : command.type} not supported`);
  }
}

/** Pages of an (address, S) range, capped to the 2^52 pages of a 64-bit space. */
function pagesOf(addr: bigint, s: boolean): { vpn: number; pages: number } {
  const r = decodeInvRange(addr, s);
  const pages = r.bytes >> 12n;
  return { vpn: Number(r.base >> 12n), pages: pages > 2n ** 52n ? 2 ** 52 : Number(pages) };
}

export class AmdCommandExecutor implements CommandSet {
  readonly counts: Record<string, number> = {};
  waits = 0;
  onPageResponse: (rid: number, prgIndex: number, code: number) => void = () => {};

  constructor(private readonly t: Translator, private readonly view: ArenaView, private readonly costs: CostModel) {}

  decode(u32: Uint32Array, at: number): DecodedCommand {
    const c = readAmdCmd(u32, at);
    if (c.type === 'completion-wait') return { kind: CMD_WAIT, sid: 0, data: Number(c.storeData & 0xffffffffn), pageDrain: false, interrupt: c.i, cmd: c };
    if (c.type === 'inv-iotlb-pages') return { kind: CMD_ATS, sid: c.deviceId, data: 0, pageDrain: false, interrupt: false, cmd: c };
    return { kind: CMD_OTHER, sid: 0, data: 0, pageDrain: false, interrupt: false, cmd: c };
  }

  execute(dc: DecodedCommand): number {
    const c = dc.cmd as AmdCmd;
    this.counts[c.type] = (this.counts[c.type] ?? 0) + 1;
    const t = this.t;
    const costs = this.costs;
    switch (c.type) {
      case 'inv-devtab-entry':
        t.psc.clear();
        t.contextCache.invalidateDevice(c.deviceId, 0);
        t.pasidCache.invalidateDevice(c.deviceId);
        return costs.descriptorNs;
      case 'inv-iommu-pages': {
        t.psc.clear();
        const { vpn, pages } = pagesOf(c.addr, c.s);
        t.iotlb.invalidateRange(c.domainId, c.gn ? c.pasid : ANY_PASID_TAG, vpn, pages);
        // PDE: the cached page-directory entries go too — the GCR3 walk included.
        if (c.pde) {
          if (c.gn) t.pasidCache.invalidatePasid(c.domainId, c.pasid);
          else t.pasidCache.invalidateDomain(c.domainId);
        }
        return costs.descriptorNs;
      }
      case 'inv-iotlb-pages': {
        const { vpn, pages } = pagesOf(c.addr, c.s);
        t.devTlbs.get(c.deviceId)?.invalidate(c.gn ? c.pasid : NO_PASID_TAG, vpn, pages);
        return costs.devTlbInvNs;
      }
      case 'inv-iommu-all':
        t.psc.clear();
        t.contextCache.invalidateAll();
        t.pasidCache.invalidateAll();
        t.iotlb.invalidateAll();
        return costs.descriptorNs;
      case 'inv-interrupt-table':
        return costs.descriptorNs;
      case 'complete-ppr':
        this.onPageResponse(c.deviceId, c.tag, c.status);
        return costs.descriptorNs;
      case 'completion-wait':
        this.waits++;
        if (c.s && !storeStatus(this.view, c.storeAddr, Number(c.storeData & 0xffffffffn))) throw new AmdCommandError(c);
        return costs.waitNs;
      default:
        throw new AmdCommandError(c);
    }
  }
}
