/**
 * Confinement of the Java plugin JVMs. With bubblewrap (`bwrap`) installed
 * and able to create namespaces, each JVM runs in an empty root holding only
 * the JDK, the system libraries it links, the compiled host classes and the
 * one plugin jar, all read-only, with a private /tmp as working directory, no
 * network (`--unshare-net`), its own PID, IPC, UTS and user namespaces, and it
 * dies with the server. Otherwise the JVM runs as a plain child process in its
 * own empty working directory (see docs/plugins.md for what that does not stop).
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { PluginUnavailableError } from './errors.ts';

/** `auto`: bubblewrap when it works, else unconfined; `bwrap`: refuse to run Java plugins without it; `none`: never. */
export type SandboxSetting = 'auto' | 'bwrap' | 'none';

/** How the JVMs are confined, as probed on first use. */
export type SandboxState = { mode: 'bwrap' } | { mode: 'none'; reason: string };

/** A command that starts one host JVM. */
export interface JvmLaunch {
  command: string;
  args: string[];
  cwd: string;
}

/** Paths the host sees inside the sandbox. */
const HOST_DIR = '/opt/pipeline/host';
const JAR_PATH = '/opt/pipeline/plugin.jar';
/** The sandbox's /tmp is memory: bounded so a plugin cannot fill the machine's RAM through it. */
const TMP_BYTES = 64 * 1024 * 1024;

function run(cmd: string, args: string[], timeout = 20_000): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) =>
      resolve({ ok: !err, out: `${stdout}${stderr}`.trim() || (err ? err.message : '') }),
    );
  });
}

/** Finds `cmd` on PATH (absolute paths are taken as they are). */
function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Paths a dynamic executable or library loads, as `ldd` prints them. */
async function linkedLibraries(file: string): Promise<string[]> {
  const { ok, out } = await run('ldd', [file]);
  if (!ok) return [];
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Targets outside the JDK of symlinks inside it (Debian links conf/ files to /etc/java-N-openjdk). */
function outsideLinks(jdk: string, dir: string, found: string[], depth = 0): void {
  if (depth > 6) return;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const p = path.join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) {
      const target = path.resolve(dir, readlinkSync(p));
      if (!target.startsWith(`${jdk}/`) && existsSync(target)) found.push(realpathSync(target));
    } else if (st.isDirectory() && name !== 'legal' && name !== 'man' && name !== 'jmods' && name !== 'include') {
      outsideLinks(jdk, p, found, depth + 1);
    }
  }
}

/** Decides how host JVMs are started: probed once, then every launch is a pure function. */
export class JvmSandbox {
  readonly #java: string;
  readonly #setting: SandboxSetting;
  readonly #cwd: string;
  #state: Promise<SandboxState> | undefined;
  #resolved: SandboxState | undefined;
  #binds: string[] = [];
  #javaReal = '';
  #tmpSize = true;

  /** @param cwd the unconfined JVMs' working directory, created empty (mode 0700). */
  constructor(opts: { java: string; setting: SandboxSetting; cwd: string }) {
    this.#java = opts.java;
    this.#setting = opts.setting;
    this.#cwd = opts.cwd;
  }

  /** Probes bubblewrap with the real JDK once; later calls return the same answer. */
  state(): Promise<SandboxState> {
    this.#state ??= this.#probe().then((s) => (this.#resolved = s));
    return this.#state;
  }

  async #probe(): Promise<SandboxState> {
    mkdirSync(this.#cwd, { recursive: true, mode: 0o700 });
    if (this.#setting === 'none') return { mode: 'none', reason: 'disabled by jvmSandbox=none' };
    const bwrap = which('bwrap');
    if (!bwrap) return { mode: 'none', reason: 'bubblewrap (bwrap) is not installed' };
    const java = which(this.#java);
    if (!java) return { mode: 'none', reason: `${this.#java} was not found` };
    this.#javaReal = realpathSync(java);
    const jdk = path.dirname(path.dirname(this.#javaReal));
    const libs = [...(await linkedLibraries(this.#javaReal)), ...(await linkedLibraries(path.join(jdk, 'lib', 'server', 'libjvm.so')))];
    const binds = new Map<string, string>(); // destination -> source
    binds.set(jdk, jdk);
    for (const lib of libs) {
      if (lib.startsWith(`${jdk}/`)) continue;
      const dir = path.dirname(lib);
      binds.set(dir, realpathSync(dir)); // where ldd found it (e.g. /lib/x86_64-linux-gnu)
      binds.set(realpathSync(dir), realpathSync(dir)); // and where the loader's default path looks
    }
    const links: string[] = [];
    outsideLinks(jdk, jdk, links);
    for (const target of links) binds.set(target, target);
    this.#binds = [...binds].flatMap(([dest, src]) => ['--ro-bind', src, dest]);
    let test = await run(bwrap, [...this.#common(), this.#javaReal, '-version']);
    if (!test.ok) {
      // bubblewrap before 0.5 has no --size: run with an unbounded /tmp rather than unconfined.
      this.#tmpSize = false;
      test = await run(bwrap, [...this.#common(), this.#javaReal, '-version']);
    }
    if (!test.ok) return { mode: 'none', reason: `bubblewrap cannot start the JVM here: ${test.out.split('\n')[0] ?? ''}` };
    return { mode: 'bwrap' };
  }

  #common(): string[] {
    return [
      '--unshare-all', // user, pid, ipc, uts, cgroup and network namespaces: no network at all
      '--die-with-parent',
      '--new-session',
      '--cap-drop', 'ALL',
      ...this.#binds,
      '--proc', '/proc',
      '--dev', '/dev',
      ...(this.#tmpSize ? ['--size', String(TMP_BYTES)] : []),
      '--tmpfs', '/tmp',
      '--chdir', '/tmp',
    ];
  }

  /**
   * The command for one host JVM over `jarPath`. `jvmArgs` go before the main
   * class, which gets the jar path (as the JVM sees it) as its only argument.
   * Call after {@link state} resolved.
   * @throws PluginUnavailableError when the setting is `bwrap` and bubblewrap does not work.
   */
  launch(classDir: string, jarPath: string, jvmArgs: string[], mainClass: string): JvmLaunch {
    const state = this.#resolved;
    if (!state) throw new Error('JvmSandbox.launch before state()');
    if (state.mode === 'bwrap') {
      return {
        command: 'bwrap',
        args: [...this.#common(), '--ro-bind', classDir, HOST_DIR, '--ro-bind', jarPath, JAR_PATH, this.#javaReal, ...jvmArgs, '-cp', HOST_DIR, mainClass, JAR_PATH],
        cwd: this.#cwd,
      };
    }
    if (this.#setting === 'bwrap') throw new PluginUnavailableError(`jvmSandbox=bwrap but ${state.reason}`);
    return { command: this.#java, args: [...jvmArgs, '-cp', classDir, mainClass, jarPath], cwd: this.#cwd };
  }
}
