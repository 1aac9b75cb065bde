/**
 * Requests of the official Go SDK's logdb client (qiniu/pandora-go-sdk logdb/,
 * official-extensions 3.9), rebuilt from its source so tests send what it sends.
 */
import type { LightMyRequestResponse } from 'fastify';
import type { TestServer } from './helpers.ts';

/** Go's url.QueryEscape: everything but letters, digits and -_.~ escaped, space as '+'. */
export function goQueryEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The SDK's RepoSchemaEntry JSON: analyzer omitted when empty, description always present. */
export function sdkSchema(entries: Array<{ key: string; valtype: string; analyzer?: string; nested?: unknown[] }>): unknown[] {
  return entries.map((e) => ({ ...e, description: null }));
}

/** CreateRepoInput as the SDK marshals it (RepoName without a JSON tag, empty extras). */
export function sdkCreateBody(name: string, schema: unknown[], retention = '2d', fullText = false): Record<string, unknown> {
  return {
    RepoName: name, region: 'nb', retention, coldRetention: '', schema,
    fullText: { enabled: fullText, analyzer: fullText ? 'standard' : '' }, description: null, primaryField: '', dateIndexField: '',
  };
}

export interface Ctx { s: TestServer; ak?: string; sk?: string }

export async function createLogRepo(c: Ctx, name: string, schema: unknown[], retention = '2d', fullText = false): Promise<LightMyRequestResponse> {
  return c.s.call({ method: 'POST', url: `/v5/repos/${name}`, body: sdkCreateBody(name, schema, retention, fullText), ak: c.ak, sk: c.sk });
}

/** SendLog: POST .../data?omitInvalidLog=<bool>, application/json. */
export function sendLog(c: Ctx, name: string, logs: unknown, omit = false): Promise<LightMyRequestResponse> {
  return c.s.call({ method: 'POST', url: `/v5/repos/${name}/data?omitInvalidLog=${omit}`, body: logs, ak: c.ak, sk: c.sk });
}

/** QueryLog: every parameter present, q QueryEscape'd, sort and scroll raw; highlight as a GET body. */
export function queryLog(c: Ctx, name: string, p: { q?: string; sort?: string; from?: number; size?: number; scroll?: string; highlight?: unknown }): Promise<LightMyRequestResponse> {
  const url = `/v5/repos/${name}/search?q=${goQueryEscape(p.q ?? '')}&sort=${p.sort ?? ''}&from=${p.from ?? 0}&size=${p.size ?? 0}&scroll=${p.scroll ?? ''}&highlight=${p.highlight !== undefined}`;
  return c.s.call({ method: 'GET', url, body: p.highlight, ak: c.ak, sk: c.sk });
}

/** QueryHistogramLog. */
export function histogramLog(c: Ctx, name: string, p: { q?: string; from: number; to: number; field: string }): Promise<LightMyRequestResponse> {
  return c.s.call({ method: 'GET', url: `/v5/repos/${name}/histogram?q=${goQueryEscape(p.q ?? '')}&from=${p.from}&to=${p.to}&field=${p.field}`, ak: c.ak, sk: c.sk });
}

/** The 5-character LogDB code the SDK keeps (logdb/error.go), asserting the content type. */
export function logdbCode(res: LightMyRequestResponse): string {
  if (res.headers['content-type'] !== 'application/json') throw new Error(`content-type ${String(res.headers['content-type'])}: ${res.body}`);
  return (JSON.parse(res.body) as { error: string }).error.slice(0, 5);
}

export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`);
  return JSON.parse(res.body) as T;
}
