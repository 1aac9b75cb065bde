import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fresh, push, startServer, type TestServer } from './helpers.ts';
import { json, logdbCode, queryLog } from './logdb-helpers.ts';

/** Polls (real time: the delivery engine runs on its own) until fn is true; returns the ms waited. */
async function until(fn: () => Promise<boolean>, what: string, ms = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

/**
 * logkit's pandora sender with `pandora_enable_logdb: "true"` (qiniu/logkit
 * sender/pandora/pandora.go -> pandora-go-sdk pipeline/schemafree.go
 * InitOrUpdateWorkflow and pipeline/unified.go AutoExportToLogDB), replayed
 * call by call with the bodies its Go structs marshal to.
 */
describe('logkit with pandora_enable_logdb', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  it('creates its repo, log repo and export through the API, and its logs become searchable within 2 s', async () => {
    const repo = fresh('logkit_Nginx');
    const logRepo = repo.toLowerCase(); // AutoExportToLogDB lower-cases LogRepoName (defaults to the repo name)
    const exportName = `${repo}_export2_logdb`;
    // Schema-free: the first points decide the schema (GET repo -> 404 -> POST repo).
    const getRepo = await s.call({ method: 'GET', url: `/v2/repos/${repo}` });
    assert.equal(getRepo.statusCode, 404);
    const schema = [
      { key: 'remote_addr', valtype: 'string', required: false, description: null },
      { key: 'request', valtype: 'string', required: false, description: null },
      { key: 'status', valtype: 'long', required: false, description: null },
      { key: 'time_local', valtype: 'date', required: false, description: null },
      { key: 'hostname', valtype: 'string', required: false, description: null },
    ];
    const created = await s.call({ method: 'POST', url: `/v2/repos/${repo}`, body: { region: 'nb', schema, options: { withIP: '', unescapeLine: false }, group: '', workflow: '', ruleNames: null, description: '' } });
    assert.equal(created.statusCode, 200, created.body);
    // AutoExportToLogDB: GET repo, GET log repo -> E8111, POST log repo.
    json(await s.call({ method: 'GET', url: `/v2/repos/${repo}` }));
    const noLog = await s.call({ method: 'GET', url: `/v5/repos/${logRepo}` });
    assert.equal(noLog.statusCode, 404);
    assert.equal(logdbCode(noLog), 'E8111', 'IsNoSuchResourceError needs E8111');
    // logkit turns fullText on (4 or fewer analyzers configured); the logdb client then makes every string keyword.
    const logSchema = schema.map((f) => ({ key: f.key, valtype: f.valtype, ...(f.valtype === 'string' ? { analyzer: 'keyword' } : {}), description: null }));
    const mk = await s.call({ method: 'POST', url: `/v5/repos/${logRepo}`, body: {
      RepoName: logRepo, region: 'nb', retention: '30d', coldRetention: '', schema: logSchema,
      fullText: { enabled: true, analyzer: 'standard' }, description: '', primaryField: '', dateIndexField: '',
    } });
    assert.equal(mk.statusCode, 200, mk.body);
    // GET export -> E18302, POST export (FormLogDBSpec: doc maps every field to "#field").
    const noExport = await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${exportName}` });
    assert.equal(noExport.statusCode, 404);
    assert.equal(JSON.parse(noExport.body).error.slice(0, 6), 'E18302');
    const exp = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${exportName}`, body: {
      type: 'logdb', whence: 'oldest',
      spec: { destRepoName: logRepo, doc: Object.fromEntries(schema.map((f) => [f.key, `#${f.key}`])), omitInvalid: false, omitEmpty: true, locateIPConfig: null },
    } });
    assert.equal(exp.statusCode, 200, exp.body);
    // The sender pushes its lines.
    const lines = [
      'remote_addr=10.0.0.1\trequest=GET /index.html HTTP/1.1\tstatus=200\ttime_local=2024-06-01T10:00:00Z\thostname=edge-1',
      'remote_addr=10.0.0.2\trequest=POST /api/login HTTP/1.1\tstatus=401\ttime_local=2024-06-01T10:00:01Z\thostname=edge-1',
      'remote_addr=10.0.0.3\trequest=GET /missing HTTP/1.1\tstatus=404\ttime_local=2024-06-01T10:00:02Z\thostname=edge-2',
    ];
    const pushed = await push(s, repo, lines.join('\n'));
    assert.equal(pushed.statusCode, 200, pushed.body);
    const waited = await until(async () => json<{ total: number }>(await queryLog({ s }, logRepo, {})).total === 3, 'logs in the log repo');
    assert.ok(waited <= 2000, `searchable after ${waited} ms`);
    // Full text over every field (fullText), keyword fields exactly, numbers by range.
    assert.equal(json<{ total: number }>(await queryLog({ s }, logRepo, { q: 'login' })).total, 1);
    assert.equal(json<{ total: number }>(await queryLog({ s }, logRepo, { q: 'hostname:edge-1 AND status:>=400' })).total, 1);
    const hist = json<{ total: number }>(await s.call({ method: 'GET', url: `/v5/repos/${logRepo}/histogram?q=&from=${Date.parse('2024-06-01T09:59:00Z')}&to=${Date.parse('2024-06-01T10:01:00Z')}&field=time_local` }));
    assert.equal(hist.total, 3);

    // A restarted sender with a new field: GET log repo, PUT it with the retention read back, GET export -> exists.
    const got = json<{ retention: string; schema: unknown[] }>(await s.call({ method: 'GET', url: `/v5/repos/${logRepo}` }));
    const upd = await s.call({ method: 'PUT', url: `/v5/repos/${logRepo}`, body: {
      RepoName: logRepo, retention: got.retention, coldRetention: '', description: null,
      schema: [...got.schema, { key: 'upstream', valtype: 'string', analyzer: 'keyword', description: null }],
    } });
    assert.equal(upd.statusCode, 200, upd.body);
    assert.equal(json<{ retention: string }>(await s.call({ method: 'GET', url: `/v5/repos/${logRepo}` })).retention, '30d');
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${exportName}` })).statusCode, 200);
    assert.equal(json<{ total: number }>(await queryLog({ s }, logRepo, { q: 'login' })).total, 1, 'rebuilt index still finds old logs');
  });

  it('creates the destination log repo itself when an export names a missing one, and keeps delivering new pushes', async () => {
    const repo = fresh('plain');
    const dest = fresh('auto').toLowerCase();
    await s.call({ method: 'POST', url: `/v2/repos/${repo}`, body: { region: 'nb', schema: [{ key: 'msg', valtype: 'string' }, { key: 'n', valtype: 'long' }] } });
    const exp = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/tolog`, body: { type: 'logDB', spec: { destRepoName: dest } } });
    assert.equal(exp.statusCode, 200, exp.body);
    assert.equal((await s.call({ method: 'GET', url: `/v5/repos/${dest}` })).statusCode, 200);
    for (let round = 1; round <= 2; round++) {
      const body = Array.from({ length: 500 }, (_, i) => `msg=round ${round} line ${i}\tn=${i}`).join('\n');
      assert.equal((await push(s, repo, body)).statusCode, 200);
      await until(async () => json<{ total: number }>(await queryLog({ s }, dest, {})).total === 500 * round, `round ${round}`);
    }
    assert.equal(json<{ total: number }>(await queryLog({ s }, dest, { q: 'msg:"round 2" AND n:[0 TO 9]' })).total, 10);
    const bad = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/bad`, body: { type: 'logdb', spec: { destRepoName: 'Not_Lower' } } });
    assert.equal(bad.statusCode, 400);
    assert.equal(JSON.parse(bad.body).error.slice(0, 6), 'E18303');
  });
});
