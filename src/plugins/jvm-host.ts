/**
 * One JVM running PluginHost for one jar, spoken to with one JSON object per
 * line over stdin/stdout. Requests are strictly one at a time: the host is
 * single-threaded, and a timeout can then blame exactly one request before
 * the process is killed.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PluginMemoryError, PluginRunError, PluginTimeoutError } from './errors.ts';
import type { JvmLaunch } from './jvm-sandbox.ts';

/** JVM options of every host (memory and GC), before the class path. */
export function hostJvmArgs(memoryMb: number): string[] {
  return [
    `-Xmx${memoryMb}m`,
    '-XX:+UseSerialGC', // one plugin thread: the smallest, fastest-starting collector
    '-XX:+ExitOnOutOfMemoryError', // an OOM must end the process so the caller sees it as such
    '-XX:-UsePerfData',
    '-Djava.awt.headless=true',
    '-Dfile.encoding=UTF-8',
  ];
}

/** How to start a host. */
export interface JvmHostOptions {
  /** The command (java, or bwrap around java) from JvmSandbox.launch. */
  launch: JvmLaunch;
  memoryMb: number;
  timeoutMs: number;
  /** Longest wait for the JVM to start and report ready. */
  startupMs: number;
}

/** A host reply line, as PluginHost.java writes it. */
export interface JvmHostReply {
  id: number;
  ok: boolean;
  form?: 'map' | 'batch' | 'bean';
  /** Official contract only (verify): SourceData fields, and OutputData fields with their derived repo types. */
  input?: Array<{ name: string; java: string }>;
  output?: Array<{ name: string; java: string; type: 'string' | 'long' | 'float' }>;
  points?: unknown;
  kind?: 'invalid' | 'run';
  error?: string;
}

interface Waiting {
  id: number;
  label: string;
  resolve: (r: JvmHostReply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const STDERR_TAIL = 4_096;

/** A running PluginHost process. Once `dead`, every request fails; start a new one. */
export class JvmHost {
  readonly #opts: JvmHostOptions;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #ready: Promise<void>;
  #waiting: Waiting | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #nextId = 1;
  #stderr = '';
  #dead = false;
  #killed = false;
  #markReady: () => void = () => {};
  #failStart: (e: Error) => void = () => {};

  constructor(opts: JvmHostOptions) {
    this.#opts = opts;
    // The server's environment (secrets) never reaches a plugin.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
    const { command, args, cwd } = opts.launch;
    this.#child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env, cwd });
    this.#ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill();
        reject(new PluginRunError(`the Java plugin host did not start within ${opts.startupMs} ms`));
      }, opts.startupMs);
      this.#markReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#failStart = (e) => {
        clearTimeout(timer);
        reject(e);
      };
    });
    this.#ready.catch(() => {}); // observed again by every request
    this.#child.stdin.on('error', () => {}); // EPIPE after the JVM died; the exit handler reports it
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL);
    });
    createInterface({ input: this.#child.stdout, crlfDelay: Infinity }).on('line', (line) => this.#onLine(line));
    this.#child.on('error', (err) => this.#onExit(err));
    this.#child.on('exit', (code, signal) => this.#onExit(undefined, code, signal));
  }

  get dead(): boolean {
    return this.#dead;
  }

  /**
   * Sends one request after the previous one finished. `rawPoints` is
   * spliced in as JSON text so large batches are not re-serialised.
   * @throws PluginTimeoutError (the JVM is killed), PluginMemoryError, PluginRunError.
   */
  request(fields: { op: 'verify' | 'run'; class: string }, label: string, rawPoints?: string): Promise<JvmHostReply> {
    const run = this.#tail.then(() => this.#send(fields, label, rawPoints));
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Kills the JVM. Idempotent. */
  kill(): void {
    this.#killed = true;
    if (!this.#dead) this.#child.kill('SIGKILL');
    this.#dead = true;
  }

  /** An idle host must not keep the server process alive. */
  setRef(ref: boolean): void {
    for (const h of [this.#child, this.#child.stdin, this.#child.stdout, this.#child.stderr] as Array<{ ref?: () => void; unref?: () => void }>) {
      if (ref) h.ref?.();
      else h.unref?.();
    }
  }

  async #send(fields: { op: 'verify' | 'run'; class: string }, label: string, rawPoints?: string): Promise<JvmHostReply> {
    await this.#ready;
    if (this.#dead) throw new PluginRunError(`the Java plugin host for ${label} is not running`);
    const id = this.#nextId++;
    const head = JSON.stringify({ id, ...fields });
    const line = rawPoints === undefined ? head : `${head.slice(0, -1)},"points":${rawPoints}}`;
    this.setRef(true);
    return new Promise<JvmHostReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        this.kill();
        reject(new PluginTimeoutError(`${label} did not finish within ${this.#opts.timeoutMs} ms`, this.#opts.timeoutMs));
      }, this.#opts.timeoutMs);
      this.#waiting = { id, label, resolve, reject, timer };
      this.#child.stdin.write(`${line}\n`);
    }).finally(() => this.setRef(false));
  }

  #onLine(line: string): void {
    let reply: Partial<JvmHostReply> & { ready?: boolean };
    try {
      reply = JSON.parse(line) as typeof reply;
    } catch {
      return; // not ours: the protocol stream only carries JSON
    }
    if (reply.ready === true) {
      this.#markReady();
      return;
    }
    const w = this.#waiting;
    if (!w || reply.id !== w.id) return;
    this.#waiting = undefined;
    clearTimeout(w.timer);
    w.resolve(reply as JvmHostReply);
  }

  #onExit(err?: Error, code?: number | null, signal?: NodeJS.Signals | null): void {
    const expected = this.#killed;
    this.#dead = true;
    const w = this.#waiting;
    this.#waiting = undefined;
    const label = w?.label ?? 'Java plugin';
    let error: Error;
    if (expected) {
      error = new PluginRunError('the Java plugin host was stopped');
    } else if (err) {
      error = new PluginRunError(`could not start the Java plugin host: ${err.message}`, { cause: err });
    } else if (code === 3 || this.#stderr.includes('java.lang.OutOfMemoryError')) {
      error = new PluginMemoryError(`${label} exceeded the memory limit of ${this.#opts.memoryMb} MB`, this.#opts.memoryMb);
    } else {
      const detail = this.#stderr.trim().split('\n').slice(-5).join(' | ');
      error = new PluginRunError(`the Java plugin host for ${label} exited (${signal ?? `code ${code}`})${detail ? `: ${detail}` : ''}`);
    }
    this.#failStart(error);
    if (w) {
      clearTimeout(w.timer);
      w.reject(error);
    }
  }
}
