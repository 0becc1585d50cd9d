/**
 * Units and branded ids shared by both threads.
 *
 * Models: the kernel's integer types as TypeScript brands, created only by checked
 * constructors; 64-bit addresses as bigint in every API (IOVA, physical address, size).
 * Range rule (from iommufd's pages.c): a `last` is inclusive, an `end` is exclusive;
 * `last + 1n` may be 2^64 and is guarded where it matters.
 * Does not model: anything wider than 64 bits.
 */
import { simError } from './errors.js';

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type Pasid = Brand<number, 'Pasid'>;
export type IommuId = Brand<number, 'IommuId'>;
export type DomainId = Brand<number, 'DomainId'>;
/** PCI requester id: bus << 8 | device << 3 | function. */
export type Rid = Brand<number, 'Rid'>;

export const U64_MAX = (1n << 64n) - 1n;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const SZ_4K = 1n << 12n;
export const SZ_2M = 1n << 21n;
export const SZ_1G = 1n << 30n;

/** PCIe PASIDs are 20 bits. */
export const PASID_BITS_MAX = 20;
/** IOMMU_NO_PASID: PASID 0 stands for the RID itself (RID2PASID on VT-d, SSID 0 on SMMUv3). */
export const IOMMU_NO_PASID = 0 as Pasid;
export const IOMMU_PASID_INVALID = 0xffffffff;

export function asPasid(n: number, op = 'pasid'): Pasid {
  if (!Number.isInteger(n) || n < 0 || n >= 1 << PASID_BITS_MAX) {
    throw simError('EINVAL', op, 'pasid-out-of-range', `pasid ${n}`);
  }
  return n as Pasid;
}

export function asU64(v: bigint, op: string, what: string): bigint {
  if (typeof v !== 'bigint') throw simError('EINVAL', op, 'not-bigint', `${what} must be a bigint`);
  if (v < 0n || v > U64_MAX) throw simError('EOVERFLOW', op, 'u64-overflow', `${what} 0x${v.toString(16)}`);
  return v;
}

/** Parses 'dddd:bb:dd.f' or 'bb:dd.f' into a requester id. */
export function parseBdf(bdf: string): { segment: number; rid: Rid } | undefined {
  const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/.exec(bdf);
  if (!m) return undefined;
  const dev = parseInt(m[3], 16);
  if (dev > 31) return undefined;
  const rid = (parseInt(m[2], 16) << 8) | (dev << 3) | parseInt(m[4], 10);
  return { segment: m[1] ? parseInt(m[1], 16) : 0, rid: rid as Rid };
}

export function formatBdf(rid: number, segment = 0): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(segment, 4)}:${h(rid >> 8, 2)}:${h((rid >> 3) & 31, 2)}.${rid & 7}`;
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** Splits a 64-bit value into the two u32 halves the hot paths use. */
export function splitU64(v: bigint): [lo: number, hi: number] {
  return [Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn)];
}

export function joinU64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
