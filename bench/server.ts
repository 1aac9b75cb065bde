/**
 * Child processes under test: building the server (and the baseline) to plain
 * JavaScript, starting them on a free port, waiting for health, signed admin
 * requests and stopping them. Shared by every workload that needs a server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { authorization } from '../src/auth/signature.ts';
import { tempDir, sleep, type BenchContext } from './lib.ts';

export const ACCESS_KEY = 'benchAccessKey01';
export const SECRET_KEY = 'benchSecretKey0123456789abcdef';
export const ACCOUNT = 'default'; // id of the account configured by PIPELINE_ACCESS_KEY

/** How to start a program: node arguments before the entry's own arguments. */
export interface Entry {
  args: string[];
  /** 'dist' = compiled JavaScript (what `npm start` runs), 'tsx' = from source. */
  kind: 'dist' | 'tsx';
}

export interface Builds {
  server: Entry;
  baseline: Entry;
}

let builds: Builds | undefined;

function runTsc(ctx: BenchContext, args: string[]): { ok: boolean; output: string } {
  const tsc = path.join(ctx.root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, args, { cwd: ctx.root, encoding: 'utf8', timeout: 120_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** Copies what tsc does not emit (the SQL migrations) next to the compiled files. */
function copyAssets(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    if (entry.isDirectory()) copyAssets(src, path.join(to, entry.name));
    else if (!entry.name.endsWith('.ts')) cpSync(src, path.join(to, entry.name));
  }
}

/**
 * Compiles src/ into a temp dir rather than ./dist, so the bench neither
 * depends on a stale dist nor disturbs the tree others work in. The temp dir
 * gets a node_modules symlink so package imports resolve as in ./dist.
 * Falls back to running from source with tsx when compiling fails.
 */
export function buildOnce(ctx: BenchContext): Builds {
  if (builds) return builds;
  const tsxArgs = (file: string): Entry => ({ args: ['--import', 'tsx', path.join(ctx.root, file)], kind: 'tsx' });
  if (process.env.BENCH_SERVER === 'tsx') return (builds = { server: tsxArgs('src/main.ts'), baseline: tsxArgs('bench/baseline-server.ts') });

  const dir = tempDir(ctx.suiteCleanup, 'build');
  symlinkSync(path.join(ctx.root, 'node_modules'), path.join(dir, 'node_modules'));
  const t0 = performance.now();
  const dist = path.join(dir, 'dist');
  const s = runTsc(ctx, ['-p', 'tsconfig.build.json', '--outDir', dist, '--sourceMap', 'false']);
  let server: Entry;
  if (existsSync(path.join(dist, 'main.js'))) {
    // tsc emits despite type errors (someone's work in progress); the JS is still what we want to measure.
    if (!s.ok) ctx.log(`warning: tsc reported errors building the server, using its output anyway:\n${s.output.slice(0, 2000)}`);
    copyAssets(path.join(ctx.root, 'src'), dist);
    server = { args: [path.join(dist, 'main.js')], kind: 'dist' };
  } else {
    ctx.log(`warning: building the server failed, running it with tsx:\n${s.output.slice(0, 2000)}`);
    server = tsxArgs('src/main.ts');
  }
  // The baseline has no local imports, so it compiles on its own.
  const outBase = path.join(dir, 'baseline');
  const b = runTsc(ctx, [
    'bench/baseline-server.ts', '--ignoreConfig', '--outDir', outBase, '--module', 'nodenext', '--target', 'es2022',
    '--types', 'node', '--typeRoots', path.join(ctx.root, 'node_modules', '@types'), '--skipLibCheck', '--strict',
  ]);
  const baselineJs = path.join(outBase, 'baseline-server.js');
  const baseline: Entry = existsSync(baselineJs) ? { args: [baselineJs], kind: 'dist' } : tsxArgs('bench/baseline-server.ts');
  if (!b.ok) ctx.log(`warning: tsc on the baseline: ${b.output.slice(0, 1000)}`);
  ctx.log(`built server (${server.kind}) and baseline (${baseline.kind}) in ${Math.round(performance.now() - t0)} ms`);
  return (builds = { server, baseline });
}

/** A port nothing listens on right now (the tiny race with other processes is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunningChild {
  name: string;
  pid: number;
  url: string;
  /** Last lines the child wrote to stdout/stderr, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  name: string;
  entry: Entry;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  env: Record<string, string>;
  port: number;
  /** Path answering 200 once the child is ready. */
  healthPath: string;
}

/** Starts a child process and waits until it answers healthPath. */
export async function startChild(ctx: BenchContext, opts: StartOptions): Promise<RunningChild> {
  const [entryFirst, ...entryRest] = opts.entry.args;
  const args = [...(opts.nodeFlags ?? []), entryFirst ?? '', ...entryRest];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ctx.root,
    // Inherited PIPELINE_* settings (e.g. a developer's PIPELINE_CONFIG) would change what is measured.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIPELINE_'))), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${opts.name}`);
  const killNow = ctx.cleanup.addSync(() => {
    if (exitCode === undefined) process.kill(pid, 'SIGKILL');
  });
  const stop = ctx.cleanup.add(`stop ${opts.name}`, async () => {
    if (exitCode === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    killNow(); // no-op once exited; removes the exit-time hook
  });
  const url = `http://127.0.0.1:${opts.port}`;
  const running: RunningChild = {
    name: opts.name,
    pid,
    url,
    output: () => tail,
    stop: async () => {
      await stop();
      return exited;
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${opts.name} exited with ${exitCode} before it was ready:\n${tail}`);
    try {
      const res = await request(`${url}${opts.healthPath}`, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode === 200) return running;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${opts.name} did not become healthy within 30 s:\n${tail}`);
    }
    await sleep(50);
  }
}

/** Headers of a signed request (the signature covers method, Content-Type, Date and path, not the body). */
export function signedHeaders(method: string, reqPath: string, contentType?: string): Record<string, string> {
  const headers: Record<string, string> = { date: new Date().toUTCString() };
  if (contentType) headers['content-type'] = contentType;
  // The query string is not part of the signed resource.
  headers.authorization = authorization(ACCESS_KEY, SECRET_KEY, { method, path: reqPath.split('?')[0] ?? reqPath, headers });
  return headers;
}

/** A signed JSON request to the server; throws on a non-2xx answer. */
export async function signedJson(url: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', reqPath: string, body?: unknown): Promise<string> {
  const ct = body === undefined ? undefined : 'application/json';
  const res = await request(`${url}${reqPath}`, {
    method,
    headers: signedHeaders(method, reqPath, ct),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`${method} ${reqPath}: ${res.statusCode} ${text}`);
  return text;
}

/** Environment for the real server: durable default, quiet logs, the bench account. */
export function serverEnv(dataDir: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PIPELINE_PORT: String(port),
    PIPELINE_HOST: '127.0.0.1',
    PIPELINE_DATA_DIR: dataDir,
    PIPELINE_ACCESS_KEY: ACCESS_KEY,
    PIPELINE_SECRET_KEY: SECRET_KEY,
    PIPELINE_FSYNC: 'always',
    PIPELINE_LOG_LEVEL: 'warn',
    ...extra,
  };
}
