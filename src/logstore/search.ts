import type Database from 'better-sqlite3';
import { ApiError } from '../errors.ts';
import { highlighter, type HighlightSpec } from './highlight.ts';
import { compileQuery, DEADLINE } from './query.ts';
import type { LogRepo } from './repo.ts';
import { parseKeepAlive, type ScrollCache, type ScrollState } from './scroll.ts';

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
 * passed: a progress handler, which better-sqlite3 does not expose.
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

/** Runs fn under the query time limit; E8210 when it is exceeded. */
export function bounded<T>(repo: LogRepo, limitMs: number, fn: () => T): T {
  arm(repo.db);
  deadline = Date.now() + limitMs;
  try {
    return fn();
  } catch (err) {
    if (err instanceof QueryTimeout) throw new ApiError('E8210', `stopped after ${limitMs} ms; narrow the query or the time range`);
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

function render(fields: string[] | undefined, hl: ReturnType<typeof highlighter> | undefined) {
  return (rows: Array<{ id: number; doc: string }>): Array<Record<string, unknown>> =>
    rows.map((r) => {
      const doc = JSON.parse(r.doc) as Record<string, unknown>;
      let out: Record<string, unknown> = { id: String(r.id), ...doc };
      if (fields) {
        out = { id: String(r.id) };
        for (const f of fields) if (f in doc) out[f] = doc[f];
      }
      const h = hl?.(doc);
      if (h) out.highlight = h;
      return out;
    });
}

/** Largest match count for which a sorted page reads the matches instead of walking the sort index. */
const DRIVE_FROM_MATCHES = 50_000;

/**
 * One page. Default order (newest first): the id set itself is ordered and
 * cut (FTS5 walks its rowids backwards and stops early). Sorted by a field:
 * few matches are read and sorted (`drive`), many matches walk the field's
 * index in order and stop after the page.
 */
function page(repo: LogRepo, s: Pick<ScrollState, 'set' | 'params' | 'order' | 'lastId' | 'offset' | 'size' | 'maxId' | 'drive'>): Array<{ id: number; doc: string }> {
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
  return repo.db.prepare(sql).all(...args) as Array<{ id: number; doc: string }>;
}

/** A search (GET or POST form): total, one page, optionally a scroll over the rest. */
export function search(repo: LogRepo, account: string, p: SearchParams, scrolls: ScrollCache, now: number, limitMs = QUERY_TIME_LIMIT_MS): SearchAnswer {
  if (!Number.isInteger(p.from) || p.from < 0) throw new ApiError('E8203', `from must be a non-negative integer, got ${p.from}`);
  if (!Number.isInteger(p.size) || p.size < 0 || p.size > MAX_SIZE) throw new ApiError('E8204', `size must be 0..${MAX_SIZE}, got ${p.size}`);
  const size = p.size === 0 ? DEFAULT_SIZE : p.size;
  if (!p.scroll && p.from + size > MAX_SIZE) throw new ApiError('E8203', `from + size must be at most ${MAX_SIZE}; page deeper with scroll`);
  const keepAlive = p.scroll ? parseKeepAlive(p.scroll) : 0;
  const q = compileQuery(p.q, repo);
  const order = orderBy(repo, p.sort);
  const hl = p.highlight ? highlighter(p.highlight, q.terms, repo) : undefined;
  const draw = render(p.fields, hl);
  return bounded(repo, limitMs, () => {
    const maxId = (repo.db.prepare('SELECT coalesce(max(id), 0) AS m FROM docs').get() as { m: number }).m;
    // A compound set (AND/OR/NOT) is computed once into a temporary table for the count and the page.
    const once = keepAlive === 0 && q.set !== undefined && /\b(INTERSECT|UNION|EXCEPT)\b/.test(q.set);
    if (once) {
      repo.db.exec('CREATE TEMP TABLE IF NOT EXISTS pl_matches (id INTEGER PRIMARY KEY); DELETE FROM temp.pl_matches');
      repo.db.prepare(`INSERT INTO temp.pl_matches SELECT id FROM (${q.set}) WHERE id <= ?`).run(maxId, q.params);
      q.set = 'SELECT id FROM temp.pl_matches';
      q.params = {};
    }
    const count = q.set === undefined ? 'SELECT count(*) AS n FROM docs WHERE id <= ?' : `SELECT count(*) AS n FROM (${q.set}) WHERE id <= ?`;
    const total = (repo.db.prepare(count).get(maxId, q.params) as { n: number }).n;
    const defaultOrder = order === DEFAULT_ORDER;
    const drive = q.set !== undefined && !defaultOrder && total <= Math.max(DRIVE_FROM_MATCHES, maxId / 10);
    const state = { set: q.set, params: q.params, order, lastId: undefined, offset: p.from, size, maxId, drive };
    const rows = page(repo, state);
    if (once) repo.db.exec('DELETE FROM temp.pl_matches');
    const answer: SearchAnswer = { total, partialSuccess: false, data: draw(rows) };
    if (keepAlive > 0) {
      const last = rows.at(-1);
      answer.scroll_id = scrolls.open({
        ...state, account, repo, total, fields: p.fields, render: draw, expires: now + keepAlive,
        offset: p.from + rows.length,
        lastId: defaultOrder && last ? last.id : undefined,
      }, now);
      if (rows.length < size || p.from + rows.length >= total) {
        scrolls.close(answer.scroll_id);
        answer.scroll_id = '';
      }
    }
    return answer;
  });
}

/** The next page of a scroll; `scroll_id` is empty once the results are exhausted. */
export function scrollNext(repo: LogRepo, account: string, body: { scroll_id?: unknown; scroll?: unknown }, scrolls: ScrollCache, now: number, limitMs = QUERY_TIME_LIMIT_MS): SearchAnswer {
  if (typeof body.scroll_id !== 'string' || body.scroll_id === '') throw new ApiError('E8201', 'scroll_id is required');
  const s = scrolls.take(body.scroll_id, account, repo, now);
  if (typeof body.scroll === 'string' && body.scroll !== '') s.expires = now + parseKeepAlive(body.scroll);
  const rows = bounded(repo, limitMs, () => page(repo, s));
  s.offset += rows.length;
  if (s.order === DEFAULT_ORDER && rows.length > 0) s.lastId = rows.at(-1)!.id;
  const answer: SearchAnswer = { scroll_id: body.scroll_id, total: s.total, partialSuccess: false, data: s.render(rows) };
  if (rows.length < s.size || s.offset >= s.total) {
    scrolls.close(body.scroll_id);
    answer.scroll_id = '';
  }
  return answer;
}
