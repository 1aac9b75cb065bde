import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import type { HighlightSpec } from '../logstore/highlight.ts';
import type { RepoDef } from '../logstore/repo.ts';
import type { SearchParams } from '../logstore/search.ts';
import type { LogDb } from '../logstore/store.ts';
import { checkSpecBody, depthOver } from '../services/limits.ts';
import { sendJson } from './http.ts';
import { sendList } from './list.ts';
import { logdbSchemas } from './bodies.ts';

type Params = { repo: string };
type Query = Record<string, string | undefined>;
/** Largest GET body (the SDK sends the highlight object as a body on GET search). */
const MAX_GET_BODY = 64 * 1024;

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError('E8116', `${what} is not valid JSON (${(err as Error).message})`);
  }
}

function object(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  const text = Buffer.isBuffer(b) ? b.toString('utf8') : '';
  if (text.trim() === '') return {};
  const v = parse(text, 'body');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError('E8116', 'body must be a JSON object');
  return v as Record<string, unknown>;
}

/** Fastify does not read GET bodies: read it here, bounded. */
async function getBody(req: FastifyRequest): Promise<string> {
  if (!req.headers['content-length'] && !req.headers['transfer-encoding']) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req.raw) {
    size += (c as Buffer).length;
    if (size > MAX_GET_BODY) throw new ApiError('E8114', `a search body is at most ${MAX_GET_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A highlight spec: a JSON object of a few levels (it is handed to a query worker, so its size is bounded here). */
function highlightSpec(h: unknown): HighlightSpec {
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new ApiError('E8201', 'highlight must be a JSON object');
  if (depthOver(h, 8)) throw new ApiError('E8201', 'highlight nests objects or arrays deeper than 8 levels');
  return h as HighlightSpec;
}

const int = (v: unknown, code: 'E8203' | 'E8204', name: string): number => {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ApiError(code, `${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
};
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function summary(d: RepoDef): Record<string, unknown> {
  const { schema: _schema, ...rest } = d;
  return rest;
}

/** LogDB v5 routes (official-extensions 3): log repos, writes, search, scroll, histogram. */
export async function logdbRoutes(app: FastifyInstance, _ctx: AppContext, logdb: LogDb): Promise<void> {
  app.post<{ Params: Params }>('/v5/repos/:repo', logdbSchemas.write, async (req, reply) => {
    await logdb.create(req.account, req.params.repo, checkSpecBody(object(req)));
    return reply.code(200).send();
  });

  app.put<{ Params: Params }>('/v5/repos/:repo', logdbSchemas.write, async (req, reply) => {
    await logdb.update(req.account, req.params.repo, checkSpecBody(object(req)));
    return reply.code(200).send();
  });

  app.get<{ Params: Params }>('/v5/repos/:repo', logdbSchemas.one, async (req, reply) => {
    const { name: _name, ...def } = logdb.get(req.account, req.params.repo).def;
    return sendJson(reply, def);
  });

  app.delete<{ Params: Params }>('/v5/repos/:repo', logdbSchemas.one, async (req, reply) => {
    await logdb.delete(req.account, req.params.repo);
    return reply.code(200).send();
  });

  app.get('/v5/repos', logdbSchemas.list, async (req, reply) => sendList(req, reply, 'repos', logdb.list(req.account), summary));

  app.post<{ Params: Params; Querystring: Query }>('/v5/repos/:repo/data', logdbSchemas.data, async (req, reply) => {
    const repo = logdb.get(req.account, req.params.repo);
    const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    if (text.trim() === '') throw new ApiError('E8115');
    // Parsed, checked and indexed on the log store's writer thread (decision 015): the event loop stays free.
    return sendJson(reply, await logdb.ingest(repo, text, req.query.omitInvalidLog === 'true'));
  });

  // Queries run in the log store's worker pool (decision 015): awaiting them keeps the event loop free.
  const runSearch = (req: FastifyRequest<{ Params: Params }>, p: SearchParams) => logdb.search(req.account, req.params.repo, p);

  app.get<{ Params: Params; Querystring: Query }>('/v5/repos/:repo/search', logdbSchemas.searchGet, async (req, reply) => {
    const q = req.query;
    const body = await getBody(req);
    let highlight: HighlightSpec | undefined;
    if (q.highlight === 'true' || body.trim() !== '') {
      const h = body.trim() === '' ? {} : parse(body, 'highlight body');
      highlight = highlightSpec(h);
    }
    return sendJson(reply, await runSearch(req, {
      q: q.q ?? '', sort: q.sort ?? '', from: int(q.from, 'E8203', 'from'), size: int(q.size, 'E8204', 'size'),
      scroll: q.scroll ?? '', fields: undefined, highlight,
    }));
  });

  app.post<{ Params: Params }>('/v5/repos/:repo/search', logdbSchemas.searchPost, async (req, reply) => {
    const b = object(req);
    const fields = str(b.fields).split(',').map((s) => s.trim()).filter(Boolean);
    const h = b.highlight === undefined || b.highlight === null ? undefined : highlightSpec(b.highlight);
    return sendJson(reply, await runSearch(req, {
      q: str(b.query), sort: str(b.sort), from: int(b.from, 'E8203', 'from'), size: int(b.size, 'E8204', 'size'),
      scroll: str(b.scroll), fields: fields.length ? fields : undefined, highlight: h,
    }));
  });

  app.post<{ Params: Params }>('/v5/repos/:repo/scroll', logdbSchemas.scroll, async (req, reply) => {
    return sendJson(reply, await logdb.scroll(req.account, req.params.repo, object(req)));
  });

  app.get<{ Params: Params; Querystring: Query }>('/v5/repos/:repo/histogram', logdbSchemas.histogram, async (req, reply) => {
    return sendJson(reply, await logdb.histogram(req.account, req.params.repo, { q: req.query.q ?? '', from: req.query.from, to: req.query.to, field: req.query.field }));
  });
}
