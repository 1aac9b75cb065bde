import { ApiError } from '../errors.ts';
import { parseContainer } from '../services/capacity.ts';
import type { SchemaField } from '../ingest/types.ts';

export const INTERVALS: Record<string, number> = {
  '5s': 5_000, '10s': 10_000, '20s': 20_000, '30s': 30_000, '1m': 60_000, '5m': 300_000, '10m': 600_000,
};
export const DEFAULT_INTERVAL = '1m';
const FIELD_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
const OUTPUT_TYPES = ['string', 'long', 'float'] as const;

export interface PluginSpec {
  name: string;
  output: Array<{ name: string; type: (typeof OUTPUT_TYPES)[number] }>;
}

/** A transform's spec as stored and shown (`spec` of GET). */
export interface TransformSpec {
  mode?: 'sql';
  code?: string;
  plugin?: PluginSpec;
  interval: string;
  container?: { type: string; count: number };
  /** Where a new transform starts in its source (the Go SDK's TransformSpec.Whence); absent means oldest. */
  whence?: 'oldest' | 'newest';
}

/**
 * Validates plugin {name, output[{name, type}]}; output types default to
 * string (E18211). An absent or empty output is returned empty: the service
 * derives it from a plugin written to the official Java contract.
 */
export function parsePlugin(raw: unknown): PluginSpec {
  if (typeof raw !== 'object' || raw === null) throw new ApiError('E18207', 'plugin must be an object {name, output}');
  const p = raw as Record<string, unknown>;
  if (typeof p.name !== 'string' || p.name === '') throw new ApiError('E18207', 'plugin.name is required');
  if (p.output === undefined || p.output === null) return { name: p.name, output: [] };
  if (!Array.isArray(p.output)) throw new ApiError('E18207', 'plugin.output must be an array of {name, type}');
  const seen = new Set<string>();
  const output = p.output.map((o: unknown, i) => {
    const f = (o ?? {}) as Record<string, unknown>;
    if (typeof f.name !== 'string' || !FIELD_RE.test(f.name)) throw new ApiError('E18207', `plugin.output[${i}].name must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    if (seen.has(f.name)) throw new ApiError('E18207', `plugin.output has "${f.name}" twice`);
    seen.add(f.name);
    const type = f.type === undefined || f.type === '' ? 'string' : f.type;
    if (typeof type !== 'string' || !(OUTPUT_TYPES as readonly string[]).includes(type)) {
      throw new ApiError('E18211', `plugin.output "${f.name}" has type ${JSON.stringify(type)}; use string, long or float`);
    }
    return { name: f.name, type: type as PluginSpec['output'][number]['type'] };
  });
  return { name: p.name, output };
}

function parseInterval(raw: unknown): string {
  if (raw === undefined || raw === '') return DEFAULT_INTERVAL;
  if (typeof raw !== 'string' || !(raw in INTERVALS)) throw new ApiError('E18208', `${JSON.stringify(raw)}; use one of ${Object.keys(INTERVALS).join(' ')}`);
  return raw;
}

function parseCode(body: Record<string, unknown>): string | undefined {
  if (body.code === undefined || body.code === '') return undefined;
  if (typeof body.code !== 'string') throw new ApiError('E18207', 'code must be a string');
  if (body.code.length > 64 * 1024) throw new ApiError('E18207', 'code is longer than 64 KB');
  return body.code;
}

/**
 * A transform's container: unlike a group's, the reference makes type and count
 * optional. What is left out comes from `cur` (an update) or defaults to one M16C4.
 */
function parseTransformContainer(raw: unknown, cur: { type: string; count: number } = { type: 'M16C4', count: 1 }): { type: string; count: number } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return parseContainer(raw, 10_000);
  const c = raw as Record<string, unknown>;
  const given = (v: unknown): boolean => v !== undefined && v !== null;
  return parseContainer({ type: given(c.type) ? c.type : cur.type, count: given(c.count) ? c.count : cur.count }, 10_000);
}

/** Validates a create body (E18207 when neither plugin nor mode/code, E18208, E18211, E18213/4). */
export function parseCreate(body: Record<string, unknown>): TransformSpec {
  const code = parseCode(body);
  if (body.mode !== undefined && body.mode !== '' && body.mode !== 'sql') throw new ApiError('E18203', `mode ${JSON.stringify(body.mode)}; only sql is supported`);
  const plugin = body.plugin === undefined || body.plugin === null ? undefined : parsePlugin(body.plugin);
  if (!plugin && !code) throw new ApiError('E18207', 'give a plugin, or mode "sql" with code, or both');
  const spec: TransformSpec = { interval: parseInterval(body.interval) };
  if (code) { spec.mode = 'sql'; spec.code = code; }
  if (plugin) spec.plugin = plugin;
  if (body.container !== undefined && body.container !== null) spec.container = parseTransformContainer(body.container);
  // As for exports: the SDK omits an empty whence, other clients may send "".
  if (body.whence !== undefined && body.whence !== null && body.whence !== '') {
    if (body.whence !== 'oldest' && body.whence !== 'newest') throw new ApiError('E18207', `whence must be "oldest" or "newest", got ${JSON.stringify(body.whence)?.slice(0, 40)}`);
    spec.whence = body.whence;
  }
  return spec;
}

/**
 * Validates an update: at least one of plugin, code, interval, container;
 * plugin output may only gain fields (E18660). Returns the merged spec.
 */
export function parseUpdate(cur: TransformSpec, body: Record<string, unknown>): TransformSpec {
  const has = (k: string): boolean => body[k] !== undefined && body[k] !== null;
  if (!has('plugin') && !has('code') && !has('interval') && !has('container')) {
    throw new ApiError('E18207', 'an update needs at least one of plugin, code, interval, container');
  }
  const next: TransformSpec = { ...cur };
  if (has('interval')) next.interval = parseInterval(body.interval);
  if (has('container')) next.container = parseTransformContainer(body.container, cur.container);
  if (has('code')) {
    const code = parseCode(body);
    if (code) { next.mode = 'sql'; next.code = code; }
  }
  if (has('plugin')) {
    const plugin = parsePlugin(body.plugin);
    // An omitted output is derived later (TransformService), which checks it then.
    if (cur.plugin && plugin.output.length > 0) checkOnlyAdded(cur.plugin.output.map((o) => ({ key: o.name, valtype: o.type })), plugin.output.map((o) => ({ key: o.name, valtype: o.type })), 'plugin output');
    next.plugin = plugin;
  }
  return next;
}

/** Output fields may be added, never removed or retyped (E18660). */
export function checkOnlyAdded(before: Array<Pick<SchemaField, 'key' | 'valtype'>>, after: Array<Pick<SchemaField, 'key' | 'valtype'>>, what: string): void {
  const now = new Map(after.map((f) => [f.key, f.valtype]));
  for (const f of before) {
    const t = now.get(f.key);
    if (t === undefined) throw new ApiError('E18660', `${what} field "${f.key}" would be removed; fields may only be added`);
    if (t !== f.valtype) throw new ApiError('E18660', `${what} field "${f.key}" would change from ${f.valtype} to ${t}`);
  }
}

/** Input schema the SQL sees: the plugin's output when a plugin runs first, else the source repo's schema. */
export function sqlInputSchema(spec: TransformSpec, source: SchemaField[]): SchemaField[] {
  if (!spec.plugin) return source;
  return spec.plugin.output.map((o) => ({ key: o.name, valtype: o.type, required: false }));
}
