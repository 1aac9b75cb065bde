/**
 * Fuzzing the endpoint families added after test/fuzz.test.ts: exports (with
 * preview), the v5 log store (repos, data, search, scroll, histogram),
 * offline datasources, schemas, jobs, job exports, history, variables and
 * batch actions. Random methods, names, query strings and JSON bodies (SDK
 * shapes with mutated values, and any JSON); no answer may be a 5xx and every
 * error has the documented shape.
 *
 * FUZZ_RUNS sets the number of requests (default 1,500); FUZZ_REPORT=1 prints
 * the status histogram.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { AK, SK, makeRepo, signRequest, type TestServer } from './helpers.ts';
import { jsonl, ManualClock, putHdfs, startOffline } from './offline-helpers.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const REPO = 'fz_repo';
const EXP = 'fz_exp';
const LOG = 'fz_log';
const DS = 'fz_ds';
const JOB = 'fz_job';
const VAR = 'fz_var';

const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(REPO, EXP, LOG, DS, JOB, VAR, 'fz_other', 'a', 'x'.repeat(128), 'x'.repeat(129), 'n'.repeat(1100), '%2e%2e', '%00', '%ZZ', 'a%2Fb', '') },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z_][a-z0-9_]{0,12}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map(encodeURIComponent) },
);

const TEMPLATES = [
  '/v2/repos/{}/exports', '/v2/repos/{}/exports/{}', '/v2/repos/{}/exports/{}/exists', '/v2/repos/{}/exports/{}/preview',
  '/v5/repos', '/v5/repos/{}', '/v5/repos/{}/data', '/v5/repos/{}/search', '/v5/repos/{}/scroll', '/v5/repos/{}/histogram',
  '/v2/datasources', '/v2/datasources/{}', '/v2/datasources/{}/exists', '/v2/schemas',
  '/v2/jobs', '/v2/jobs/{}', '/v2/jobs/{}/exists', '/v2/jobs/{}/schema', '/v2/jobs/{}/history', '/v2/jobs/{}/actions/start',
  '/v2/jobs/{}/actions/stop', '/v2/jobs/{}/actions/backfill', '/v2/jobs/{}/exports', '/v2/jobs/{}/exports/{}', '/v2/jobs/{}/exports/{}/exists',
  '/v2/variables', '/v2/variables/{}', '/v2/batch/actions/stop', '/v2/batch/actions/rerun',
];
const path = fc.tuple(fc.constantFrom(...TEMPLATES), fc.array(name, { minLength: 2, maxLength: 2 })).map(([t, names]) => {
  let i = 0;
  return t.replace(/\{\}/g, () => names[i++]!);
});

const queryValue = fc.oneof(
  fc.constantFrom('', 'true', 'false', '0', '1', '-1', '1000', '1001', '10001', '99999999999999999999', 'NaN', '1.5', '*', 'msg:a', 'msg:', '(', 'AND', '"', 'n:[1 TO 2]', 'n:{* TO', '-endTime', 'runId', 'desc', 'x', 'system', 'user', '5m', '2026-01-01T00:00:00Z', 'msg', 'n', REPO),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
);
const query = fc
  .array(fc.tuple(fc.constantFrom('q', 'from', 'to', 'size', 'page', 'sort', 'scroll', 'field', 'highlight', 'omitInvalidLog', 'limit', 'marker', 'type', 'sortBy', 'order', 'status', 'runId', 'srcDatasource', 'srcJob', 'count', 'x'), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

const any = fc.jsonValue({ maxDepth: 3 });
const str = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', 'json', 'csv', 'parquet', 'text', 'SQL', 'manual', 'crontab', 'loop', '0 * * * *', '5m', 'nb'));
const opt = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, any);

/** SDK-shaped bodies with mutated values, so validation runs past the first check. */
const shaped = fc.oneof(
  // exports
  fc.record({ type: fc.constantFrom('http', 'kodo', 'logdb', 'mongo', 'tsdb', 'report', 'x'), whence: fc.constantFrom('oldest', 'newest', 'x'),
    spec: fc.record({ host: opt(fc.constantFrom('http://127.0.0.1:9', 'https://x', 'x')), uri: opt(str), format: opt(str), bucket: opt(str), keyPrefix: opt(str),
      fields: opt(fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 8 }).map((s) => `#${s}`), any), { maxKeys: 4 })), destRepoName: opt(str), repoName: opt(str),
      doc: opt(fc.dictionary(fc.string({ maxLength: 6 }), str, { maxKeys: 3 })), rotateInterval: opt(fc.integer()), email: opt(str), accessKey: opt(str) }, { requiredKeys: [] }),
    count: opt(fc.integer({ min: -5, max: 2000 })) }, { requiredKeys: [] }),
  // log repos and writes
  fc.record({ region: opt(str), retention: opt(fc.constantFrom('2d', '0d', '-1d', '30d', '100000d', 'x')), fullText: opt(fc.boolean()), description: any,
    schema: opt(fc.array(fc.record({ key: opt(str), valtype: opt(fc.constantFrom('string', 'long', 'float', 'date', 'boolean', 'object', 'x')), analyzer: opt(str), primary: opt(fc.boolean()), nested: any }, { requiredKeys: [] }), { maxLength: 3 })) }, { requiredKeys: [] }),
  fc.array(fc.dictionary(fc.constantFrom('msg', 'n', 'f', 't', 'x', ''), any, { maxKeys: 3 }), { maxLength: 4 }),
  // search and scroll
  fc.record({ query: opt(str), sort: opt(str), from: opt(fc.integer({ min: -10, max: 20000 })), size: opt(fc.integer({ min: -10, max: 20000 })), scroll: opt(str), scroll_id: opt(str), fields: opt(str),
    highlight: opt(fc.record({ pre_tags: any, post_tags: any, fields: any, fragment_size: any }, { requiredKeys: [] })) }, { requiredKeys: [] }),
  // datasources and schemas
  fc.record({ region: opt(str), type: fc.constantFrom('kodo', 'hdfs', 'fusion', 'x'),
    spec: fc.record({ bucket: opt(str), keyPrefixes: opt(fc.array(str, { maxLength: 2 })), paths: opt(fc.array(fc.constantFrom('hdfs://nn:9000/fz', '/fz/../..', 'x'), { maxLength: 2 })), fileType: opt(str), delimiter: opt(str), containsHeader: opt(fc.boolean()) }, { requiredKeys: [] }),
    schema: any }, { requiredKeys: [] }),
  // jobs
  fc.record({ srcs: opt(fc.array(fc.record({ name: fc.constantFrom(DS, JOB, 'nope'), type: fc.constantFrom('DataSource', 'Job', 'x'), tableName: opt(str), fileFilter: opt(str) }, { requiredKeys: [] }), { maxLength: 2 })),
    computation: opt(fc.record({ code: opt(fc.constantFrom('SELECT * FROM logs', 'SELECT count(*) AS c FROM logs', 'SELECT $(year) AS y FROM logs', 'DROP TABLE logs', 'SELECT', '')), type: opt(str) }, { requiredKeys: [] })),
    container: any, scheduler: opt(fc.record({ type: opt(str), spec: any }, { requiredKeys: [] })), params: opt(fc.array(fc.record({ name: opt(str), default: opt(str) }, { requiredKeys: [] }), { maxLength: 2 })),
    from: opt(fc.constantFrom('2026-01-01T00:00:00Z', 0, 'x')), to: opt(fc.constantFrom('2026-01-01T03:00:00Z', 1e15, 'x')) }, { requiredKeys: [] }),
  // variables and batch actions
  fc.record({ type: opt(fc.constantFrom('string', 'time', 'number', 'x')), value: opt(str), format: opt(fc.constantFrom('yyyy-MM-dd', 'yyyy-QQ', 'x')), jobName: opt(fc.constantFrom(JOB, 'nope', '')), runId: opt(fc.oneof(fc.integer({ min: -1, max: 5 }), fc.constantFrom('1', 'x'))) }, { requiredKeys: [] }),
);

const body = fc.oneof(
  { weight: 1, arbitrary: fc.constant<string | undefined>(undefined) },
  { weight: 6, arbitrary: shaped.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('{', '[', '{"a":', 'null', '""', '[1,', '{"query":')) },
);

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'GET', 'POST'),
  path,
  query,
  body,
  contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', ''),
  signed: fc.oneof({ weight: 19, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});
type Req = typeof request extends fc.Arbitrary<infer T> ? T : never;

async function send(s: TestServer, r: Req): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { date: new Date().toUTCString() };
  if (r.contentType) headers['content-type'] = r.contentType;
  const url = r.path + r.query;
  if (r.signed) headers.authorization = `Pandora ${AK}:${signRequest(SK, r.method, url, headers)}`;
  return s.app.inject({ method: r.method as 'GET', url, headers, payload: r.body });
}

describe('fuzz of exports, the v5 log store and offline jobs', () => {
  let s: TestServer;
  const ok = async (method: string, url: string, b: unknown) => {
    const res = await s.call({ method, url, body: b });
    if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  };
  before(async () => {
    s = await startOffline({}, { clock: new ManualClock(Date.parse('2026-01-01T00:00:00Z')) });
    await makeRepo(s, REPO, [{ key: 'host', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    await ok('POST', `/v2/repos/${REPO}/data`, 'host=a\tn=1\nhost=b\tn=2');
    await ok('POST', `/v2/repos/${REPO}/exports/${EXP}`, { type: 'http', spec: { host: 'http://127.0.0.1:9', uri: '/x' } });
    await ok('POST', `/v5/repos/${LOG}`, { region: 'nb', retention: '2d', schema: [{ key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'long' }] });
    await ok('POST', `/v5/repos/${LOG}/data`, [{ msg: 'a b', n: 1 }, { msg: 'c', n: 2 }]);
    putHdfs(s, 'fz/a.json', jsonl([{ host: 'a', n: 1 }, { host: 'b', n: 2 }]));
    await ok('POST', `/v2/datasources/${DS}`, { region: 'nb', type: 'hdfs', spec: { paths: ['hdfs://nn:9000/fz'], fileType: 'json' } });
    await ok('POST', `/v2/jobs/${JOB}`, { srcs: [{ name: DS, type: 'DataSource', tableName: 'logs' }], computation: { code: 'SELECT host, n FROM logs', type: 'SQL' }, container: { type: 'M16C4', count: 1 }, scheduler: { type: 'manual' } });
    await ok('POST', `/v2/variables/${VAR}`, { type: 'string', value: 'x' });
  });
  after(async () => { await s.close(); });

  it('answers 10,000-deep JSON bodies on every route of these families without a 5xx', async () => {
    const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const deepArray = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const inField = (f: string) => `{"${f}":${deepObject}}`;
    const bodies = [deepObject, deepArray, inField('spec'), inField('schema'), inField('highlight'), inField('srcs'), inField('params'), `[${deepObject}]`, `[{"msg":${deepObject}}]`];
    for (const t of TEMPLATES) {
      const url = t.replace('{}', t.includes('/v5/') ? LOG : t.includes('/jobs/') ? JOB : t.includes('/datasources/') ? DS : t.includes('/variables/') ? VAR : REPO).replace('{}', t.includes('/exports/') && t.includes('/jobs/') ? 'fz_jexp' : EXP);
      for (const method of ['POST', 'PUT', 'GET'] as const) {
        for (const b of bodies) {
          const res = await send(s, { method, path: url, query: '', body: b, contentType: 'application/json', signed: true });
          assert.ok(res.statusCode < 500, `${method} ${url} -> ${res.statusCode} ${res.body}`);
        }
      }
    }
  });

  it(`answers ${RUNS} random requests without a 5xx, errors in the documented shape`, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await send(s, r);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        assert.ok(res.statusCode < 500, `${r.method} ${r.path}${r.query} ${r.body?.slice(0, 300)} -> ${res.statusCode} ${res.body}`);
        assert.match(String(res.headers['x-reqid']), /^[0-9a-f]{16}$/);
        if (res.statusCode >= 400) {
          assert.equal(res.headers['content-type'], 'application/json', res.body);
          assert.equal(typeof (JSON.parse(res.body) as { error?: unknown }).error, 'string', res.body);
        }
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    const ok200 = statuses.get(200) ?? 0;
    assert.ok(ok200 > RUNS / 20, `only ${ok200} answers of 200: ${JSON.stringify([...statuses])}`);
    if (process.env.FUZZ_REPORT) console.log(`fuzz statuses over ${RUNS} requests: ${JSON.stringify(Object.fromEntries(statuses))}`);
  });
});
