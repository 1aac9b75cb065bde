/**
 * Route schemas: JSON Schema (a small subset) for params, query strings and
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
import type { ErrorCode } from '../errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** E-code of the answer when this route's params, query or body fail their schema (default E18007). */
    errorCode?: ErrorCode;
  }
}

/** The subset of JSON Schema the validator below understands. */
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

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** First violation of `schema` by `v` as a message naming the path, or undefined. */
export function violation(schema: JsonSchema, v: unknown, at: string): string | undefined {
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(v);
    if (!types.includes(t as never) && !(t === 'integer' && types.includes('number'))) return `${at} must be ${types.join(' or ')}`;
  }
  if (schema.enum && !schema.enum.includes(v)) return `${at} must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  if (typeof v === 'string') {
    if (schema.minLength !== undefined && v.length < schema.minLength) return `${at} must have at least ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && v.length > schema.maxLength) return `${at} must have at most ${schema.maxLength} characters`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(v)) return `${at} must match ${schema.pattern}`;
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) return `${at} must be at least ${schema.minimum}`;
    if (schema.maximum !== undefined && v > schema.maximum) return `${at} must be at most ${schema.maximum}`;
  }
  if (Array.isArray(v)) {
    if (schema.maxItems !== undefined && v.length > schema.maxItems) return `${at} must have at most ${schema.maxItems} items`;
    if (schema.items) {
      for (let i = 0; i < v.length; i++) {
        const bad = violation(schema.items, v[i], `${at}[${i}]`);
        if (bad) return bad;
      }
    }
  } else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    for (const key of schema.required ?? []) if (o[key] === undefined) return `${at}.${key} is required`;
    for (const [key, sub] of Object.entries(schema.properties ?? {})) {
      // The Go SDK sends null for unset fields: null is absent here, as in the services.
      if (o[key] === undefined || o[key] === null) continue;
      const bad = violation(sub, o[key], `${at}.${key}`);
      if (bad) return bad;
    }
  }
  return undefined;
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

/** Fastify validator compiler for the subset above; never replaces the request part it checks. */
export function validatorCompiler({ schema, httpPart }: { schema: JsonSchema; httpPart?: string }): (data: unknown) => boolean | { error: Error } {
  return (data) => {
    const value = httpPart === 'body' ? parsedObject(data) : data;
    if (httpPart === 'body' && value === undefined) return true;
    const bad = violation(schema, value ?? {}, httpPart ?? 'request');
    return bad ? { error: new Error(bad) } : true;
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
