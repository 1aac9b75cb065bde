/**
 * The real server as a child process (node --import tsx src/main.ts) on a
 * free port, for crash, shutdown and other process-level tests: its address
 * is read from its "listening at" log line.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { AK, SK, signRequest } from './helpers.ts';

const ROOT = new URL('..', import.meta.url).pathname;
/** How long a start may take before `base` rejects (the machine is shared and loaded). */
const START_MS = 30_000;

export interface SpawnedServer {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** `http://127.0.0.1:<port>` once listening; rejects (with the output) if the process exits or hangs first. */
  base: Promise<string>;
  port: Promise<number>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Everything the process wrote so far (stdout and stderr). */
  log(): string;
  /** A signed request (account of AK/SK) to the child. */
  call(method: string, path: string, body?: string, contentType?: string): Promise<{ status: number; body: string }>;
  /** `call` with a JSON body, throwing unless 200; the parsed answer. */
  json(method: string, path: string, body?: unknown): Promise<any>;
  /** Sends `signal` (SIGKILL by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the server on `dir` with PIPELINE_PORT=0, the test keys AK/SK and `env` on top. */
export function spawnServer(dir: string, env: Record<string, string> = {}): SpawnedServer {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PIPELINE_PORT: '0', PIPELINE_DATA_DIR: dir, PIPELINE_ACCESS_KEY: AK, PIPELINE_SECRET_KEY: SK, PIPELINE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const base = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within ${START_MS} ms: ${out}`)), START_MS);
    const seen = (d: Buffer): void => {
      out += d.toString();
      const m = /listening at (http:\/\/[^"\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}): ${out}`));
    });
  });
  void base.catch(() => undefined); // observed by whoever awaits it; not an unhandled rejection otherwise
  const port = base.then((b) => Number(new URL(b).port));
  void port.catch(() => undefined);
  const call = async (method: string, path: string, body?: string, contentType = 'application/json') => {
    const headers: Record<string, string> = { date: new Date().toUTCString() };
    if (body !== undefined) headers['content-type'] = contentType;
    headers.authorization = `Pandora ${AK}:${signRequest(SK, method, path, headers)}`;
    const res = await request((await base) + path, { method: method as 'GET', headers, body });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const json = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await call(method, path, body === undefined ? undefined : JSON.stringify(body));
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
    return res.body ? JSON.parse(res.body) : undefined;
  };
  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { child, base, port, exited, log: () => out, call, json, stop };
}
