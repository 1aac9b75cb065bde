/**
 * Hardening of the HTTP API through app.inject: stored-field limits, long
 * names, router errors in the documented shape, repeated query parameters,
 * bounded lists, repo stats and the log line of every refused request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { AK, SK, errorCode, fresh, makeRepo, push, signRequest, startServer, tmpDir, type TestServer } from './helpers.ts';

/** Asserts the documented error shape: JSON body with `error`, exact content type, X-Reqid. */
function assertErrorShape(res: LightMyRequestResponse, status: number): string {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.match(String(res.headers['x-reqid']), /^[0-9a-f]{16}$/);
  const body = JSON.parse(res.body) as { error: unknown };
  assert.equal(typeof body.error, 'string');
  return body.error as string;
}

function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

describe('http hardening', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.close();
  });

  it('refuses a repo whose options nest 3,000 deep with E18136, stores nothing, and lists repos afterwards', async () => {
    const name = fresh('deep');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${name}`, body: { region: 'nb', schema: [{ key: 'a', valtype: 'string' }], options: deep(3000) } });
    assert.equal(errorCode(res), 'E18136');
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /options/);
    const get = await s.call({ method: 'GET', url: `/v2/repos/${name}` });
    assert.equal(errorCode(get), 'E18102');
    const list = await s.call({ method: 'GET', url: '/v2/repos' });
    assert.equal(list.statusCode, 200);
  });

  it('refuses a description larger than 64 KB with E18136 but keeps options 32 deep as sent', async () => {
    const big = await s.call({ method: 'POST', url: `/v2/repos/${fresh('big')}`, body: { region: 'nb', schema: [{ key: 'a', valtype: 'string' }], description: 'x'.repeat(70_000) } });
    assert.equal(errorCode(big), 'E18136');
    const name = await makeRepo(s, fresh('ok32'), [{ key: 'a', valtype: 'string' }], { options: deep(31), description: 'd' });
    const get = await s.call({ method: 'GET', url: `/v2/repos/${name}` });
    assert.equal(get.statusCode, 200);
    assert.deepEqual((JSON.parse(get.body) as { options: unknown }).options, deep(31));
  });

  it('routes names of 101 to 128 characters and answers longer ones with E18103', async () => {
    for (const len of [101, 128]) {
      const name = `n${'x'.repeat(len - 1)}`;
      await makeRepo(s, name, [{ key: 'a', valtype: 'string' }]);
      const res = await s.call({ method: 'GET', url: `/v2/repos/${name}` });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(JSON.parse(res.body).name, name);
      assert.equal((await push(s, name, 'a=1\n')).statusCode, 200);
    }
    const res = await s.call({ method: 'GET', url: `/v2/repos/n${'x'.repeat(200)}` });
    assert.match(assertErrorShape(res, 400), /^E18103/);
  });

  it('answers a path segment beyond the router limit with a JSON 414 and X-Reqid, before authentication', async () => {
    const res = await s.app.inject({ method: 'GET', url: `/v2/repos/${'y'.repeat(5000)}` });
    assert.match(assertErrorShape(res, 414), /^uri too long/);
  });

  it('answers unknown routes and malformed URLs in the error shape', async () => {
    assert.match(assertErrorShape(await s.call({ method: 'GET', url: '/v2/nothing/here' }), 404), /^not found/);
    assert.match(assertErrorShape(await s.app.inject({ method: 'GET', url: '/v2/repos/%E0%A4%A' }), 400), /^E18007/);
    assert.match(assertErrorShape(await s.app.inject({ method: 'GET', url: '/v2/repos' }), 401), /^unauthorized/);
  });

  it('answers a repeated query parameter with E18010 instead of a 500', async () => {
    const repo = await makeRepo(s);
    const cases = [
      { method: 'POST', url: `/v2/repos/${repo}/data?tags=a&tags=b`, body: 'host=a\n', headers: { 'content-type': 'text/plain' } },
      { method: 'GET', url: `/v2/repos/${repo}/data?count=1&count=2` },
      { method: 'GET', url: '/v2/repos?withDag=true&withDag=false' },
    ];
    for (const c of cases) {
      const res = await s.call(c);
      assert.match(assertErrorShape(res, 400), /^E18010: .*given more than once/, c.url);
    }
    const sample = await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=10` });
    assert.deepEqual(JSON.parse(sample.body).records, []);
  });

  it('pages GET /v2/repos with limit and marker and keeps the SDK shape without them', async () => {
    const t = await startServer();
    try {
      const names = ['a1', 'a2', 'b1', 'b2', 'c1'].map((n) => `${n}_${process.pid}`);
      for (const n of names) await makeRepo(t, n);
      const all = JSON.parse((await t.call({ method: 'GET', url: '/v2/repos' })).body) as { repos: Array<{ name: string }>; marker?: string };
      assert.deepEqual(all.repos.map((r) => r.name), names);
      assert.equal(all.marker, undefined);
      const seen: string[] = [];
      let marker = '';
      for (let i = 0; i < 10; i++) {
        const res = await t.call({ method: 'GET', url: `/v2/repos?limit=2${marker ? `&marker=${marker}` : ''}` });
        const body = JSON.parse(res.body) as { repos: Array<{ name: string }>; marker?: string };
        assert.ok(body.repos.length <= 2);
        seen.push(...body.repos.map((r) => r.name));
        if (!body.marker) break;
        marker = body.marker;
      }
      assert.deepEqual(seen, names);
      assert.match(assertErrorShape(await t.call({ method: 'GET', url: '/v2/repos?limit=0' }), 400), /^E18010/);
      assert.match(assertErrorShape(await t.call({ method: 'GET', url: '/v2/repos?limit=1001' }), 400), /^E18010/);
      const groups = await t.call({ method: 'GET', url: '/v2/groups?limit=1' });
      assert.deepEqual(JSON.parse(groups.body), { groups: [] });
      const plugins = await t.call({ method: 'GET', url: '/v2/plugins' });
      assert.deepEqual(JSON.parse(plugins.body), { plugins: [] });
    } finally {
      await t.close();
    }
  });

  it('shows a repo\'s stats: points, bytes, offsets, times, and points dropped by retention', async () => {
    const t = await startServer({ segmentSize: '1MB' });
    try {
      const repo = await makeRepo(t, fresh('stats'), [{ key: 'host', valtype: 'string' }]);
      const empty = JSON.parse((await t.call({ method: 'GET', url: `/v2/repos/${repo}` })).body) as { stats: Record<string, unknown> };
      assert.deepEqual(empty.stats, { points: 0, bytes: 0, startOffset: 0, endOffset: 0, oldestTime: null, newestTime: null, droppedPoints: 0 });
      const t0 = Date.now();
      const batch = Array.from({ length: 5000 }, (_, i) => `host=${'h'.repeat(200)}${i}`).join('\n');
      for (let i = 0; i < 3; i++) assert.equal((await push(t, repo, batch)).statusCode, 200);
      const res = await t.call({ method: 'GET', url: `/v2/repos/${repo}` });
      const { stats } = JSON.parse(res.body) as { stats: { points: number; bytes: number; startOffset: number; endOffset: number; oldestTime: string; newestTime: string; droppedPoints: number } };
      assert.equal(stats.points, 15000);
      assert.equal(stats.endOffset, 15000);
      assert.equal(stats.droppedPoints, 0);
      assert.ok(stats.bytes > 3 * batch.length, `bytes ${stats.bytes}`);
      assert.ok(Date.parse(stats.oldestTime) >= t0 - 1000 && Date.parse(stats.newestTime) >= Date.parse(stats.oldestTime));
      // Age retention (7 days by default) as if 8 days passed: closed segments go.
      const dropped = await t.ctx.logs.enforceRetention(Date.now() + 8 * 86_400_000);
      assert.ok(dropped >= 1);
      const after = JSON.parse((await t.call({ method: 'GET', url: `/v2/repos/${repo}` })).body).stats as typeof stats;
      assert.ok(after.droppedPoints > 0);
      assert.equal(after.startOffset, after.droppedPoints);
      assert.equal(after.points + after.droppedPoints, 15000);
      assert.ok(after.bytes < stats.bytes);
    } finally {
      await t.close();
    }
  });
});

describe('request log', () => {
  it('logs every refused request with method, path, status, E-code, account and request id, without body or secrets', async () => {
    const lines: string[] = [];
    const dir = tmpDir();
    const config = loadConfig({}, { dataDir: dir, accounts: [{ id: 'alice', accessKey: AK, secretKey: SK }], logLevel: 'info' });
    const { app } = await buildApp(config, { logStream: { write: (l: string) => void lines.push(l) } });
    try {
      const repo = fresh('logged');
      const date = new Date().toUTCString();
      const sign = (method: string, url: string, ct = ''): Record<string, string> => {
        const h: Record<string, string> = { date, ...(ct ? { 'content-type': ct } : {}) };
        return { ...h, authorization: `Pandora ${AK}:${signRequest(SK, method, url, h)}` };
      };
      const secretBody = 'host=SECRET_VALUE_123';
      const res = await app.inject({ method: 'POST', url: `/v2/repos/${repo}/data?tags=zzz`, headers: sign('POST', `/v2/repos/${repo}/data`, 'text/plain'), payload: secretBody });
      assert.equal(res.statusCode, 404);
      const ok = await app.inject({ method: 'GET', url: '/v2/repos', headers: sign('GET', '/v2/repos') });
      assert.equal(ok.statusCode, 200);
      await app.inject({ method: 'GET', url: '/v2/repos', headers: { authorization: `Pandora ${AK}:wrong`, date } });
      const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.status !== undefined);
      assert.equal(records.length, 2, lines.join(''));
      const [refused, unauth] = records as [Record<string, unknown>, Record<string, unknown>];
      assert.equal(refused.level, 30);
      assert.equal(refused.method, 'POST');
      assert.equal(refused.path, `/v2/repos/${repo}/data`);
      assert.equal(refused.status, 404);
      assert.equal(refused.code, 'E18102');
      assert.equal(refused.account, 'alice');
      assert.equal(refused.reqId, res.headers['x-reqid']);
      assert.equal(unauth.code, 'unauthorized');
      assert.equal(unauth.status, 401);
      const all = lines.join('');
      assert.doesNotMatch(all, /SECRET_VALUE_123|zzz|wrong|authorization/i);
    } finally {
      await app.close();
    }
  });
});
