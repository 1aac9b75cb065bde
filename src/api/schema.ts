/**
 * Route schemas: JSON Schema (checked by Ajv) for params, query strings and
 * bodies of a route, checked before the handler runs and collected into the
 * OpenAPI document (scripts/openapi.ts). A route names the E-code of its
 * validation errors in `config.errorCode`; the shared error handler
 * (http.ts) answers with it, so the codes clients see stay those the route
 * returned before it had a schema.
 *
 * Bodies arrive as Buffers (http.ts parses them per route), so a body schema
 * is checked against a parsed copy: a body that is not a JSON object is left
 * to the route, which answers with its own malformed-body code.
 */
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import { Ajv, type ErrorObject } from 'ajv';
import type { ErrorCode } from '../errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** E-code of the answer when this route's params, query or body fail their schema (default E18007). */
    errorCode?: ErrorCode;
  }
}

/** The part of JSON Schema our route schemas use (Ajv checks them). */
export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | Array<'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | 'null'>;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  description?: string;
}

const ajv = new Ajv({ coerceTypes: false, allErrors: false, strict: false });

/** The Go SDK sends null for unset fields: null is absent here, as in the services (on a copy). */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
  return out;
}

/** An Ajv error as a message naming the path, e.g. `body.spec must be object`. */
function violationText(e: ErrorObject | undefined, at: string): string {
  if (!e) return `${at} is invalid`;
  const where = at + e.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
  if (e.keyword === 'required') return `${where}.${String((e.params as { missingProperty: string }).missingProperty)} is required`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** The parsed JSON object of a raw body, or undefined when it is none (the route then reports it). */
function parsedObject(body: unknown): unknown {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
  if (text === undefined) return body;
  if (text.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Fastify validator compiler (Ajv, no type coercion: specs are stored as sent); never replaces the request part it checks. */
export function validatorCompiler({ schema, httpPart }: { schema: JsonSchema; httpPart?: string }): (data: unknown) => boolean | { error: Error } {
  const check = ajv.compile(schema);
  const at = httpPart ?? 'request';
  return (data) => {
    const value = httpPart === 'body' ? parsedObject(data) : data;
    if (httpPart === 'body' && value === undefined) return true;
    const v = withoutNulls(value ?? {});
    if (check(v)) return true;
    return { error: new Error(violationText(check.errors?.[0], at)) };
  };
}

/** Method, path and schema of one registered route. */
export interface RouteInfo {
  method: string;
  url: string;
  schema?: FastifySchema;
  errorCode?: ErrorCode;
}

const catalogs = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Installs the validator and starts collecting the routes registered from now on (onRoute). */
export function registerSchemas(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler as never);
  const routes: RouteInfo[] = [];
  catalogs.set(app, routes);
  app.addHook('onRoute', (r: RouteOptions) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      if (method === 'HEAD' && r.exposeHeadRoute !== false && routes.some((x) => x.url === r.url && x.method === 'GET')) continue;
      routes.push({ method, url: r.url, schema: r.schema, errorCode: r.config?.errorCode });
    }
  });
}

/** The routes registered on `app` since registerSchemas, in registration order. */
export function routeCatalog(app: FastifyInstance): RouteInfo[] {
  return catalogs.get(app) ?? [];
}

/** A path parameter holding a resource name (the services check the name rule and answer with their codes). */
export const nameParam = (what: string): JsonSchema => ({ type: 'string', maxLength: 1024, description: `${what} name: a letter or _, then letters, digits or _, at most 128 characters` });

/** Params schema naming each path parameter. */
export function params(p: Record<string, string>): JsonSchema {
  return { type: 'object', required: Object.keys(p), properties: Object.fromEntries(Object.entries(p).map(([k, what]) => [k, nameParam(what)])) };
}

/** Query string schema of string parameters. */
export function query(names: Record<string, string>): JsonSchema {
  return { type: 'object', properties: Object.fromEntries(Object.entries(names).map(([k, d]) => [k, { type: 'string', description: d }])) };
}

/** Route options: schema plus the E-code of its validation errors. */
export function routeSchema(errorCode: ErrorCode, schema: { params?: JsonSchema; querystring?: JsonSchema; body?: JsonSchema }): { schema: FastifySchema; config: { errorCode: ErrorCode } } {
  return { schema: schema as FastifySchema, config: { errorCode } };
}
