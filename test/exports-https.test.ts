/**
 * https targets: a real TLS receiver with a certificate made by openssl for
 * this test. Without trusting it the export refuses to deliver (certificate
 * checked, state error); the real server process started with
 * NODE_EXTRA_CA_CERTS naming it delivers over https.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fresh, makeRepo, push, startServer, tmpDir } from './helpers.ts';
import { getExport, waitFor } from './exports-helpers.ts';
import { spawnServer } from './spawn.ts';

describe('https export targets', () => {
  const dir = tmpDir();
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  let server: Server;
  let host = '';
  const bodies: string[] = [];
  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        bodies.push(b);
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    host = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('does not deliver to a certificate the server does not trust, and says why', async () => {
    const s = await startServer({ exportRetryMin: '10ms', exportRetryMax: '20ms' });
    try {
      const repo = await makeRepo(s);
      const name = fresh('ex');
      assert.equal((await push(s, repo, 'host=a')).statusCode, 200);
      assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host, uri: '/untrusted' } } })).statusCode, 200);
      await waitFor(async () => (await getExport(s, repo, name)).status.consecutiveFailures >= 1, 'the failure');
      const st = (await getExport(s, repo, name)).status;
      assert.equal(st.state, 'error');
      assert.match(st.lastError, /certificate/i);
      assert.equal(bodies.length, 0);
    } finally {
      await s.close();
    }
  });

  it('delivers over https when the certificate is trusted (real server process with NODE_EXTRA_CA_CERTS)', async () => {
    const data = tmpDir();
    const { child, exited, call, base } = spawnServer(data, { NODE_EXTRA_CA_CERTS: cert });
    try {
      await base;
      assert.equal((await call('POST', '/v2/repos/tls', JSON.stringify({ region: 'nb', schema: [{ key: 'host', valtype: 'string' }] }), 'application/json')).status, 200);
      assert.equal((await call('POST', '/v2/repos/tls/data', 'host=secure1\nhost=secure2', 'text/plain')).status, 200);
      assert.equal((await call('POST', '/v2/repos/tls/exports/out', JSON.stringify({ type: 'http', spec: { host, uri: '/trusted' } }), 'application/json')).status, 200);
      await waitFor(() => bodies.includes('host=secure1\nhost=secure2'), 'delivery over https', 15_000);
    } finally {
      child.kill('SIGTERM');
      await exited;
      rmSync(data, { recursive: true, force: true });
    }
  });
});
