import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { getExport, startReceiver, waitFor, type Receiver } from './exports-helpers.ts';

describe('exports API', () => {
  let s: TestServer;
  let rx: Receiver;
  before(async () => {
    s = await startServer({ exportRetryMin: '10ms', exportRetryMax: '50ms' });
    rx = await startReceiver();
  });
  after(async () => {
    await s.close();
    await rx.close();
  });
  const create = (repo: string, name: string, body: unknown) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body });

  it('creates, lists, reads, updates and deletes an export, matching the type case-insensitively and keeping unknown spec fields', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const res = await create(repo, name, { type: 'HTTP', whence: 'newest', spec: { host: rx.host, uri: '/in', sdkExtra: { a: 1 } } });
    assert.equal(res.statusCode, 200, res.body);
    const one = await getExport(s, repo, name);
    assert.equal(one.type, 'http');
    assert.equal(one.whence, 'newest');
    assert.deepEqual(one.spec, { host: rx.host, uri: '/in', sdkExtra: { a: 1 } });
    assert.equal(one.status.deadLetterRepo, `${name}_deadletter`);
    const list = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports` })).body);
    assert.deepEqual(list.exports.map((e: { name: string; whence: string }) => [e.name, e.whence]), [[name, 'newest']]);
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}/exists` })).body), { exist: true });
    // PUT changes the spec only: type and whence stay.
    const put = await s.call({ method: 'PUT', url: `/v2/repos/${repo}/exports/${name}`, body: { spec: { host: rx.host, uri: '/other', format: 'json' }, whence: 'oldest', type: 'kodo' } });
    assert.equal(put.statusCode, 200, put.body);
    const after = await getExport(s, repo, name);
    assert.deepEqual([after.type, after.whence, after.spec.uri, after.spec.format], ['http', 'newest', '/other', 'json']);
    // An empty whence is the default.
    const dflt = fresh('ex');
    assert.equal((await create(repo, dflt, { type: 'http', whence: '', spec: { host: rx.host } })).statusCode, 200);
    assert.equal((await getExport(s, repo, dflt)).whence, 'oldest');
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}/exports/${dflt}` })).statusCode, 200);
    // A repo with exports cannot be deleted.
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/repos/${repo}` })), 'E18112');
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}/exports/${name}` })).statusCode, 200);
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}/exists` })).body), { exist: false });
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}` })).statusCode, 200);
  });

  it('answers precise codes for duplicates, missing exports and repos, and bad bodies, storing nothing', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const ok = { type: 'http', spec: { host: rx.host, uri: '/x' } };
    assert.equal((await create(repo, name, ok)).statusCode, 200);
    assert.equal(errorCode(await create(repo, name, ok)), 'E18301');
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/nope` })), 'E18302');
    assert.equal(errorCode(await s.call({ method: 'PUT', url: `/v2/repos/${repo}/exports/nope`, body: ok })), 'E18302');
    assert.equal(errorCode(await s.call({ method: 'DELETE', url: `/v2/repos/${repo}/exports/nope` })), 'E18302');
    assert.equal(errorCode(await create('no_such_repo', fresh('ex'), ok)), 'E18102');
    assert.equal(errorCode(await s.call({ method: 'GET', url: '/v2/repos/no_such_repo/exports' })), 'E18102');
    const bad: Array<[unknown, string]> = [
      [{ spec: { host: rx.host } }, 'E18305'],
      [{ type: 'carrier_pigeon', spec: {} }, 'E18305'],
      [{ type: 'http', spec: 'x' }, 'E18305'],
      [{ type: 'http', whence: 'middle', spec: { host: rx.host } }, 'E18305'],
      [{ type: 'http', spec: { uri: '/x' } }, 'E18303'],
      [{ type: 'http', spec: { host: rx.host, format: 'xml' } }, 'E18303'],
      [{ type: 'http', spec: { host: 'ftp://example.com' } }, 'E18303'],
      [{ type: 'http', spec: { host: rx.host, omitInvalid: 'yes' } }, 'E18303'],
      [{ type: 'http', spec: { host: rx.host, deadLetterRepo: repo } }, 'E18303'],
      [{ type: 'http', spec: { host: '169.254.169.254', uri: '/latest/meta-data' } }, 'E18303'],
      [{ type: 'http', spec: { host: 'http://[fe80::1]:80' } }, 'E18303'],
    ];
    for (const [body, code] of bad) {
      const n = fresh('bad');
      const res = await create(repo, n, body);
      assert.equal(errorCode(res), code, `${JSON.stringify(body)}: ${res.body}`);
      assert.equal(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${n}/exists` })).body).exist, false);
    }
    assert.equal(errorCode(await create(repo, 'bad-name', ok)), 'E18305');
    // A dead-letter repo that exists without the dead-letter fields is refused, naming the field.
    const other = await makeRepo(s);
    const res = await create(repo, fresh('ex'), { type: 'http', spec: { host: rx.host, deadLetterRepo: other } });
    assert.equal(errorCode(res), 'E18303');
    assert.match(res.body, /record/);
  });

  it('keeps accounts apart: another account sees neither the export nor the repo', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    assert.equal((await create(repo, name, { type: 'http', spec: { host: rx.host } })).statusCode, 200);
    const res = await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports/${name}`, ak: 'test-access-key-2', sk: 'other-secret-key-0123456789' });
    assert.equal(errorCode(res), 'E18102');
  });
});

describe('http export delivery', () => {
  let s: TestServer;
  let rx: Receiver;
  before(async () => {
    s = await startServer({ exportRetryMin: '10ms', exportRetryMax: '50ms' });
    rx = await startReceiver();
  });
  after(async () => {
    await s.close();
    await rx.close();
  });

  it('posts the stored lines verbatim as text/plain to host + uri and reports the delivery in the status', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    const lines = ['host=a\tlatency=1\tregion=x y', 'host=b\\tc\tcpu=0.5', 'host=c\tts=2024-01-02T03:04:05Z'];
    assert.equal((await push(s, repo, lines.join('\n'))).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: `http://${rx.host}`, uri } } })).statusCode, 200);
    await waitFor(() => rx.requests.filter((r) => r.url === uri).length >= 1, 'the delivery');
    const got = rx.requests.filter((r) => r.url === uri);
    assert.equal(got.length, 1);
    assert.equal(got[0]?.method, 'POST');
    assert.equal(got[0]?.headers['content-type'], 'text/plain');
    assert.deepEqual(got[0]?.body.split('\n'), lines);
    await waitFor(async () => (await getExport(s, repo, name)).status.delivered.total === 3, 'the status');
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.state, 'running');
    assert.deepEqual(st.lag, { points: 0, seconds: 0 });
    assert.equal(st.delivered.lastBatch, 3);
    assert.ok(Date.parse(st.lastSuccessTime) > 0);
    assert.equal(st.lastError, null);
    // Points pushed later follow.
    assert.equal((await push(s, repo, 'host=d')).statusCode, 200);
    await waitFor(() => rx.requests.filter((r) => r.url === uri).length === 2, 'the second delivery');
    assert.equal(rx.requests.filter((r) => r.url === uri)[1]?.body, 'host=d');
  });

  it('posts one JSON object per line as application/json with exact longs and unescaped strings', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    assert.equal((await push(s, repo, 'host=a\\nb\tlatency=9007199254740993\tcpu=1.5')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri, format: 'json' } } })).statusCode, 200);
    await waitFor(() => rx.requests.some((r) => r.url === uri), 'the delivery');
    const r = rx.requests.find((x) => x.url === uri);
    assert.equal(r?.headers['content-type'], 'application/json');
    assert.equal(r?.body, '{"host":"a\\nb","latency":9007199254740993,"cpu":1.5}');
  });

  it('starts after the existing points with whence newest', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    assert.equal((await push(s, repo, 'host=old1\nhost=old2')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', whence: 'newest', spec: { host: rx.host, uri } } })).statusCode, 200);
    assert.equal((await push(s, repo, 'host=new')).statusCode, 200);
    await waitFor(() => rx.requests.some((r) => r.url === uri), 'the delivery');
    await waitFor(async () => (await getExport(s, repo, name)).status.lag.points === 0, 'caught up');
    assert.deepEqual(rx.requests.filter((r) => r.url === uri).map((r) => r.body), ['host=new']);
  });

  it('retries 503, 429 and refused connections with backoff and delivers every point once they recover', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    let failures = 0;
    const prev = rx.respond;
    rx.respond = (r) => (r.url === uri && failures++ < 3 ? (failures === 2 ? { status: 429, headers: { 'retry-after': '0' } } : 503) : prev(r));
    assert.equal((await push(s, repo, 'host=a\nhost=b')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri } } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.delivered.total === 2, 'recovery');
    const ok = rx.requests.filter((r) => r.url === uri);
    assert.equal(ok.length, 4);
    assert.deepEqual(ok.map((r) => r.body), Array(4).fill('host=a\nhost=b'));
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.consecutiveFailures, 0);
    assert.match(st.lastError, /503|429/);
    assert.ok(Date.parse(st.lastErrorTime) > 0);
  });

  it('shows retrying with the failure count and next retry time while the receiver is down, then catches up', async () => {
    const down = await startReceiver();
    const repo = await makeRepo(s);
    const name = fresh('ex');
    down.respond = () => 502;
    assert.equal((await push(s, repo, 'host=a')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: down.host, uri: '/' } } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.consecutiveFailures >= 3, 'failures');
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.state, 'retrying');
    assert.equal(st.lag.points, 1);
    assert.equal(st.delivered.total, 0);
    down.respond = () => 200;
    await waitFor(async () => (await getExport(s, repo, name)).status.delivered.total === 1, 'catch-up');
    assert.deepEqual(down.lines(), ['host=a']);
    await down.close();
  });

  it('bisects a batch the receiver refuses with 400 and dead-letters only the refused point', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    const prev = rx.respond;
    rx.respond = (r) => (r.url === uri && r.body.includes('host=poison') ? 400 : prev(r));
    const lines = Array.from({ length: 9 }, (_, i) => (i === 5 ? 'host=poison' : `host=h${i}`));
    assert.equal((await push(s, repo, lines.join('\n'))).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri } } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.deadLettered === 1, 'the dead letter');
    const accepted = rx.requests.filter((r) => r.url === uri && !r.body.includes('poison')).flatMap((r) => r.body.split('\n'));
    assert.deepEqual(accepted.sort(), lines.filter((l) => l !== 'host=poison').sort());
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.delivered.total, 8);
    assert.equal(st.lag.points, 0);
    const dl = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${st.deadLetterRepo}/data?count=10` })).body);
    assert.equal(dl.records.length, 1);
    assert.equal(dl.records[0].record, 'host=poison');
    assert.equal(dl.records[0].export, name);
    assert.equal(dl.records[0].offset, 5);
    assert.match(dl.records[0].error, /400/);
  });

  it('drops refused points with omitInvalid and counts them', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    const prev = rx.respond;
    rx.respond = (r) => (r.url === uri && r.body.includes('host=poison') ? 422 : prev(r));
    assert.equal((await push(s, repo, 'host=a\nhost=poison\nhost=b')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri, omitInvalid: true } } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.omitted === 1, 'the omission');
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.deadLettered, 0);
    assert.equal(st.delivered.total, 2);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${st.deadLetterRepo}/exists` })).body).exist, false);
  });

  it('does not dead-letter anything when the receiver answers 404: the export reports error and retries', async () => {
    const repo = await makeRepo(s);
    const name = fresh('ex');
    const uri = `/${name}`;
    const prev = rx.respond;
    rx.respond = (r) => (r.url === uri ? 404 : prev(r));
    assert.equal((await push(s, repo, 'host=a')).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri } } })).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.consecutiveFailures >= 2, 'failures');
    const st = (await getExport(s, repo, name)).status;
    assert.equal(st.state, 'error');
    assert.match(st.lastError, /404/);
    assert.equal(st.deadLettered, 0);
    assert.equal(st.lag.points, 1);
    // Fixing the uri with PUT delivers the point.
    rx.respond = prev;
    assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${repo}/exports/${name}`, body: { spec: { host: rx.host, uri: `${uri}_fixed` } } })).statusCode, 200);
    await waitFor(() => rx.requests.some((r) => r.url === `${uri}_fixed`), 'delivery after the fix');
  });

  it('pauses while the repo\'s group is stopped and resumes from the committed offset when it starts', async () => {
    const group = fresh('g');
    assert.equal((await s.call({ method: 'POST', url: `/v2/groups/${group}`, body: { region: 'nb', container: { type: 'M16C4', count: 1 }, allocateOnStart: true } })).statusCode, 200);
    const repo = await makeRepo(s, fresh('repo'), undefined, { group });
    const name = fresh('ex');
    const uri = `/${name}`;
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri } } })).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/groups/${group}/actions/stop` })).statusCode, 200);
    assert.equal((await push(s, repo, 'host=while_stopped')).statusCode, 200);
    await waitFor(async () => (await getExport(s, repo, name)).status.state === 'paused', 'paused');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.requests.filter((r) => r.url === uri).length, 0);
    assert.equal((await s.call({ method: 'POST', url: `/v2/groups/${group}/actions/start` })).statusCode, 200);
    await waitFor(() => rx.requests.some((r) => r.url === uri), 'delivery after start');
    assert.equal(rx.requests.find((r) => r.url === uri)?.body, 'host=while_stopped');
  });

  it('exports a repo derived by a SQL transform', async () => {
    const repo = await makeRepo(s);
    const dest = fresh('derived');
    const name = fresh('ex');
    const uri = `/${name}`;
    const t = await s.call({ method: 'POST', url: `/v2/repos/${repo}/transforms/${fresh('t')}/to/${dest}`, body: { mode: 'sql', code: `select host, latency * 2 as twice from ${repo}`, interval: '5s' } });
    assert.equal(t.statusCode, 200, t.body);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${dest}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri } } })).statusCode, 200);
    assert.equal((await push(s, repo, 'host=a\tlatency=2')).statusCode, 200);
    await s.ctx.runner.runNow('alice', repo, JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/transforms` })).body).transforms[0].name);
    await waitFor(() => rx.requests.some((r) => r.url === uri), 'delivery from the derived repo');
    assert.equal(rx.requests.find((r) => r.url === uri)?.body, 'host=a\ttwice=4');
  });
});
