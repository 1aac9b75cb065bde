/**
 * isolation: the real server (child process) with two accounts. Account
 * "hostile" runs the workloads of issue 12 one after another (SQL that folds
 * a huge constant at create, SQL runs that fill Node's thread pool, a SQL
 * transform returning 30M rows, a JS plugin returning 3M points); meanwhile
 * the default account pushes 1,000 points and calls GET /health in a loop.
 * Reports push and /health p99 per phase against the idle phase measured
 * first in the same run, and the server's peak RSS against the bound in
 * docs/configuration.md.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { authorization } from '../src/auth/signature.ts';
import { fmtInt, percentile, procStatusKb, sleep, tempDir, type BenchContext, type Check, type Workload, type WorkloadResult } from './lib.ts';
import { buildOnce, freePort, serverEnv, signedHeaders, startChild, type RunningChild } from './server.ts';

const HOSTILE = { id: 'hostile', accessKey: 'hostileAccess01', secretKey: 'hostileSecret0123456789abcdef' };
const PUSH_P99_MS = 200;
const HEALTH_P99_MS = 100;
const MB = 1024 * 1024;
/** docs/configuration.md "Memory bound" with this run's settings: 300 MB + sqlMemory + transformSlots × transformOutputBytes. */
const SETTINGS = { sqlMemoryMb: 1024, slots: 4, outputBytesMb: 512, sqlTimeout: '10s' };
const RSS_BOUND_MB = 300 + SETTINGS.sqlMemoryMb + SETTINGS.slots * SETTINGS.outputBytesMb;

interface Phase {
  name: string;
  push99: number;
  pushMax: number;
  health99: number;
  pushes: number;
  rssPeakMb: number;
  note: string;
}

async function hostileCall(url: string, method: string, p: string, body?: string, contentType = 'application/json'): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { date: new Date().toUTCString() };
  if (body !== undefined) headers['content-type'] = contentType;
  headers.authorization = authorization(HOSTILE.accessKey, HOSTILE.secretKey, { method, path: p, headers });
  const res = await request(`${url}${p}`, { method: method as 'GET', headers, body });
  return { status: res.statusCode, text: await res.body.text() };
}

async function must(r: Promise<{ status: number; text: string }>): Promise<string> {
  const { status, text } = await r;
  if (status !== 200) throw new Error(`${status} ${text}`);
  return text;
}

/** The victim's traffic while `work` runs (and at least `minMs`). */
async function probe(server: RunningChild, name: string, minMs: number, work: () => Promise<string>): Promise<Phase> {
  const repo = `victim_${name.replace(/\W+/g, '_')}`;
  await request(`${server.url}/v2/repos/${repo}`, {
    method: 'POST', headers: signedHeaders('POST', `/v2/repos/${repo}`, 'application/json'),
    body: JSON.stringify({ region: 'nb', schema: [{ key: 'host', valtype: 'string' }, { key: 'v', valtype: 'long' }] }),
  }).then((r) => r.body.text());
  const body = Array.from({ length: 1000 }, (_, i) => `host=web-${i % 17}\tv=${i}`).join('\n');
  const pushes: number[] = [];
  const health: number[] = [];
  let rss = 0;
  let done = false;
  const sampler = setInterval(() => (rss = Math.max(rss, (procStatusKb(server.pid, 'VmRSS') ?? 0) / 1024)), 50);
  const traffic = (async () => {
    while (!done) {
      let t = performance.now();
      const p = `/v2/repos/${repo}/data`;
      const res = await request(`${server.url}${p}`, { method: 'POST', headers: signedHeaders('POST', p, 'text/plain'), body });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`victim push: ${res.statusCode}`);
      pushes.push(performance.now() - t);
      t = performance.now();
      await (await request(`${server.url}/health`)).body.text();
      health.push(performance.now() - t);
      await sleep(5);
    }
  })();
  let note: string;
  try {
    [note] = await Promise.all([work(), sleep(minMs)]);
  } finally {
    done = true;
    await traffic;
    clearInterval(sampler);
  }
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  return {
    name, note, pushes: pushes.length, rssPeakMb: Math.round(rss),
    push99: percentile(sorted(pushes), 99), pushMax: Math.max(0, ...pushes), health99: percentile(sorted(health), 99),
  };
}

async function sqlTransform(url: string, src: string, name: string, code: string): Promise<{ status: number; text: string }> {
  return hostileCall(url, 'POST', `/v2/repos/${src}/transforms/${name}/to/${src}_out`, JSON.stringify({ mode: 'sql', code, interval: '10m' }));
}

async function makeRepo(url: string, name: string, schema: unknown): Promise<void> {
  await must(hostileCall(url, 'POST', `/v2/repos/${name}`, JSON.stringify({ region: 'nb', schema })));
}

/** Waits until every named transform of `src` reports a lastError (or `ms` passed); returns the errors. */
async function waitErrors(url: string, names: Array<[string, string]>, ms: number): Promise<string> {
  const until = performance.now() + ms;
  let errors: string[] = [];
  while (performance.now() < until) {
    errors = [];
    for (const [src, name] of names) {
      const t = JSON.parse(await must(hostileCall(url, 'GET', `/v2/repos/${src}/transforms/${name}`))) as { status: { lastError: string | null } };
      if (t.status.lastError) errors.push(t.status.lastError.split('\n')[0]!.slice(0, 90));
    }
    if (errors.length === names.length) break;
    await sleep(200);
  }
  return errors.join(' | ') || 'no error reported';
}

async function run(ctx: BenchContext): Promise<WorkloadResult> {
  const builds = buildOnce(ctx);
  const dir = tempDir(ctx.cleanup, 'isolation');
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ accounts: [HOSTILE] }));
  const port = await freePort();
  const server = await startChild(ctx, {
    name: 'server', entry: builds.server, port, healthPath: '/health',
    env: serverEnv(path.join(dir, 'data'), port, {
      PIPELINE_CONFIG: configFile, PIPELINE_TRANSFORM_SLOTS: String(SETTINGS.slots), PIPELINE_SQL_TIMEOUT: SETTINGS.sqlTimeout,
      PIPELINE_SQL_MEMORY: `${SETTINGS.sqlMemoryMb}MB`, PIPELINE_TRANSFORM_OUTPUT_BYTES: `${SETTINGS.outputBytesMb}MB`,
    }),
  });
  ctx.cleanup.add('stop server', () => server.stop().then(() => undefined));
  const url = server.url;
  const phases: Phase[] = [];

  ctx.log('isolation: idle');
  phases.push(await probe(server, 'idle', 5_000, async () => ''));

  ctx.log('isolation: create-time constant folding');
  const folds = [
    "select repeat('x', 1000000000) as a from %s",
    'select range(1 << 30) as a from %s',
    'select len(list_transform(range(200000000), x -> x::varchar)) as a from %s',
    "select string_agg(x::varchar, ',') as a from range(400000000) t(x), %s",
  ];
  for (let i = 0; i < folds.length; i++) await makeRepo(url, `fold${i}`, [{ key: 'a', valtype: 'string' }]);
  phases.push(await probe(server, '4 creates folding huge constants', 0, async () => {
    const res = await Promise.all(folds.map((q, i) => sqlTransform(url, `fold${i}`, 'boom', q.replace('%s', `fold${i}`))));
    return res.map((r) => (r.status === 200 ? 'accepted!' : r.text.slice(10, 40))).join(' | ');
  }));

  ctx.log('isolation: SQL runs filling the thread pool');
  const slow: Array<[string, string]> = [];
  for (let i = 0; i < 4; i++) {
    await makeRepo(url, `slow${i}`, [{ key: 'n', valtype: 'long' }]);
    await must(hostileCall(url, 'POST', `/v2/repos/slow${i}/data`, 'n=40000000000', 'text/plain'));
    slow.push([`slow${i}`, 'slow']);
  }
  phases.push(await probe(server, '4 SQL runs until sqlTimeout', 0, async () => {
    for (const [src] of slow) await must(sqlTransform(url, src, 'slow', `select count(*) as c from ${src}, range(n)`));
    return waitErrors(url, slow, 60_000);
  }));

  ctx.log('isolation: SQL transform returning 30M rows');
  await makeRepo(url, 'flood', [{ key: 'n', valtype: 'long' }]);
  await must(hostileCall(url, 'POST', '/v2/repos/flood/data', 'n=30000000', 'text/plain'));
  phases.push(await probe(server, 'SQL returning 30M rows', 0, async () => {
    await must(sqlTransform(url, 'flood', 'flood', 'select unnest(range(n)) as x from flood'));
    return waitErrors(url, [['flood', 'flood']], 60_000);
  }));

  ctx.log('isolation: plugin returning 3M points');
  const code = 'export default (p) => { const a = new Array(3000000); for (let i = 0; i < a.length; i++) a[i] = { v: i }; return a; };';
  await must(hostileCall(url, 'POST', '/v2/plugins/com.x.Flood', code, 'application/javascript'));
  await makeRepo(url, 'pflood', [{ key: 'host', valtype: 'string' }]);
  await must(hostileCall(url, 'POST', '/v2/repos/pflood/data', 'host=a', 'text/plain'));
  phases.push(await probe(server, 'plugin returning 3M points', 0, async () => {
    await must(hostileCall(url, 'POST', '/v2/repos/pflood/transforms/pflood/to/pflood_out', JSON.stringify({ plugin: { name: 'com.x.Flood', output: [{ name: 'v', type: 'long' }] }, interval: '10m' })));
    return waitErrors(url, [['pflood', 'pflood']], 60_000);
  }));

  const hwm = Math.round((procStatusKb(server.pid, 'VmHWM') ?? 0) / 1024);
  const idle = phases[0]!;
  const checks: Check[] = [];
  for (const p of phases.slice(1)) {
    checks.push({ name: `push p99 during "${p.name}"`, target: `< ${PUSH_P99_MS} ms`, actual: `${p.push99.toFixed(0)} ms (idle ${idle.push99.toFixed(0)} ms)`, ok: p.push99 < PUSH_P99_MS });
    checks.push({ name: `/health p99 during "${p.name}"`, target: `< ${HEALTH_P99_MS} ms`, actual: `${p.health99.toFixed(1)} ms`, ok: p.health99 < HEALTH_P99_MS });
  }
  checks.push({ name: 'server peak RSS (VmHWM)', target: `< ${RSS_BOUND_MB} MB`, actual: `${hwm} MB`, ok: hwm < RSS_BOUND_MB });
  return {
    tables: [{
      title: 'victim account (1,000-point durable push, then GET /health, in a loop) while the hostile account runs each workload',
      columns: ['phase', 'pushes', 'push p99 ms', 'push max ms', 'health p99 ms', 'server RSS peak MB', 'outcome'],
      rows: phases.map((p) => [p.name, fmtInt(p.pushes), p.push99.toFixed(0), p.pushMax.toFixed(0), p.health99.toFixed(1), fmtInt(p.rssPeakMb), p.note]),
    }],
    checks,
    json: { phases, hwmMb: hwm, rssBoundMb: RSS_BOUND_MB, settings: SETTINGS },
    notes: [`Server settings: transformSlots ${SETTINGS.slots}, sqlTimeout ${SETTINGS.sqlTimeout}, sqlMemory ${SETTINGS.sqlMemoryMb}MB, transformOutputBytes ${SETTINGS.outputBytesMb}MB, others default.`],
  };
}

export const isolationWorkload: Workload = {
  name: 'isolation',
  description: 'push and /health p99 of one account, and server RSS, while another runs hostile SQL and plugin workloads',
  run,
};
