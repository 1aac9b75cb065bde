import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logDbFor } from '../src/logstore/store.ts';
import { fresh, startServer, type TestServer } from './helpers.ts';
import { createLogRepo, json, logdbCode, queryLog, sdkSchema, sendLog } from './logdb-helpers.ts';

const SCHEMA = sdkSchema([
  { key: 'msg', valtype: 'string', analyzer: 'standard' },
  { key: 'path', valtype: 'string', analyzer: 'whitespace' },
  { key: 'host', valtype: 'string', analyzer: 'keyword' },
  { key: 'secret', valtype: 'string', analyzer: 'no' },
  { key: 'status', valtype: 'long' },
  { key: 'cost', valtype: 'float' },
  { key: 'ok', valtype: 'boolean' },
  { key: 'ts', valtype: 'date' },
  { key: 'tags', valtype: 'string', analyzer: 'keyword' },
  { key: 'req', valtype: 'object', nested: [{ key: 'method', valtype: 'string', analyzer: 'keyword' }, { key: 'bytes', valtype: 'long' }] },
  { key: 'extra', valtype: 'object' },
]);

const DOCS = [
  { msg: 'Connection refused by upstream server', path: 'GET /api/users', host: 'web-1', secret: 'hunter2', status: 502, cost: 1.5, ok: false, ts: '2024-03-01T10:00:00Z', tags: ['prod', 'eu'], req: { method: 'GET', bytes: 100 }, extra: { user: 'ann', level: 3 } },
  { msg: 'user login succeeded', path: 'POST /api/login', host: 'web-2', status: 200, cost: 0.25, ok: true, ts: '2024-03-01T11:30:00+08:00', tags: 'prod', req: { method: 'POST', bytes: 2048 }, extra: { user: 'bob' } },
  { msg: 'server started in 35 ms', path: 'GET /health', host: 'web-1', status: 200, cost: 0, ok: true, ts: '2024-03-02T00:00:00Z', tags: ['dev'] },
  { msg: 'Upstream server timeout', path: 'GET /api/orders', host: 'db-1', status: 504, cost: 30, ok: false, ts: '2024-03-03T23:59:59.123456789Z', req: { method: 'GET', bytes: 0 } },
  { msg: "it's a trap'); DROP TABLE docs; --", host: 'web-3', status: 400, ts: '2024-03-04T00:00:00Z' },
];

describe('LogDB v5 search', () => {
  let s: TestServer;
  const repo = fresh('ls').toLowerCase();
  const q = async (query: string, extra: { sort?: string } = {}): Promise<string[]> => {
    const res = await queryLog({ s }, repo, { q: query, size: 100, sort: extra.sort ?? 'status:asc,host:asc' });
    const body = json<{ total: number; data: Array<{ host: string; status: number }> }>(res);
    assert.equal(body.total, body.data.length);
    return body.data.map((d) => `${d.host}/${d.status}`);
  };
  const fails = async (query: string, code: string, re?: RegExp): Promise<void> => {
    const res = await queryLog({ s }, repo, { q: query });
    assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
    assert.equal(logdbCode(res), code, `${query}: ${res.body}`);
    if (re) assert.match((JSON.parse(res.body) as { error: string }).error, re);
  };

  before(async () => {
    s = await startServer();
    assert.equal((await createLogRepo({ s }, repo, SCHEMA)).statusCode, 200);
    assert.deepEqual(json(await sendLog({ s }, repo, DOCS)), { success: 5, failed: 0, total: 5 });
  });
  after(async () => { await s.close(); });

  it('matches full text on a standard field case-insensitively, and exact values on keyword fields', async () => {
    assert.deepEqual(await q('msg:upstream'), ['web-1/502', 'db-1/504']);
    assert.deepEqual(await q('msg:SERVER'), ['web-1/200', 'web-1/502', 'db-1/504']);
    assert.deepEqual(await q('host:web-1'), ['web-1/200', 'web-1/502']);
    assert.deepEqual(await q('host:web'), [], 'keyword fields match the whole value only');
    assert.deepEqual(await q('req.method:POST'), ['web-2/200']);
  });

  it('splits whitespace-analyzed fields on spaces only', async () => {
    assert.deepEqual(await q('path:"/api/users"'), ['web-1/502']);
    assert.deepEqual(await q('path:api'), [], 'whitespace analyzer keeps /api/users as one token');
    assert.deepEqual(await q('path:get'), ['web-1/200', 'web-1/502', 'db-1/504']);
  });

  it('finds phrases, phrases with slop, and nothing when the words are out of reach', async () => {
    assert.deepEqual(await q('msg:"upstream server"'), ['web-1/502', 'db-1/504']);
    assert.deepEqual(await q('msg:"refused server"'), []);
    assert.deepEqual(await q('msg:"refused server"~3'), ['web-1/502']);
  });

  it('combines clauses with AND, OR, NOT, parentheses and -', async () => {
    assert.deepEqual(await q('msg:server AND host:web-1'), ['web-1/200', 'web-1/502']);
    assert.deepEqual(await q('host:db-1 OR host:web-2'), ['web-2/200', 'db-1/504']);
    assert.deepEqual(await q('msg:server AND NOT status:502'), ['web-1/200', 'db-1/504']);
    assert.deepEqual(await q('(host:web-1 OR host:db-1) AND ok:false'), ['web-1/502', 'db-1/504']);
    assert.deepEqual(await q('msg:server -host:db-1'), ['web-1/200', 'web-1/502']);
    assert.deepEqual(await q('NOT _exists_:req'), ['web-1/200', 'web-3/400']);
  });

  it('answers wildcards: prefixes through the index, inner wildcards by scanning', async () => {
    assert.deepEqual(await q('msg:upstr*'), ['web-1/502', 'db-1/504']);
    assert.deepEqual(await q('msg:t?meout'), ['db-1/504']);
    assert.deepEqual(await q('host:web-*'), ['web-1/200', 'web-2/200', 'web-3/400', 'web-1/502']);
    assert.deepEqual(await q('host:*-1'), ['web-1/200', 'web-1/502', 'db-1/504']);
  });

  it('compares numbers and dates with ranges and comparison operators', async () => {
    assert.deepEqual(await q('status:[400 TO 502]'), ['web-3/400', 'web-1/502']);
    assert.deepEqual(await q('status:{400 TO 504}'), ['web-1/502']);
    assert.deepEqual(await q('status:>=502'), ['web-1/502', 'db-1/504']);
    assert.deepEqual(await q('status:<400'), ['web-1/200', 'web-2/200']);
    assert.deepEqual(await q('cost:[1 TO *]'), ['web-1/502', 'db-1/504']);
    assert.deepEqual(await q('cost:0.25'), ['web-2/200']);
    assert.deepEqual(await q('req.bytes:>50'), ['web-2/200', 'web-1/502']);
    assert.deepEqual(await q('ts:[2024-03-02 TO 2024-03-04}'), ['web-1/200', 'db-1/504']);
    assert.deepEqual(await q('ts:2024-03-01'), ['web-2/200', 'web-1/502'], 'a bare day is the whole UTC day (11:30+08:00 is 03:30Z)');
    assert.deepEqual(await q('ts:"2024-03-02T00:00:00Z"'), ['web-1/200']);
    assert.deepEqual(await q('ts:[2024-03-03T23:59:59Z TO *]'), ['web-3/400', 'db-1/504'], 'nanosecond dates keep their milliseconds');
    assert.deepEqual(await q('ok:true'), ['web-1/200', 'web-2/200']);
  });

  it('tests for existence, searches multi-valued fields and dynamic object keys', async () => {
    assert.deepEqual(await q('_exists_:tags'), ['web-1/200', 'web-2/200', 'web-1/502']);
    assert.deepEqual(await q('tags:eu'), ['web-1/502']);
    assert.deepEqual(await q('tags:prod'), ['web-2/200', 'web-1/502']);
    assert.deepEqual(await q('extra.user:bob'), ['web-2/200']);
    assert.deepEqual(await q('extra.level:3'), ['web-1/502']);
    assert.deepEqual(await q('_exists_:extra.level'), ['web-1/502']);
  });

  it('searches every analyzed and keyword field when no field is named, and treats * as everything', async () => {
    assert.deepEqual(await q('refused'), ['web-1/502']);
    assert.deepEqual(await q('web-2'), ['web-2/200']);
    assert.deepEqual(await q('hunter2'), [], 'analyzer no is never searched');
    assert.equal((await q('*')).length, 5);
    assert.equal((await q('')).length, 5);
  });

  it('keeps user input out of the SQL: quotes and statements are searched as text', async () => {
    assert.deepEqual(await q('msg:"DROP TABLE docs"'), ['web-3/400']);
    assert.deepEqual(await q("host:\"web-1' OR '1'='1\""), []);
    assert.equal((await q('*')).length, 5);
  });

  it('sorts by any field in either direction and pages with from and size', async () => {
    assert.deepEqual(await q('*', { sort: 'cost:desc' }), ['db-1/504', 'web-1/502', 'web-2/200', 'web-1/200', 'web-3/400']);
    assert.deepEqual(await q('*', { sort: 'ts' }), ['web-2/200', 'web-1/502', 'web-1/200', 'db-1/504', 'web-3/400']);
    const page = json<{ total: number; data: Array<{ status: number }> }>(await queryLog({ s }, repo, { sort: 'status:desc', from: 1, size: 2 }));
    assert.equal(page.total, 5);
    assert.deepEqual(page.data.map((d) => d.status), [502, 400]);
  });

  it('projects fields and highlights matches in the POST form', async () => {
    const res = await s.call({ method: 'POST', url: `/v5/repos/${repo}/search`, body: {
      query: 'msg:upstream', sort: 'status', fields: 'host,msg', size: 10,
      highlight: { pre_tags: ['<b>'], post_tags: ['</b>'], fields: { msg: {} } },
    } });
    const body = json<{ total: number; data: Array<Record<string, unknown>> }>(res);
    assert.equal(body.total, 2);
    assert.deepEqual(Object.keys(body.data[0]!).sort(), ['highlight', 'host', 'id', 'msg']);
    assert.deepEqual(body.data[0]!.highlight, { msg: ['Connection refused by <b>upstream</b> server'] });
    assert.deepEqual(body.data[1]!.highlight, { msg: ['<b>Upstream</b> server timeout'] });
  });

  it('highlights with the default tags when the SDK sends null tags and a 0 fragment size in a GET body', async () => {
    const res = await queryLog({ s }, repo, { q: 'refused', highlight: { pre_tags: null, post_tags: null, fields: { msg: {} }, require_field_match: false, fragment_size: 0 } });
    const body = json<{ data: Array<{ highlight: unknown }> }>(res);
    assert.deepEqual(body.data[0]!.highlight, { msg: ['Connection <em>refused</em> by upstream server'] });
  });

  it('reports syntax errors with their position, and bad fields, values and parameters with their codes', async () => {
    await fails('msg:(upstream', 'E8202', /at offset 13/);
    await fails('msg:"open', 'E8202', /at offset/);
    await fails('nosuch:1', 'E8202', /not in the repo schema/);
    await fails('secret:hunter2', 'E8202', /not searchable/);
    await fails('status:abc', 'E8202', /not a number/);
    await fails('ts:[yesterday TO now]', 'E8202', /RFC 3339/);
    await fails('ok:maybe', 'E8202', /true or false/);
    await fails('msg:/up.*/', 'E8202', /regular expressions/);
    // The longest queries allowed either run or are refused as too complex, never a 500.
    for (const op of [' OR ', ' AND ', ' ']) {
      const big = Array.from({ length: 500 }, (_, i) => `status:${i}`).join(op).slice(0, 4096).replace(/\s+\S*$/, '');
      const res = await queryLog({ s }, repo, { q: big });
      assert.ok(res.statusCode === 200 || logdbCode(res) === 'E8202', `${op}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    }
    await fails('('.repeat(3000) + 'a' + ')'.repeat(3000), 'E8202', /at most 4096|nests too deeply/);
    await fails('x'.repeat(5000), 'E8202', /at most 4096/);
    for (const [p, code] of [[{ sort: 'nosuch:desc' }, 'E8205'], [{ sort: 'status:up' }, 'E8205'], [{ size: 10_001 }, 'E8204'], [{ from: 9_995, size: 10 }, 'E8203'], [{ scroll: 'forever' }, 'E8201']] as const) {
      const res = await queryLog({ s }, repo, p);
      assert.equal(res.statusCode, 400, JSON.stringify(p));
      assert.equal(logdbCode(res), code, JSON.stringify(p));
    }
    const neg = await s.call({ method: 'GET', url: `/v5/repos/${repo}/search?q=&from=-1&size=0` });
    assert.equal(logdbCode(neg), 'E8203');
  });

  it('validates histogram parameters', async () => {
    for (const [qs, code] of [['field=ts', 'E8206'], ['from=10&to=x&field=ts', 'E8207'], ['from=10&to=5&field=ts', 'E8208'], ['from=0&to=5&field=status', 'E8209'], ['from=0&to=5', 'E8209']] as const) {
      const res = await s.call({ method: 'GET', url: `/v5/repos/${repo}/histogram?q=&${qs}` });
      assert.equal(res.statusCode, 400, qs);
      assert.equal(logdbCode(res), code, qs);
    }
    const day = Date.parse('2024-03-01T00:00:00Z');
    const h = json<{ total: number; buckets: Array<{ key: number; count: number }> }>(
      await s.call({ method: 'GET', url: `/v5/repos/${repo}/histogram?q=host:web-1&from=${day}&to=${day + 3 * 86_400_000}&field=ts` }));
    assert.equal(h.total, 2);
    assert.ok(h.buckets.every((b, i, all) => i === 0 || b.key - all[i - 1]!.key === all[1]!.key - all[0]!.key));
  });

  it('stops a query that runs past the time limit with E8210 and keeps serving', async () => {
    const big = fresh('lt').toLowerCase();
    await createLogRepo({ s }, big, SCHEMA);
    const docs = Array.from({ length: 20_000 }, (_, i) => ({ msg: `line ${i} with some words to scan ${i % 97}`, host: `h${i}`, status: i }));
    json(await sendLog({ s }, big, docs));
    const store = logDbFor(s.dir)!;
    const before = store.queryTimeMs;
    store.queryTimeMs = 1;
    try {
      const res = await queryLog({ s }, big, { q: 'msg:*o?e*' });
      assert.equal(res.statusCode, 400, res.body.slice(0, 200));
      assert.equal(logdbCode(res), 'E8210');
    } finally {
      store.queryTimeMs = before;
    }
    assert.equal(json<{ total: number }>(await queryLog({ s }, big, { q: 'msg:*o?e*' })).total, 20_000);
  });
});
