/**
 * Log store workloads (issue 10, decision 015).
 *
 * logstore: 1M nginx-style lines (~200 B) pushed into a repo, then exported by
 * a logdb export through the real delivery engine into a log repo; documents/s
 * of that export against inserting the same documents straight into SQLite
 * (same tables, FTS5 and indexes, prepared statements, 20k-row transactions)
 * in the same run; then term, keyword, phrase and one-day histogram queries
 * over the 1M documents through the HTTP API (p50/p99), and disk bytes per doc.
 *
 * logstore-engines: the engine choice: FTS5 external content (chosen) vs FTS5
 * with its own copy of the text vs contentless-delete, and unicode61 vs
 * trigram, on 200k documents: insert rate, query latency, bytes per document.
 * BENCH_LOGSTORE_DOCS overrides the document counts (both workloads).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { LogRepo, RepoDef } from '../src/logstore/repo.ts';
import { RepoFile } from '../src/logstore/repo-file.ts';
import { normaliseSchema } from '../src/logstore/schema.ts';
import { planSearch, runSearch } from '../src/logstore/search.ts';
import { logDbFor } from '../src/logstore/store.ts';
import { startServer, type TestServer } from '../test/helpers.ts';
import { percentile, tempDir, type BenchContext, type Check, type Workload, type WorkloadResult } from './lib.ts';

const DAY0 = Date.parse('2024-06-01T00:00:00Z');
const DAY = 86_400_000;
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15',
  'curl/8.4.0',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/119.0 Safari/537.36',
  'Googlebot/2.1 (+http://www.google.com/bot.html)',
];
const PATHS = ['/api/v1/items/{n}', '/api/v1/users/{n}/profile', '/static/js/app.{n}.js', '/checkout/cart', '/login', '/health', '/search?q=shoes&page={n}', '/images/p{n}.jpg'];
const METHODS = ['GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE'];
const STATUS = [200, 200, 200, 200, 200, 200, 200, 301, 404, 500];

/** Deterministic nginx-like documents spread over one day. */
export function* documents(n: number): Generator<Record<string, string | number>> {
  let seed = 42;
  const rnd = (m: number): number => {
    // The LCG's low bits cycle quickly: take the high ones.
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed >>> 8) % m;
  };
  for (let i = 0; i < n; i++) {
    const p = PATHS[rnd(PATHS.length)]!.replace('{n}', String(rnd(5000)));
    yield {
      remote_addr: `10.${rnd(4)}.${rnd(64)}.${rnd(250)}`,
      method: METHODS[rnd(METHODS.length)]!,
      request: `${METHODS[rnd(METHODS.length)]} ${p} HTTP/1.1`,
      status: STATUS[rnd(STATUS.length)]!,
      bytes: rnd(200_000),
      agent: AGENTS[rnd(AGENTS.length)]!,
      host: `web-${rnd(8)}`,
      ts: new Date(DAY0 + Math.floor((i * DAY) / n)).toISOString(),
    };
  }
}

export const LOG_SCHEMA = [
  { key: 'remote_addr', valtype: 'string', analyzer: 'keyword' },
  { key: 'method', valtype: 'string', analyzer: 'keyword' },
  { key: 'request', valtype: 'string', analyzer: 'standard' },
  { key: 'status', valtype: 'long' },
  { key: 'bytes', valtype: 'long' },
  { key: 'agent', valtype: 'string', analyzer: 'standard' },
  { key: 'host', valtype: 'string', analyzer: 'keyword' },
  { key: 'ts', valtype: 'date' },
];
const SOURCE_SCHEMA = LOG_SCHEMA.map((f) => ({ key: f.key, valtype: f.valtype }));
const docCount = (dflt: number): number => Number(process.env.BENCH_LOGSTORE_DOCS ?? dflt);
const fileBytes = (f: string): number => ['', '-wal'].reduce((n, s) => { try { return n + statSync(f + s).size; } catch { return n; } }, 0);

/** Inserts documents straight into a log repo file's tables: the engine's floor. */
export function directInsert(file: string, def: RepoDef, docs: Array<Record<string, string | number>>): number {
  const repo = new RepoFile(file, def);
  const cols = repo.columns;
  const names = repo.columns.map((c) => c.col);
  const ins = repo.db.prepare(`INSERT INTO docs (_t, doc, ${names.join(', ')}) VALUES (${['?', '?', ...names.map(() => '?')].join(', ')})`);
  const text = repo.columns.filter((c) => c.fts);
  const idx = text.map((c) => repo.columns.indexOf(c) + 2);
  const fts = repo.db.prepare(`INSERT INTO fts_std (rowid, ${text.map((c) => c.col).join(', ')}) VALUES (?${text.map(() => ', ?').join('')})`);
  // Timed from the document objects: serialising the JSON and parsing dates is part of any insert.
  const t0 = performance.now();
  const tx = repo.db.transaction((chunk: Array<Record<string, string | number>>) => {
    for (const d of chunk) {
      const r = [DAY0, JSON.stringify(d), ...cols.map((c) => (c.type === 'date' ? Date.parse(d[c.path] as string) : d[c.path] ?? null))];
      const id = ins.run(r).lastInsertRowid;
      fts.run(id, ...idx.map((i) => r[i]));
    }
  });
  for (let i = 0; i < docs.length; i += 20_000) tx(docs.slice(i, i + 20_000));
  const secs = (performance.now() - t0) / 1000;
  repo.close();
  return docs.length / secs;
}

/** A search run in process on the repo's own connection: the engine's floor for the HTTP numbers. */
function engineLatencies(repo: LogRepo, db: Database.Database, q: string, runs: number): { p50: number; p99: number; total: number } {
  const times: number[] = [];
  let total = 0;
  for (let i = 0; i < runs + 3; i++) {
    const t0 = performance.now();
    total = runSearch(db, planSearch(repo, { q, sort: '', from: 0, size: 100, scroll: '', fields: undefined, highlight: undefined }), 5_000).total;
    if (i >= 3) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), total };
}

async function latencies(s: TestServer, url: string, runs = 40): Promise<{ p50: number; p99: number; total: number }> {
  let total = 0;
  const times: number[] = [];
  for (let i = 0; i < runs + 3; i++) {
    const t0 = performance.now();
    const res = await s.call({ method: 'GET', url });
    const ms = performance.now() - t0;
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    total = (JSON.parse(res.body) as { total: number }).total;
    if (i >= 3) times.push(ms);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), total };
}

const fmt = (n: number, d = 1): string => n.toFixed(d);

export const logstoreWorkload: Workload = {
  name: 'logstore',
  description: '1M nginx lines exported into a log repo (engine) vs straight SQLite inserts; term/phrase/histogram p50/p99; bytes/doc',
  async run(ctx: BenchContext): Promise<WorkloadResult> {
    const n = docCount(1_000_000);
    const dir = tempDir(ctx.cleanup, 'bench-logstore-');
    const s = await startServer({ exportBatch: 20_000, maxBodySize: '64MB' }, dir);
    ctx.cleanup.add('server', () => s.close());
    const docs = [...documents(n)];
    const lines = docs.map((d) => Object.entries(d).map(([k, v]) => `${k}=${v}`).join('\t'));
    const avgLine = lines.reduce((a, l) => a + l.length, 0) / n;
    await s.call({ method: 'POST', url: '/v2/repos/nginx', body: { region: 'nb', schema: SOURCE_SCHEMA } });
    ctx.log(`pushing ${n} lines (${fmt(avgLine, 0)} B avg)`);
    for (let i = 0; i < n; i += 50_000) {
      const res = await s.call({ method: 'POST', url: '/v2/repos/nginx/data', body: lines.slice(i, i + 50_000).join('\n'), headers: { 'content-type': 'text/plain' } });
      if (res.statusCode !== 200) throw new Error(`push: ${res.statusCode} ${res.body}`);
    }
    // The baseline runs before and after the export (machine load drifts on shared hosts): mean of both.
    ctx.log('inserting the same documents straight into SQLite (1/2)');
    const baseDef = { name: 'direct', region: 'nb', retention: '0d', coldRetention: '', schema: normaliseSchema(LOG_SCHEMA), fullText: { enabled: false, analyzer: 'standard' }, description: null, primaryField: '', dateIndexField: '', createTime: '', updateTime: '' };
    const direct1 = directInsert(path.join(dir, 'direct1.db'), baseDef, docs);
    const mk = await s.call({ method: 'POST', url: '/v5/repos/nginx_logs', body: { region: 'nb', retention: '0d', schema: LOG_SCHEMA } });
    if (mk.statusCode !== 200) throw new Error(mk.body);
    ctx.log('exporting through the delivery engine');
    const t0 = performance.now();
    const exp = await s.call({ method: 'POST', url: '/v2/repos/nginx/exports/tolog', body: { type: 'logdb', spec: { destRepoName: 'nginx_logs' } } });
    if (exp.statusCode !== 200) throw new Error(exp.body);
    const repo = logDbFor(dir)!.get('alice', 'nginx_logs');
    // The bench's own connection (the server's writes run on its writer thread).
    const db = new Database(repo.file);
    ctx.cleanup.add('bench connection', () => { db.close(); });
    const count = (): number => (db.prepare('SELECT count(*) AS c FROM docs').get() as { c: number }).c;
    while (count() < n) await new Promise((r) => setTimeout(r, 100));
    const exportRate = n / ((performance.now() - t0) / 1000);
    // The export engine may still read through the writer for a moment (a checkpoint is then busy): retry.
    for (let i = 0; i < 50; i++) {
      const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      if (r?.busy === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const bytesPerDoc = fileBytes(repo.file) / n;

    ctx.log('inserting the same documents straight into SQLite (2/2)');
    const direct2 = directInsert(path.join(dir, 'direct.db'), repo.def, docs);
    const directRate = (direct1 + direct2) / 2;
    const directBytes = fileBytes(path.join(dir, 'direct.db')) / n;

    ctx.log('querying');
    const base = '/v5/repos/nginx_logs';
    const q = (query: string, extra = ''): string => `${base}/search?q=${encodeURIComponent(query)}&sort=&from=0&size=100&scroll=&highlight=false${extra}`;
    // 200 runs: with 40 the "p99" of a 7 ms query is just the slowest run on a shared host.
    const term = await latencies(s, q('request:checkout'), 200);
    // Same-run baseline: the same search straight on a connection of this thread (no HTTP, no worker).
    const engine = engineLatencies(repo, db, 'request:checkout', 200);
    const common = await latencies(s, q('agent:firefox'));
    const keyword = await latencies(s, q('remote_addr:10.1.2.3'));
    const phrase = await latencies(s, q('agent:"Intel Mac OS X"'));
    const sorted = await latencies(s, q('request:login AND status:>=400', '').replace('sort=', 'sort=bytes:desc'));
    const hist = await latencies(s, `${base}/histogram?q=&from=${DAY0}&to=${DAY0 + DAY - 1}&field=ts`, 20);
    const histQ = await latencies(s, `${base}/histogram?q=${encodeURIComponent('status:500')}&from=${DAY0}&to=${DAY0 + DAY - 1}&field=ts`, 20);

    const ratio = exportRate / directRate;
    const rows = [
      ['term request:checkout (size 100)', term],
      ['  same, straight on the SQLite connection (baseline)', engine],
      ['term agent:firefox (common word)', common],
      ['keyword remote_addr:10.1.2.3', keyword],
      ['phrase agent:"Intel Mac OS X"', phrase],
      ['request:login AND status:>=400, sort bytes:desc', sorted],
      ['histogram one day (q empty)', hist],
      ['histogram one day (q status:500)', histQ],
    ] as const;
    const checks: Check[] = [
      { name: 'export rate vs straight inserts', target: '>= 0.7x', actual: `${fmt(ratio, 2)}x`, ok: ratio >= 0.7 },
      { name: 'term query p99 (size 100)', target: '<= 50 ms', actual: `${fmt(term.p99)} ms`, ok: term.p99 <= 50 },
      { name: 'one-day histogram p99', target: '<= 300 ms', actual: `${fmt(hist.p99)} ms`, ok: hist.p99 <= 300 },
    ];
    return {
      tables: [
        { title: `indexing ${n} documents (${fmt(avgLine, 0)} B lines)`, columns: ['path', 'docs/s', 'bytes/doc on disk'], rows: [
          ['repo -> logdb export (delivery engine + sink)', fmt(exportRate, 0), fmt(bytesPerDoc, 0)],
          [`straight SQLite inserts (same tables; mean of ${fmt(direct1, 0)} before and ${fmt(direct2, 0)} after)`, fmt(directRate, 0), fmt(directBytes, 0)],
        ] },
        { title: 'queries over the exported documents (HTTP API, signed)', columns: ['query', 'hits', 'p50 ms', 'p99 ms'], rows: rows.map(([name, r]) => [name, String(r.total), fmt(r.p50), fmt(r.p99)]) },
      ],
      checks,
      json: { docs: n, exportRate, directRate, direct1, direct2, ratio, bytesPerDoc, directBytes, queries: Object.fromEntries(rows) },
    };
  },
};

/** One FTS5 layout of the engine comparison. */
interface Variant { name: string; ddl: string; insertFts: string }

const VARIANTS: Variant[] = [
  { name: 'external content, unicode61 (chosen)', ddl: "CREATE VIRTUAL TABLE f USING fts5(request, agent, content='docs', content_rowid='id', tokenize='unicode61 remove_diacritics 2')", insertFts: 'INSERT INTO f (rowid, request, agent) VALUES (?, ?, ?)' },
  { name: 'own copy of the text, unicode61', ddl: "CREATE VIRTUAL TABLE f USING fts5(request, agent, tokenize='unicode61 remove_diacritics 2')", insertFts: 'INSERT INTO f (rowid, request, agent) VALUES (?, ?, ?)' },
  { name: 'contentless_delete, unicode61', ddl: "CREATE VIRTUAL TABLE f USING fts5(request, agent, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')", insertFts: 'INSERT INTO f (rowid, request, agent) VALUES (?, ?, ?)' },
  { name: 'external content, trigram', ddl: "CREATE VIRTUAL TABLE f USING fts5(request, agent, content='docs', content_rowid='id', tokenize='trigram')", insertFts: 'INSERT INTO f (rowid, request, agent) VALUES (?, ?, ?)' },
];

function timeQuery(db: Database.Database, sql: string, arg: string, runs = 30): number[] {
  const st = db.prepare(sql);
  const out: number[] = [];
  for (let i = 0; i < runs + 3; i++) {
    const t0 = performance.now();
    st.all(arg);
    if (i >= 3) out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

export const logstoreEnginesWorkload: Workload = {
  name: 'logstore-engines',
  description: 'FTS5 layouts and tokenizers compared on 200k nginx docs: insert rate, term/phrase latency, bytes/doc (decision 015)',
  async run(ctx: BenchContext): Promise<WorkloadResult> {
    const n = Math.min(docCount(200_000), 200_000);
    const dir = tempDir(ctx.cleanup, 'bench-fts-');
    const docs = [...documents(n)];
    const rows: string[][] = [];
    const json: Record<string, unknown> = {};
    for (const v of VARIANTS) {
      const file = path.join(dir, `${rows.length}.db`);
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec('CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT, request TEXT, agent TEXT, host TEXT, status INTEGER, ts INTEGER)');
      db.exec('CREATE INDEX i1 ON docs(host); CREATE INDEX i2 ON docs(status); CREATE INDEX i3 ON docs(ts)');
      db.exec(v.ddl);
      const ins = db.prepare('INSERT INTO docs (doc, request, agent, host, status, ts) VALUES (?, ?, ?, ?, ?, ?)');
      const fts = db.prepare(v.insertFts);
      const t0 = performance.now();
      const tx = db.transaction((chunk: Array<Record<string, string | number>>) => {
        for (const d of chunk) {
          const id = ins.run(JSON.stringify(d), d.request, d.agent, d.host, d.status, Date.parse(d.ts as string)).lastInsertRowid;
          fts.run(id, d.request, d.agent);
        }
      });
      for (let i = 0; i < n; i += 20_000) tx(docs.slice(i, i + 20_000));
      const rate = n / ((performance.now() - t0) / 1000);
      db.pragma('wal_checkpoint(TRUNCATE)');
      const bytes = fileBytes(file) / n;
      const trigram = v.name.includes('trigram');
      const top = `SELECT d.doc FROM docs d WHERE d.id IN (SELECT rowid FROM f WHERE f MATCH ?) ORDER BY d.id DESC LIMIT 100`;
      const cnt = 'SELECT count(*) FROM f WHERE f MATCH ?';
      const term = timeQuery(db, top, trigram ? 'request : "checkout"' : 'request : checkout');
      const termCount = timeQuery(db, cnt, trigram ? 'request : "checkout"' : 'request : checkout');
      const phrase = timeQuery(db, top, 'agent : "Intel Mac OS X"');
      db.close();
      rows.push([v.name, fmt(rate, 0), fmt(bytes, 0), fmt(percentile(term, 50)), fmt(percentile(term, 99)), fmt(percentile(termCount, 50)), fmt(percentile(phrase, 50)), fmt(percentile(phrase, 99))]);
      json[v.name] = { rate, bytes, termP50: percentile(term, 50), termP99: percentile(term, 99), countP50: percentile(termCount, 50), phraseP50: percentile(phrase, 50), phraseP99: percentile(phrase, 99) };
      ctx.log(`${v.name}: ${fmt(rate, 0)} docs/s`);
    }
    return {
      tables: [{ title: `FTS5 layouts on ${n} documents`, columns: ['layout', 'docs/s', 'bytes/doc', 'term p50', 'term p99', 'term count p50', 'phrase p50', 'phrase p99'], rows }],
      checks: [],
      json,
      notes: ['DuckDB fts: INSTALL fts needs a download from extensions.duckdb.org, which fails here (no network): not measurable.'],
    };
  },
};
