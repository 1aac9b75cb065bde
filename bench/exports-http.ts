/**
 * http export workloads (listed in run.ts):
 *  - exports-http: points/s delivered from a 1M-point repo to a receiver
 *    that only counts (its own process), against a bare loop that reads the
 *    same log in the same batches and POSTs them with undici, same process,
 *    same receiver. Target >= 0.7x and >= 500,000 points/s.
 *  - exports-latency: the real server with one http export, 10,000 points/s
 *    pushed steadily; push 200 OK -> the point at the receiver, p99 <= 1 s.
 *  - ingest-exports: the ingest workload with three http exports attached,
 *    as a ratio to the same ingest without them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, request } from 'undici';
import { runIngest } from './ingest.ts';
import { fmtInt, fmtNum, percentile, sleep, tempDir, type BenchContext, type Workload, type WorkloadResult } from './lib.ts';
import { buildOnce, freePort, serverEnv, signedHeaders, signedJson, startChild } from './server.ts';
import { ACCOUNT, fillSource, startInProcess } from './transform-app.ts';

const N = 1_000_000;
const BATCH = 20_000;
const TARGET_RATIO = 0.7;
const TARGET_PPS = 500_000;
const TARGET_P99_MS = 1000;

/** A receiver that counts lines of every POST (one process of its own, as a real receiver would be). */
const RECEIVER_JS = `
let lines = 0, requests = 0;
require('node:http').createServer((req, res) => {
  if (req.method === 'GET') { res.end(JSON.stringify({ lines, requests })); return; }
  let n = 0, any = false;
  req.on('data', (c) => { any = true; for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) n++; });
  req.on('end', () => { if (any) n++; lines += n; requests++; res.end(); });
}).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port); });
`;

interface CountingReceiver {
  host: string;
  count(): Promise<{ lines: number; requests: number }>;
  stop(): void;
}

async function startCountingReceiver(ctx: BenchContext): Promise<CountingReceiver> {
  const child: ChildProcess = spawn(process.execPath, ['-e', RECEIVER_JS], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = ctx.cleanup.addSync(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      const m = /port (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error('receiver exited')));
  });
  const host = `127.0.0.1:${port}`;
  return {
    host,
    count: async () => JSON.parse(await (await request(`http://${host}/`)).body.text()) as { lines: number; requests: number },
    stop: kill,
  };
}

/** Waits until the receiver counted `target` lines; returns when it did (performance.now()). */
async function until(rx: CountingReceiver, target: number, capMs = 120_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if ((await rx.count()).lines >= target) return performance.now();
    if (performance.now() - t0 > capMs) throw new Error(`receiver got only ${(await rx.count()).lines} of ${target} lines`);
    await sleep(5);
  }
}

async function runThroughput(ctx: BenchContext): Promise<WorkloadResult> {
  const app = await startInProcess(ctx, 'exports-http', { exportBatch: BATCH, exportBatchSize: '64MB' });
  const rx = await startCountingReceiver(ctx);
  ctx.log(`filling ${fmtInt(N)} points`);
  await app.ctx.repos.create(ACCOUNT, 'src', { region: 'nb', schema: (await import('./points.ts')).SCHEMA });
  await fillSource(app, 'src', N);
  const repo = app.ctx.repos.must(ACCOUNT, 'src');
  const log = await app.ctx.repos.log(ACCOUNT, repo);
  const bytes = log.sizeBytes();
  const pool = new Pool(`http://${rx.host}`, { connections: 4 });
  ctx.cleanup.add('close pool', () => pool.close());

  /** The floor: read BATCH lines, join, POST, wait for the answer, repeat. */
  const bare = async (): Promise<number> => {
    const start = (await rx.count()).lines;
    const t0 = performance.now();
    for (let from = 0; from < N;) {
      const r = await log.read(from, BATCH);
      const res = await pool.request({ path: '/bare', method: 'POST', headers: { 'content-type': 'text/plain' }, body: r.lines.join('\n') });
      await res.body.dump();
      from = r.next;
    }
    const ms = performance.now() - t0;
    if ((await rx.count()).lines - start !== N) throw new Error('bare loop lost lines');
    return ms;
  };
  let run = 0;
  const engine = async (): Promise<number> => {
    const start = (await rx.count()).lines;
    const t0 = performance.now();
    await app.ctx.exports.create(ACCOUNT, 'src', `e${run++}`, { type: 'http', spec: { host: rx.host, uri: '/export' } });
    const t1 = await until(rx, start + N);
    return t1 - t0;
  };
  const times = { bare: [] as number[], engine: [] as number[] };
  // One untimed run of each first: the first pass of either pays for JIT and page cache.
  ctx.log(`warm-up: bare ${fmtInt(await bare())} ms, engine ${fmtInt(await engine())} ms`);
  // Alternate B E E B B E so machine noise hits both alike.
  for (const which of ['bare', 'engine', 'engine', 'bare', 'bare', 'engine'] as const) {
    const ms = which === 'bare' ? await bare() : await engine();
    times[which].push(ms);
    ctx.log(`${which}: ${fmtInt(ms)} ms`);
  }
  const best = (a: number[]): number => [...a].sort((x, y) => x - y)[1] as number; // median of 3
  const pps = { bare: N / (best(times.bare) / 1000), engine: N / (best(times.engine) / 1000) };
  const ratio = pps.engine / pps.bare;
  const statuses = await Promise.all(app.ctx.meta.listExports(ACCOUNT, 'src').map((e) => app.ctx.exportEngine.status(ACCOUNT, e)));
  return {
    tables: [{
      title: `http export of ${fmtInt(N)} points (${fmtNum(bytes / N, 0)} bytes/point on disk) to a counting receiver, batches of ${fmtInt(BATCH)}; median of 3 after a warm-up run of each`,
      columns: ['target', 'ms', 'points/s', 'MB/s'],
      rows: [
        ['bare loop: log.read + join + undici POST', fmtInt(best(times.bare)), fmtInt(pps.bare), fmtNum(bytes / 1e6 / (best(times.bare) / 1000))],
        ['export engine (create -> last point counted)', fmtInt(best(times.engine)), fmtInt(pps.engine), fmtNum(bytes / 1e6 / (best(times.engine) / 1000))],
      ],
    }],
    checks: [
      { name: 'exports-http engine / bare loop', target: `>= ${TARGET_RATIO}x`, actual: `${fmtNum(ratio, 2)}x`, ok: ratio >= TARGET_RATIO },
      { name: 'exports-http points/s', target: `>= ${fmtInt(TARGET_PPS)}`, actual: fmtInt(pps.engine), ok: pps.engine >= TARGET_PPS },
    ],
    json: { n: N, batch: BATCH, bytes, times, pps, ratio, states: statuses.map((s) => s.state) },
    notes: [`Engine time includes the export's creation, an offset commit per batch (fsynced at most once a second) and the status bookkeeping.`],
  };
}

async function runLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const RATE = 10_000;
  const EVERY_MS = 50;
  const PER_PUSH = (RATE * EVERY_MS) / 1000;
  const PUSH_MS = 20_000;
  const arrived: number[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = performance.now();
      for (const m of Buffer.concat(chunks).toString().matchAll(/(?:^|\n)seq=(\d+)/g)) {
        const k = Number(m[1]);
        arrived[k] ??= now;
      }
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  ctx.cleanup.add('close receiver', () => new Promise<void>((r) => { receiver.closeAllConnections(); receiver.close(() => r()); }));
  const host = `127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const entry = buildOnce(ctx).server;
  const port = await freePort();
  const server = await startChild(ctx, { name: 'server', entry, env: serverEnv(tempDir(ctx.cleanup, 'exports-latency'), port), port, healthPath: '/health' });
  const okAt: number[] = [];
  let status: unknown;
  try {
    await signedJson(server.url, 'POST', '/v2/repos/src', { region: 'nb', schema: [{ key: 'seq', valtype: 'long' }, { key: 'host', valtype: 'string' }, { key: 'latency', valtype: 'long' }] });
    await signedJson(server.url, 'POST', '/v2/repos/src/exports/lat', { type: 'http', spec: { host, uri: '/lat' } });
    ctx.log(`pushing ${PER_PUSH} points every ${EVERY_MS} ms (${fmtInt(RATE)} points/s) for ${PUSH_MS / 1000} s`);
    const path = '/v2/repos/src/data';
    const start = performance.now();
    for (let seq = 0; seq * EVERY_MS < PUSH_MS; seq++) {
      await sleep(Math.max(0, start + seq * EVERY_MS - performance.now()));
      const body = Array.from({ length: PER_PUSH }, (_, i) => `seq=${seq}\thost=web-${String(i % 100).padStart(3, '0')}.nb\tlatency=${i}`).join('\n');
      const res = await request(`${server.url}${path}`, { method: 'POST', headers: signedHeaders('POST', path, 'text/plain'), body });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`push ${seq}: ${res.statusCode}`);
      okAt[seq] = performance.now();
    }
    const deadline = performance.now() + 5000;
    while (arrived[okAt.length - 1] === undefined && performance.now() < deadline) await sleep(20);
    status = (JSON.parse(await signedJson(server.url, 'GET', '/v2/repos/src/exports/lat')) as { status: unknown }).status;
  } finally {
    await server.stop();
  }
  const lat = okAt.map((ok, k) => (arrived[k] === undefined ? Infinity : Math.max(0, (arrived[k] as number) - ok))).sort((a, b) => a - b);
  const p50 = percentile(lat, 50);
  const p99 = percentile(lat, 99);
  const ms = (v: number): string => (Number.isFinite(v) ? fmtNum(v, 1) : 'never');
  return {
    tables: [{
      title: `push 200 OK -> points at the http receiver, ${fmtInt(RATE)} points/s in pushes of ${PER_PUSH} (server: ${entry.kind}, fsync=always)`,
      columns: ['pushes', 'never arrived', 'p50 ms', 'p99 ms', 'max ms'],
      rows: [[fmtInt(okAt.length), fmtInt(lat.filter((v) => !Number.isFinite(v)).length), ms(p50), ms(p99), ms(lat[lat.length - 1] ?? NaN)]],
    }],
    checks: [{ name: 'exports-latency p99', target: `<= ${TARGET_P99_MS} ms`, actual: `${ms(p99)} ms`, ok: p99 <= TARGET_P99_MS }],
    json: { rate: RATE, pushes: okAt.length, p50, p99, max: lat[lat.length - 1], status },
    notes: ['A push counts as arrived when the first request carrying any of its points ends at the receiver (its points travel together in one batch).'],
  };
}

async function runIngestExports(ctx: BenchContext): Promise<WorkloadResult> {
  const { makeBodies } = await import('./points.ts');
  const bodies = makeBodies(4, 1 << 20);
  buildOnce(ctx);
  const rx = await startCountingReceiver(ctx);
  ctx.log('ingest without exports');
  const plain = await runIngest(ctx, bodies, tempDir(ctx.cleanup, 'ingest-plain'));
  ctx.log('ingest with three http exports');
  let lagAfter: unknown;
  let catchUpS = NaN;
  const withExports = await runIngest(ctx, bodies, tempDir(ctx.cleanup, 'ingest-exports'), async (url) => {
    for (const n of ['a', 'b', 'c']) await signedJson(url, 'POST', `/v2/repos/bench_ingest/exports/${n}`, { type: 'http', spec: { host: rx.host, uri: `/${n}` } });
  }, async (url) => {
    const lags = async (): Promise<Array<{ points: number; seconds: number }>> => Promise.all(['a', 'b', 'c'].map(async (n) => (JSON.parse(await signedJson(url, 'GET', `/v2/repos/bench_ingest/exports/${n}`)) as { status: { lag: { points: number; seconds: number } } }).status.lag));
    lagAfter = await lags();
    // Exports that fell behind while ingest had the CPU catch up once it stops.
    const t0 = performance.now();
    while ((await lags()).some((l) => l.points > 0) && performance.now() - t0 < 120_000) await sleep(250);
    catchUpS = (performance.now() - t0) / 1000;
  });
  const ratio = withExports.server.pointsPerSec / plain.server.pointsPerSec;
  return {
    tables: [{
      title: 'ingest (points/s acknowledged) with and without three http exports to a counting receiver',
      columns: ['server', 'points/s', 'vs its bare baseline'],
      rows: [
        ['plain', fmtInt(plain.server.pointsPerSec), `${fmtNum(plain.server.pointsPerSec / plain.baseline.pointsPerSec, 2)}x`],
        ['3 http exports', fmtInt(withExports.server.pointsPerSec), `${fmtNum(withExports.server.pointsPerSec / withExports.baseline.pointsPerSec, 2)}x`],
      ],
    }],
    checks: [],
    json: { plain: plain.server, withExports: withExports.server, ratio, lagAfter, catchUpS, received: await rx.count() },
    notes: [
      `With three exports ingest runs at ${fmtNum(ratio, 2)}x of plain ingest; export lag when the load ended: ${JSON.stringify(lagAfter)};`,
      `all three caught up ${fmtNum(catchUpS)} s later. Exports never hold back a push: when ingest saturates the CPU they fall behind and catch up after.`,
    ],
  };
}

export const exportsHttpWorkload: Workload = {
  name: 'exports-http',
  description: 'http export of a 1M-point repo to a counting receiver vs a bare read+POST loop (points/s)',
  run: runThroughput,
};
export const exportsLatencyWorkload: Workload = {
  name: 'exports-latency',
  description: 'real server, 10,000 points/s pushed: 200 OK -> point at the http receiver (p50/p99)',
  run: runLatency,
};
export const ingestExportsWorkload: Workload = {
  name: 'ingest-exports',
  description: 'the ingest workload with three http exports attached, as a ratio to plain ingest',
  run: runIngestExports,
};
