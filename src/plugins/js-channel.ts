/**
 * How the JS plugin pool talks to one sandbox host: a child process
 * (default) or a worker thread. Both run js-worker.ts and speak the same
 * messages; they differ in what a misbehaving plugin can take down.
 *
 * A worker thread's heap limit does not hold for every allocation path: on
 * Node 20 `new Array(2 ** 31 - 1).fill(1)` in a limited worker aborts the
 * whole process with "FATAL ERROR ... heap out of memory" (nodejs/node#47224).
 * A child process confines that abort to itself. See
 * docs/decisions/004-plugin-runtimes.md for the measurements.
 */
import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './js-worker.ts';

/** Where plugin code runs. */
export type Isolation = 'process' | 'thread';

/** Why a host stopped without being asked to. */
export interface ChannelFailure {
  outOfMemory: boolean;
  detail: string;
}

/** One sandbox host. */
export interface Channel {
  send(req: WorkerRequest): void;
  /** Ends the host at once (timeouts, close). No failure is reported afterwards. */
  kill(): Promise<void>;
  /** Idle hosts must not keep the server process alive. */
  setRef(ref: boolean): void;
}

/** Callbacks from a host. */
export interface ChannelEvents {
  message(reply: WorkerReply): void;
  failed(f: ChannelFailure): void;
}

// SourceTextModule needs the flag in both kinds of host.
const VM_FLAGS = ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning'];
// Under tsx this module is .ts and so is the host script; compiled to dist/ both are .js.
const UNDER_TSX = import.meta.url.endsWith('.ts');
const ENTRY = new URL(UNDER_TSX ? './js-worker.ts' : './js-worker.js', import.meta.url);
const STDERR_TAIL = 2_048;
const OOM = /heap out of memory|Allocation failed/;

/** Starts a sandbox host. `memoryMb` caps its V8 heap. */
export function openChannel(isolation: Isolation, memoryMb: number, on: ChannelEvents): Channel {
  return isolation === 'thread' ? threadChannel(memoryMb, on) : processChannel(memoryMb, on);
}

function processChannel(memoryMb: number, on: ChannelEvents): Channel {
  const execArgv = [...VM_FLAGS, `--max-old-space-size=${memoryMb}`];
  if (UNDER_TSX) execArgv.push('--import', import.meta.resolve('tsx'));
  const child = fork(ENTRY, [], {
    execArgv,
    serialization: 'advanced', // strings cross as raw bytes: ~2.5x faster than 'json' for point batches
    env: {}, // nothing in the host needs the server's environment, where credentials live
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  let outOfMemory = false;
  let done = false;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    // V8's fatal OOM report is followed by a long native stack: remember it, keep only a short tail.
    outOfMemory ||= OOM.test(stderr + chunk);
    stderr = (stderr + chunk).slice(-STDERR_TAIL);
  });
  child.on('message', (reply: WorkerReply) => on.message(reply));
  const fail = (detail: string): void => {
    if (done) return;
    done = true;
    on.failed({ outOfMemory, detail });
  };
  child.on('error', (err) => fail(err.message));
  child.on('exit', (code, signal) => fail(`plugin process exited (${signal ?? `code ${code}`})${stderr ? `: ${lastLine(stderr)}` : ''}`));
  return {
    send: (req) => child.send(req),
    kill: () => {
      done = true;
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.ref(); // an unref'd child would let the event loop end before 'exit' arrives
        child.kill('SIGKILL');
      });
    },
    setRef: (ref) => {
      for (const h of [child, child.channel, child.stderr] as Array<{ ref?: () => void; unref?: () => void } | null | undefined>) {
        if (ref) h?.ref?.();
        else h?.unref?.();
      }
    },
  };
}

function threadChannel(memoryMb: number, on: ChannelEvents): Channel {
  // Node 20 does not apply `--import tsx` to a worker's entry module, so
  // under tsx a small eval'd bootstrap loads it through tsx's API instead.
  const entry = UNDER_TSX
    ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => t.tsImport(${JSON.stringify(ENTRY.href)}, ${JSON.stringify(ENTRY.href)}))`
    : ENTRY;
  const worker = new Worker(entry, {
    eval: UNDER_TSX,
    execArgv: VM_FLAGS,
    resourceLimits: { maxOldGenerationSizeMb: memoryMb },
    env: {},
  });
  let done = false;
  const fail = (f: ChannelFailure): void => {
    if (done) return;
    done = true;
    on.failed(f);
  };
  worker.on('message', (reply: WorkerReply) => on.message(reply));
  worker.on('error', (err: Error & { code?: string }) => fail({ outOfMemory: err.code === 'ERR_WORKER_OUT_OF_MEMORY', detail: err.message }));
  worker.on('exit', (code) => fail({ outOfMemory: false, detail: `plugin worker exited (code ${code})` }));
  return {
    send: (req) => worker.postMessage(req),
    kill: async () => {
      done = true;
      await worker.terminate();
    },
    setRef: (ref) => (ref ? worker.ref() : worker.unref()),
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
