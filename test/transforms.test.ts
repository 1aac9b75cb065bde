import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';

describe('streaming transforms', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  const create = (repo: string, name: string, dest: string, body: unknown) =>
    s.call({ method: 'POST', url: `/v2/repos/${repo}/transforms/${name}/to/${dest}`, body });
  const get = async (repo: string, name: string) => {
    const res = await s.call({ method: 'GET', url: `/v2/repos/${repo}/transforms/${name}` });
    assert.equal(res.statusCode, 200, res.body);
    return JSON.parse(res.body) as Record<string, any>;
  };
  const repoOf = async (name: string) => JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${name}` })).body) as Record<string, any>;
  const rows = async (repo: string, count = 10) => (JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=${count}` })).body) as { records: Array<Record<string, unknown>> }).records;
  const run = (repo: string, name: string) => s.ctx.runner.runNow('alice', repo, name);

  it('runs SQL over new points into an auto-created derived repo', async () => {
    const src = await makeRepo(s);
    const dest = fresh('dest');
    const res = await create(src, 'agg', dest, { mode: 'sql', code: `select host, count(*) as n, avg(latency) as lat from ${src} group by host order by host`, interval: '5s' });
    assert.equal(res.statusCode, 200, res.body);
    const d = await repoOf(dest);
    assert.equal(d.derivedFrom, 'agg');
    assert.deepEqual(d.schema.map((f: any) => [f.key, f.valtype]), [['host', 'string'], ['n', 'long'], ['lat', 'float']]);
    assert.equal((await push(s, src, 'host=a\tlatency=10\nhost=a\tlatency=20\nhost=b\tlatency=5')).statusCode, 200);
    await run(src, 'agg');
    assert.deepEqual(await rows(dest), [{ host: 'a', n: 2, lat: 15 }, { host: 'b', n: 1, lat: 5 }]);
    // The next run sees only points appended since the committed offset.
    await push(s, src, 'host=b\tlatency=7');
    await run(src, 'agg');
    assert.deepEqual((await rows(dest)).slice(-1), [{ host: 'b', n: 1, lat: 7 }]);
    const t = await get(src, 'agg');
    assert.equal(t.to, dest);
    assert.equal(t.spec.interval, '5s');
    assert.equal(t.status.state, 'running');
    assert.deepEqual(t.status.total, { in: 4, out: 3 });
    assert.deepEqual(t.status.lag, { points: 0, seconds: 0 });
    assert.equal(t.status.lastRun.in, 1);
  });

  it('accepts the reference\'s example SQL and defaults the interval to 1m', async () => {
    const src = await makeRepo(s, fresh('test_repo'));
    assert.equal((await create(src, 'counter', fresh('compute_repo'), { mode: 'sql', code: `select count(*) from ${src}`, container: { type: 'M16C4', count: 5 } })).statusCode, 200);
    const t = await get(src, 'counter');
    assert.equal(t.spec.interval, '1m');
    assert.deepEqual((await repoOf(t.to)).schema.map((f: any) => f.key), ['count_star']);
  });

  it('maps maps to structs and arrays to lists so nested SQL works', async () => {
    const src = await makeRepo(s, fresh('people'), [
      { key: 'userName', valtype: 'string' },
      { key: 'addresses', valtype: 'array', elemtype: 'string' },
      { key: 'profile', valtype: 'map', schema: [{ key: 'position', valtype: 'string' }, { key: 'salary', valtype: 'float' }] },
      { key: 'born', valtype: 'date' },
    ]);
    const dest = fresh('flat');
    const sql = `select userName, profile.salary as salary, unnest(addresses) as city, born from ${src}`;
    assert.equal((await create(src, 'flatten', dest, { mode: 'sql', code: sql, interval: '5s' })).statusCode, 200);
    await push(s, src, 'userName=zh\taddresses=["beijing","shanghai"]\tprofile={"position":"eng","salary":15000}\tborn=1990-01-02T03:04:05+08:00');
    await run(src, 'flatten');
    const out = await rows(dest);
    assert.deepEqual(out.map((r) => [r.userName, r.salary, r.city]), [['zh', 15000, 'beijing'], ['zh', 15000, 'shanghai']]);
    assert.equal(Date.parse(out[0]?.born as string), Date.parse('1990-01-02T03:04:05+08:00'));
  });

  it('answers each invalid create with its code and creates nothing', async () => {
    const src = await makeRepo(s);
    const other = await makeRepo(s);
    const cases: Array<[string, string, unknown, string]> = [
      ['t1', fresh('d'), {}, 'E18207'],
      ['t1', fresh('d'), { mode: 'sql', code: `select * from ${src}`, interval: '7s' }, 'E18208'],
      ['t1', fresh('d'), { mode: 'sql', code: `select nope from ${src}` }, 'E18209'],
      ['t1', fresh('d'), { mode: 'sql', code: 'selec 1' }, 'E18209'],
      ['t1', fresh('d'), { mode: 'sql', code: `drop table ${src}` }, 'E18209'],
      ['t1', fresh('d'), { plugin: { name: 'p_missing', output: [{ name: 'a', type: 'boolean' }] } }, 'E18211'],
      ['t1', fresh('d'), { plugin: { name: 'p_missing', output: [{ name: 'a' }] } }, 'E18216'],
      ['t1', fresh('d'), { mode: 'sql', code: `select * from ${src}`, container: { type: 'M1', count: 1 } }, 'E18213'],
      ['t1', fresh('d'), { mode: 'sql', code: `select * from ${src}`, container: { type: 'M16C4', count: 0 } }, 'E18214'],
      ['t1', src, { mode: 'sql', code: `select * from ${src}` }, 'E18204'],
    ];
    for (const [name, dest, body, code] of cases) {
      const res = await create(src, name, dest, body);
      assert.equal(errorCode(res), code, `${JSON.stringify(body)}: ${res.body}`);
      if (dest !== src) assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${dest}/exists` })).body, '{"exist":false}');
    }
    const bad = await create(src, 't1', fresh('d'), { mode: 'sql', code: `select nope from ${src}` });
    assert.match(JSON.parse(bad.body).error, /nope/);
    assert.equal(errorCode(await create('no_such_src', 't1', fresh('d'), { mode: 'sql', code: 'select 1' })), 'E18102');
    const dest = fresh('d');
    assert.equal((await create(src, 'first', dest, { mode: 'sql', code: `select host from ${src}` })).statusCode, 200);
    assert.equal(errorCode(await create(src, 'first', fresh('d'), { mode: 'sql', code: `select host from ${src}` })), 'E18201');
    assert.equal(errorCode(await create(other, 'second', dest, { mode: 'sql', code: `select host from ${other}` })), 'E18205');
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/t1/exists` })).body, '{"exist":false}');
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/first/exists` })).body, '{"exist":true}');
  });

  it('protects the destination: no pushes, no direct delete, removed with its transform', async () => {
    const src = await makeRepo(s);
    const dest = fresh('dest');
    await create(src, 'proj', dest, { mode: 'sql', code: `select host from ${src}` });
    assert.equal(errorCode(await push(s, dest, 'host=x')), 'E18223');
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/repos/${dest}` })), 'E18206');
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/repos/${src}` })), 'E18112');
    // A transform reading the destination blocks deleting the transform that created it.
    await create(dest, 'downstream', fresh('dest2'), { mode: 'sql', code: `select host from ${dest}` });
    const res = await s.call({ method: 'DELETE', url: `/v2/repos/${src}/transforms/proj` });
    assert.equal(res.statusCode, 400);
    assert.equal(errorCode(res), 'E18112');
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${dest}/transforms/downstream` })).statusCode, 200);
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${src}/transforms/proj` })).statusCode, 200);
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${dest}/exists` })).body, '{"exist":false}');
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/proj` })), 'E18202');
  });

  it('updates code and interval, growing the destination, and refuses dropping output fields', async () => {
    const src = await makeRepo(s);
    const dest = fresh('dest');
    await create(src, 'u', dest, { mode: 'sql', code: `select host from ${src}`, interval: '5s' });
    const put = (body: unknown) => s.call({ method: 'PUT', url: `/v2/repos/${src}/transforms/u`, body });
    assert.equal(errorCode(await put({})), 'E18207');
    assert.equal(errorCode(await put({ interval: '3s' })), 'E18208');
    assert.equal(errorCode(await put({ code: `select latency from ${src}` })), 'E18660');
    assert.equal(errorCode(await put({ code: `select latency as host from ${src}` })), 'E18660');
    assert.equal((await put({ code: `select host, latency * 2 as double_latency from ${src}`, interval: '10s' })).statusCode, 200);
    assert.deepEqual((await repoOf(dest)).schema.map((f: any) => f.key), ['host', 'double_latency']);
    const t = await get(src, 'u');
    assert.equal(t.spec.interval, '10s');
    await push(s, src, 'host=a\tlatency=4');
    await run(src, 'u');
    assert.deepEqual(await rows(dest), [{ host: 'a', double_latency: 8 }]);
    const list = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms` })).body);
    assert.deepEqual(list.transforms.map((x: any) => x.name), ['u']);
  });

  it('shows a failing run in the status and retries without skipping data', async () => {
    const src = await makeRepo(s);
    const dest = fresh('dest');
    await create(src, 'fragile', dest, { mode: 'sql', code: `select host, cast(region as bigint) as r from ${src}`, interval: '5s' });
    await push(s, src, 'host=a\tregion=12\nhost=b\tregion=not-a-number');
    await run(src, 'fragile');
    let t = await get(src, 'fragile');
    assert.equal(t.status.state, 'error');
    assert.match(t.status.lastError, /not-a-number|convert|cast/i);
    assert.equal(t.status.lag.points, 2);
    assert.deepEqual(await rows(dest), []);
    assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${src}/transforms/fragile`, body: { code: `select host, try_cast(region as bigint) as r from ${src}` } })).statusCode, 200);
    await run(src, 'fragile');
    t = await get(src, 'fragile');
    assert.equal(t.status.state, 'running');
    assert.deepEqual(await rows(dest), [{ host: 'a', r: 12 }, { host: 'b' }]);
  });

  it('pauses transforms while their group is stopped and resumes from the committed offset', async () => {
    const group = fresh('grp');
    await s.call({ method: 'POST', url: `/v2/groups/${group}`, body: { region: 'nb', container: { type: 'M16C4', count: 1 } } });
    const src = await makeRepo(s, fresh('grouped'), [{ key: 'v', valtype: 'long' }], { group });
    const dest = fresh('dest');
    await create(src, 'g', dest, { mode: 'sql', code: `select v from ${src}`, interval: '5s' });
    const g = JSON.parse((await s.call({ method: 'GET', url: `/v2/groups/${group}` })).body);
    assert.equal(g.container.status, 'running', 'the first transform allocates an idle group');
    await s.call({ method: 'POST', url: `/v2/groups/${group}/actions/stop` });
    await push(s, src, 'v=1\nv=2');
    await run(src, 'g');
    assert.equal((await get(src, 'g')).status.state, 'paused');
    assert.deepEqual(await rows(dest), []);
    await s.call({ method: 'POST', url: `/v2/groups/${group}/actions/start` });
    await run(src, 'g');
    assert.deepEqual(await rows(dest), [{ v: 1 }, { v: 2 }]);
    assert.equal((await get(src, 'g')).status.state, 'running');
  });

  it('runs on its interval by itself: output readable within interval + 1 s', async () => {
    const src = await makeRepo(s);
    const dest = fresh('dest');
    await create(src, 'timed', dest, { mode: 'sql', code: `select host from ${src}`, interval: '5s' });
    await new Promise((r) => setTimeout(r, 1500)); // let the first (empty) tick pass
    const t0 = Date.now();
    await push(s, src, 'host=tick');
    while ((await rows(dest)).length === 0) {
      assert.ok(Date.now() - t0 < 6_500, 'no output within interval + 1.5 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('uploads JavaScript plugins with MD5 checks and runs plugin then SQL', async () => {
    const code = 'export default (p) => ({ host: p.host.toUpperCase(), size: p.latency * 10 });';
    const md5 = createHash('md5').update(code).digest('base64');
    const up = (name: string, body: string, headers: Record<string, string> = {}) =>
      s.call({ method: 'POST', url: `/v2/plugins/${name}`, body, headers: { 'content-type': 'application/javascript', ...headers } });
    assert.equal(errorCode(await up('bad-name', code)), 'E18117');
    assert.equal(errorCode(await up('com.x.Upper', code, { 'content-md5': 'gLL29S04bTCxYd2kCqsEIQ==' })), 'E18220');
    // Any body is stored (as the official server did); it is checked when used (test/plugins-upload.test.ts).
    assert.equal((await up('com.x.Broken', 'export const nothing = 1;')).statusCode, 200);
    assert.equal((await up('com.x.Upper', code, { 'content-md5': md5 })).statusCode, 200);
    assert.equal(errorCode(await up('com.x.Upper', code)), 'E18217');
    const list = JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins' })).body);
    assert.deepEqual(list.plugins.map((p: any) => p.name), ['com.x.Broken', 'com.x.Upper']);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: '/v2/plugins/com.x.Upper' })).body).md5, md5);
    assert.equal((await s.call({ method: 'POST', url: '/v2/verify/plugins/com.x.Upper', body: { output: [{ name: 'host' }] } })).statusCode, 200);

    const src = await makeRepo(s);
    const dest = fresh('dest');
    const res = await create(src, 'plug', dest, {
      plugin: { name: 'com.x.Upper', output: [{ name: 'host', type: 'string' }, { name: 'size', type: 'long' }] },
      mode: 'sql', code: `select host, sum(size) as total from ${src} group by host`, interval: '5s',
    });
    assert.equal(res.statusCode, 200, res.body);
    await push(s, src, 'host=a\tlatency=1\nhost=a\tlatency=2');
    await run(src, 'plug');
    assert.deepEqual(await rows(dest), [{ host: 'A', total: 30 }]);
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: '/v2/plugins/com.x.Upper' })), 'E18112');
    await s.call({ method: 'DELETE', url: `/v2/repos/${src}/transforms/plug` });
    assert.equal((await s.call({ method: 'DELETE', url: '/v2/plugins/com.x.Upper' })).statusCode, 200);
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/plugins/com.x.Upper' })), 'E18216');
  });
});
