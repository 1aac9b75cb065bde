/**
 * OpenAPI 3 document of the registered routes, built from the catalog that
 * schema.ts collects with Fastify's onRoute hook. Routes without a schema
 * are listed with their path parameters only, so the document names every
 * route and method the server answers.
 */
import type { RouteInfo } from './schema.ts';

type Json = Record<string, unknown>;

/** `/v2/repos/:repo` -> `/v2/repos/{repo}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(r: RouteInfo): Json[] {
  const s = (r.schema ?? {}) as { params?: Json; querystring?: Json };
  const out: Json[] = [];
  const pSchema = (s.params?.properties ?? {}) as Record<string, Json>;
  for (const name of r.url.match(/:([A-Za-z0-9_]+)/g)?.map((m) => m.slice(1)) ?? []) {
    out.push({ name, in: 'path', required: true, schema: pSchema[name] ?? { type: 'string' } });
  }
  for (const [name, schema] of Object.entries((s.querystring?.properties ?? {}) as Record<string, Json>)) {
    out.push({ name, in: 'query', required: false, schema });
  }
  return out;
}

/** The OpenAPI 3.0 document of `routes` (/v2, /v5, /health and /metrics; HEAD and OPTIONS left out). */
export function openApiDocument(routes: readonly RouteInfo[], version: string): Json {
  const paths: Record<string, Record<string, Json>> = {};
  const error = { $ref: '#/components/responses/Error' };
  for (const r of routes) {
    if (!/^\/(v2|v5|health|metrics)/.test(r.url) || r.method === 'HEAD' || r.method === 'OPTIONS') continue;
    const op: Json = {
      operationId: `${r.method.toLowerCase()} ${r.url}`,
      parameters: parameters(r),
      responses: { 200: { description: 'success' }, default: error },
    };
    if (r.errorCode) op['x-validation-error'] = r.errorCode;
    const body = (r.schema as { body?: Json } | undefined)?.body;
    if (body) op.requestBody = { required: false, content: { 'application/json': { schema: body } } };
    (paths[openApiPath(r.url)] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.0.3',
    info: { title: 'pipeline-server', version, description: 'Pandora Pipeline v2 and LogDB v5 API. Requests are signed (Authorization: Pandora <ak>:<sign>); see docs/api.md.' },
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    components: {
      responses: {
        Error: {
          description: 'error: "<E-code>: <message>" (docs/errors.md)',
          content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } } } },
        },
      },
    },
  };
}
