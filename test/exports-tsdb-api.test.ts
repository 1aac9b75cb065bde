/**
 * tsdb exports end to end through the HTTP API: push points, the delivery
 * engine runs the tsdb sink, a real influxd (test/influx.ts) holds them;
 * bad timestamps land in the dead-letter repo; bisection of an influxd 400
 * pins the refusal on one record.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { quoteIdent } from '../src/exports/tsdb/client.ts';
import { getExport, waitFor } from './exports-helpers.ts';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { startInflux, type Influx } from './influx.ts';

const SCHEMA = [
  { key: 'host', valtype: 'string' },
  { key: 'n', valtype: 'long' },
  { key: 'x', valtype: 'float' },
  { key: 'when', valtype: 'string' },
  { key: 'tags', valtype: 'array', elemtype: 'string' },
];

describe('tsdb exports through the API, real influxd', () => {
  let s: TestServer;
  let influx: Influx;
  before(async () => {
    influx = await startInflux();
    s = await startServer({ tsdbUrl: influx.url, exportRetryMin: '10ms', exportRetryMax: '50ms' });
  });
  after(async () => {
    await s.close();
    await influx.stop();
  });
  const create = (repo: string, name: string, spec: Record<string, unknown>) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'TSDB', spec } });
  const count = async (db: string, m = 'm'): Promise<number> => {
    const dbs = await influx.rows('SHOW DATABASES', '');
    if (!dbs.some((d) => d.name === db)) return 0;
    return (await influx.rows(`SELECT * FROM ${quoteIdent(m)}`, db)).length;
  };

  it('delivers pushed points into influxd, and a timestamp that does not parse becomes a dead letter', async () => {
    const repo = await makeRepo(s, fresh('repo'), SCHEMA);
    const name = fresh('ex');
    const db = fresh('db');
    const lines = ['host=a\tn=1\twhen=2026-11-30T00:00:00Z', 'host=b\tn=2\twhen=not a time', 'host=c\tn=3\twhen=2026-11-30T00:00:01Z'];
    assert.equal((await push(s, repo, lines.join('\n'))).statusCode, 200);
    const res = await create(repo, name, { destRepoName: db, series: 'm', tags: { host: '#host' }, fields: { n: '#n' }, timestamp: '#when' });
    assert.equal(res.statusCode, 200, res.body);
    await waitFor(async () => (await getExport(s, repo, name)).status.deadLettered === 1, 'the dead letter', 30_000);
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.delivered.total, 2);
    assert.equal(st.lag.points, 0);
    assert.deepEqual((await influx.rows('SELECT * FROM m', db)).map((r) => [r.host, r.n, r.time]), [['a', 1, '1795996800000000000'], ['c', 3, '1795996801000000000']]);
    const dl = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${st.deadLetterRepo}/data?count=10` })).body);
    assert.equal(dl.records.length, 1);
    assert.equal(dl.records[0].record, lines[1]);
    assert.equal(dl.records[0].offset, 1);
    assert.match(dl.records[0].error, /timestamp field "when": "not a time" is not an RFC 3339 time/);
  });

  it('a point influxd refuses (field type conflict) is pinned by bisection and dead-lettered; the others arrive', async () => {
    const repo = await makeRepo(s, fresh('repo'), SCHEMA);
    const db = fresh('db');
    await influx.query(`CREATE DATABASE ${quoteIdent(db)}`);
    // "v" already exists as a float: the first export writes floats into it, the second the long n (host=c only).
    const w = await fetch(`${influx.url}/write?db=${encodeURIComponent(db)}`, { method: 'POST', body: 'm,host=seed v=0.5 1' });
    assert.equal(w.status, 204);
    const name = fresh('ex');
    assert.equal((await push(s, repo, 'host=a\tx=1.5\nhost=b\tx=2.5\nhost=c\tn=7\nhost=d\tx=3.5')).statusCode, 200);
    assert.equal((await create(repo, name, { destRepoName: db, series: 'm', tags: { host: '#host' }, fields: { v: '#x', w: '#n' } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.delivered.total === 4, 'delivery', 30_000);
    // w is a new integer field, so nothing is refused: 4 points plus the seed.
    assert.equal(await count(db), 5);
    const name2 = fresh('ex');
    assert.equal((await create(repo, name2, { destRepoName: db, series: 'm', tags: { host: '#host' }, fields: { v: '#n', x: '#x' } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name2)).status.deadLettered === 1, 'the dead letter', 30_000);
    const st = (await getExport(s, repo, name2)).status;
    assert.equal(st.delivered.total, 3);
    const dl = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${st.deadLetterRepo}/data?count=10` })).body);
    assert.deepEqual(dl.records.map((r: { offset: number }) => r.offset), [2]);
    assert.match(dl.records[0].error, /InfluxDB answered 400 to write: .*field type conflict/);
  });

  it('refuses specs with E18303 naming the problem, and stores nothing', async () => {
    const repo = await makeRepo(s, fresh('repo'), SCHEMA);
    const base = { destRepoName: fresh('db'), series: 'm', fields: { n: '#n' } };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...base, fields: { n: '#nope' } }, /fields\.n refers to "#nope", which is not a field of the repo/],
      [{ ...base, tags: { t: '#tags' } }, /an array: InfluxDB has no array values/],
      [{ ...base, timestamp: '#x' }, /timestamp refers to "#x" of type float/],
    ];
    for (const [spec, msg] of cases) {
      const name = fresh('ex');
      const res = await create(repo, name, spec);
      assert.equal(errorCode(res), 'E18303');
      assert.match(JSON.parse(res.body).error, msg);
      assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}/exists` })).body), { exist: false });
    }
  });

  it('previews the line protocol for the newest points and writes nothing', async () => {
    const repo = await makeRepo(s, fresh('repo'), SCHEMA);
    const db = fresh('db');
    assert.equal((await push(s, repo, 'host=a b\tn=1\twhen=2026-11-30T00:00:00Z\nhost=c\tn=2\twhen=bad')).statusCode, 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}/preview`, body: { type: 'tsdb', spec: { destRepoName: db, series: 'm', tags: { host: '#host' }, fields: { n: '#n' }, timestamp: '#when' } } });
    assert.equal(res.statusCode, 200, res.body);
    const p = JSON.parse(res.body);
    assert.deepEqual(p.rendered, { database: db, precision: 'ns', lines: ['m,host=a\\ b n=1i 1795996800000000000'], skipped: 0 });
    assert.equal(p.rejected.length, 1);
    assert.equal(p.rejected[0].offset, 1);
    assert.equal(await count(db), 0);
  });
});

describe('tsdb exports without PIPELINE_TSDB_URL', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  it('creating one fails with E18303 saying how to configure InfluxDB', async () => {
    const repo = await makeRepo(s, fresh('repo'), SCHEMA);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'tsdb', spec: { destRepoName: 'db', series: 'm', fields: { n: '#n' } } } });
    assert.equal(errorCode(res), 'E18303');
    assert.match(JSON.parse(res.body).error, /set PIPELINE_TSDB_URL/);
  });
});
