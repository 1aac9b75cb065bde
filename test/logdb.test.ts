import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logDbFor } from '../src/logstore/store.ts';
import { AK2, SK2, fresh, startServer, type TestServer } from './helpers.ts';
import { createLogRepo, histogramLog, json, logdbCode, queryLog, sdkCreateBody, sdkSchema, sendLog } from './logdb-helpers.ts';

const name = (): string => fresh('lr').toLowerCase();
/** The SDK test's default schema (test/logdb/logdb_sdk_test.go). */
const SDK_SCHEMA = sdkSchema([
  { key: 'f1', valtype: 'string', analyzer: 'standard' },
  { key: 'f2', valtype: 'float' },
  { key: 'f3', valtype: 'date' },
  { key: 'f4', valtype: 'long' },
]);

describe('LogDB v5 repos', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  it('creates, reads, updates, lists and deletes a repo exactly as the Go SDK TestRepo does', async () => {
    const r = name();
    assert.equal((await createLogRepo({ s }, r, SDK_SCHEMA)).statusCode, 200);
    const got = json<{ region: string; retention: string; schema: unknown[]; fullText: unknown }>(await s.call({ method: 'GET', url: `/v5/repos/${r}` }));
    assert.equal(got.region, 'nb');
    assert.equal(got.retention, '2d');
    assert.deepEqual(got.schema, SDK_SCHEMA);
    // UpdateRepo sends the whole schema plus retention.
    const upd = await s.call({ method: 'PUT', url: `/v5/repos/${r}`, body: { RepoName: r, retention: '3d', coldRetention: '', schema: SDK_SCHEMA, description: null } });
    assert.equal(upd.statusCode, 200, upd.body);
    const again = json<{ retention: string; schema: unknown[] }>(await s.call({ method: 'GET', url: `/v5/repos/${r}` }));
    assert.equal(again.retention, '3d');
    assert.deepEqual(again.schema, SDK_SCHEMA);
    const list = json<{ repos: Array<{ name: string; retention: string; schema?: unknown }> }>(await s.call({ method: 'GET', url: '/v5/repos' }));
    const mine = list.repos.find((x) => x.name === r);
    assert.ok(mine);
    assert.equal(mine.retention, '3d');
    assert.equal(mine.schema, undefined);
    assert.equal((await s.call({ method: 'DELETE', url: `/v5/repos/${r}` })).statusCode, 200);
    const gone = await s.call({ method: 'GET', url: `/v5/repos/${r}` });
    assert.equal(gone.statusCode, 404);
    assert.equal(logdbCode(gone), 'E8111');
  });

  it('rejects bad create bodies with the LogDB code and stores nothing', async () => {
    const cases: Array<[string, Record<string, unknown>, number, string]> = [
      ['UpperCase', sdkCreateBody('x', SDK_SCHEMA), 400, 'E8105'],
      [name(), { ...sdkCreateBody('x', SDK_SCHEMA), retention: undefined }, 400, 'E8102'],
      [name(), { ...sdkCreateBody('x', SDK_SCHEMA), retention: '7 days' }, 400, 'E8106'],
      [name(), { ...sdkCreateBody('x', SDK_SCHEMA), region: '' }, 400, 'E8103'],
      [name(), { ...sdkCreateBody('x', SDK_SCHEMA), region: 'mars' }, 400, 'E8107'],
      [name(), sdkCreateBody('x', [{ key: 'a', valtype: 'ip' }]), 400, 'E8108'],
      [name(), sdkCreateBody('x', [{ key: 'a', valtype: 'long', analyzer: 'standard' }]), 400, 'E8108'],
      [name(), sdkCreateBody('x', [{ key: 'a', valtype: 'string', analyzer: 'klingon' }]), 400, 'E8108'],
      [name(), sdkCreateBody('x', [{ key: 'a', valtype: 'string' }, { key: 'a', valtype: 'long' }]), 400, 'E8108'],
      [name(), sdkCreateBody('x', [{ key: '9a', valtype: 'string' }]), 400, 'E8108'],
    ];
    for (const [repo, body, status, code] of cases) {
      const res = await s.call({ method: 'POST', url: `/v5/repos/${repo}`, body });
      assert.equal(res.statusCode, status, `${repo} ${JSON.stringify(body)}: ${res.body}`);
      assert.equal(logdbCode(res), code, res.body);
      assert.equal((await s.call({ method: 'GET', url: `/v5/repos/${repo}` })).statusCode, 404);
    }
  });

  it('answers E8112 for an existing repo and refuses to remove or retype fields on update', async () => {
    const r = name();
    await createLogRepo({ s }, r, SDK_SCHEMA);
    assert.equal(logdbCode(await createLogRepo({ s }, r, SDK_SCHEMA)), 'E8112');
    const drop = await s.call({ method: 'PUT', url: `/v5/repos/${r}`, body: { retention: '2d', schema: SDK_SCHEMA.slice(1) } });
    assert.equal(drop.statusCode, 400);
    assert.equal(logdbCode(drop), 'E8108');
    const retype = await s.call({ method: 'PUT', url: `/v5/repos/${r}`, body: { retention: '2d', schema: sdkSchema([{ key: 'f1', valtype: 'long' }, { key: 'f2', valtype: 'float' }, { key: 'f3', valtype: 'date' }, { key: 'f4', valtype: 'long' }]) } });
    assert.equal(logdbCode(retype), 'E8108');
    assert.equal(logdbCode(await s.call({ method: 'PUT', url: `/v5/repos/${name()}`, body: { retention: '2d', schema: SDK_SCHEMA } })), 'E8111');
  });

  it('keeps accounts apart: another account can neither see, write nor search a repo, and may reuse its name', async () => {
    const r = name();
    await createLogRepo({ s }, r, SDK_SCHEMA);
    json(await sendLog({ s }, r, [{ f1: 'secret alice data', f4: 1 }]));
    const bob = { s, ak: AK2, sk: SK2 };
    for (const res of [
      await s.call({ method: 'GET', url: `/v5/repos/${r}`, ak: AK2, sk: SK2 }),
      await sendLog(bob, r, [{ f1: 'x' }]),
      await queryLog(bob, r, { q: 'secret' }),
      await histogramLog(bob, r, { from: 0, to: Date.now(), field: 'f3' }),
      await s.call({ method: 'DELETE', url: `/v5/repos/${r}`, ak: AK2, sk: SK2 }),
    ]) {
      assert.equal(res.statusCode, 404, res.body);
      assert.equal(logdbCode(res), 'E8111');
    }
    const bobList = json<{ repos: Array<{ name: string }> }>(await s.call({ method: 'GET', url: '/v5/repos', ak: AK2, sk: SK2 }));
    assert.ok(!bobList.repos.some((x) => x.name === r));
    assert.equal((await createLogRepo(bob, r, SDK_SCHEMA)).statusCode, 200);
    assert.equal(json<{ total: number }>(await queryLog(bob, r, { q: 'secret' })).total, 0);
    assert.equal(json<{ total: number }>(await queryLog({ s }, r, { q: 'secret' })).total, 1);
    // A scroll opened by alice cannot be continued by bob on his repo of the same name.
    const first = json<{ scroll_id: string }>(await queryLog({ s }, r, { size: 1, scroll: '1m', q: '' }));
    json(await sendLog({ s }, r, [{ f1: 'two' }]));
    const opened = json<{ scroll_id: string }>(await queryLog({ s }, r, { size: 1, scroll: '1m' }));
    const stolen = await s.call({ method: 'POST', url: `/v5/repos/${r}/scroll`, body: { scroll_id: opened.scroll_id, scroll: '1m' }, ak: AK2, sk: SK2 });
    assert.equal(stolen.statusCode, 404);
    assert.equal(logdbCode(stolen), 'E8211');
    assert.equal(first.scroll_id, '', 'a first page holding every hit closes its scroll');
  });

  it('rejects unsigned requests', async () => {
    const res = await s.call({ method: 'GET', url: '/v5/repos', anonymous: true });
    assert.equal(res.statusCode, 401);
  });
});

describe('LogDB v5 writes', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  it('stores and finds fields named like Object.prototype members (__proto__, constructor, toString), nested too', async () => {
    const r = name();
    const schema = sdkSchema([
      { key: '__proto__', valtype: 'string', analyzer: 'keyword' },
      { key: 'constructor', valtype: 'long' },
      { key: 'm', valtype: 'object', nested: [{ key: 'toString', valtype: 'string', analyzer: 'keyword' }, { key: '__proto__', valtype: 'long' }] },
    ]);
    const created = await createLogRepo({ s }, r, schema);
    assert.equal(created.statusCode, 200, created.body);
    const docs = JSON.parse('[{"__proto__":"p1","constructor":7,"m":{"toString":"t1","__proto__":3}},{"__proto__":"p2","constructor":8,"m":{"toString":"t2","__proto__":4}}]');
    assert.deepEqual(json(await sendLog({ s }, r, docs)), { success: 2, failed: 0, total: 2 });
    const q = json<{ total: number; data: Array<Record<string, unknown>> }>(await queryLog({ s }, r, { q: '__proto__:p1', size: 10 }));
    assert.equal(q.total, 1);
    const doc = q.data[0]!;
    assert.equal(Object.getOwnPropertyDescriptor(doc, '__proto__')?.value, 'p1');
    assert.equal(Object.getOwnPropertyDescriptor(doc, 'constructor')?.value, 7);
    const m = Object.getOwnPropertyDescriptor(doc, 'm')?.value as Record<string, unknown>;
    assert.equal(Object.getOwnPropertyDescriptor(m, 'toString')?.value, 't1');
    assert.equal(Object.getOwnPropertyDescriptor(m, '__proto__')?.value, 3);
    assert.equal(json<{ total: number }>(await queryLog({ s }, r, { q: 'constructor:8', size: 10 })).total, 1);
    assert.equal(json<{ total: number }>(await queryLog({ s }, r, { q: 'm.toString:t2', size: 10 })).total, 1);
  });

  it('runs the Go SDK TestSendAndQueryLog flow: 20 logs, histogram, range query sorted, scroll 12 then 8', async () => {
    const r = name();
    await createLogRepo({ s }, r, SDK_SCHEMA);
    const start = Math.floor(Date.now() / 1000) * 1000 - 50_000;
    for (let i = 0; i < 5; i++) {
      const t = new Date(start + i * 10_000).toISOString().replace(/\.\d+Z$/, 'Z');
      // Go writes 1.0 as 1 and 0.0 as 0: float fields take JSON integers.
      const out = json<{ success: number; failed: number; total: number }>(await sendLog({ s }, r, [
        { f1: 'v11', f2: 1, f3: t, f4: 1312 }, { f1: 'v21', f2: 1.2, f3: t, f4: 3082 },
        { f1: 'v31', f2: 0, f3: t, f4: 1 }, { f1: 'v41', f2: 0.3, f3: t, f4: 12345671 },
      ]));
      assert.deepEqual(out, { success: 4, failed: 0, total: 4 });
    }
    const end = Date.now();
    const h = json<{ total: number; partialSuccess: boolean; buckets: Array<{ key: number; count: number }> }>(await histogramLog({ s }, r, { from: start, to: end, field: 'f3' }));
    assert.equal(h.total, 20);
    assert.equal(h.partialSuccess, false);
    assert.ok(h.buckets.length >= 5 && h.buckets.length <= 20, `${h.buckets.length} buckets`);
    assert.equal(h.buckets.reduce((n, b) => n + b.count, 0), 20);
    const q = json<{ total: number; partialSuccess: boolean; data: Array<{ f2: number; id: string }>; scroll_id?: string }>(
      await queryLog({ s }, r, { q: 'f3:[2016-01-01 TO 2036-01-02]', sort: 'f2:desc', from: 0, size: 100 }));
    assert.equal(q.total, 20);
    assert.equal(q.data.length, 20);
    assert.equal(q.scroll_id, undefined);
    assert.deepEqual(q.data.map((d) => d.f2), [...q.data.map((d) => d.f2)].sort((a, b) => b - a));
    assert.equal(new Set(q.data.map((d) => d.id)).size, 20);
    const page1 = json<{ total: number; data: unknown[]; scroll_id: string }>(
      await queryLog({ s }, r, { q: 'f3:[2016-01-01 TO 2036-01-02]', sort: 'f2:desc', from: 0, size: 12, scroll: '2m' }));
    assert.equal(page1.data.length, 12);
    assert.ok(page1.scroll_id.length > 0);
    const page2 = json<{ total: number; data: Array<{ id: string }>; scroll_id: string }>(
      await s.call({ method: 'POST', url: `/v5/repos/${r}/scroll`, body: { scroll_id: page1.scroll_id, scroll: '1m' } }));
    assert.equal(page2.data.length, 8);
    assert.equal(page2.total, 20);
    assert.equal(page2.scroll_id, '');
    const ids = new Set([...(page1.data as Array<{ id: string }>), ...page2.data].map((d) => d.id));
    assert.equal(ids.size, 20);
    const expired = await s.call({ method: 'POST', url: `/v5/repos/${r}/scroll`, body: { scroll_id: page1.scroll_id, scroll: '1m' } });
    assert.equal(logdbCode(expired), 'E8211');
  });

  it('scrolls through every document of a larger repo in default order without repeats', async () => {
    const r = name();
    await createLogRepo({ s }, r, SDK_SCHEMA);
    json(await sendLog({ s }, r, Array.from({ length: 250 }, (_, i) => ({ f1: `doc ${i}`, f4: i }))));
    let page = json<{ data: Array<{ f4: number }>; scroll_id: string; total: number }>(await queryLog({ s }, r, { size: 100, scroll: '1m' }));
    const seen = page.data.map((d) => d.f4);
    while (page.scroll_id) {
      page = json(await s.call({ method: 'POST', url: `/v5/repos/${r}/scroll`, body: { scroll_id: page.scroll_id, scroll: '1m' } }));
      seen.push(...page.data.map((d) => d.f4));
    }
    assert.equal(page.total, 250);
    assert.equal(seen.length, 250);
    assert.equal(new Set(seen).size, 250);
  });

  it('rejects a batch with an invalid log unless omitInvalidLog is true, then writes only the valid ones', async () => {
    const r = name();
    await createLogRepo({ s }, r, SDK_SCHEMA);
    const logs = [{ f1: 'ok', f4: 1 }, { f1: 'bad', f4: 'not a number' }, { f1: 'bad date', f3: 'yesterday' }, { f1: 'ok2', f2: 2.5 }];
    const strict = await sendLog({ s }, r, logs);
    assert.equal(strict.statusCode, 400);
    assert.equal(logdbCode(strict), 'E8104');
    assert.match((JSON.parse(strict.body) as { error: string }).error, /log 1: field "f4"/);
    assert.equal(json<{ total: number }>(await queryLog({ s }, r, {})).total, 0);
    assert.deepEqual(json(await sendLog({ s }, r, logs, true)), { success: 2, failed: 2, total: 4 });
    assert.equal(json<{ total: number }>(await queryLog({ s }, r, {})).total, 2);
    for (const [body, code] of [['', 'E8115'], ['{"f1":1}', 'E8116'], ['[{"f1":', 'E8116']] as const) {
      const res = await s.call({ method: 'POST', url: `/v5/repos/${r}/data?omitInvalidLog=false`, body, headers: { 'content-type': 'application/json' } });
      assert.equal(res.statusCode, 400);
      assert.equal(logdbCode(res), code);
    }
    assert.equal(logdbCode(await sendLog({ s }, name(), [{ f1: 'x' }])), 'E8111');
  });

  it('drops documents older than the retention when retention runs, and keeps them with 0d', async () => {
    const store = logDbFor(s.dir)!;
    const short = name();
    const forever = name();
    await createLogRepo({ s }, short, SDK_SCHEMA, '1d');
    await createLogRepo({ s }, forever, SDK_SCHEMA, '0d');
    let clock = Date.now();
    store.now = () => clock;
    try {
      for (const r of [short, forever]) json(await sendLog({ s }, r, [{ f1: 'old words' }]));
      clock += 2 * 86_400_000;
      for (const r of [short, forever]) json(await sendLog({ s }, r, [{ f1: 'new words' }]));
      assert.ok((await store.enforceRetention()) >= 1);
      const kept = json<{ total: number; data: Array<{ f1: string }> }>(await queryLog({ s }, short, { q: 'words' }));
      assert.deepEqual(kept.data.map((d) => d.f1), ['new words']);
      assert.equal(json<{ total: number }>(await queryLog({ s }, short, { q: 'old' })).total, 0, 'the full-text index forgot the expired document');
      assert.equal(json<{ total: number }>(await queryLog({ s }, forever, { q: 'words' })).total, 2);
    } finally {
      store.now = Date.now;
    }
  });
});
