/** Group commit of SQLite WAL commits (src/storage/walsync.ts): commits made together share fsyncs. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { WalSync } from '../src/storage/walsync.ts';

describe('WalSync', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'walsync-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function open(name: string): Database.Database {
    const db = new Database(path.join(dir, name));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    return db;
  }

  it('commits at once, resolves when synced, shares fsyncs between commits made together, and restores synchronous', async () => {
    const db = open('a.db');
    const wal = new WalSync(db);
    assert.equal(wal.grouped, true);
    const ins = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');
    const pending = Array.from({ length: 200 }, (_, i) => wal.commit(() => ins.run(i, `v${i}`)));
    // Readers see every commit before any fsync finished.
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 200);
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL again after each commit');
    await Promise.all(pending);
    assert.ok(wal.syncs >= 1 && wal.syncs <= 2, `200 commits in one turn took ${wal.syncs} fsyncs`);
    // A commit after the others were synced gets an fsync of its own.
    const before = wal.syncs;
    await wal.commit(() => ins.run(1000, 'late'));
    assert.equal(wal.syncs, before + 1);
    // write() alone never syncs.
    wal.write(() => ins.run(1001, 'relaxed'));
    assert.equal(wal.syncs, before + 1);
    db.close();
    const again = new Database(path.join(dir, 'a.db'));
    assert.equal((again.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 202);
    again.close();
  });

  it('commits that arrive during an fsync wait for the next one, which they share', async () => {
    const db = open('b.db');
    const wal = new WalSync(db);
    const ins = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');
    const first = wal.commit(() => ins.run(1, 'a'));
    const during = Array.from({ length: 50 }, (_, i) => wal.commit(() => ins.run(10 + i, 'b')));
    await Promise.all([first, ...during]);
    assert.equal(wal.syncs, 2);
    db.close();
  });

  it('is a plain synchronous commit for an in-memory database', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const wal = new WalSync(db);
    assert.equal(wal.grouped, false);
    await wal.commit(() => db.prepare('INSERT INTO t VALUES (1)').run());
    assert.equal(wal.syncs, 0);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1);
  });

  it('rejects when there is nothing left to sync', async () => {
    const db = open('c.db');
    const wal = new WalSync(db);
    db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(1, 'x');
    rmSync(path.join(dir, 'c.db-wal'));
    rmSync(path.join(dir, 'c.db'));
    // Both the WAL and the database file are gone: the caller hears it rather than a false "durable".
    await assert.rejects(wal.sync(), /ENOENT/);
    assert.equal(wal.syncs, 0);
    db.close();
  });
});
