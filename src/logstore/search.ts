import { setProp } from '../ingest/json-lex.ts';
import type Database from 'better-sqlite3';
import { ApiError } from '../errors.ts';
import { highlighter, type HighlightSpec } from './highlight.ts';
import { compileQuery, DEADLINE } from './query.ts';
import { ALL_FIELD, type LogRepo } from './repo.ts';
import { parseKeepAlive } from './scroll.ts';

/** Largest page and deepest `from + size` of a search (deeper paging uses scroll). */
export const MAX_SIZE = 10_000;
/** Default page size when `size` is absent or 0 (the SDK always sends size=0 when unset). */
export const DEFAULT_SIZE = 10;
/** Wall-clock limit of one search or histogram. */
export const QUERY_TIME_LIMIT_MS = 5_000;

export interface SearchParams {
  q: string;
  sort: string;
  from: number;
  size: number;
  scroll: string;
  fields: string[] | undefined;
  highlight: HighlightSpec | undefined;
}

export interface SearchAnswer {
  scroll_id?: string;
  total: number;
  partialSuccess: boolean;
  data: Array<Record<string, unknown>>;
}

/**
 * Time limit for statements: compiled queries call pl_deadline() on about
 * one scanned row in 1024 (query.ts DEADLINE), and it throws once the limit
 * passed: a progress handler, which better-sqlite3 does not expose. Each
 * query worker has its own module instance, so one deadline per thread.
 */
let deadline = Infinity;
class QueryTimeout extends Error {}
const armed = new WeakSet<Database.Database>();
function arm(db: Database.Database): void {
  if (armed.has(db)) return;
  db.function('pl_deadline', { deterministic: false }, () => {
    if (Date.now() > deadline) throw new QueryTimeout('query time limit');
    return 1;
  });
  armed.add(db);
}

/** The E8210 answer of a query stopped at its time limit. */
export const timeLimitError = (limitMs: number): ApiError => new ApiError('E8210', `stopped after ${limitMs} ms; narrow the query or the time range`);

/** Runs fn under the query time limit; E8210 when it is exceeded. */
export function bounded<T>(db: Database.Database, limitMs: number, fn: () => T): T {
  arm(db);
  deadline = Date.now() + limitMs;
  try {
    return fn();
  } catch (err) {
    if (err instanceof QueryTimeout) throw timeLimitError(limitMs);
    // SQLite's own limits (compound SELECT terms, expression depth) reached by a big query.
    if (err instanceof Error && /too many terms|too large|too deep|stack overflow|too many SQL variables/i.test(err.message)) {
      throw new ApiError('E8202', `the query is too complex (${err.message})`);
    }
    throw err;
  } finally {
    deadline = Infinity;
  }
}

/** Newest first: the order without `sort`, and every sort's tie-breaker. */
const DEFAULT_ORDER = 'd.id DESC';

/** `f1:asc,f2:desc` -> ORDER BY over columns (E8205 for unknown fields). */
export function orderBy(repo: LogRepo, sort: string): string {
  const parts: string[] = [];
  for (const item of sort.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [field, dir = 'asc', extra] = item.split(':');
    const d = dir.toLowerCase();
    if (extra !== undefined || (d !== 'asc' && d !== 'desc')) throw new ApiError('E8205', `"${item}" must be field, field:asc or field:desc`);
    const c = repo.columns.find((x) => x.path === field);
    if (!c || c.dynamic) throw new ApiError('E8205', `cannot sort by "${field}": not a field of the repo schema`);
    parts.push(`d.${c.col} ${d.toUpperCase()}`);
  }
  parts.push(DEFAULT_ORDER);
  return parts.join(', ');
}

/** How rows become answer documents: built in the main thread, applied in the worker. */
export interface View {
  fields: string[] | undefined;
  highlight?: { spec: HighlightSpec; terms: Map<string, string[]>; strings: string[] };
}

/** Parses stored documents and applies `fields` and highlighting. */
export function render(rows: Array<{ id: number; doc: string }>, view: View): Array<Record<string, unknown>> {
  const { fields } = view;
  const hl = view.highlight ? highlighter(view.highlight.spec, view.highlight.terms, view.highlight.strings) : undefined;
  return rows.map((r) => {
    const doc = JSON.parse(r.doc) as Record<string, unknown>;
    let out: Record<string, unknown> = { id: String(r.id), ...doc };
    if (fields) {
      out = { id: String(r.id) };
      for (const f of fields) if (Object.hasOwn(doc, f)) setProp(out, f, doc[f]);
    }
    const h = hl?.(doc);
    if (h) out.highlight = h;
    return out;
  });
}

/** Largest match count for which a sorted page reads the matches instead of walking the sort index. */
const DRIVE_FROM_MATCHES = 50_000;

/** Where a search or scroll stands: all a worker needs to read the next page. */
export interface PageState {
  set: string | undefined;
  params: Record<string, unknown>;
  order: string;
  /** Sorted pages read the (few) matches rather than walking the sort index. */
  drive: boolean;
  /** Keyset paging on the default order (id DESC): the last id returned. */
  lastId: number | undefined;
  offset: number;
  size: number;
  /** The snapshot searched: ids <= maxId. */
  maxId: number;
}

/**
 * One page. Default order (newest first): the id set itself is ordered and
 * cut (FTS5 walks its rowids backwards and stops early). Sorted by a field:
 * few matches are read and sorted (`drive`), many matches walk the field's
 * index in order and stop after the page.
 */
function page(db: Database.Database, s: PageState): Array<{ id: number; doc: string }> {
  const keyset = s.lastId !== undefined ? ' AND id < ?' : '';
  const bounds = [s.maxId, ...(s.lastId !== undefined ? [s.lastId] : [])];
  const limit = [s.size, s.lastId !== undefined ? 0 : s.offset];
  let sql: string;
  let args: unknown[];
  if (s.set !== undefined && s.order === DEFAULT_ORDER) {
    sql = `SELECT d.id, d.doc FROM docs d WHERE d.id IN (SELECT id FROM (${s.set}) WHERE id <= ?${keyset} ORDER BY id DESC LIMIT ? OFFSET ?) ORDER BY d.id DESC`;
    args = [...bounds, ...limit, s.params];
  } else if (s.set !== undefined && s.drive) {
    // Sort ids and keys only; the stored documents of the page are read after the cut.
    const ids = `SELECT d.id FROM (SELECT id FROM (${s.set}) WHERE id <= ?${keyset}) m CROSS JOIN docs d ON d.id = m.id WHERE ${DEADLINE} ORDER BY ${s.order} LIMIT ? OFFSET ?`;
    sql = `SELECT d.id, d.doc FROM docs d WHERE d.id IN (${ids}) ORDER BY ${s.order}`;
    args = [...bounds, ...limit, s.params];
  } else {
    const match = s.set === undefined ? '' : ` AND d.id IN (${s.set})`;
    sql = `SELECT d.id, d.doc FROM docs d WHERE ${DEADLINE} AND d.id <= ?${keyset.replace('id', 'd.id')}${match} ORDER BY ${s.order} LIMIT ? OFFSET ?`;
    args = [...bounds, ...limit, s.params];
  }
  return db.prepare(sql).all(...args) as Array<{ id: number; doc: string }>;
}

/** A validated, compiled search, ready for a worker. */
export interface SearchJob {
  set: string | undefined;
  params: Record<string, unknown>;
  order: string;
  from: number;
  size: number;
  /** Scroll keep-alive (ms), 0 without scroll. */
  keepAlive: number;
  view: View;
}

/** Checks and compiles a search (main thread: needs the repo's schema); nothing is read yet. */
export function planSearch(repo: LogRepo, p: SearchParams): SearchJob {
  if (!Number.isInteger(p.from) || p.from < 0) throw new ApiError('E8203', `from must be a non-negative integer, got ${p.from}`);
  if (!Number.isInteger(p.size) || p.size < 0 || p.size > MAX_SIZE) throw new ApiError('E8204', `size must be 0..${MAX_SIZE}, got ${p.size}`);
  const size = p.size === 0 ? DEFAULT_SIZE : p.size;
  if (!p.scroll && p.from + size > MAX_SIZE) throw new ApiError('E8203', `from + size must be at most ${MAX_SIZE}; page deeper with scroll`);
  const keepAlive = p.scroll ? parseKeepAlive(p.scroll) : 0;
  const q = compileQuery(p.q, repo);
  const order = orderBy(repo, p.sort);
  const strings = repo.columns.filter((c) => c.type === 'string' && c.path !== ALL_FIELD).map((c) => c.path);
  const view: View = { fields: p.fields, highlight: p.highlight ? { spec: p.highlight, terms: q.terms, strings } : undefined };
  return { set: q.set, params: q.params, order, from: p.from, size, keepAlive, view };
}

/** What a worker answers for a search: the page and where a scroll would continue. */
export interface SearchResult {
  total: number;
  data: Array<Record<string, unknown>>;
  state: PageState;
  /** Rows read and the last id (keyset paging). */
  count: number;
  lastId: number | undefined;
}

/** Runs a planned search on a (read-only) connection: total and one page. */
export function runSearch(db: Database.Database, job: SearchJob, limitMs: number): SearchResult {
  // One read transaction: the count and the page see the same snapshot, so the
  // count needs no id bound (the bound made FTS5 counts ~30% slower).
  return bounded(db, limitMs, db.transaction(() => {
    let { set, params } = job;
    const maxId = (db.prepare('SELECT coalesce(max(id), 0) AS m FROM docs').get() as { m: number }).m;
    // A compound set (AND/OR/NOT, filtered matches) is computed once into a temporary table for the count and the page.
    const once = job.keepAlive === 0 && set !== undefined && /\b(INTERSECT|UNION|EXCEPT|CROSS JOIN)\b/.test(set);
    if (once) {
      db.exec('CREATE TEMP TABLE IF NOT EXISTS pl_matches (id INTEGER PRIMARY KEY); DELETE FROM temp.pl_matches');
      db.prepare(`INSERT INTO temp.pl_matches SELECT id FROM (${set}) WHERE id <= ?`).run(maxId, params);
      set = 'SELECT id FROM temp.pl_matches';
      params = {};
    }
    try {
      const count = set === undefined ? 'SELECT count(*) AS n FROM docs' : `SELECT count(*) AS n FROM (${set})`;
      const total = (db.prepare(count).get(params) as { n: number }).n;
      const drive = set !== undefined && job.order !== DEFAULT_ORDER && total <= Math.max(DRIVE_FROM_MATCHES, maxId / 10);
      const state: PageState = { set, params, order: job.order, drive, lastId: undefined, offset: job.from, size: job.size, maxId };
      const rows = page(db, state);
      return { total, data: render(rows, job.view), state, count: rows.length, lastId: rows.at(-1)?.id };
    } finally {
      if (once) db.exec('DELETE FROM temp.pl_matches');
    }
  }));
}

/** What a worker answers for a scroll page. */
export interface PageResult {
  data: Array<Record<string, unknown>>;
  count: number;
  lastId: number | undefined;
}

/** Reads the next page of a scroll on a (read-only) connection. */
export function runPage(db: Database.Database, state: PageState, view: View, limitMs: number): PageResult {
  const rows = bounded(db, limitMs, () => page(db, state));
  return { data: render(rows, view), count: rows.length, lastId: rows.at(-1)?.id };
}

/** Whether an order is the default one (keyset paging applies). */
export const isDefaultOrder = (order: string): boolean => order === DEFAULT_ORDER;
