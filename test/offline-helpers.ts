/** Helpers for offline tests: files in bucket folders and under the hdfs root. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { rmSync } from 'node:fs';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import type { Clock } from '../src/offline/scheduler.ts';
import type { OfflineService } from '../src/offline/service.ts';
import { AK, AK2, SK, SK2, signRequest, tmpDir, type Call, type TestServer } from './helpers.ts';

/** Writes a file at `key` in bucket `bucket` of the server's bucket store. */
export function putObject(s: TestServer, bucket: string, key: string, content: string | Buffer, gzip = false): string {
  const file = path.join(s.config.bucketsDir, bucket, key);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, gzip ? gzipSync(content) : content);
  return file;
}

/** Writes a file under the hdfs root. */
export function putHdfs(s: TestServer, rel: string, content: string): string {
  const file = path.join(s.config.hdfsRoot, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

/** JSON lines of `rows`. */
export const jsonl = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Writes a parquet file from a SELECT with plain DuckDB (test-side, not sandboxed). */
export async function writeParquet(file: string, select: string): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`COPY (${select}) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`);
  c.closeSync();
  db.closeSync();
}

/** Reads rows of files with plain DuckDB (test-side). */
export async function readRows(sql: string): Promise<Array<Record<string, unknown>>> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjectsJson() as Array<Record<string, unknown>>;
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/** A manual clock: timers fire only when a test advances time. */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private seq = 0;
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): { cancel(): void } {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return { cancel: () => { this.timers = this.timers.filter((x) => x.id !== id); } };
  }
  /** Moves time forward to `to`, firing due timers in order. */
  advanceTo(to: number): void {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > to) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = to;
  }
  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }
  /** Number of armed timers (the scheduler keeps at most one). */
  get armed(): number {
    return this.timers.length;
  }
}

export interface OfflineServer extends TestServer {
  offline: OfflineService;
  clock?: ManualClock;
}

/** Like startServer, with access to the offline service and an optional manual clock. */
export async function startOffline(overrides: Record<string, unknown> = {}, opts: { clock?: ManualClock; dir?: string } = {}): Promise<OfflineServer> {
  const dir = opts.dir ?? tmpDir();
  const config = loadConfig({}, {
    dataDir: dir,
    accounts: [{ id: 'alice', accessKey: AK, secretKey: SK }, { id: 'bob', accessKey: AK2, secretKey: SK2 }],
    logLevel: 'silent', sqlThreads: 1, sqlMemory: '512MB',
    ...overrides,
  });
  const { app, ctx, offline } = await buildApp(config, { logger: false, clock: opts.clock });
  const call = async (c: Call) => {
    const headers: Record<string, string> = { date: new Date().toUTCString(), ...(c.headers ?? {}) };
    let payload: string | undefined;
    if (c.body !== undefined) {
      payload = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
      headers['content-type'] ??= 'application/json';
    }
    headers.authorization ??= `Pandora ${c.ak ?? AK}:${signRequest(c.sk ?? SK, c.method, c.url, headers)}`;
    return app.inject({ method: c.method as 'GET', url: c.url, headers, payload });
  };
  return {
    app, ctx, dir, config, call, offline, clock: opts.clock,
    close: async () => {
      await app.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Calls and asserts 200, returning the parsed body (or undefined when empty). */
export async function ok(s: TestServer, method: string, url: string, body?: unknown): Promise<any> {
  const res = await s.call({ method, url, body });
  if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.body ? JSON.parse(res.body) : undefined;
}
