/**
 * Errors: the errno-style SimError every failing call throws.
 *
 * Models: the kernel's convention of returning a negative errno; here a SimError carries
 * the errno name as `code`, a short kebab-case `reason` and the `op` that failed, plus
 * optional out-fields the kernel reports even on failure (iommufd's numIovas, entryNum).
 * Does not model: errno numbers (only names), or message localisation. Tests assert the
 * code (and sometimes the reason), never the message text.
 */

export const SIM_ERROR_CODES = [
  'EINVAL', 'EBUSY', 'ENOENT', 'ENODEV', 'EPERM', 'ENOSPC', 'EOVERFLOW', 'EOPNOTSUPP',
  'EEXIST', 'EADDRINUSE', 'EMSGSIZE', 'ESPIPE', 'EFAULT', 'EAGAIN', 'EACCES', 'ENOMEM',
  'EIO', 'E2BIG', 'ENOTTY', 'ESHUTDOWN', 'ETIMEDOUT',
] as const;

export type SimErrorCode = (typeof SIM_ERROR_CODES)[number];

export class SimError extends Error {
  readonly code: SimErrorCode;
  readonly reason: string;
  readonly op: string;
  readonly out?: Record<string, unknown>;

  constructor(code: SimErrorCode, op: string, reason: string, detail?: string, out?: Record<string, unknown>) {
    super(`${op}: ${code} (${reason})${detail ? `: ${detail}` : ''}`);
    this.name = 'SimError';
    this.code = code;
    this.op = op;
    this.reason = reason;
    if (out !== undefined) this.out = out;
  }
}

/** The single factory: `throw simError('EINVAL', 'map', 'unaligned', 'iova 0x1001')`. */
export function simError(
  code: SimErrorCode, op: string, reason: string, detail?: string, out?: Record<string, unknown>,
): SimError {
  return new SimError(code, op, reason, detail, out);
}

export function isSimError(e: unknown, code?: SimErrorCode): e is SimError {
  return e instanceof Error && (e as SimError).name === 'SimError' &&
    (code === undefined || (e as SimError).code === code);
}

/** Rebuilds a SimError that crossed a thread boundary as a plain object. */
export function reviveSimError(o: { code: SimErrorCode; op: string; reason: string; message?: string }): SimError {
  const e = new SimError(o.code, o.op, o.reason);
  if (o.message) e.message = o.message;
  return e;
}
