/**
 * Bounded list answers. Every list endpoint answers at most LIST_MAX_ENTRIES
 * entries and about LIST_MAX_BYTES of JSON per call, in name order; when more
 * remain the answer carries `marker` (the last name returned) and the client
 * asks again with `?marker=<it>`. Without `marker` the answer is the first
 * page in the shape the official SDK expects (`{"repos":[...]}` ...).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import { toJson } from './http.ts';

/** Most entries in one list answer (also the default and the largest `limit`). */
export const LIST_MAX_ENTRIES = 1000;
/** A list answer stops adding entries once its JSON reaches this size (at least one entry is always sent). */
export const LIST_MAX_BYTES = 4 * 1024 * 1024;

export interface ListPage {
  /** Entries to return at most. */
  limit: number;
  /** Return names after this one ('' = from the start). */
  marker: string;
}

/** Reads `limit` (1..LIST_MAX_ENTRIES) and `marker` from the query; E18010 when malformed. */
export function listPage(req: FastifyRequest): ListPage {
  const q = req.query as Record<string, unknown>;
  let limit = LIST_MAX_ENTRIES;
  if (q.limit !== undefined) {
    limit = Number(q.limit);
    if (!/^\d+$/.test(String(q.limit)) || limit < 1 || limit > LIST_MAX_ENTRIES) {
      throw new ApiError('E18010', `limit must be an integer from 1 to ${LIST_MAX_ENTRIES}`);
    }
  }
  const marker = q.marker === undefined ? '' : String(q.marker);
  if (marker.length > 256) throw new ApiError('E18010', 'marker is longer than 256 characters');
  return { limit, marker };
}

/** The entries of `sorted` (ordered by name) after the page's marker, at most limit + 1 (one more tells that more remain). */
export function afterMarker<T extends { name: string }>(sorted: readonly T[], page: ListPage): T[] {
  let i = 0;
  if (page.marker) {
    // Binary search: names are unique and sorted in code unit order, as SQLite's ORDER BY name.
    let hi = sorted.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (sorted[mid]!.name <= page.marker) i = mid + 1;
      else hi = mid;
    }
  }
  return sorted.slice(i, i + page.limit + 1);
}

/**
 * Sends `{"<key>":[...]}` from `rows` (limit + 1 rows past the marker at most),
 * encoding entry by entry under the size bound, with `marker` when more remain.
 * An entry whose view cannot be encoded is sent as `fallback(row)`.
 * `extra` fields (e.g. a `total`) are added to the answer object.
 */
export function sendPage<T extends { name: string }>(
  reply: FastifyReply,
  key: string,
  rows: readonly T[],
  page: ListPage,
  view: (row: T) => unknown,
  fallback: (row: T) => unknown = (row) => ({ name: row.name }),
  extra: Record<string, unknown> = {},
): FastifyReply {
  const parts: string[] = [];
  let bytes = 0;
  let last: string | undefined;
  const n = Math.min(rows.length, page.limit);
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    let text: string;
    try {
      text = toJson(view(row));
    } catch {
      // Data stored before the size and depth limits existed must not break the whole list.
      text = toJson(fallback(row));
    }
    if (parts.length > 0 && bytes + text.length > LIST_MAX_BYTES) break;
    parts.push(text);
    bytes += text.length + 1;
    last = row.name;
  }
  const more = parts.length < rows.length;
  let tail = more && last !== undefined ? `,"marker":${JSON.stringify(last)}` : '';
  for (const [k, v] of Object.entries(extra)) tail += `,${JSON.stringify(k)}:${toJson(v)}`;
  return reply.header('content-type', 'application/json').send(`{${JSON.stringify(key)}:[${parts.join(',')}]${tail}}`);
}

/** Code unit order of names, the order afterMarker searches in (localeCompare is not). */
export function byName<T extends { name: string }>(rows: T[]): T[] {
  return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One bounded page of `rows` (any order is re-sorted by name) under `key`. */
export function sendList<T extends { name: string }>(req: FastifyRequest, reply: FastifyReply, key: string, rows: T[], view: (row: T) => unknown): FastifyReply {
  const page = listPage(req);
  return sendPage(reply, key, afterMarker(byName(rows), page), page, view);
}
