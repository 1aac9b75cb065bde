/** Helpers of the export tests: a real HTTP receiver on a free port, and waiting on export status. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from './helpers.ts';

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  /** host:port of the receiver. */
  host: string;
  requests: Received[];
  /** Every line of every 2xx-answered request, in arrival order. */
  lines(): string[];
  /** Decides each answer (default 200). */
  respond: (r: Received) => number | { status: number; headers?: Record<string, string> };
  close(): Promise<void>;
}

/** Starts an HTTP receiver that records every request. */
export async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = [];
  const accepted: Received[] = [];
  const rec: Receiver = {
    host: '',
    requests,
    lines: () => accepted.flatMap((r) => r.body.split('\n')).filter((l) => l !== ''),
    respond: () => 200,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(r);
      const a = rec.respond(r);
      const { status, headers } = typeof a === 'number' ? { status: a, headers: {} } : a;
      if (status >= 200 && status < 300) accepted.push(r);
      res.writeHead(status, headers);
      res.end(status >= 300 ? 'refused' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  rec.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return rec;
}

/** Polls until `fn` is true (real time: deliveries are real I/O). */
export async function waitFor(fn: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** GET of one export (with status). */
export async function getExport(s: TestServer, repo: string, name: string): Promise<{ status: Record<string, any> } & Record<string, any>> {
  const res = await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}` });
  if (res.statusCode !== 200) throw new Error(`GET export ${repo}/${name}: ${res.statusCode} ${res.body}`);
  return JSON.parse(res.body);
}

/** Fast retries, so tests of failing deliveries settle in milliseconds. */
export const FAST_RETRIES = { exportRetryMin: '10ms', exportRetryMax: '50ms' };

/** A server with fast export retries and a real HTTP receiver (both closed by `close`). */
export async function startWithReceiver(): Promise<{ s: TestServer; rx: Receiver; close(): Promise<void> }> {
  const s = await startServer(FAST_RETRIES);
  const rx = await startReceiver();
  return { s, rx, close: async () => { await s.close(); await rx.close(); } };
}

