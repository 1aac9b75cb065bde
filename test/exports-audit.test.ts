/**
 * Findings of the exports audit, each driven through the HTTP API and read
 * back where a user would read it (dead-letter repos, receivers, buckets).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { getExport, startReceiver, waitFor, type Receiver } from './exports-helpers.ts';

const DEAD_LETTER_FIELDS = [
  { key: 'record', valtype: 'string', required: true },
  { key: 'error', valtype: 'string', required: true },
  { key: 'export', valtype: 'string', required: true },
  { key: 'offset', valtype: 'long', required: true },
  { key: 'time', valtype: 'date', required: true },
];

describe('exports audit', () => {
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

  it('writes dead letters as the stored record, and refuses a deadLetterRepo whose escape mode would alter them on read', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }]);
    const uri = `/${fresh('refuse')}`;
    const prev = rx.respond;
    rx.respond = (r) => (r.url === uri ? 400 : prev(r));
    // The stored line (reference escapes) holds an escaped backslash and an escaped TAB.
    assert.equal((await push(s, repo, String.raw`s=C:\\dir\t"q"`)).statusCode, 200);
    for (const unescapeLine of [true, false]) {
      const dl = await makeRepo(s, fresh('dl'), DEAD_LETTER_FIELDS, { options: { unescapeLine } });
      const refused = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host: rx.host, uri, deadLetterRepo: dl } } });
      assert.equal(errorCode(refused), 'E18303', refused.body);
      assert.match(JSON.parse(refused.body).error, /deadLetterRepo: repo dl_\w+ was created with options.unescapeLine/);
    }
    const dl = await makeRepo(s, fresh('dl'), DEAD_LETTER_FIELDS);
    const name = fresh('ex');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri, deadLetterRepo: dl } } });
    assert.equal(res.statusCode, 200, res.body);
    await waitFor(async () => (await getExport(s, repo, name)).status.deadLettered === 1, 'the dead letter');
    const letters = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dl}/data?count=10` })).body).records;
    assert.equal(letters.length, 1);
    assert.equal(letters[0].record, String.raw`s=C:\\dir\t"q"`, 'the record is the stored line, byte for byte');
    assert.equal(letters[0].offset, 0);
  });
});
