/**
 * A real InfluxDB 1.x (`influxd`, Debian package `influxdb`) for tests and
 * benches: started on free loopback ports with a temp dir and a generated
 * config (HTTP and the RPC bind only, reporting and every other listener
 * off), ready once /ping answers, stopped and removed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';

export interface Influx {
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Runs InfluxQL on /query; answers the parsed JSON (throws on a non-2xx). */
  query(q: string, db?: string): Promise<InfluxResult>;
  /** `SELECT ...` rows of the first series as objects keyed by column (empty when none). */
  rows(q: string, db: string): Promise<Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}
export interface InfluxResult {
  results: Array<{ statement_id: number; series?: InfluxSeries[]; error?: string }>;
  error?: string;
}

/** A free TCP port on 127.0.0.1 (bound and released; influxd binds it right after). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function configText(dir: string, httpPort: number, rpcPort: number, auth: boolean): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${path.join(dir, 'meta')}"
  logging-enabled = false

[data]
  dir = "${path.join(dir, 'data')}"
  wal-dir = "${path.join(dir, 'wal')}"
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = ${auth}
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  max-body-size = 25000000

[logging]
  level = "warn"

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
`;
}

export interface InfluxOptions {
  /** Turn on auth and create this admin user (queries of the helper then use it). */
  admin?: { user: string; password: string };
  timeoutMs?: number;
}

/** Starts influxd; rejects (and cleans up) when it does not answer /ping within the timeout. */
export async function startInflux(opts: InfluxOptions = {}): Promise<Influx> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const dir = mkdtempSync(path.join(tmpdir(), 'influx-test-'));
  const [httpPort, rpcPort] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'influxdb.conf');
  writeFileSync(conf, configText(dir, httpPort, rpcPort, opts.admin !== undefined));
  const child: ChildProcess = spawn('influxd', ['run', '-config', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 20_000) stderr += b.toString();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  const url = `http://127.0.0.1:${httpPort}`;
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`influxd exited during start-up: ${stderr.slice(-2000)}`);
    }
    try {
      const res = await request(`${url}/ping`);
      await res.body.dump();
      if (res.statusCode === 204) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`influxd did not answer /ping within ${timeoutMs} ms: ${stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const query = async (q: string, db?: string): Promise<InfluxResult> => {
    const params = new URLSearchParams({ q, epoch: 'ns' });
    if (db !== undefined) params.set('db', db);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (opts.admin) headers.authorization = `Basic ${Buffer.from(`${opts.admin.user}:${opts.admin.password}`).toString('base64')}`;
    const res = await request(`${url}/query`, { method: 'POST', body: params.toString(), headers });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`influx /query ${res.statusCode}: ${text}`);
    // Integers stay exact: nanosecond times exceed 2^53.
    return JSON.parse(text.replace(/([[,:])(-?\d{16,})(?=[,\]}])/g, '$1"$2"')) as InfluxResult;
  };
  if (opts.admin) {
    // With auth on and no user yet, influxd accepts exactly this statement unauthenticated.
    await query(`CREATE USER "${opts.admin.user}" WITH PASSWORD '${opts.admin.password}' WITH ALL PRIVILEGES`).catch(async (err: unknown) => {
      await stop();
      throw err;
    });
  }
  const rows = async (q: string, db: string): Promise<Array<Record<string, unknown>>> => {
    const r = await query(q, db);
    const first = r.results[0];
    if (first?.error) throw new Error(`influx: ${first.error}`);
    const series = first?.series ?? [];
    const out: Array<Record<string, unknown>> = [];
    for (const s of series) {
      for (const v of s.values) out.push({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) });
    }
    return out;
  };
  return { url, query, rows, stop };
}
