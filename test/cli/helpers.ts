/**
 * Helpers of the CLI tests: run the built `iommu-sim` (dist/cli/main.js) as a child
 * process and collect its exit code and output; the bundled scenario paths.
 * Does not: build the project (npm test builds first).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const scenario = (name: string): string => fileURLToPath(new URL(`../../scenarios/${name}`, import.meta.url));

export interface CliRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export function runCli(args: string[], opts: { cwd?: string; onSpawn?: (kill: (s: NodeJS.Signals) => void, out: () => string) => void; timeoutMs?: number } = {}): Promise<CliRun> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: build first (npx tsc -p tsconfig.json)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOMMU_SIM_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    opts.onSpawn?.((s) => child.kill(s), () => stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** No stack trace lines ("    at …") in a message. */
export const hasStack = (s: string): boolean => /^\s{4}at /m.test(s);
