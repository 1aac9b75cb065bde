import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { verifyRequest } from '../auth/verify.ts';
import type { AppContext } from '../context.ts';
import { ApiError, AuthError } from '../errors.ts';
import { checkSpecBody } from '../services/limits.ts';
import { clientErrorHandler, drainRequest } from './connection.ts';
import { registerSchemas } from './schema.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Id of the authenticated account. */
    account: string;
    /** E-code (or reason word) of the error answer, once one was sent; '' otherwise. */
    errorCode: string;
  }
}

/** Paths served without account authentication (/metrics checks the operator's token itself). */
const PUBLIC = new Set(['/health', '/metrics']);

/** Maps Fastify's own errors onto the catalogue. */
function fromFastify(err: FastifyError, req: FastifyRequest): ApiError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('E18005');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('E18006');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('E18004');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('E18007', err.message);
    default:
      // Schema failures answer with the route's own code (config.errorCode, see schema.ts).
      if (err.validation || err.code === 'FST_ERR_VALIDATION') return new ApiError(req.routeOptions.config?.errorCode ?? 'E18007', err.message);
      return undefined;
  }
}

/** Longest path parameter the router passes to a route (names are at most 128; longer ones get the route's precise code). */
export const MAX_PARAM_LENGTH = 1024;

/**
 * Sends an error answer and logs it: method, path, status, E-code, account and
 * request id (bound by Fastify's child logger), never the body, the query or
 * headers. Only refused requests pay for the log line.
 */
function send(req: FastifyRequest, reply: FastifyReply, status: number, error: string, level: 'info' | 'debug' = 'info'): void {
  const code = /^E\d{5}/.exec(error)?.[0] ?? error.split(':', 1)[0];
  req.errorCode = code ?? '';
  const fields = { method: req.method, path: (req.url.split('?')[0] ?? '').slice(0, 256), status, code, account: req.account || undefined };
  if (status >= 500) req.log.warn(fields, 'request failed');
  else if (level === 'debug') req.log.debug(fields, 'client went away');
  else req.log.info(fields, 'request refused');
  // A Buffer: Fastify adds "; charset=utf-8" to string payloads, and router errors skip the onSend hook that strips it.
  void reply.code(status).header('X-Reqid', req.id).header('content-type', 'application/json').send(Buffer.from(JSON.stringify({ error })));
}

/**
 * Options of the Fastify instance that belong to the HTTP layer: router
 * limits, and the answers of router and connection errors in our error shape.
 */
export function httpServerOptions(): Partial<FastifyServerOptions> {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (err, req, reply) => {
      if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return send(req, reply, 414, `uri too long: a path segment is longer than ${MAX_PARAM_LENGTH} characters`);
      return send(req, reply, 400, `E18007: invalid request entity: malformed URL (${err.code})`);
    },
    clientErrorHandler: clientErrorHandler(genReqId),
  };
}

/**
 * Request ids, authentication, body parsing and the error format shared by
 * every route. Registered on the root instance before the resource routes.
 */
export function registerHttp(app: FastifyInstance, ctx: AppContext): void {
  app.decorateRequest('account', '');
  app.decorateRequest('errorCode', '');
  registerSchemas(app);

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    void reply.header('X-Reqid', req.id);
    const path = req.url.split('?')[0] ?? '';
    if (PUBLIC.has(path)) return;
    if (req.headers['x-resource-owner'] !== undefined || req.headers['x-appid'] !== undefined) {
      throw new ApiError('E18665', 'acting for another account (X-Resource-Owner, X-AppId) is not supported by this server');
    }
    const account = verifyRequest(ctx.accounts, { method: req.method, path, headers: req.headers }, { clockSkewMs: ctx.config.clockSkewMs });
    req.account = account.id;
    // No route takes a repeated parameter; refuse it here rather than let a route see an array.
    const query = req.query as Record<string, unknown>;
    for (const key in query) {
      if (Array.isArray(query[key])) throw new ApiError('E18010', `"${key.slice(0, 64)}" is given more than once`);
    }
  });

  // Every body arrives as a Buffer; routes parse JSON themselves (jsonBody) so
  // that content types sent by old clients and empty bodies never fail early.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // The Go SDK parses error bodies only when Content-Type is exactly application/json.
  app.addHook('onSend', async (_req, reply, payload) => {
    const ct = reply.getHeader('content-type');
    if (typeof ct === 'string' && ct.startsWith('application/json') && ct !== 'application/json') {
      void reply.header('content-type', 'application/json');
    }
    return payload;
  });

  app.setErrorHandler((err: FastifyError | ApiError | AuthError, req, reply) => {
    if (err instanceof ApiError) return send(req, reply, err.status, err.wire);
    if (err instanceof AuthError) return send(req, reply, 401, err.wire);
    const mapped = fromFastify(err as FastifyError, req);
    if (mapped) {
      // A body refused before it was read whole: drain the rest instead of closing with
      // unread bytes, which resets the connection and can lose this answer.
      if (mapped.status === 413 && drainRequest(req.raw)) reply.removeHeader('connection');
      return send(req, reply, mapped.status, mapped.wire);
    }
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || req.raw.socket?.destroyed) {
      // Dozens a minute under load: not worth more than a debug line.
      return send(req, reply, 400, 'E18007: invalid request entity: the client closed the connection', 'debug');
    }
    req.log.error({ error: err }, 'request failed');
    return send(req, reply, 500, 'internal server error');
  });

  app.setNotFoundHandler((req, reply) => send(req, reply, 404, `not found: ${req.method} ${req.url.split('?')[0]}`));
}

/** Request id: 16 hex chars, unique enough to grep logs by. */
export function genReqId(): string {
  return randomBytes(8).toString('hex');
}

/** Parses a JSON object body; an absent body is `{}`. Malformed JSON is E18007. */
export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  const text = Buffer.isBuffer(b) ? b.toString('utf8') : typeof b === 'string' ? b : undefined;
  if (text === undefined) return b as Record<string, unknown>;
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ApiError('E18007', `body is not valid JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError('E18007', 'body must be a JSON object');
  return v as Record<string, unknown>;
}

/** jsonBody of a spec stored as sent: refused with E18136 when too deep or too large, before anything is stored. */
export function specBody(req: FastifyRequest): Record<string, unknown> {
  return checkSpecBody(jsonBody(req));
}

const BIG = '\u0000BIG';
const BIG_RE = /"\\u0000BIG(-?\d+)"/g;

/** JSON text in which bigint values (int64 beyond 2^53) are written as exact integers. */
export function toJson(body: unknown): string {
  let big = false;
  const text = JSON.stringify(body, (_k, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    big = true;
    return `${BIG}${v}`;
  });
  return big ? text.replace(BIG_RE, '$1') : text;
}

/** JSON reply with the exact content type the official clients expect. */
export function sendJson(reply: FastifyReply, body: unknown): FastifyReply {
  return reply.header('content-type', 'application/json').send(toJson(body));
}

export const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
