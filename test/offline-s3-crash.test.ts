/**
 * A server killed with SIGKILL in the middle of an S3 job export publish
 * (overwrite and append), end to end: the real server process talks to the
 * s3rver emulator through a forwarding HTTP proxy in this test, which holds
 * the crashed run's uploads after the first two of each folder, so the kill
 * lands exactly mid-publish. After restarts the bucket holds no `_PENDING`
 * and no object of the cut-off run, the previous output is intact, and the
 * jobs publish normally again.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { objectStoreFor, type ObjectStore } from '../src/objectstore/index.ts';
import { startS3Emulator, testConfig, type S3Emulator } from './buckets-helpers.ts';
import { waitFor } from './exports-helpers.ts';
import { tmpDir } from './helpers.ts';
import { jsonl } from './offline-helpers.ts';
import { spawnServer, type SpawnedServer } from './spawn.ts';

/** What the proxy does with a request: forward it, hold it unanswered, or answer 503. */
type Mode = 'forward' | 'hold' | 'down';

interface Proxy {
  endpoint: string;
  /** Decides per request; default forward. */
  mode: (method: string, url: string) => Mode;
  /** Requests held so far, by URL path. */
  held: string[];
  close(): Promise<void>;
}

/** A forwarding HTTP proxy to `upstream` (the Host header is kept, so SigV4 signatures stay valid). */
async function startProxy(upstream: string): Promise<Proxy> {
  const up = new URL(upstream);
  const proxy: Proxy = { endpoint: '', mode: () => 'forward', held: [], close: async () => undefined };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const mode = proxy.mode(req.method ?? '', req.url ?? '');
    if (mode === 'hold') {
      proxy.held.push((req.url ?? '').split('?')[0] as string);
      req.resume();
      return; // never answered: the uploader waits until it is killed
    }
    if (mode === 'down') {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code><Message>down for the test</Message></Error>');
      return;
    }
    const out = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.on('clientError', (_e, sock) => sock.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return proxy;
}

describe('S3 job export publish cut off by kill -9', () => {
  let s3: S3Emulator;
  let proxy: Proxy;
  let store: ObjectStore;
  const dir = tmpDir();
  const cfg = { dir: '' };
  before(async () => {
    s3 = await startS3Emulator(['crash-src', 'crash-out']);
    proxy = await startProxy(s3.endpoint);
    // The test's own view of the bucket: straight to the emulator.
    const t = testConfig({ s3Endpoint: s3.endpoint, s3AccessKey: 'S3RVER', s3SecretKey: 'S3RVER' });
    cfg.dir = t.dir;
    store = objectStoreFor(t.config);
  });
  after(async () => {
    await proxy.close();
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  const ENV = { PIPELINE_SQL_THREADS: '1', PIPELINE_S3_ACCESS_KEY: 'S3RVER', PIPELINE_S3_SECRET_KEY: 'S3RVER' };
  const start = (): SpawnedServer => spawnServer(dir, { ...ENV, PIPELINE_S3_ENDPOINT: proxy.endpoint });
  const FOLDERS = { ow: 'ow/fixed/', ap: 'ap/fixed/' } as const;
  async function listing(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const o of store.list('crash-out', prefix)) out.push(o.key.slice(prefix.length));
    return out.sort();
  }
  async function manifest(prefix: string): Promise<string[]> {
    return (JSON.parse(await text(await store.get('crash-out', prefix + '_SUCCESS'))) as { keys: string[] }).keys.sort();
  }
  async function runToEnd(s: SpawnedServer, job: string, runId: number): Promise<{ status: string; message: string }> {
    await s.json('POST', `/v2/jobs/${job}/actions/start`);
    let last: { status: string; message: string } | undefined;
    await waitFor(async () => {
      last = (await s.json('GET', `/v2/jobs/${job}/history?runId=${runId}`)).history[0];
      return last !== undefined && ['Successful', 'Failed', 'Canceled'].includes(last.status);
    }, `run ${runId} of ${job}`, 60_000);
    return last as { status: string; message: string };
  }

  it('leaves no _PENDING and no object of the cut-off run, keeps the previous output, and publishes normally afterwards (startup recovery and the next publish)', async () => {
    await store.put('crash-src', 'in/a.json', jsonl(Array.from({ length: 40 }, (_v, i) => ({ n: i }))));
    let s = start();
    try {
      await s.json('POST', '/v2/datasources/src', { type: 'kodo', spec: { bucket: 'crash-src', keyPrefix: 'in/', fileType: 'json' } });
      await s.json('POST', '/v2/variables/dest', { name: 'dest', type: 'string', value: 'fixed' });
      for (const [job, saveMode] of [['ow', 'overwrite'], ['ap', 'append']] as const) {
        await s.json('POST', `/v2/jobs/${job}`, { srcs: [{ name: 'src', type: 'datasource', tableName: 't' }], computation: { code: 'SELECT n FROM t' }, scheduler: { type: 'manual' } });
        await s.json('POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket: 'crash-out', keyPrefix: `${job}/$(dest)/`, format: 'parquet', fileCount: 8, saveMode } });
        const r = await runToEnd(s, job, 1);
        assert.equal(r.status, 'Successful', r.message);
      }
      for (const f of Object.values(FOLDERS)) {
        const got = await listing(f);
        assert.equal(got.length, 9, got.join(', '));
        assert.equal(got.filter((k) => k.startsWith('run1-')).length, 8);
        // An object someone else put there, in no manifest: recovery must leave it.
        await store.put('crash-out', f + 'notes.txt', 'not ours');
      }
      const first = { ow: await listing(FOLDERS.ow), ap: await listing(FOLDERS.ap) };

      // Run 2 of both jobs: two uploads per folder go through, the rest hang; then kill -9.
      const passed = new Map<string, number>();
      proxy.mode = (method, url) => {
        if (method !== 'PUT' || !url.includes('/run2-')) return 'forward';
        const folder = url.slice(0, url.lastIndexOf('/'));
        const n = (passed.get(folder) ?? 0) + 1;
        passed.set(folder, n);
        return n <= 2 ? 'forward' : 'hold';
      };
      await s.json('POST', '/v2/jobs/ow/actions/start');
      await s.json('POST', '/v2/jobs/ap/actions/start');
      await waitFor(() => ['/crash-out/ow/fixed/', '/crash-out/ap/fixed/'].every((p) => proxy.held.some((h) => h.startsWith(p))), 'both publishes to hang', 60_000);
      await s.stop('SIGKILL');
      for (const f of Object.values(FOLDERS)) {
        const left = await listing(f);
        assert.ok(left.includes('_PENDING'), `the kill left _PENDING in ${f}`);
        assert.equal(left.filter((k) => k.startsWith('run2-')).length, 2, `the kill left two orphans in ${f}: ${left.join(', ')}`);
      }

      // Restart with S3 down: the start-up clean-up fails, is logged, and the server still starts.
      proxy.mode = () => 'down';
      s = start();
      await s.base;
      await waitFor(() => (s.log().match(/cannot clean up an S3 job export publish/g) ?? []).length === 2, 'the failed clean-ups to be logged', 60_000);
      assert.ok((await listing(FOLDERS.ow)).includes('_PENDING'));
      const failed = (await s.json('GET', '/v2/jobs/ow/history?runId=2')).history[0];
      assert.equal(failed.status, 'Failed');
      assert.match(failed.message, /server stopped during this run/);

      // S3 back: the next publish to the append folder takes its leftovers back first, then appends.
      proxy.mode = () => 'forward';
      const third = await runToEnd(s, 'ap', 3);
      assert.equal(third.status, 'Successful', third.message);
      const ap = await listing(FOLDERS.ap);
      assert.equal(ap.length, 18, ap.join(', '));
      assert.ok(ap.every((k) => k === '_SUCCESS' || k === 'notes.txt' || k.startsWith('run1-') || k.startsWith('run3-')), `no _PENDING, no orphan of run 2: ${ap.join(', ')}`);
      assert.ok(first.ap.every((k) => ap.includes(k)), 'run 1 and notes.txt intact');
      assert.deepEqual(await manifest(FOLDERS.ap), ap.filter((k) => k !== '_SUCCESS' && k !== 'notes.txt'));
      const owLeft = await listing(FOLDERS.ow);
      assert.ok(owLeft.includes('_PENDING') && owLeft.filter((k) => k.startsWith('run2-')).length === 2, `the overwrite folder keeps its leftovers until its own clean-up: ${owLeft.join(', ')}`);
      await s.stop('SIGTERM');

      // Restart with S3 up: start-up recovery cleans the overwrite folder, leaving the earlier run's output as it was.
      s = start();
      await waitFor(async () => !(await listing(FOLDERS.ow)).includes('_PENDING'), 'start-up recovery of the overwrite folder', 60_000);
      assert.deepEqual(await listing(FOLDERS.ow), first.ow, 'no orphan of run 2, run 1 and notes.txt intact');
      assert.deepEqual(await manifest(FOLDERS.ow), first.ow.filter((k) => k !== '_SUCCESS' && k !== 'notes.txt'));
      const again = await runToEnd(s, 'ow', 3);
      assert.equal(again.status, 'Successful', again.message);
      const ow = await listing(FOLDERS.ow);
      assert.equal(ow.length, 9, ow.join(', '));
      assert.deepEqual(ow.filter((k) => !k.startsWith('run3-')), ['_SUCCESS'], 'the overwrite replaced run 1 (and, as overwrite does, notes.txt)');
      assert.deepEqual(await manifest(FOLDERS.ow), ow.filter((k) => k !== '_SUCCESS'));
      assert.deepEqual(await listing(FOLDERS.ap), ap, 'the append folder as the last run left it');
    } finally {
      await s.stop('SIGKILL');
    }
  });
});
