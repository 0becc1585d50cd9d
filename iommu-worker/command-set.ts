/**
 * The command consumer of one IOMMU, whatever its profile: what the serve loop (iommu.ts)
 * needs to know of a command before executing it — whether it is the completion command
 * (a wait with a status write that publishes everything before it) or an ATS invalidation
 * (which goes out when its function has an ITag free).
 *
 * Models: the interface the VT-d invalidation-queue executor (command-queue.ts), the
 * SMMUv3 command-queue executor (smmu-commands.ts) and the AMD command-buffer executor
 * (amd-commands.ts) implement, and the choice between them by profile.
 * Does not model: anything of a format (each executor decodes its own).
 */
import type { ArenaView } from '../shared/memory/arena.js';
import type { CostModel, ProfileName } from '../shared/config.js';
import type { Translator } from './translate.js';
import { CommandExecutor } from './command-queue.js';
import { SmmuCommandExecutor } from './smmu-commands.js';
import { AmdCommandExecutor } from './amd-commands.js';

export const CMD_OTHER = 0;
/** The completion command: VT-d wait descriptor, CMD_SYNC, COMPLETION_WAIT. */
export const CMD_WAIT = 1;
/** A device-TLB (ATS) invalidation to one function. */
export const CMD_ATS = 2;

export interface DecodedCommand {
  kind: number;
  /** CMD_ATS: the function's requester id. */
  sid: number;
  /** CMD_WAIT: VT-d's Page Drain bit (the other profiles mark drains beside the ring entry). */
  pageDrain: boolean;
  /** CMD_WAIT: the status data it stores (the driver's sequence number). */
  data: number;
  /** CMD_WAIT: the driver asked for an interrupt on completion. */
  interrupt: boolean;
  /** The profile's decoded command. */
  cmd: unknown;
}

export interface CommandSet {
  readonly counts: Record<string, number>;
  waits: number;
  /** Delivers a page response to the device model: (rid, PRG index, core response code). */
  onPageResponse: (rid: number, prgIndex: number, code: number) => void;
  decode(u32: Uint32Array, at: number): DecodedCommand;
  /** Executes a decoded command; returns its modelled cost. A completion's status write is done here. */
  execute(d: DecodedCommand): number;
}

export function commandSet(profile: ProfileName, t: Translator, view: ArenaView, costs: CostModel): CommandSet {
  switch (profile) {
    case 'smmuv3': return new SmmuCommandExecutor(t, view, costs);
    case 'amd': return new AmdCommandExecutor(t, view, costs);
    default: return new CommandExecutor(t, view, costs);
  }
}

/** A 32-bit status store at a table-memory address; false when the address is not there. */
export function storeStatus(view: ArenaView, addr: bigint, data: number): boolean {
  const loc = view.locate(addr);
  if (!loc) return false;
  // release: everything the queue did before the completion is visible with the status
  Atomics.store(loc[0], loc[1], data);
  return true;
}
