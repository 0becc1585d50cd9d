/**
 * Question: how much table memory does the simulator spend per mapped page, and per
 * device for its PASID directory and tables?
 *
 * Method: the coordinator's page-table writer maps N pages densely (4 KiB, 2 MiB) and
 * sparsely (one 4 KiB page every 2 MiB, the soleen/iova_stress pattern of HARDWARE.md
 * §3.2 I13); frames are counted by the frame allocator. PASID tables: a device with a
 * 20-bit PASID capability (Linux sizes the directory to the IOMMU's width) with 1, 64
 * and 1024 PASIDs set densely, and 64 PASIDs spread over the 20-bit space (as a global
 * allocator hands them out).
 */
import { FrameAllocator } from '../coordinator/frame-allocator.js';
import { PageTable } from '../coordinator/page-table.js';
import { ContextTables } from '../coordinator/context-tables.js';
import { FIRST_STAGE } from '../shared/layout/pte-format.js';
import { PASID_ENTRY_ZERO } from '../shared/layout/pasid-entry.js';
import type { Metric } from './metric.js';

const BENCH = 'memory';

function pageTable(pages: number, stride: bigint, size: bigint): { framesPerPage: number; bytesPerPage: number } {
  const fa = new FrameAllocator();
  const pt = new PageTable(fa, FIRST_STAGE, 4);
  for (let i = 0; i < pages; i++) pt.map(BigInt(i) * stride, BigInt(i) * stride, size, { read: true });
  return { framesPerPage: pt.tableFrames / pages, bytesPerPage: fa.bytesInUse / pages };
}

function pasidTables(pasids: number[]): number {
  const fa = new FrameAllocator();
  const ct = new ContextTables(fa, 1 << 20);
  const before = fa.bytesInUse;
  ct.setupDevice(0x100, { maxPasids: 1 << 20, ats: false, pri: false });
  for (const p of pasids) ct.setPasidEntry(0x100, p, { ...PASID_ENTRY_ZERO, present: true, pgtt: 4, did: 1 });
  return fa.bytesInUse - before;
}

export async function run(opts: { quick: boolean }): Promise<Metric[]> {
  const n = opts.quick ? 16384 : 262144;
  const dense4k = pageTable(n, 4096n, 4096n);
  const sparse4k = pageTable(opts.quick ? 4096 : 32768, 1n << 21n, 4096n);
  const dense2m = pageTable(opts.quick ? 4096 : 32768, 1n << 21n, 1n << 21n);
  const range = (k: number, step = 1) => Array.from({ length: k }, (_, i) => 1 + i * step);
  return [
    { bench: BENCH, metric: 'pt_dense_4k_bytes_per_page', value: dense4k.bytesPerPage, unit: 'B' },
    { bench: BENCH, metric: 'pt_dense_4k_frames_per_page', value: dense4k.framesPerPage, unit: 'frames' },
    { bench: BENCH, metric: 'pt_sparse_4k_bytes_per_page', value: sparse4k.bytesPerPage, unit: 'B' },
    { bench: BENCH, metric: 'pt_dense_2m_bytes_per_page', value: dense2m.bytesPerPage, unit: 'B' },
    { bench: BENCH, metric: 'pasid_tables_1_dense_bytes', value: pasidTables(range(1)), unit: 'B' },
    { bench: BENCH, metric: 'pasid_tables_64_dense_bytes', value: pasidTables(range(63)), unit: 'B' },
    { bench: BENCH, metric: 'pasid_tables_1024_dense_bytes', value: pasidTables(range(1023)), unit: 'B' },
    { bench: BENCH, metric: 'pasid_tables_64_sparse_bytes', value: pasidTables(range(64, 16381)), unit: 'B' },
  ];
}
