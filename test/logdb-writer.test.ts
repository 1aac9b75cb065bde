import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { logDbFor, type LogDb } from '../src/logstore/store.ts';
import { fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { createLogRepo, json, logdbCode, queryLog, sdkSchema, sendLog } from './logdb-helpers.ts';

const SCHEMA = sdkSchema([
  { key: 'msg', valtype: 'string', analyzer: 'standard' },
  { key: 'host', valtype: 'string', analyzer: 'keyword' },
  { key: 'n', valtype: 'long' },
]);
/** A batch as large as a full export batch and then some: 1-2 s of indexing when it ran on the event loop. */
const BIG = 30_000;
const bigBatch = (tag: string): unknown[] => Array.from({ length: BIG }, (_, i) => ({ msg: `${tag} request ${i} for /api/items/${i % 997}`, host: `web-${i % 8}`, n: i }));

/** Resolves once the log store's writer thread runs a client's write (the big write left the event loop). */
async function writerBusy(store: LogDb, done: () => boolean): Promise<void> {
  while (!store.writer.runs('ingest')) {
    if (done()) throw new Error('the write finished before the writer thread was seen busy');
    await new Promise((r) => setImmediate(r));
  }
}

/** Starts a request and tracks whether it has answered. */
function track<T>(p: Promise<T>): { p: Promise<T>; done: () => boolean } {
  let settled = false;
  void p.then(() => { settled = true; }, () => { settled = true; });
  return { p, done: () => settled };
}

/** Waits (generously: this is not a timing assertion) until `check` holds. */
async function until(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const total = async (s: TestServer, repo: string, q: string): Promise<number> => json<{ total: number }>(await queryLog({ s }, repo, { q })).total;

describe('LogDB writer thread', () => {
  let s: TestServer;
  let store: LogDb;
  before(async () => {
    s = await startServer();
    store = logDbFor(s.dir)!;
  });
  after(async () => s.close());

  /** Polled on every turn of the event loop, so a 20,000-row insert is seen as it starts. */
  async function insertStarted(): Promise<void> {
    const end = Date.now() + 60_000;
    while (!store.writer.runs('insert')) {
      if (Date.now() > end) throw new Error('the export never reached the writer thread');
      await new Promise((r) => setImmediate(r));
    }
  }

  it('answers /health and a push to another repo while a 30,000-document write is being indexed, then finds every document', async () => {
    const logRepo = fresh('big').toLowerCase();
    await createLogRepo({ s }, logRepo, SCHEMA);
    const other = await makeRepo(s, fresh('other'));
    assert.equal((await push(s, other, 'host=a latency=0\n')).statusCode, 200);
    const big = track(sendLog({ s }, logRepo, bigBatch('alpha')));
    await writerBusy(store, big.done);
    const health = await s.app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200, health.body);
    const pushed = await push(s, other, 'host=b latency=1\n');
    assert.equal(pushed.statusCode, 200, pushed.body);
    // Both answered before the write did: on the event loop they could only have answered after it.
    assert.equal(big.done(), false, 'the big write had already finished when /health and the push answered');
    assert.deepEqual(json(await big.p), { success: BIG, failed: 0, total: BIG });
    assert.equal(await total(s, logRepo, 'msg:alpha'), BIG);
    assert.equal(await total(s, logRepo, `msg:"request ${BIG - 1}"`), 1);
    assert.equal(await total(s, logRepo, 'host:web-3'), BIG / 8);
  });

  it('answers /health and pushes while a logdb export indexes a full 20,000-point batch, and the export then finds every point', async () => {
    const source = await makeRepo(s, fresh('src'));
    const dest = fresh('dest').toLowerCase();
    const lines = Array.from({ length: 20_000 }, (_, i) => `host=h${i % 8}\tlatency=${i}`).join('\n');
    assert.equal((await push(s, source, lines)).statusCode, 200);
    const other = await makeRepo(s, fresh('other'));
    const exp = await s.call({ method: 'POST', url: `/v2/repos/${source}/exports/tolog`, body: { type: 'logdb', spec: { destRepoName: dest } } });
    assert.equal(exp.statusCode, 200, exp.body);
    await insertStarted();
    const health = await s.app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200, health.body);
    assert.equal((await push(s, other, 'host=b latency=1\n')).statusCode, 200);
    assert.ok(store.writer.runs('insert'), 'the batch was already indexed when /health and the push answered');
    await until(async () => (await total(s, dest, '')) === 20_000, 'every point to be searchable');
    assert.equal(await total(s, dest, 'host:h3'), 2_500);
  });

  it('redelivers an export batch whose writer thread died mid-write on a new thread, indexing each point once', async () => {
    const source = await makeRepo(s, fresh('src'));
    const dest = fresh('dest').toLowerCase();
    const lines = Array.from({ length: 20_000 }, (_, i) => `host=k${i % 4}\tlatency=${i}`).join('\n');
    assert.equal((await push(s, source, lines)).statusCode, 200);
    const crashes = store.writer.crashes;
    const exp = await s.call({ method: 'POST', url: `/v2/repos/${source}/exports/tolog`, body: { type: 'logdb', spec: { destRepoName: dest } } });
    assert.equal(exp.statusCode, 200, exp.body);
    await insertStarted();
    await store.writer.kill();
    assert.equal(store.writer.crashes, crashes + 1);
    await until(async () => (await total(s, dest, '')) === 20_000, 'the redelivered batch to be searchable');
    // Once more after the engine settled: the offset committed with the batch keeps it from being indexed twice.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await total(s, dest, ''), 20_000);
    assert.equal(await total(s, dest, 'host:k1'), 5_000);
  });

  it('answers a malformed body E8116 and a batch with a bad document E8104 from the writer thread, writing nothing, and keeps the good ones with omitInvalidLog', async () => {
    const logRepo = fresh('bad').toLowerCase();
    await createLogRepo({ s }, logRepo, SCHEMA);
    const broken = await s.call({ method: 'POST', url: `/v5/repos/${logRepo}/data`, body: '[{"msg": "cut off', headers: { 'content-type': 'application/json' } });
    assert.equal(broken.statusCode, 400);
    assert.equal(logdbCode(broken), 'E8116');
    assert.equal(logdbCode(await sendLog({ s }, logRepo, { msg: 'not an array' })), 'E8116');
    const docs = [{ msg: 'fine one', n: 1 }, { msg: 'broken', n: 'not a number' }, { msg: 'fine two', n: 2 }];
    assert.equal(logdbCode(await sendLog({ s }, logRepo, docs)), 'E8104');
    assert.equal(await total(s, logRepo, 'msg:fine'), 0);
    assert.deepEqual(json(await sendLog({ s }, logRepo, docs, true)), { success: 2, failed: 1, total: 3 });
    assert.equal(await total(s, logRepo, 'msg:fine'), 2);
  });

  it('deletes a repo behind the write already queued: the write is acknowledged, later writes answer E8111, a new repo of that name starts empty', async () => {
    const logRepo = fresh('del').toLowerCase();
    await createLogRepo({ s }, logRepo, SCHEMA);
    const big = track(sendLog({ s }, logRepo, bigBatch('beta')));
    await writerBusy(store, big.done);
    const del = track(s.call({ method: 'DELETE', url: `/v5/repos/${logRepo}` }));
    while (store.find('alice', logRepo) && !del.done()) await new Promise((r) => setImmediate(r));
    // The repo is gone for requests at once, although its file is deleted only after the queued write.
    assert.equal(logdbCode(await sendLog({ s }, logRepo, [{ msg: 'late', n: 1 }])), 'E8111');
    assert.equal(logdbCode(await queryLog({ s }, logRepo, { q: 'msg:beta' })), 'E8111');
    assert.equal(big.done(), false);
    assert.equal((await big.p).statusCode, 200);
    assert.equal((await del.p).statusCode, 200);
    assert.equal((await createLogRepo({ s }, logRepo, SCHEMA)).statusCode, 200);
    assert.equal(await total(s, logRepo, 'msg:beta'), 0);
    json(await sendLog({ s }, logRepo, [{ msg: 'fresh start', n: 1 }]));
    assert.equal(await total(s, logRepo, 'msg:fresh'), 1);
  });

  it('creates a repo queued behind a large write once: a second create meanwhile answers E8112, searches E8111 until it exists', async () => {
    const busy = fresh('busy').toLowerCase();
    const made = fresh('made').toLowerCase();
    await createLogRepo({ s }, busy, SCHEMA);
    const big = track(sendLog({ s }, busy, bigBatch('eps')));
    await writerBusy(store, big.done);
    const first = track(createLogRepo({ s }, made, SCHEMA));
    while (store.writer.depth < 2 && !first.done()) await new Promise((r) => setImmediate(r));
    assert.equal(logdbCode(await createLogRepo({ s }, made, SCHEMA)), 'E8112');
    assert.equal(logdbCode(await queryLog({ s }, made, { q: 'msg:x' })), 'E8111');
    assert.equal(big.done(), false);
    assert.equal((await first.p).statusCode, 200);
    assert.equal(await total(s, made, 'msg:x'), 0);
    assert.equal((await big.p).statusCode, 200);
  });

  it('fails the write with E8004 when the writer thread dies during it, stores none of it, and runs the next write on a new thread', async () => {
    const logRepo = fresh('crash').toLowerCase();
    await createLogRepo({ s }, logRepo, SCHEMA);
    json(await sendLog({ s }, logRepo, [{ msg: 'before the crash', n: 0 }]));
    const crashes = store.writer.crashes;
    const big = track(sendLog({ s }, logRepo, bigBatch('gamma')));
    await writerBusy(store, big.done);
    await store.writer.kill();
    const res = await big.p;
    assert.equal(res.statusCode, 500, res.body);
    assert.equal(logdbCode(res), 'E8004');
    assert.match(res.body, /writer thread stopped/);
    assert.equal(store.writer.crashes, crashes + 1);
    // The transaction never committed: nothing of the batch, the earlier document intact.
    assert.equal(await total(s, logRepo, 'msg:gamma'), 0);
    assert.equal(await total(s, logRepo, 'msg:crash'), 1);
    assert.deepEqual(json(await sendLog({ s }, logRepo, [{ msg: 'after the crash', n: 1 }])), { success: 1, failed: 0, total: 1 });
    assert.equal(await total(s, logRepo, 'msg:after'), 1);
  });
});

describe('LogDB writer thread at shutdown', () => {
  it('lets a write in flight commit before the server closes and refuses writes after', async () => {
    const s = await startServer();
    const store = logDbFor(s.dir)!;
    const logRepo = fresh('shut').toLowerCase();
    await createLogRepo({ s }, logRepo, SCHEMA);
    const file = store.get('alice', logRepo).file;
    let closed = false;
    try {
      const big = track(sendLog({ s }, logRepo, bigBatch('delta')));
      await writerBusy(store, big.done);
      const repo = store.get('alice', logRepo);
      await s.app.close();
      closed = true;
      assert.equal((await big.p).statusCode, 200);
      await assert.rejects(store.write(repo, [{ values: [null, null, null], multi: null, doc: {} }]), (e: { code?: string }) => e.code === 'E8004');
      const db = new Database(file, { readonly: true });
      try {
        assert.equal((db.prepare('SELECT count(*) AS c FROM docs').get() as { c: number }).c, BIG);
      } finally {
        db.close();
      }
    } finally {
      if (!closed) await s.app.close();
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  it('keeps acknowledged writes across a restart, and the restarted server writes into the same repo', async () => {
    const first = await startServer();
    const logRepo = fresh('again').toLowerCase();
    await createLogRepo({ s: first }, logRepo, SCHEMA);
    json(await sendLog({ s: first }, logRepo, [{ msg: 'written before restart', n: 1 }, { msg: 'also before', n: 2 }]));
    await first.app.close();
    const second = await startServer({}, first.dir);
    try {
      assert.equal(await total(second, logRepo, 'msg:before'), 2);
      json(await sendLog({ s: second }, logRepo, [{ msg: 'written after restart', n: 3 }]));
      assert.equal(await total(second, logRepo, 'msg:restart'), 2);
    } finally {
      await second.close();
    }
  });
});
