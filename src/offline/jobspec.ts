/**
 * Validation of job bodies (POST and PUT /v2/jobs/<name>) into the stored
 * JobSpec. Both spellings are accepted: the reference's (`once`, type
 * `DataSource`/`Job`, no tableName) and the SDK's (`manual`, `datasource`,
 * tableName).
 */
import { ApiError } from '../errors.ts';
import { CONTAINER_TYPES } from '../services/capacity.ts';
import { parseCrontab, parseLoop } from './cron.ts';
import { isSystemVariable } from './magic.ts';
import { checkKey } from './paths.ts';
import type { JobSpec, JobSrc, SchedulerType } from './store.ts';

/** Container types of the reference (groups) and of the SDK's offline docs. */
const JOB_CONTAINERS = new Set([...Object.keys(CONTAINER_TYPES), '1U2G', '1U4G', '2U4G', '4U8G', '4U16G', '8U16G', '8U32G', '16U32G', '16U64G']);
const TABLE_RE = /^[a-zA-Z][a-zA-Z0-9_]{0,127}$/;
const PARAM_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
const SCHEDULERS: SchedulerType[] = ['crontab', 'loop', 'once', 'manual', 'depend'];
const KNOWN = new Set(['srcs', 'computation', 'container', 'scheduler', 'params', 'name', 'code']);

const bad = (detail: string): ApiError => new ApiError('E18614', detail);

function parseSrcs(raw: unknown): JobSrc[] {
  if (!Array.isArray(raw) || raw.length === 0) throw bad('srcs must be a non-empty array of {name, type, tableName, fileFilter}');
  if (raw.length > 32) throw bad('srcs: at most 32 sources');
  const srcs = raw.map((e: unknown, i): JobSrc => {
    const s = (e ?? {}) as Record<string, unknown>;
    if (typeof s.name !== 'string' || !/^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/.test(s.name)) throw bad(`srcs[${i}].name must be a datasource or job name`);
    const type = typeof s.type === 'string' ? s.type.toLowerCase() : '';
    if (type !== 'datasource' && type !== 'job') throw bad(`srcs[${i}].type must be datasource or job`);
    const tableName = s.tableName ?? s.name;
    if (typeof tableName !== 'string' || !TABLE_RE.test(tableName)) throw bad(`srcs[${i}].tableName must match ^[a-zA-Z][a-zA-Z0-9_]{0,127}$`);
    const src: JobSrc = { name: s.name, type, tableName };
    if (s.fileFilter !== undefined && s.fileFilter !== null && s.fileFilter !== '') {
      if (typeof s.fileFilter !== 'string') throw bad(`srcs[${i}].fileFilter must be a string`);
      if (type === 'job') throw bad(`srcs[${i}]: a job source reads the job's latest output and takes no fileFilter`);
      src.fileFilter = checkKey(s.fileFilter, `srcs[${i}].fileFilter`);
    }
    return src;
  });
  if (srcs.filter((s) => s.type === 'job').length > 1) throw bad('srcs may contain at most one job');
  const tables = new Set<string>();
  for (const s of srcs) {
    if (tables.has(s.tableName.toLowerCase())) throw new ApiError('E18613', `tableName "${s.tableName}" is used twice`);
    tables.add(s.tableName.toLowerCase());
  }
  return srcs;
}

function parseContainer(raw: unknown): JobSpec['container'] {
  if (raw === undefined || raw === null) return undefined;
  const c = raw as Record<string, unknown>;
  if (typeof c.type !== 'string' || !JOB_CONTAINERS.has(c.type)) throw new ApiError('E18213', `container.type must be one of ${[...JOB_CONTAINERS].join(', ')}`);
  if (typeof c.count !== 'number' || !Number.isInteger(c.count) || c.count < 1 || c.count > 128) throw new ApiError('E18214', 'container.count must be an integer from 1 to 128');
  return { type: c.type, count: c.count };
}

function parseParams(raw: unknown): JobSpec['params'] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 100) throw bad('params must be an array of at most 100 {name, default}');
  const seen = new Set<string>();
  return raw.map((e: unknown, i) => {
    const p = (e ?? {}) as Record<string, unknown>;
    if (typeof p.name !== 'string' || !PARAM_RE.test(p.name)) throw bad(`params[${i}].name must match ^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`);
    if (isSystemVariable(p.name)) throw new ApiError('E18656', `param "${p.name}" has the name of a system variable`);
    if (seen.has(p.name)) throw bad(`param "${p.name}" appears twice`);
    seen.add(p.name);
    const def = p.default ?? '';
    if (typeof def !== 'string' && typeof def !== 'number') throw bad(`params[${i}].default must be a string`);
    if (String(def).length > 64) throw bad(`params[${i}].default: at most 64 characters`);
    return { name: p.name, default: String(def) };
  });
}

/** Validates the shape of a job body; the caller checks sources, variables and SQL against the store. */
export function parseJobBody(body: Record<string, unknown>): JobSpec {
  const srcs = parseSrcs(body.srcs);
  const comp = (body.computation ?? (typeof body.code === 'object' ? body.code : undefined)) as Record<string, unknown> | undefined;
  if (!comp || typeof comp.code !== 'string' || comp.code.trim() === '') throw bad('computation.code (the SQL) is required');
  if (comp.code.length > 64 * 1024) throw bad('computation.code: at most 64 KB');
  if (comp.type !== undefined && String(comp.type).toUpperCase() !== 'SQL') throw bad('computation.type must be SQL');
  const sch = (body.scheduler ?? {}) as Record<string, unknown>;
  const type = (typeof sch.type === 'string' ? sch.type.toLowerCase() : '') as SchedulerType;
  if (!SCHEDULERS.includes(type)) throw bad(`scheduler.type must be one of ${SCHEDULERS.join(', ')}`);
  const rawSpec = (sch.spec ?? {}) as Record<string, unknown>;
  const scheduler: JobSpec['scheduler'] = { type };
  if (type === 'crontab') {
    if (typeof rawSpec.crontab !== 'string') throw bad('scheduler.spec.crontab is required for a crontab job');
    parseCrontab(rawSpec.crontab, 'UTC');
    scheduler.spec = { crontab: rawSpec.crontab.trim() };
  } else if (type === 'loop') {
    parseLoop(rawSpec.loop);
    scheduler.spec = { loop: rawSpec.loop === undefined || rawSpec.loop === null ? '0' : String(rawSpec.loop) };
  }
  const spec: JobSpec = {
    srcs,
    computation: { code: comp.code, type: 'SQL' },
    scheduler,
    params: parseParams(body.params),
    extra: Object.fromEntries(Object.entries(body).filter(([k]) => !KNOWN.has(k))),
  };
  const container = parseContainer(body.container);
  if (type === 'depend') {
    if (srcs.filter((s) => s.type === 'job').length !== 1) throw bad('a depend job needs exactly one source of type job');
    if (container) throw bad('a depend job inherits its container from the upstream job; do not give one');
    if (spec.params.length) throw bad('a depend job inherits params from the upstream job; do not give any');
    if (sch.spec && Object.keys(rawSpec).length) throw bad('a depend job inherits its schedule; give no scheduler.spec');
  } else if (container) {
    spec.container = container;
  }
  return spec;
}
