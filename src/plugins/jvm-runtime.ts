/**
 * Java plugins: the uploaded jar is loaded by a JVM host process (one per
 * jar, started on first use, stopped when idle) that calls the parser class
 * reflectively. Needs a JDK: the host is compiled from embedded source with
 * javac on first use. See docs/plugins.md for the contract.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Point } from '../ingest/types.ts';
import { PluginInvalidError, PluginRunError, PluginUnavailableError } from './errors.ts';
import { hostJvmArgs, JvmHost, type JvmHostReply } from './jvm-host.ts';
import { JvmSandbox, type SandboxSetting, type SandboxState } from './jvm-sandbox.ts';
import { HOST_MAIN_CLASS, HOST_SOURCES } from './jvm/host-source.ts';
import { enforceOutput, pointsToJson, type OutputField } from './output.ts';

/** Limits and locations for {@link JvmPluginRuntime}. */
export interface JvmRuntimeOptions {
  /** Longest one request (one chunk of points, or a whole batch for parseBatch) may take. */
  timeoutMs: number;
  /** Heap of each JVM (-Xmx). */
  memoryMb: number;
  /** Commands; default `java` and `javac` from PATH. */
  java?: string;
  javac?: string;
  /** Where the compiled host classes are kept; default a private directory under the OS temp dir. */
  workDir?: string;
  /** A jar's JVM is stopped after this long without runs (default 5 minutes). */
  idleMs?: number;
  /** Confinement of the JVMs (default auto: bubblewrap when it works). */
  sandbox?: SandboxSetting;
}

/** What a jar's parser class offers, as found by {@link JvmPluginRuntime.verify}. */
export interface JvmPluginInfo {
  /** `bean`: the official contract (userWrite.bean.SourceData/OutputData); `map`/`batch`: this server's Map contract. */
  form: 'map' | 'batch' | 'bean';
  /** Official contract: the SourceData fields and their Java types. */
  input?: Array<{ name: string; java: string }>;
  /** Official contract: the OutputData fields, Java types and the repo types derived from them. */
  output?: Array<{ name: string; java: string; type: 'string' | 'long' | 'float' }>;
}

const UNAVAILABLE = "Java plugins need a JDK (java and javac) on the server's PATH";
// Bounds the JSON line and the heap a single request needs, as for JS plugins.
const MAX_CHUNK = 10_000;
// BIGINT_MARK ("\u0000n:") as JSON.stringify writes it inside a string.
const BIGINT_IN_JSON = /"\\u0000n:(-?\d+)"/g;

interface HostEntry {
  host: JvmHost;
  /** mtime and size of the jar when the JVM loaded it: a replaced jar needs a new JVM. */
  stamp: string;
  forms: Map<string, JvmPluginInfo['form']>;
  /** Runs in progress: the idle timer only runs while this is 0. */
  active: number;
  idle?: NodeJS.Timeout;
}

/** Runs Java plugin jars in JVM host processes. */
export class JvmPluginRuntime {
  readonly #opts: JvmRuntimeOptions;
  readonly #hosts = new Map<string, HostEntry>();
  #available: Promise<boolean> | undefined;
  #classDir: Promise<string> | undefined;
  #closed = false;
  readonly #sandbox: JvmSandbox;
  /** verify() answers per jar version and class: checking a transform must not start a JVM every time. */
  readonly #verified = new Map<string, JvmPluginInfo>();

  constructor(opts: JvmRuntimeOptions) {
    this.#opts = opts;
    const workDir = opts.workDir ?? defaultWorkDir();
    this.#sandbox = new JvmSandbox({ java: opts.java ?? 'java', setting: opts.sandbox ?? 'auto', cwd: path.join(workDir, 'cwd') });
  }

  /** How the JVMs are confined here (probes bubblewrap on the first call). */
  sandbox(): Promise<SandboxState> {
    return this.#sandbox.state();
  }

  /** Whether `java` and `javac` run on this machine (probed once). */
  available(): Promise<boolean> {
    this.#available ??= Promise.all([probe(this.#opts.java ?? 'java'), probe(this.#opts.javac ?? 'javac')]).then(([a, b]) => a && b);
    return this.#available;
  }

  /**
   * Loads `className` from the jar in a fresh JVM, instantiates it and checks
   * it follows one of the contracts; the answer is cached per jar version.
   * @throws PluginInvalidError, or PluginUnavailableError without a JDK.
   */
  async verify(jarPath: string, className: string): Promise<JvmPluginInfo> {
    const classDir = await this.#prepare();
    checkJar(jarPath);
    const key = `${jarStamp(jarPath)}:${jarPath}:${className}`;
    const cached = this.#verified.get(key);
    if (cached) return cached;
    const host = this.#start(classDir, jarPath);
    try {
      const reply = await host.request({ op: 'verify', class: className }, `plugin "${className}"`);
      failOn(reply, `plugin "${className}"`);
      const info: JvmPluginInfo = { form: reply.form ?? 'map' };
      if (reply.input) info.input = reply.input;
      if (reply.output) info.output = reply.output;
      if (this.#verified.size >= 1000) this.#verified.clear();
      this.#verified.set(key, info);
      return info;
    } catch (err) {
      if (err instanceof PluginInvalidError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new PluginInvalidError(`plugin "${className}" could not be loaded: ${message}`, { cause: err });
    } finally {
      host.kill();
    }
  }

  /**
   * Runs the plugin over points (in chunks for per-point parsers) and
   * enforces the declared output fields. Empty input returns [] at once.
   * @throws PluginInvalidError, PluginRunError (PluginTimeoutError, PluginMemoryError), PluginUnavailableError.
   */
  async run(pluginId: string, jarPath: string, className: string, points: Point[], output: OutputField[]): Promise<Point[]> {
    if (points.length === 0) return [];
    const classDir = await this.#prepare();
    const label = `plugin "${pluginId}"`;
    const entry = this.#entry(classDir, jarPath);
    if (entry.idle) clearTimeout(entry.idle);
    entry.active++;
    try {
      let form = entry.forms.get(className);
      if (form === undefined) {
        const reply = await entry.host.request({ op: 'verify', class: className }, label);
        failOn(reply, label);
        form = reply.form ?? 'map';
        entry.forms.set(className, form);
      }
      const result: Point[] = [];
      const step = form === 'batch' ? points.length : MAX_CHUNK;
      for (let i = 0; i < points.length; i += step) {
        const { json, big } = pointsToJson(i === 0 && step >= points.length ? points : points.slice(i, i + step));
        // Java reads plain JSON numbers of any size, so marked bigints become number literals again.
        const raw = big ? json.replace(BIGINT_IN_JSON, '$1') : json;
        const reply = await entry.host.request({ op: 'run', class: className }, label, raw);
        failOn(reply, label);
        for (const p of enforceOutput(reply.points, output, label)) result.push(p);
      }
      return result;
    } finally {
      entry.active--;
      this.#scheduleIdle(jarPath, entry);
    }
  }

  /** Stops every JVM. Idempotent; later calls fail with PluginRunError. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const entry of this.#hosts.values()) {
      if (entry.idle) clearTimeout(entry.idle);
      entry.host.kill();
    }
    this.#hosts.clear();
  }

  async #prepare(): Promise<string> {
    if (this.#closed) throw new PluginRunError('the Java plugin runtime is closed');
    if (!(await this.available())) throw new PluginUnavailableError(UNAVAILABLE);
    this.#classDir ??= compileHost(this.#opts.javac ?? 'javac', this.#opts.workDir).catch((err: unknown) => {
      this.#classDir = undefined; // let a later call retry, e.g. after the disk filled up
      throw err;
    });
    const [dir] = await Promise.all([this.#classDir, this.#sandbox.state()]);
    return dir;
  }

  #start(classDir: string, jarPath: string): JvmHost {
    const { timeoutMs, memoryMb } = this.#opts;
    const launch = this.#sandbox.launch(classDir, jarPath, hostJvmArgs(memoryMb), HOST_MAIN_CLASS);
    return new JvmHost({ launch, memoryMb, timeoutMs, startupMs: Math.max(timeoutMs, 30_000) });
  }

  #entry(classDir: string, jarPath: string): HostEntry {
    const stamp = jarStamp(jarPath);
    const cur = this.#hosts.get(jarPath);
    if (cur && !cur.host.dead && cur.stamp === stamp) return cur;
    // A replaced jar's JVM finishes the runs it has (see #scheduleIdle), then goes.
    if (cur && cur.active === 0) cur.host.kill();
    const entry: HostEntry = { host: this.#start(classDir, jarPath), stamp, forms: new Map(), active: 0 };
    this.#hosts.set(jarPath, entry);
    return entry;
  }

  #scheduleIdle(jarPath: string, entry: HostEntry): void {
    const current = this.#hosts.get(jarPath) === entry;
    if (entry.host.dead || !current) {
      if (current) this.#hosts.delete(jarPath);
      if (entry.active === 0) entry.host.kill();
      return;
    }
    if (entry.active > 0) return;
    entry.idle = setTimeout(() => {
      entry.host.kill();
      if (this.#hosts.get(jarPath) === entry) this.#hosts.delete(jarPath);
    }, this.#opts.idleMs ?? 300_000);
    entry.idle.unref();
  }
}

/** mtime and size of a jar: a replaced jar needs a new JVM and a new check. */
function jarStamp(jarPath: string): string {
  try {
    const st = statSync(jarPath);
    return `${st.mtimeMs}:${st.size}`;
  } catch (err) {
    throw new PluginInvalidError(`plugin jar ${path.basename(jarPath)} is missing`, { cause: err });
  }
}

const defaultWorkDir = (): string => path.join(tmpdir(), `pipeline-server-jvm-${process.getuid?.() ?? 'user'}`);

function failOn(reply: JvmHostReply, label: string): void {
  if (reply.ok) return;
  const message = reply.error ?? 'unknown error';
  if (reply.kind === 'invalid') throw new PluginInvalidError(`${label} is invalid: ${message}`);
  throw new PluginRunError(`${label} failed: ${message}`);
}

function probe(cmd: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(cmd, ['-version'], { timeout: 20_000 }, (err) => resolve(!err));
  });
}

/** A jar is a zip file: "PK\x03\x04". Checked up front for a clearer message than ClassNotFound. */
function checkJar(jarPath: string): void {
  const head = Buffer.alloc(4);
  try {
    const fd = openSync(jarPath, 'r');
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new PluginInvalidError(`plugin jar ${path.basename(jarPath)} cannot be read`, { cause: err });
  }
  if (head.readUInt32BE(0) !== 0x504b0304) throw new PluginInvalidError('a Java plugin must be a jar (zip) file');
}

/**
 * Compiles the embedded host once per source version into a directory only
 * this user can write (the JVM executes what is there), building in a
 * scratch directory and renaming so concurrent servers never see half a build.
 */
async function compileHost(javac: string, workDir?: string): Promise<string> {
  const version = createHash('sha256').update(JSON.stringify(HOST_SOURCES)).digest('hex').slice(0, 16);
  const base = workDir ?? defaultWorkDir();
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const st = statSync(base);
  if ((process.getuid && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) {
    throw new PluginUnavailableError(`the Java plugin host directory ${base} must be owned by this user and not writable by others`);
  }
  const dir = path.join(base, `host-${version}`);
  if (existsSync(path.join(dir, `${HOST_MAIN_CLASS}.class`))) return dir;
  const build = mkdtempSync(path.join(base, 'build-'));
  try {
    const files = Object.entries(HOST_SOURCES).map(([name, text]) => {
      const file = path.join(build, name);
      writeFileSync(file, text);
      return file;
    });
    await new Promise<void>((resolve, reject) => {
      execFile(javac, ['-encoding', 'UTF-8', '-nowarn', '-d', build, ...files], { timeout: 120_000 }, (err, _out, stderr) =>
        err ? reject(new PluginUnavailableError(`could not compile the Java plugin host: ${stderr || err.message}`)) : resolve(),
      );
    });
    try {
      renameSync(build, dir);
    } catch {
      if (!existsSync(path.join(dir, `${HOST_MAIN_CLASS}.class`))) throw new PluginRunError(`could not install the Java plugin host in ${dir}`);
    }
    return dir;
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/**
 * Logs at start how Java plugin JVMs will be confined (probed in the
 * background; a warning when they will run unconfined).
 */
export function logJvmSandbox(jvm: JvmPluginRuntime, log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void }): void {
  jvm.sandbox().then(
    (s) => {
      if (s.mode === 'bwrap') log.info({ sandbox: 'bwrap' }, 'Java plugins run in a bubblewrap sandbox (no network, no data dir)');
      else log.warn({ sandbox: 'none', reason: s.reason }, 'Java plugins run WITHOUT a sandbox, with the server\'s OS rights');
    },
    (err: unknown) => log.warn({ error: err }, 'could not probe the Java plugin sandbox'),
  );
}
