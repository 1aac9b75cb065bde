/**
 * Graceful shutdown of the real server process (node --import tsx src/main.ts):
 * a push in flight during SIGTERM gets its 200 and its points survive the
 * restart; the shutdown timeout and a second signal bound the wait.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { AK, SK, signRequest, tmpDir } from './helpers.ts';
import { spawnServer } from './spawn.ts';

function signed(method: string, url: string, contentType = ''): Record<string, string> {
  const h: Record<string, string> = { date: new Date().toUTCString(), ...(contentType ? { 'content-type': contentType } : {}) };
  return { ...h, authorization: `Pandora ${AK}:${signRequest(SK, method, url, h)}` };
}

/** Opens a push whose body arrives in two parts; returns a function sending the rest and the promise of the raw answer. */
function slowPush(port: number, url: string, body: string): { sendRest: () => void; answer: Promise<string> } {
  const sock = net.connect(port, '127.0.0.1');
  const h = { host: 'localhost', ...signed('POST', url, 'text/plain'), 'content-length': String(Buffer.byteLength(body)) };
  const cut = Math.floor(body.length / 2);
  sock.write(`POST ${url} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body.slice(0, cut)}`);
  let text = '';
  const answer = new Promise<string>((resolve) => {
    sock.on('data', (d) => {
      text += String(d);
      // One whole answer read: done (the connection may be kept alive).
      const headEnd = text.indexOf('\r\n\r\n');
      const len = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (headEnd >= 0 && len >= 0 && text.length >= headEnd + 4 + len) sock.destroy();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => resolve(text));
  });
  // write, not end: a half-closed connection (FIN) makes Node abort the request.
  return { sendRest: () => void sock.write(body.slice(cut)), answer };
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('shutdown', () => {
  it('answers a push in flight during SIGTERM with 200, refuses new connections, and keeps its points across the restart', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const s = spawnServer(dir);
    const port = await s.port;
    const repo = 'shutdown_repo';
    const created = await s.call('POST', `/v2/repos/${repo}`, JSON.stringify({ region: 'nb', schema: [{ key: 'n', valtype: 'long' }] }));
    assert.equal(created.status, 200, created.body);
    const body = Array.from({ length: 2000 }, (_, i) => `n=${i}`).join('\n');
    const inflight = slowPush(port, `/v2/repos/${repo}/data`, body);
    await new Promise((r) => setTimeout(r, 300));
    s.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    // Not accepting any more: a new connection is refused while the push is still open.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
    inflight.sendRest();
    const answer = await inflight.answer;
    assert.match(answer, /^HTTP\/1\.1 200 /, answer + s.log());
    assert.equal(await s.exited, 0, s.log());

    const again = spawnServer(dir);
    await again.base;
    try {
      const got = await again.call('GET', `/v2/repos/${repo}`);
      assert.equal(JSON.parse(got.body).stats.points, 2000, got.body);
    } finally {
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
  });

  it('cuts a request still running at PIPELINE_SHUTDOWN_TIMEOUT and exits; a second signal exits at once', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const s = spawnServer(dir, { PIPELINE_SHUTDOWN_TIMEOUT: '1s' });
    const repo = 'stuck_repo';
    await s.call('POST', `/v2/repos/${repo}`, JSON.stringify({ region: 'nb', schema: [{ key: 'n', valtype: 'long' }] }));
    const stuck = slowPush(await s.port, `/v2/repos/${repo}/data`, 'n=1\nn=2\nn=3\nn=4');
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    s.child.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.log());
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 8000, `exited after ${took} ms`);
    assert.doesNotMatch(await stuck.answer, /^HTTP\/1\.1 200/);

    const t = spawnServer(dir, { PIPELINE_SHUTDOWN_TIMEOUT: '60s' });
    const stuck2 = slowPush(await t.port, `/v2/repos/${repo}/data`, 'n=1\nn=2');
    await new Promise((r) => setTimeout(r, 200));
    const t1 = Date.now();
    t.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    t.child.kill('SIGTERM');
    assert.equal(await t.exited, 1, t.log());
    assert.ok(Date.now() - t1 < 5000);
    await stuck2.answer;
  });
});
