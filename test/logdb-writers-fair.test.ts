import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logDbFor, type LogDb } from '../src/logstore/store.ts';
import { AK2, SK2, fresh, startServer, type TestServer } from './helpers.ts';
import { createLogRepo, json, logdbCode, queryLog, sdkSchema, sendLog, type Ctx } from './logdb-helpers.ts';

const SCHEMA = sdkSchema([
  { key: 'msg', valtype: 'string', analyzer: 'standard' },
  { key: 'n', valtype: 'long' },
]);
/** Large enough that indexing takes most of a second here, far longer than a one-document write. */
const BIG = 30_000;
const bigBatch = (tag: string): unknown[] => Array.from({ length: BIG }, (_, i) => ({ msg: `${tag} request ${i} for /api/items/${i % 997}`, n: i }));

/** Starts a request and tracks whether it has answered. */
function track<T>(p: Promise<T>): { p: Promise<T>; done: () => boolean } {
  let settled = false;
  void p.then(() => { settled = true; }, () => { settled = true; });
  return { p, done: () => settled };
}

/** Resolves once the writer threads run a client's write (a big one: small ones may come and go between turns). */
async function ingesting(store: LogDb, done: () => boolean): Promise<void> {
  while (!store.writer.runs('ingest')) {
    if (done()) throw new Error('the write finished before a writer thread was seen busy');
    await new Promise((r) => setImmediate(r));
  }
}

interface Served { s: TestServer; store: LogDb; alice: Ctx; bob: Ctx }

/** A server for the enclosing describe (started in before(), closed in after()), with alice's and bob's credentials. */
function serve(overrides: Record<string, unknown> = {}): Served {
  const t = {} as Served;
  before(async () => {
    t.s = await startServer(overrides);
    t.store = logDbFor(t.s.dir)!;
    t.alice = { s: t.s };
    t.bob = { s: t.s, ak: AK2, sk: SK2 };
  });
  after(async () => t.s.close());
  return t;
}

const total = async (c: Ctx, repo: string, q: string): Promise<number> => json<{ total: number }>(await queryLog(c, repo, { q })).total;

describe('LogDB writes are fair across accounts', () => {
  const t = serve();

  it('writes, creates and updates another account\'s repo while one account\'s large writes are queued and running', async () => {
    const { store, alice, bob } = t;
    const big = fresh('big').toLowerCase();
    const small = fresh('small').toLowerCase();
    await createLogRepo(alice, big, SCHEMA);
    const writes = [track(sendLog(alice, big, bigBatch('one'))), track(sendLog(alice, big, bigBatch('two'))), track(sendLog(alice, big, bigBatch('three')))];
    await ingesting(store, writes[0]!.done);
    assert.equal((await createLogRepo(bob, small, SCHEMA)).statusCode, 200);
    assert.deepEqual(json(await sendLog(bob, small, [{ msg: 'bob was here', n: 1 }])), { success: 1, failed: 0, total: 1 });
    // With one FIFO thread bob's create and write waited for all three; here they run beside the first.
    assert.deepEqual(writes.map((w) => w.done()), [false, false, false], 'alice\'s first write had finished before bob\'s create and write answered');
    assert.equal(await total(bob, small, 'msg:bob'), 1);
    for (const w of writes) assert.deepEqual(json(await w.p), { success: BIG, failed: 0, total: BIG });
    assert.equal(await total(alice, big, 'msg:one OR msg:two OR msg:three'), 3 * BIG);
  });

  it('deletes and recreates a repo that moved to the other thread while its first one was busy, and the new repo keeps its documents', async () => {
    const { s, store, alice, bob } = t;
    const busy = fresh('hold').toLowerCase();
    const moved = fresh('moved').toLowerCase();
    await createLogRepo(alice, busy, SCHEMA);
    await createLogRepo(bob, moved, SCHEMA);
    // Both threads idle: bob's write opens his file on the first, then alice's large write holds that one.
    json(await sendLog(bob, moved, [{ msg: 'old', n: 1 }]));
    const big = track(sendLog(alice, busy, bigBatch('hold')));
    await ingesting(store, big.done);
    json(await sendLog(bob, moved, [{ msg: 'old', n: 2 }]));
    assert.equal((await s.call({ method: 'DELETE', url: `/v5/repos/${moved}`, ak: AK2, sk: SK2 })).statusCode, 200);
    assert.equal((await createLogRepo(bob, moved, SCHEMA)).statusCode, 200);
    json(await sendLog(bob, moved, [{ msg: 'new', n: 3 }]));
    assert.equal((await big.p).statusCode, 200);
    // Alice's next write runs on the first thread again, after it closed its connection to bob's deleted file.
    json(await sendLog(alice, busy, [{ msg: 'after', n: 1 }]));
    assert.equal(await total(bob, moved, ''), 1);
    assert.equal(await total(bob, moved, 'msg:new'), 1);
  });

  it('answers E8113 to an account with too many writes queued, writing none of it, while another account still writes', async () => {
    const { store, alice, bob } = t;
    const repo = fresh('full').toLowerCase();
    const mine = fresh('mine').toLowerCase();
    await createLogRepo(alice, repo, SCHEMA);
    await createLogRepo(bob, mine, SCHEMA);
    const bound = store.writer.queuePerAccount;
    store.writer.queuePerAccount = 1;
    try {
      const running = track(sendLog(alice, repo, bigBatch('run')));
      await ingesting(store, running.done);
      const queued = track(sendLog(alice, repo, [{ msg: 'queued', n: 1 }]));
      while (store.writer.depth < 2 && !queued.done()) await new Promise((r) => setImmediate(r));
      const refused = await sendLog(alice, repo, [{ msg: 'refused', n: 2 }]);
      assert.equal(refused.statusCode, 400, refused.body);
      assert.equal(logdbCode(refused), 'E8113');
      assert.deepEqual(json(await sendLog(bob, mine, [{ msg: 'unaffected', n: 1 }])), { success: 1, failed: 0, total: 1 });
      assert.equal((await running.p).statusCode, 200);
      assert.equal((await queued.p).statusCode, 200);
      assert.equal(await total(alice, repo, 'msg:refused'), 0);
      assert.equal(await total(alice, repo, 'msg:queued'), 1);
      // Room again once the queue drained.
      json(await sendLog(alice, repo, [{ msg: 'later', n: 3 }]));
      assert.equal(await total(alice, repo, 'msg:later'), 1);
    } finally {
      store.writer.queuePerAccount = bound;
    }
  });
});

describe('LogDB writes with three writer threads', () => {
  // Three threads: alice may run two jobs at once, so only the per-file rule keeps her repo's order.
  const t = serve({ logWriters: 3 });

  it('keeps one repo\'s order while the account may run two writes and bob a third: writes queued before a delete are acknowledged, writes after answer E8111, the new repo starts empty', async () => {
    const { s, store, alice, bob } = t;
    const other = fresh('busy').toLowerCase();
    const repo = fresh('ord').toLowerCase();
    await createLogRepo(bob, other, SCHEMA);
    await createLogRepo(alice, repo, SCHEMA);
    const bobs = track(sendLog(bob, other, bigBatch('bob')));
    const first = track(sendLog(alice, repo, bigBatch('first')));
    const second = track(sendLog(alice, repo, [{ msg: 'second', n: 2 }]));
    await ingesting(store, first.done);
    const del = track(s.call({ method: 'DELETE', url: `/v5/repos/${repo}` }));
    while (store.find('alice', repo) && !del.done()) await new Promise((r) => setImmediate(r));
    assert.equal(logdbCode(await sendLog(alice, repo, [{ msg: 'late', n: 3 }])), 'E8111');
    assert.deepEqual(json(await first.p), { success: BIG, failed: 0, total: BIG });
    assert.deepEqual(json(await second.p), { success: 1, failed: 0, total: 1 });
    assert.equal((await del.p).statusCode, 200);
    assert.equal((await createLogRepo(alice, repo, SCHEMA)).statusCode, 200);
    assert.equal(await total(alice, repo, ''), 0);
    json(await sendLog(alice, repo, [{ msg: 'again', n: 4 }]));
    assert.equal(await total(alice, repo, ''), 1);
    assert.equal((await bobs.p).statusCode, 200);
    assert.equal(await total(bob, other, 'msg:bob'), BIG);
  });
});
