/**
 * Crash recovery of offline runs end to end: a real server process is
 * killed with SIGKILL while a batch runs; after a restart that batch is
 * Failed with a message saying why, its staged output is not published, and
 * a crontab job scheduled before the crash keeps running on schedule.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { AK, SK, signRequest, tmpDir } from './helpers.ts';
import { jsonl } from './offline-helpers.ts';

const ROOT = new URL('..', import.meta.url).pathname;

async function startChild(dir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PIPELINE_PORT: '0', PIPELINE_DATA_DIR: dir, PIPELINE_ACCESS_KEY: AK, PIPELINE_SECRET_KEY: SK, PIPELINE_LOG_LEVEL: 'info', PIPELINE_SQL_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening at (http:\/\/[^"\s]+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1] as string); }
    });
    child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${out}`)); });
  });
  return { child, base };
}

async function call(base: string, method: string, p: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { date: new Date().toUTCString() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  headers.authorization = `Pandora ${AK}:${signRequest(SK, method, p, headers)}`;
  const res = await request(base + p, { method: method as 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${method} ${p}: ${res.statusCode} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const waitFor = async (what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('offline crash recovery', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('marks a batch cut off by kill -9 Failed after restart, publishes none of it, and keeps the schedules', async () => {
    const file = path.join(dir, 'buckets', 'crash-bkt', 'in', 'a.json');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, jsonl([{ a: 1 }, { a: 2 }]));
    let { child, base } = await startChild(dir);
    try {
      await call(base, 'POST', '/v2/datasources/src', { type: 'kodo', spec: { bucket: 'crash-bkt', keyPrefixes: ['in/'], fileType: 'json' } });
      await call(base, 'POST', '/v2/jobs/slow', { srcs: [{ name: 'src', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT sum(hash(range + a)) AS h FROM t, range(100000000000)', type: 'SQL' }, scheduler: { type: 'manual' } });
      await call(base, 'POST', '/v2/jobs/slow/exports/out', { type: 'kodo', spec: { bucket: 'crash-out', keyPrefix: 'slow/' } });
      // Every 2 seconds (Quartz, with seconds).
      await call(base, 'POST', '/v2/jobs/tick', { srcs: [{ name: 'src', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT count(*) AS c FROM t', type: 'SQL' }, scheduler: { type: 'crontab', spec: { crontab: '0/2 * * * * ?' } } });
      await call(base, 'POST', '/v2/jobs/slow/actions/start');
      await waitFor('the slow batch to run', async () => (await call(base, 'GET', '/v2/jobs/slow/history?runId=-1')).history[0]?.status === 'Running');
      const staging = path.join(dir, 'buckets', 'crash-out', '.offline-staging');
      await waitFor('the slow batch to stage its export', async () => existsSync(staging) && readdirSync(staging).length === 1);
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));

      const restartedAt = Date.now();
      ({ child, base } = await startChild(dir));
      const slow = (await call(base, 'GET', '/v2/jobs/slow/history')).history;
      assert.equal(slow.length, 1);
      assert.equal(slow[0].status, 'Failed');
      assert.match(slow[0].message, /server stopped during this run/);
      assert.equal(existsSync(path.join(dir, 'buckets', 'crash-out', 'slow')), false, 'nothing of the cut-off run is published');
      assert.equal(existsSync(staging), false, 'its staged files are swept at start');
      await waitFor('a scheduled tick after the restart', async () => {
        const h = (await call(base, 'GET', '/v2/jobs/tick/history?sortBy=-batchTime&size=1')).history;
        return h.length > 0 && Date.parse(h[0].batchTime) >= restartedAt && h[0].status === 'Successful';
      });
      // The killed run can be rerun once the server is back.
      const rr = await call(base, 'POST', '/v2/batch/actions/rerun', { jobName: 'slow', runId: 1 });
      assert.equal(rr.preStatus, 'Failed');
      await call(base, 'POST', '/v2/jobs/slow/actions/stop');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    }
  });
});
