/**
 * A query worker thread: runs planned searches, scroll pages and histograms
 * on its own read-only connections (WAL lets them read beside the writer in
 * the main thread), under the time limit. See pool.ts.
 */
import Database from 'better-sqlite3';
import { serveRequests, type WorkerReply } from './worker-serve.ts';
import { runHistogram, type HistogramJob } from './histogram.ts';
import { runPage, runSearch, type PageState, type SearchJob, type View } from './search.ts';

/** A request to a query worker. */
export type QueryRequest =
  | { id: number; kind: 'search'; file: string; limitMs: number; job: SearchJob }
  | { id: number; kind: 'page'; file: string; limitMs: number; state: PageState; view: View }
  | { id: number; kind: 'histogram'; file: string; limitMs: number; job: HistogramJob }
  | { id: number; kind: 'close'; file: string };

/** A query worker's answer: the value, or the error (an ApiError keeps its code). */
export type QueryReply = WorkerReply<unknown>;

/** Open connections, least recently used first; at most MAX_CONNS (file handles and page caches). */
const conns = new Map<string, Database.Database>();
const MAX_CONNS = 64;

function connection(file: string): Database.Database {
  let db = conns.get(file);
  if (db) {
    conns.delete(file);
    conns.set(file, db);
  } else {
    if (conns.size >= MAX_CONNS) {
      const [oldest, old] = conns.entries().next().value as [string, Database.Database];
      old.close();
      conns.delete(oldest);
    }
    db = new Database(file, { readonly: true, fileMustExist: true });
    // Match sets (INTERSECT/UNION temp b-trees, pl_matches) stay in memory.
    db.pragma('temp_store = MEMORY');
    conns.set(file, db);
  }
  return db;
}

function handle(m: QueryRequest): unknown {
  if (m.kind === 'close') {
    conns.get(m.file)?.close();
    conns.delete(m.file);
    return null;
  }
  const db = connection(m.file);
  if (m.kind === 'search') return runSearch(db, m.job, m.limitMs);
  if (m.kind === 'page') return runPage(db, m.state, m.view, m.limitMs);
  return runHistogram(db, m.job, m.limitMs);
}

serveRequests<QueryRequest, unknown>(handle);
