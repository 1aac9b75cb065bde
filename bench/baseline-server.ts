/**
 * The ingest baseline: the least a durable HTTP ingest endpoint on Node must
 * do. A bare node:http server that reads the body, splits it into lines,
 * fields and key/value (so the parse cost is not zero), appends the body to
 * one file with a synchronous write (as the server's log does) and answers 200
 * only after an fdatasync covering it. fdatasyncs are shared (group commit):
 * while one runs, newly written requests wait for the next one.
 *
 * No auth, no validation, no framing: the gap between this and the real
 * server is what the server's own features cost.
 *
 * Env: BASELINE_PORT, BASELINE_FILE. Self-contained (node: imports only) so
 * it compiles on its own. Run: node --import tsx bench/baseline-server.ts
 */
import { closeSync, fdatasync, openSync, writeSync } from 'node:fs';
import http from 'node:http';

const port = Number(process.env.BASELINE_PORT ?? 9901);
const file = process.env.BASELINE_FILE ?? 'baseline.log';
const fd = openSync(file, 'a');

/** Requests written to the file and waiting for the next fdatasync. */
let waiting: Array<() => void> = [];
let syncing = false;
/** Totals kept so the split work has an observable result (and for /stats). */
let points = 0;
let fields = 0;

function syncRound(): void {
  syncing = true;
  const batch = waiting;
  waiting = [];
  fdatasync(fd, (err) => {
    if (err) {
      process.stderr.write(`fdatasync failed: ${err.message}\n`);
      process.exit(1);
    }
    for (const done of batch) done();
    if (waiting.length > 0) syncRound();
    else syncing = false;
  });
}

function whenDurable(done: () => void): void {
  waiting.push(done);
  if (!syncing) syncRound();
}

/** split('\n'), split('\t'), first '=': the minimal parse of the point format. */
function splitPoints(text: string): void {
  for (const line of text.split('\n')) {
    if (line === '') continue;
    points++;
    for (const field of line.split('\t')) {
      const eq = field.indexOf('=');
      const key = field.slice(0, eq);
      const value = field.slice(eq + 1);
      if (key.length + value.length >= 0) fields++;
    }
  }
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', points, fields }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    splitPoints(body.toString('utf8'));
    writeSync(fd, body);
    whenDurable(() => {
      res.writeHead(200);
      res.end();
    });
  });
});

server.listen(port, '127.0.0.1');

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  closeSync(fd);
  process.exit(0);
});
