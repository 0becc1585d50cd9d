/**
 * Progress on stderr for long runs: a cli-progress bar per phase (or per sweep) when
 * stderr is a terminal, plain lines at every 10 % otherwise (logs, CI, pipes); nothing
 * with --quiet.
 * Does not: touch stdout (that carries the table or the JSON).
 */
import cliProgress from 'cli-progress';
import type { ProgressEvent } from '../scenario/runner.js';

export interface Progress {
  update(e: ProgressEvent): void;
  stop(): void;
}

class Quiet implements Progress {
  update(): void {}
  stop(): void {}
}

/** Not a terminal: a line when a phase starts, then at most one a second (10 % steps). */
class Lines implements Progress {
  private key = -1;
  private step = -1;
  private last = 0;
  constructor(private readonly label: string) {}
  update(e: ProgressEvent): void {
    const pct = e.total > 0 ? Math.floor((10 * Math.min(e.done, e.total)) / e.total) : 10;
    const now = Date.now();
    if (e.index === this.key && (pct <= this.step || now - this.last < 1000)) return;
    this.key = e.index;
    this.step = pct;
    this.last = now;
    process.stderr.write(`${this.label} [${e.index + 1}/${e.phases}] ${e.phase}: ${pct * 10}%\n`);
  }
  stop(): void {}
}

class Bar implements Progress {
  private readonly bar = new cliProgress.SingleBar({
    format: '{label} [{bar}] {percentage}% | {phase} | {value}/{total}',
    hideCursor: true, clearOnComplete: false, stream: process.stderr, fps: 10,
  }, cliProgress.Presets.shades_classic);
  private started = false;
  private index = -1;
  constructor(private readonly label: string) {}
  update(e: ProgressEvent): void {
    const phase = `${e.index + 1}/${e.phases} ${e.phase}`;
    if (!this.started) {
      this.bar.start(Math.max(1, e.total), 0, { label: this.label, phase });
      this.started = true;
    } else if (e.index !== this.index) {
      this.bar.setTotal(Math.max(1, e.total));
    }
    this.index = e.index;
    this.bar.setTotal(Math.max(1, e.total));
    this.bar.update(Math.min(e.done, e.total), { phase });
  }
  stop(): void {
    if (this.started) this.bar.stop();
  }
}

export function makeProgress(label: string, quiet: boolean): Progress {
  if (quiet) return new Quiet();
  return process.stderr.isTTY ? new Bar(label) : new Lines(label);
}
