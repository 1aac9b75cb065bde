import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiError } from '../src/errors.ts';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import { SqlEngine, SqlRuntimeError, SqlTimeoutError } from '../src/sql/engine.ts';
import { formatMicros, parseRfc3339 } from '../src/sql/time.ts';
import { sanitizeKey } from '../src/sql/types.ts';

const f = (key: string, valtype: SchemaField['valtype'], extra: Partial<SchemaField> = {}): SchemaField =>
  ({ key, valtype, required: false, ...extra });
const out = (key: string, valtype: SchemaField['valtype'], extra: Partial<SchemaField> = {}): SchemaField =>
  ({ key, valtype, required: false, ...extra });

const SCHEMA: SchemaField[] = [
  f('host', 'string'), f('latency', 'long'), f('cpu', 'float'), f('ts', 'date'), f('ok', 'boolean'),
  f('addresses', 'array', { elemtype: 'string' }),
  f('profile', 'map', { schema: [f('salary', 'long'), f('name', 'string'), f('geo', 'map', { schema: [f('lat', 'float')] })] }),
  f('extra', 'jsonstring'),
];
const POINTS: Point[] = [
  { host: 'a', latency: 10, cpu: 0.5, ts: '2017-01-02T03:04:05.123456789+08:00', ok: true, addresses: ['x st', 'y st'],
    profile: { salary: 100, name: 'ann', geo: { lat: 1.5 } }, extra: '{"k":1}' },
  { host: 'a', latency: 30, cpu: 1.5, ts: '2017-01-02T00:00:00Z', ok: false, addresses: [], profile: { salary: 300 } },
  { host: 'b', latency: 2n ** 60n, cpu: 2, ok: true, addresses: ['z st'] },
];

let engine: SqlEngine;
const run = (sql: string, points: Point[] = POINTS, schema: SchemaField[] = SCHEMA, timeoutMs = 5000) =>
  engine.run('test_repo', schema, points, sql, { timeoutMs });

before(async () => {
  engine = await SqlEngine.create({ memoryLimit: '512MB', threads: 2 });
});
after(async () => {
  await engine.close();
});

describe('queries', () => {
  test('an aggregate query returns one row per group with a derived schema', async () => {
    const r = await run('select host, count(*) as n, avg(cpu) as c from test_repo where host = \'a\' group by host');
    assert.deepEqual(r.fields, [out('host', 'string'), out('n', 'long'), out('c', 'float')]);
    assert.deepEqual(r.rows, [{ host: 'a', n: 2, c: 1 }]);
  });

  test("the reference's example select count(*) works and its column is sanitised to count_star", async () => {
    const r = await run('select count(*) from test_repo');
    assert.deepEqual(r.fields, [out('count_star', 'long')]);
    assert.deepEqual(r.rows, [{ count_star: 3 }]);
  });

  test('a projection with a filter and expressions returns the matching rows with sanitised names', async () => {
    const r = await run('select host, latency * 2, avg(latency) over () > 0 as pos from test_repo where latency < 100 order by latency');
    assert.deepEqual(r.fields.map((x) => x.key), ['host', 'latency_2', 'pos']);
    assert.deepEqual(r.rows, [{ host: 'a', latency_2: 20, pos: true }, { host: 'a', latency_2: 60, pos: true }]);
  });

  test('struct fields are reachable with dot notation and arrays can be unnested', async () => {
    const r = await run('select profile.salary, profile.geo.lat, unnest(addresses) as addr from test_repo order by addr');
    assert.deepEqual(r.fields, [out('salary', 'long'), out('lat', 'float'), out('addr', 'string')]);
    assert.deepEqual(r.rows, [{ salary: 100, lat: 1.5, addr: 'x st' }, { salary: 100, lat: 1.5, addr: 'y st' }, { addr: 'z st' }]);
  });

  test('arrays and structs in the result become array and map fields, and NULLs are omitted', async () => {
    const r = await run('select host, list(latency order by latency) as lats, {\'top\': max(cpu), \'inner\': {\'n\': count(*)}} as s, max(extra) as e from test_repo group by host order by host');
    assert.deepEqual(r.fields, [
      out('host', 'string'), out('lats', 'array', { elemtype: 'long' }),
      out('s', 'map', { schema: [out('top', 'float'), out('inner', 'map', { schema: [out('n', 'long')] })] }), out('e', 'string'),
    ]);
    assert.deepEqual(r.rows, [
      { host: 'a', lats: [10, 30], s: { top: 1.5, inner: { n: 2 } }, e: '{"k":1}' },
      { host: 'b', lats: [2n ** 60n], s: { top: 2, inner: { n: 1 } } },
    ]);
  });

  test('dates with nanoseconds and an offset load as UTC instants and come back as RFC 3339 with Z', async () => {
    const r = await run("select ts, ts + interval 1 hour as later, ts::date as day, epoch_us(ts) as us from test_repo where host = 'a' order by ts");
    assert.deepEqual(r.fields.map((x) => x.valtype), ['date', 'date', 'date', 'long']);
    assert.deepEqual(r.rows[0], { ts: '2017-01-01T19:04:05.123456Z', later: '2017-01-01T20:04:05.123456Z', day: '2017-01-01T00:00:00Z', us: 1483297445123456 });
    assert.equal(r.rows[1]?.ts, '2017-01-02T00:00:00Z');
    const ns = await run("select '2017-01-02 03:04:05.123456789'::timestamp_ns as a, '2017-01-02 03:04:05.5'::timestamptz as b, 'infinity'::timestamp as c");
    assert.deepEqual(ns.rows, [{ a: '2017-01-02T03:04:05.123456789Z', b: '2017-01-02T03:04:05.5Z' }]);
  });

  test('longs beyond 2^53 and booleans round-trip exactly', async () => {
    const r = await run("select latency, latency + 1 as next, ok, not ok as nok from test_repo where host = 'b'");
    assert.deepEqual(r.rows, [{ latency: 2n ** 60n, next: 2n ** 60n + 1n, ok: true, nok: false }]);
    assert.deepEqual(r.fields.map((x) => x.valtype), ['long', 'long', 'boolean', 'boolean']);
  });

  test('an empty batch still has the table with its schema', async () => {
    const count = await run('select count(*) as n, sum(latency) as s from test_repo', []);
    assert.deepEqual(count.rows, [{ n: 0 }]);
    const all = await run('select * from test_repo', []);
    assert.deepEqual(all.rows, []);
    assert.deepEqual(all.fields.map((x) => x.key), SCHEMA.map((x) => x.key));
  });

  test('other result types are mapped: decimals to float, huge integers to long, the rest to strings', async () => {
    const r = await run("select 1.25::decimal(6,2) as d, sum(latency) as s, interval 1 day as i, map {'k': 1} as m, [true] as bl, [[1]] as nested, 'x'::blob as b from test_repo where host = 'a'");
    assert.deepEqual(r.fields, [out('d', 'float'), out('s', 'long'), out('i', 'string'), out('m', 'string'),
      out('bl', 'array', { elemtype: 'string' }), out('nested', 'string'), out('b', 'string')]);
    assert.deepEqual(r.rows, [{ d: 1.25, s: 40, i: '1 day', m: '{k=1}', bl: ['true'], nested: '[[1]]', b: 'x' }]);
    // The converting wrapper keeps the user's order, quotes, comments and trailing ';' intact.
    const w = await run("with q as (select host, sum(latency) as total from test_repo where host <> 'it''s' group by host) select * from q order by host desc; -- it's done");
    assert.deepEqual(w.rows, [{ host: 'b', total: 2n ** 60n }, { host: 'a', total: 40 }]);
  });

  test('a map without nested fields and a jsonstring load as JSON text that json functions can read', async () => {
    const schema = [f('meta', 'map'), f('doc', 'jsonstring')];
    const r = await run("select meta, doc->>'$.a' as a from test_repo", [{ meta: { a: 1, big: 2n ** 60n }, doc: { a: 'x' } }], schema);
    assert.deepEqual(r.rows, [{ meta: '{"a":1,"big":"1152921504606846976"}', a: 'x' }]);
  });

  test('result columns whose sanitised names clash are refused with a request for an alias', async () => {
    await assert.rejects(run('select host, host from test_repo'), (e: unknown) => e instanceof ApiError && e.code === 'E18209' && /alias/.test(e.message));
    assert.deepEqual(['count_star()', 'avg(latency)', '1x', 'ok_'].map(sanitizeKey), ['count_star', 'avg_latency', '_1x', 'ok_']);
  });

  test('many points with NULLs, long, repeated and non-ASCII strings load exactly', async () => {
    const words = ['', 'short', 'exactly12chr', 'thirteen char', 'ünïcödé', 'a considerably longer string value'];
    const points: Point[] = Array.from({ length: 5000 }, (_, i) => ({
      host: i % 7 === 0 ? undefined : words[i % words.length] + (i % 3 === 0 ? '' : String(i % 50)),
      latency: i % 11 === 0 ? null : i - 2500, cpu: i / 4, addresses: i % 5 === 0 ? undefined : [words[i % 6], String(i)],
    }));
    const r = await run('select host, latency, cpu, addresses from test_repo', points);
    assert.deepEqual(r.rows, points.map((p) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined && v !== null))));
  });
});

describe('describe()', () => {
  test('a valid query returns its output schema without data', async () => {
    const fields = await engine.describe('test_repo', SCHEMA, 'with x as (select host, latency from test_repo) select host, max(latency) from x group by host');
    assert.deepEqual(fields, [out('host', 'string'), out('max_latency', 'long')]);
  });

  const refused: [string, RegExp][] = [
    ['selec host from test_repo', /syntax error/],
    ['select nosuch from test_repo', /nosuch.*not found/],
    ['select 1; select 2', /exactly one SELECT statement, got 2/],
    ["insert into test_repo (host) values ('x')", /SELECT.*INSERT/],
    ['create table t2 (a int)', /SELECT.*CREATE/],
    ["copy test_repo to '/tmp/pandora-sql-test.csv'", /disabled by configuration|COPY/],
    ["attach '/tmp/pandora-sql-test.db'", /SELECT.*ATTACH|disabled/],
    ['pragma version', /SELECT.*PRAGMA/],
    ['set threads = 1', /SELECT.*SET/],
    ['select $1 from test_repo', /parameters/],
  ];
  for (const [sql, message] of refused) {
    test(`"${sql}" is refused with E18209 and the engine's explanation`, async () => {
      await assert.rejects(engine.describe('test_repo', SCHEMA, sql), (e: unknown) => {
        assert.ok(e instanceof ApiError, String(e));
        assert.equal(e.code, 'E18209');
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

describe('sandbox', () => {
  const attempts = [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from read_json('/etc/passwd')",
    "select * from read_parquet('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select * from '/etc/passwd'",
    "select * from query('select * from read_text(''/etc/passwd'')')",
    "attach '/tmp/pandora-sql-test.db' as other",
    "copy (select 1) to '/tmp/pandora-sql-test.csv'",
    'install httpfs',
    'load httpfs',
    'SET enable_external_access=true',
    "select * from read_csv('http://127.0.0.1:1/x.csv')",
  ];
  for (const sql of attempts) {
    test(`"${sql}" is refused by describe and by run and reads nothing`, async () => {
      for (const attempt of [() => engine.describe('test_repo', SCHEMA, sql), () => run(sql)]) {
        await assert.rejects(attempt(), (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.doesNotMatch(e.message, /root:/);
          return true;
        });
      }
    });
  }

  test('the sandbox settings are in force and locked as seen from user SQL', async () => {
    const names = ['enable_external_access', 'autoload_known_extensions', 'autoinstall_known_extensions', 'allow_community_extensions', 'lock_configuration', 'TimeZone'];
    const r = await run(`select ${names.map((n) => `current_setting('${n}')::varchar as ${n}`).join(', ')}`);
    assert.deepEqual(r.rows, [{ enable_external_access: 'false', autoload_known_extensions: 'false', autoinstall_known_extensions: 'false',
      allow_community_extensions: 'false', lock_configuration: 'true', TimeZone: 'UTC' }]);
  });
});

describe('limits and isolation', () => {
  test('a runaway query is interrupted after its timeout and the engine stays usable', async () => {
    for (const sql of ['select count(*) from range(10000000000) a', 'select count(*) from test_repo, range(100000) a, range(100000) b']) {
      const started = Date.now();
      await assert.rejects(run(sql, POINTS, SCHEMA, 300), SqlTimeoutError);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.deepEqual((await run('select count(*) as n from test_repo')).rows, [{ n: 3 }]);
    }
  });

  test('exceeding the memory limit and failing casts are runtime errors', async () => {
    const small = await SqlEngine.create({ memoryLimit: '64MB', threads: 1 });
    try {
      await assert.rejects(small.run('t', SCHEMA, [], "select string_agg(range::varchar, ',') as s from range(20000000)", { timeoutMs: 10_000 }),
        (e: unknown) => e instanceof SqlRuntimeError && /Out of Memory/.test(e.message));
      await assert.rejects(small.run('t', SCHEMA, POINTS, 'select host::int as h from t', { timeoutMs: 10_000 }),
        (e: unknown) => e instanceof SqlRuntimeError && /Conversion Error/.test(e.message));
      assert.deepEqual((await small.run('t', SCHEMA, POINTS, 'select count(*) as n from t', { timeoutMs: 10_000 })).rows, [{ n: 3 }]);
    } finally {
      await small.close();
    }
  });

  test('with a temp directory whose parents do not exist yet, a query over the memory limit spills instead of failing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pandora-sql-'));
    const spilling = await SqlEngine.create({ memoryLimit: '64MB', threads: 1, tempDir: path.join(dir, 'data', 'duckdb') });
    try {
      // Without the temp directory this sort fails with Out of Memory at 64MB.
      const r = await spilling.run('t', SCHEMA, [], 'select count(*) as n from (select md5(range::varchar) as h from range(3000000) order by h)', { timeoutMs: 20_000 });
      assert.deepEqual(r.rows, [{ n: 3000000 }]);
    } finally {
      await spilling.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('concurrent runs with the same table name see only their own points', async () => {
    const batches = Array.from({ length: 6 }, (_, k) => Array.from({ length: 1000 * (k + 1) }, (_, i) => ({ host: `h${k}`, latency: i })));
    const results = await Promise.all(batches.map((b) => run('select count(*) as n, min(host) as h, max(host) as h2 from test_repo', b)));
    results.forEach((r, k) => assert.deepEqual(r.rows, [{ n: 1000 * (k + 1), h: `h${k}`, h2: `h${k}` }]));
  });

  test('close is idempotent and a closed engine refuses work', async () => {
    const e = await SqlEngine.create({ memoryLimit: '64MB', threads: 1 });
    await e.close();
    await e.close();
    await assert.rejects(e.describe('t', SCHEMA, 'select 1'), /closed/);
  });
});

describe('date conversion', () => {
  test('RFC 3339 strings parse to UTC with microseconds and malformed ones are rejected', () => {
    assert.deepEqual(parseRfc3339('2017-01-02T03:04:05.123456789+08:00'), { seconds: 1483297445, micros: 123456 });
    assert.deepEqual(parseRfc3339('1969-12-31T23:59:59.5-00:30'), { seconds: 1799, micros: 500000 });
    assert.deepEqual(parseRfc3339('2024-02-29t12:00:00z'), { seconds: 1709208000, micros: 0 });
    for (const bad of ['2017-01-02', '2017-13-02T03:04:05Z', '2017-01-02T03:04:05', '2017-01-02T03:04:05.Z', '2017-01-02T03:04:05Zjunk']) {
      assert.equal(parseRfc3339(bad), null, bad);
    }
    assert.equal(formatMicros(-1n), '1969-12-31T23:59:59.999999Z');
    assert.equal(formatMicros(9223372036854775807n), undefined);
  });
});

describe('staged sources (SourceStage)', () => {
  const schema: SchemaField[] = [{ key: 'k', valtype: 'long', required: false }, { key: 's', valtype: 'string', required: false }];
  const pts = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `k=${from + i}\ts=v${from + i}-${'x'.repeat(40)}`);

  test('answers offset ranges across chunks, and starts afresh when a load fails half-way', async () => {
    // No temp directory: nothing can spill, so the memory limit is hard.
    const engine = await SqlEngine.create({ memoryLimit: '8MB', threads: 1 });
    try {
      const stage = await engine.openStage('src', schema);
      await stage.appendLines(100, pts(100, 1000), 0);
      const sum = async (from: number, to: number) => {
        const out: unknown[] = [];
        const r = await stage.query(from, to, 'select count(*) as n, sum(k) as total from src', 5_000);
        r.forEachChunk((cols, n) => { for (let i = 0; i < n; i++) out.push([cols[0]?.[i], cols[1]?.[i]]); });
        return out[0];
      };
      assert.deepEqual(await sum(100, 1100), [1000, (100 + 1099) * 1000 / 2]);
      assert.deepEqual(await sum(500, 510), [10, 5045]);
      await assert.rejects(stage.query(0, 10, 'select 1', 5_000), /not staged/);
      await assert.rejects(stage.appendLines(5, pts(5, 1), 0), /expected 1100/);
      // Far more than 8MB: the load fails, and the stage must not keep rows at the wrong offsets.
      await assert.rejects(stage.appendLines(1100, pts(1100, 400_000), 0));
      assert.equal(stage.count, 0);
      await stage.appendLines(7, pts(7, 3), 0);
      assert.deepEqual(await sum(7, 10), [3, 24]);
      stage.close();
    } finally {
      await engine.close();
    }
  });
});
