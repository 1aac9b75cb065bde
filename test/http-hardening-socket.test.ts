/**
 * Hardening seen from a raw TCP client against a listening server: a stored
 * request always gets its own answer, refusals arrive as answers rather than
 * connection resets, and a full disk is reported (the disk is a real tmpfs
 * mounted by the test, which needs root as CI has).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { AK, SK, fresh, makeRepo, push, signRequest, startServer, tmpDir, type TestServer } from './helpers.ts';

async function listen(s: TestServer): Promise<number> {
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  return (s.app.server.address() as net.AddressInfo).port;
}

/** Raw request head, signed like the SDK. */
function head(method: string, url: string, extra: Record<string, string>, contentType = 'text/plain'): string {
  const h: Record<string, string> = { date: new Date().toUTCString(), 'content-type': contentType };
  h.authorization = `Pandora ${AK}:${signRequest(SK, method, url, h)}`;
  const all = { host: 'localhost', ...h, ...extra };
  return `${method} ${url} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
}

interface Exchange {
  text: string;
  error?: string;
}

/** Connects, runs `write`, and collects everything the server sends until it closes (or `stopWhen` matches). */
function exchange(port: number, write: (sock: net.Socket) => Promise<void> | void, stopWhen?: (text: string) => boolean): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    let error: string | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ text, error });
    };
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (stopWhen?.(text)) finish();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code;
    });
    sock.on('close', finish);
    sock.on('connect', () => {
      Promise.resolve(write(sock)).catch(() => undefined);
    });
  });
}

/** Has `text` one complete HTTP response (by Content-Length) with this status? */
function completeResponse(text: string, status: number): boolean {
  const start = text.indexOf(`HTTP/1.1 ${status} `);
  if (start < 0) return false;
  const end = text.indexOf('\r\n\r\n', start);
  if (end < 0) return false;
  const len = Number(/content-length: (\d+)/i.exec(text.slice(start, end))?.[1] ?? 0);
  return text.length >= end + 4 + len;
}

describe('raw sockets', () => {
  it('answers a stored push with its own 200 before the 400 for junk bytes that follow it', async () => {
    const s = await startServer();
    try {
      const port = await listen(s);
      const repo = await makeRepo(s, fresh('junk'));
      const url = `/v2/repos/${repo}/data`;
      const body = 'host=a\tlatency=1\nhost=b\tlatency=2';
      const res = await exchange(port, (sock) => {
        sock.write(head('POST', url, { 'content-length': String(Buffer.byteLength(body)) }) + body + 'é\x01junk that is no request\r\n\r\n');
      });
      const first = res.text.indexOf('HTTP/1.1 200');
      const bad = res.text.indexOf('HTTP/1.1 400');
      assert.ok(first === 0, res.text);
      assert.ok(bad > first, res.text);
      assert.match(res.text.slice(bad), /content-type: application\/json\r\n[\s\S]*x-reqid: [0-9a-f]{16}[\s\S]*\{"error":"E18007: /i);
      const read = await s.call({ method: 'GET', url: `${url}?count=10` });
      assert.deepEqual(JSON.parse(read.body).records.map((r: { host: string }) => r.host), ['a', 'b']);
    } finally {
      await s.close();
    }
  });

  it('delivers the 413 of a too large body as an answer, not a connection reset, and nothing is stored', async () => {
    const s = await startServer({ maxBodySize: '64KB' });
    try {
      const port = await listen(s);
      const repo = await makeRepo(s, fresh('big'));
      const url = `/v2/repos/${repo}/data`;
      const line = `host=${'x'.repeat(1000)}\n`;
      for (const mode of ['content-length', 'chunked'] as const) {
        const extra: Record<string, string> = mode === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(line.length * 2000) };
        const res = await exchange(port, async (sock) => {
          // Like a simple client: send the whole body, only then read the answer.
          sock.pause();
          sock.write(head('POST', url, extra));
          for (let i = 0; i < 2000 && !sock.destroyed; i++) {
            const chunk = mode === 'chunked' ? `${line.length.toString(16)}\r\n${line}\r\n` : line;
            if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r).once('close', r));
          }
          if (mode === 'chunked') sock.write('0\r\n\r\n');
          sock.resume();
        }, (t) => completeResponse(t, 413));
        assert.ok(completeResponse(res.text, 413), `${mode}: ${res.error} ${res.text.slice(0, 300)}`);
        assert.match(res.text, /\{"error":"E18005: /);
      }
      const read = await s.call({ method: 'GET', url: `${url}?count=10` });
      assert.deepEqual(JSON.parse(read.body).records, []);
    } finally {
      await s.close();
    }
  });
});

describe('client disconnects', () => {
  it('logs a client that goes away mid-body at debug, never at error or warn, and stores nothing', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const dir = tmpDir();
    const config = loadConfig({}, { dataDir: dir, accounts: [{ id: 'alice', accessKey: AK, secretKey: SK }], logLevel: 'debug' });
    const { app } = await buildApp(config, { logStream: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as net.AddressInfo).port;
      const repo = fresh('gone');
      const h: Record<string, string> = { date: new Date().toUTCString(), 'content-type': 'application/json' };
      h.authorization = `Pandora ${AK}:${signRequest(SK, 'POST', `/v2/repos/${repo}`, h)}`;
      const created = await app.inject({ method: 'POST', url: `/v2/repos/${repo}`, headers: h, payload: JSON.stringify({ region: 'nb', schema: [{ key: 'host', valtype: 'string' }] }) });
      assert.equal(created.statusCode, 200);
      for (let i = 0; i < 5; i++) {
        await exchange(port, async (sock) => {
          sock.write(head('POST', `/v2/repos/${repo}/data`, { 'content-length': '100000' }) + 'host=a\n'.repeat(100));
          await new Promise((r) => setTimeout(r, 50));
          sock.destroy();
        });
      }
      await new Promise((r) => setTimeout(r, 200));
      const loud = lines.filter((l) => (l.level as number) >= 40);
      assert.deepEqual(loud, []);
      assert.ok(lines.some((l) => l.level === 20 && l.msg === 'client went away'), JSON.stringify(lines));
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('full disk', () => {
  it('answers pushes on a full disk with E18009 (507), reports it in /health with 503, and recovers when space is freed', async () => {
    const mnt = tmpDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    let s: TestServer | undefined;
    try {
      const ballast = path.join(mnt, 'ballast');
      const dataDir = path.join(mnt, 'data');
      mkdirSync(dataDir);
      s = await startServer({ maxBodySize: '1MB', segmentSize: '1MB' }, dataDir);
      const health0 = await s.app.inject({ method: 'GET', url: '/health' });
      assert.equal(health0.statusCode, 200, health0.body);
      writeFileSync(ballast, Buffer.alloc(3 * 1024 * 1024));
      const repo = await makeRepo(s, fresh('full'), [{ key: 'host', valtype: 'string' }]);
      const body = Array.from({ length: 1000 }, (_, i) => `host=${'z'.repeat(500)}${i}`).join('\n');
      let last = await push(s, repo, body);
      let stored = 0;
      for (let i = 0; i < 40 && last.statusCode === 200; i++) {
        stored += 1000;
        last = await push(s, repo, body);
      }
      assert.equal(last.statusCode, 507, last.body);
      assert.match(JSON.parse(last.body).error, /^E18009: /);
      const health = await s.app.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 503);
      assert.match(JSON.parse(health.body).error, /ENOSPC|disk full/);
      const stats = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}` })).body).stats;
      assert.equal(stats.points, stored);

      rmSync(ballast);
      assert.equal((await push(s, repo, body)).statusCode, 200);
      const healthAfter = await s.app.inject({ method: 'GET', url: '/health' });
      assert.equal(healthAfter.statusCode, 200, healthAfter.body);
    } finally {
      if (s) await s.app.close();
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});
