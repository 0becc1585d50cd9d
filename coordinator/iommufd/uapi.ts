/**
 * iommufd argument checking: the ioctl conventions of include/uapi/linux/iommufd.h and
 * main.c expressed on plain objects (SEMANTICS.md §5.1).
 *
 * Models: a call's argument object as the uAPI struct — a missing or non-object argument is
 * EINVAL (size below the minimum); a key the struct does not have is trailing bytes: zero
 * (0, 0n, undefined, false, null) is accepted, anything else E2BIG — except the structs'
 * reserved fields (`reserved`, `__reserved`, `reserved2`…), non-zero EOPNOTSUPP; a flags object with an
 * unknown key set is EOPNOTSUPP; ids are u32 numbers (0 is never an object); u64 values
 * are bigints in [0, 2^64) (EOVERFLOW beyond); out-of-range counts are EINVAL.
 * Does not model: byte sizes and user pointers (EFAULT for unreadable buffers) — the
 * arguments are JavaScript values.
 */
import { simError } from '../../shared/errors.js';
import { U64_MAX } from '../../shared/units.js';

const RESERVED = /^_*reserved\d*$/;

/** Checks the argument object: unknown keys must be zero (E2BIG otherwise; a reserved field EOPNOTSUPP). */
export function checkArgs<T extends object>(args: unknown, known: readonly string[], op: string): T {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw simError('EINVAL', op, 'no-arguments', 'an argument object is required');
  for (const [k, v] of Object.entries(args)) {
    if (known.includes(k)) continue;
    if (v === undefined || v === null || v === 0 || v === 0n || v === false) continue;
    // The structs' own __reserved fields: known, but must be zero.
    if (RESERVED.test(k)) throw simError('EOPNOTSUPP', op, 'reserved-not-zero', `'${k}' must be 0`);
    throw simError('E2BIG', op, 'unknown-field', `'${k}' is not a field of this call and is not zero`);
  }
  return args as T;
}

/** A flags object: every key set must be a known flag (EOPNOTSUPP otherwise); returns the set ones. */
export function checkFlags(flags: unknown, known: readonly string[], op: string): Set<string> {
  const out = new Set<string>();
  if (flags === undefined || flags === null || flags === 0) return out;
  if (typeof flags !== 'object' || Array.isArray(flags)) throw simError('EINVAL', op, 'bad-flags', 'flags is an object of booleans');
  for (const [k, v] of Object.entries(flags)) {
    if (!v) continue;
    if (!known.includes(k)) throw simError('EOPNOTSUPP', op, 'unknown-flag', `flag '${k}'`);
    out.add(k);
  }
  return out;
}

/** An object id (u32, from 1). Not a number → EINVAL; 0 or unknown is the caller's ENOENT. */
export function checkId(v: unknown, op: string, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw simError('EINVAL', op, 'bad-id', `${what}: ${String(v)}`);
  return v;
}

/** A u64 field (bigint, or a safe integer number). */
export function checkU64(v: unknown, op: string, what: string): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else throw simError('EINVAL', op, 'bad-value', `${what}: ${String(v)}`);
  if (b < 0n || b > U64_MAX) throw simError('EOVERFLOW', op, 'u64-overflow', `${what}: ${b}`);
  return b;
}

/** A u32 count. */
export function checkU32(v: unknown, op: string, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw simError('EINVAL', op, 'bad-value', `${what}: ${String(v)}`);
  return v;
}

export const hex = (v: bigint): string => `0x${v.toString(16)}`;
