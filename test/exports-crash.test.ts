/**
 * At-least-once delivery across kill -9: the real server process is killed
 * with SIGKILL while a batch is on its way to a real HTTP receiver (the
 * receiver holds the request and the test kills the server before it
 * answers). After a restart every point arrives, and only the batch that
 * was in flight arrives twice. Offsets survive the restart: nothing
 * acknowledged before the kill is sent again.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { waitFor } from './exports-helpers.ts';
import { spawnServer } from './spawn.ts';
import { tmpDir } from './helpers.ts';

const BATCH = 500;
const ENV = { PIPELINE_EXPORT_BATCH: String(BATCH), PIPELINE_EXPORT_RETRY_MIN: '20ms', PIPELINE_EXPORT_RETRY_MAX: '200ms' };

describe('http export crash safety', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loses nothing and repeats at most the batch in flight when the server is killed with SIGKILL during delivery', async () => {
    const TOTAL = 20_000;
    // Every request body that fully arrived counts as delivered, answered or not.
    const received: number[][] = [];
    let onRequest: (n: number) => 'answer' | 'hold' = () => 'answer';
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const ids = Buffer.concat(chunks).toString().split('\n').map((l) => Number(/^id=(\d+)/.exec(l)?.[1]));
        received.push(ids);
        if (onRequest(received.length) === 'answer') res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const host = `127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    const a = spawnServer(dir, ENV);
    await a.base;
    let killedAt = 0;
    // The 7th request is held and the server killed while it waits for the answer.
    onRequest = (n) => {
      if (n !== 7) return 'answer';
      killedAt = n;
      a.child.kill('SIGKILL');
      return 'hold';
    };
    try {
      assert.equal((await a.call('POST', '/v2/repos/src', JSON.stringify({ region: 'nb', schema: [{ key: 'id', valtype: 'long' }, { key: 'pad', valtype: 'string' }] }))).status, 200);
      for (let i = 0; i < TOTAL; i += 5000) {
        const body = Array.from({ length: 5000 }, (_, k) => `id=${i + k}\tpad=${'x'.repeat(40)}`).join('\n');
        assert.equal((await a.call('POST', '/v2/repos/src/data', body, 'text/plain')).status, 200);
      }
      assert.equal((await a.call('POST', '/v2/repos/src/exports/out', JSON.stringify({ type: 'http', spec: { host, uri: '/in' } }))).status, 200);
      await a.exited;
      assert.equal(a.child.signalCode, 'SIGKILL');
      assert.equal(killedAt, 7);

      onRequest = () => 'answer';
      const b = spawnServer(dir, ENV);
      await b.base;
      try {
        const t0 = Date.now();
        for (;;) {
          const st = JSON.parse((await b.call('GET', '/v2/repos/src/exports/out')).body).status;
          if (st.lag.points === 0 && st.delivered.total >= TOTAL - 6 * BATCH) break;
          if (Date.now() - t0 > 20_000) throw new Error(`export did not catch up: ${JSON.stringify(st)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        b.child.kill('SIGTERM');
        await b.exited;
      }
    } finally {
      a.child.kill('SIGKILL');
      receiver.closeAllConnections();
      receiver.close();
    }
    const all = received.flat();
    const counts = new Map<number, number>();
    for (const id of all) counts.set(id, (counts.get(id) ?? 0) + 1);
    const missing = Array.from({ length: TOTAL }, (_, i) => i).filter((i) => !counts.has(i));
    assert.deepEqual(missing, [], 'every point arrives');
    const twice = [...counts].filter(([, c]) => c > 1).map(([id]) => id);
    assert.ok([...counts.values()].every((c) => c <= 2), 'no point arrives three times');
    // Only the held (unanswered) batch is delivered again, nothing acknowledged before the kill.
    assert.deepEqual(twice, received[6]);
    assert.equal(all.length, TOTAL + BATCH);
  });

  it('loses nothing over three kills at different moments: while a request is held, right after an answer, and while fresh pushes are delivered', async () => {
    const dir2 = tmpDir();
    const TOTAL = 12_000;
    const received: number[][] = [];
    let onRequest: (n: number, res: import('node:http').ServerResponse) => void = (_n, res) => res.end();
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(Buffer.concat(chunks).toString().split('\n').map((l) => Number(/^id=(\d+)/.exec(l)?.[1])));
        onRequest(received.length, res);
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const host = `127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const body = (from: number, n: number) => Array.from({ length: n }, (_, k) => `id=${from + k}\tpad=${'y'.repeat(30)}`).join('\n');
    let kills = 0;
    try {
      // 1: killed while the 3rd request waits for its answer.
      let srv = spawnServer(dir2, ENV);
      await srv.base;
      assert.equal((await srv.call('POST', '/v2/repos/src', JSON.stringify({ region: 'nb', schema: [{ key: 'id', valtype: 'long' }, { key: 'pad', valtype: 'string' }] }))).status, 200);
      assert.equal((await srv.call('POST', '/v2/repos/src/data', body(0, 4000), 'text/plain')).status, 200);
      const first = srv;
      onRequest = (n, res) => (n === 3 ? void first.child.kill('SIGKILL') : res.end());
      assert.equal((await srv.call('POST', '/v2/repos/src/exports/out', JSON.stringify({ type: 'http', spec: { host, uri: '/in' } }))).status, 200);
      await srv.exited;
      kills++;
      // 2: killed right after the receiver answered a request (before or after the commit: either is fine).
      // Requests are held until the push below is acknowledged, so the kill can never cut that push.
      srv = spawnServer(dir2, ENV);
      const second = srv;
      let pushed = false;
      let answers = 0;
      const held: Array<() => void> = [];
      onRequest = (_n, res) => {
        const answer = () => res.end(() => {
          if (++answers === 2) second.child.kill('SIGKILL');
        });
        if (pushed) answer();
        else held.push(answer);
      };
      await srv.base;
      assert.equal((await srv.call('POST', '/v2/repos/src/data', body(4000, 4000), 'text/plain')).status, 200);
      pushed = true;
      for (const answer of held.splice(0)) answer();
      await srv.exited;
      kills++;
      // 3: killed right after four pushes were acknowledged, while they are being delivered.
      onRequest = (_n, res) => res.end();
      srv = spawnServer(dir2, ENV);
      await srv.base;
      for (let i = 8000; i < 10_000; i += 500) assert.equal((await srv.call('POST', '/v2/repos/src/data', body(i, 500), 'text/plain')).status, 200);
      srv.child.kill('SIGKILL');
      await srv.exited;
      kills++;
      srv = spawnServer(dir2, ENV);
      await srv.base;
      assert.equal((await srv.call('POST', '/v2/repos/src/data', body(10_000, 2000), 'text/plain')).status, 200);
      await waitFor(async () => JSON.parse((await srv.call('GET', '/v2/repos/src/exports/out')).body).status.lag.points === 0, 'the export to catch up', 20_000);
      srv.child.kill('SIGTERM');
      await srv.exited;
    } finally {
      receiver.closeAllConnections();
      receiver.close();
      rmSync(dir2, { recursive: true, force: true });
    }
    const counts = new Map<number, number>();
    for (const id of received.flat()) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.deepEqual(Array.from({ length: TOTAL }, (_, i) => i).filter((i) => !counts.has(i)), [], 'every point arrives');
    const extra = received.flat().length - TOTAL;
    assert.equal(kills, 3);
    assert.ok(extra <= kills * BATCH, `${extra} repeated points for ${kills} kills of batches of ${BATCH}`);
  });
});
