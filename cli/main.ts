#!/usr/bin/env node
/**
 * The `iommu-sim` command line (commander): run, sweep, merge, compare, topology
 * show|groups|import, study pasid. Exit codes: 0 ok, 1 simulation error, 2 bad input (bad
 * YAML, schema violations, unknown flags, bad --vary, missing files), 130 interrupted
 * (partial results written). Errors are one message naming the field or flag — never a
 * stack trace (set IOMMU_SIM_DEBUG=1 to see one for an internal error).
 * Does not: hold simulation logic; everything runs through scenario/ and the public API.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { InputError, SimulationError } from '../scenario/errors.js';
import { compareCommand } from './compare.js';
import { mergeCommand, runCommand, sweepCommand } from './run.js';
import { studyPasid, topologyGroups, topologyImport, topologyShow } from './topology.js';

function intArg(what: string, min: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`expected ${what} (an integer >= ${min})`);
    return Number(v);
  };
}
const collect = (v: string, prev: string[] = []) => [...prev, v];

let exitCode = 0;
const done = (code: number) => { exitCode = code; };

const program = new Command('iommu-sim')
  .description('Simulator of PASID-capable IOMMUs and of the Linux IOMMU API: scenarios, sweeps, reports')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

const runOpts = (c: Command) => c
  .option('--json', 'print the results object (JSON) on stdout')
  .option('--out <dir>', 'write results.json, CSV tables and report.html into DIR')
  .option('--threads <n>', 'worker threads for the IOMMUs (default and maximum: one per IOMMU)', intArg('a thread count', 1))
  .option('--seed <n>', "override the scenario's seed", intArg('a seed', 0))
  .option('--short', "apply the scenario's short: block (the CI variant)")
  .option('--quiet', 'no progress and, with --out, no table');

runOpts(program.command('run').argument('<scenario>', 'scenario YAML file').description('run a scenario: summary table, --json or --out DIR'))
  .action(async (file: string, o) => done(await runCommand(file, o)));

runOpts(program.command('sweep').argument('<scenario>', 'scenario YAML file')
  .description('run the cartesian product of --vary values in parallel (piscina); --shard i/n for job arrays'))
  .option('--vary <path=a,b,c>', "vary a scenario path (repeatable), e.g. hardware.iommus=1,2,4 or phases.churn.iterations=8,64; default: the scenario's sweep: block", collect)
  .option('--shard <i/n>', 'run only points with index mod n == i (0-based) and write partial-i-of-n.json')
  .option('--parallel <n>', 'points run at once (default: min(4, cores))', intArg('a pool size', 1))
  .action(async (file: string, o) => done(await sweepCommand(file, o)));

program.command('merge').argument('<partials...>', 'partial sweep files (partial-i-of-n.json)')
  .description('combine the shard files of a sweep')
  .requiredOption('--out <dir>', 'write sweep.json, sweep.csv and report.html into DIR')
  .option('--json', 'print the merged sweep (JSON) on stdout')
  .action((files: string[], o) => done(mergeCommand(files, o)));

program.command('compare').argument('<a>', 'results.json').argument('<b>', 'results.json')
  .description("side-by-side 'modelled' metrics of two results, with ratios b/a")
  .option('--json', 'print the rows as JSON')
  .option('--changed', 'only metrics that differ')
  .action((a: string, b: string, o) => done(compareCommand(a, b, o)));

const topo = program.command('topology').description('look at a machine: a scenario file or an iommu_groups listing');
const topoOpts = (c: Command) => c
  .option('--lspci <file>', '`lspci -tv` output of the same machine (listings only)')
  .option('--iommus <n>', 'IOMMUs for an imported listing (segment s → IOMMU s mod n)', intArg('an IOMMU count', 1));
topoOpts(topo.command('show').argument('<input>', 'scenario .yaml or listing').description('devices, kinds, capabilities and groups per IOMMU'))
  .option('--json', 'JSON').action(async (i: string, o) => done(await topologyShow(i, o)));
topoOpts(topo.command('groups').argument('<input>', 'scenario .yaml or listing').description('every IOMMU group and its devices'))
  .option('--json', 'JSON').action(async (i: string, o) => done(await topologyGroups(i, o)));
topoOpts(topo.command('import').argument('<listing>', '/sys/kernel/iommu_groups listing').description('a listing as a TopologySpec (JSON)'))
  .option('--out <file>', 'write the spec to FILE').action((i: string, o) => done(topologyImport(i, o)));

program.command('study').description('bundled studies').command('pasid').argument('[mixes...]', 'mix names (default: all)')
  .description('global vs per-device PASID allocation on the bundled machine mixes')
  .option('--out <file>', 'write the study JSON').option('--json', 'print the study JSON')
  .action(async (mixes: string[], o) => done(await studyPasid(mixes, o)));

function fail(code: number, message: string): never {
  process.stderr.write(`iommu-sim: ${message}\n`);
  process.exit(code);
}

try {
  await program.parseAsync(process.argv);
  process.exitCode = exitCode;
} catch (e) {
  if (e instanceof CommanderError) {
    // commander printed its message (it names the flag or argument) already.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
    process.exit(2);
  }
  if (e instanceof InputError) fail(2, e.message);
  if (e instanceof SimulationError) fail(1, `simulation error: ${e.message}`);
  if (process.env.IOMMU_SIM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  fail(1, `internal error: ${e instanceof Error ? e.message : String(e)}`);
}
