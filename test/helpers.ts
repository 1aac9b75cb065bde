/**
 * Test helpers: a server on a fresh temp data dir, and requests signed the way
 * the official clients sign them — computed here with node:crypto, independent
 * of src/auth, so a bug there cannot hide in both.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import type { AppContext } from '../src/context.ts';

export const AK = 'test-access-key-1';
export const SK = 'test-secret-key-0123456789';
export const AK2 = 'test-access-key-2';
export const SK2 = 'other-secret-key-0123456789';

let counter = 0;
/** A fresh resource name per call, so tests never collide. */
export function fresh(prefix = 'r'): string {
  counter++;
  return `${prefix}_${process.pid}_${counter}`;
}

export function tmpDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'pipeline-test-'));
}

const b64url = (b: Buffer): string => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

/** Signs like the Go SDK: HMAC-SHA1 over METHOD, Content-MD5, Content-Type, Date, X-Qiniu-* headers, path. */
export function signRequest(sk: string, method: string, urlPath: string, headers: Record<string, string>): string {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  const qiniu = Object.keys(lower).filter((k) => k.startsWith('x-qiniu-')).sort().map((k) => `\n${k}:${lower[k]}`).join('');
  const data = [method, lower['content-md5'] ?? '', lower['content-type'] ?? '', lower['date'] ?? ''].join('\n') + '\n' + qiniu + urlPath.split('?')[0];
  return b64url(createHmac('sha1', sk).update(data).digest());
}

export interface Call {
  method: string;
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
  ak?: string;
  sk?: string;
  /** Leave the request unsigned. */
  anonymous?: boolean;
}

export interface TestServer {
  app: FastifyInstance;
  ctx: AppContext;
  dir: string;
  config: Config;
  call(c: Call): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Starts a server (not listening) on a temp dir with two accounts. */
export async function startServer(overrides: Record<string, unknown> = {}, dir = tmpDir()): Promise<TestServer> {
  const config = loadConfig({}, {
    dataDir: dir,
    accounts: [
      { id: 'alice', accessKey: AK, secretKey: SK },
      { id: 'bob', accessKey: AK2, secretKey: SK2 },
    ],
    logLevel: 'silent',
    ...overrides,
  });
  const { app, ctx } = await buildApp(config, { logger: false });
  const call = async (c: Call): Promise<LightMyRequestResponse> => {
    const headers: Record<string, string> = { date: new Date().toUTCString(), ...(c.headers ?? {}) };
    let payload: string | Buffer | undefined;
    if (Buffer.isBuffer(c.body) || typeof c.body === 'string') payload = c.body;
    else if (c.body !== undefined) {
      payload = JSON.stringify(c.body);
      headers['content-type'] ??= 'application/json';
    }
    if (!c.anonymous) {
      headers.authorization ??= `Pandora ${c.ak ?? AK}:${signRequest(c.sk ?? SK, c.method, c.url, headers)}`;
    }
    return app.inject({ method: c.method as 'GET', url: c.url, headers, payload });
  };
  return {
    app, ctx, dir, config, call,
    close: async () => {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The E-code of an error response, asserting the wire format on the way. */
export function errorCode(res: LightMyRequestResponse): string {
  if (res.headers['content-type'] !== 'application/json') throw new Error(`content-type ${String(res.headers['content-type'])}: ${res.body}`);
  const body = JSON.parse(res.body) as { error?: string };
  if (typeof body.error !== 'string') throw new Error(`no error field: ${res.body}`);
  return body.error.slice(0, 6);
}

export const SIMPLE_SCHEMA = [
  { key: 'host', valtype: 'string', required: true },
  { key: 'latency', valtype: 'long' },
  { key: 'cpu', valtype: 'float' },
  { key: 'region', valtype: 'string' },
  { key: 'ts', valtype: 'date' },
];

/** Creates a repo with SIMPLE_SCHEMA (or the given schema); throws unless 200. */
export async function makeRepo(s: TestServer, name = fresh('repo'), schema: unknown = SIMPLE_SCHEMA, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await s.call({ method: 'POST', url: `/v2/repos/${name}`, body: { region: 'nb', schema, ...extra } });
  if (res.statusCode !== 200) throw new Error(`create repo ${name}: ${res.statusCode} ${res.body}`);
  return name;
}

/** Pushes text points; returns the response. */
export function push(s: TestServer, repo: string, text: string | Buffer, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return s.call({ method: 'POST', url: `/v2/repos/${repo}/data`, body: text, headers: { 'content-type': 'text/plain', ...headers } });
}
