/**
 * Offline jobs: create, replace, read, list, delete, and the SQL's result
 * schema. A job is checked as a whole at create and PUT: sources exist,
 * table names are unique along the upstream chain, every magic variable is
 * defined, and the SQL is one SELECT that binds against the sources' schemas.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { ApiError } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import { checkQuery } from '../sql/check.ts';
import { createTableSql } from '../sql/types.ts';
import { checkName, sourceSpecOf, type OfflineDeps } from './datasources.ts';
import { parseJobBody } from './jobspec.ts';
import { checkDefined, expand, variableValues } from './magic.ts';
import { openSandbox } from './sandbox.ts';
import type { JobRow, JobSpec } from './store.ts';

/** Longest upstream chain followed (depend of depend ...). */
const MAX_CHAIN = 16;

/** The effective schedule, params and container of a job: its own, or its root upstream's for depend jobs. */
export interface Effective {
  root: JobRow;
  scheduler: JobSpec['scheduler'];
  params: JobSpec['params'];
  container?: JobSpec['container'];
}

export class JobService {
  constructor(private readonly deps: OfflineDeps) {}

  must(account: string, name: string): JobRow {
    const j = this.deps.store.getJob(account, name);
    if (!j) throw new ApiError('E18606', name);
    return j;
  }

  /** The upstream job of a spec (its one job source), if any. */
  upstreamOf(spec: JobSpec): string | undefined {
    return spec.srcs.find((s) => s.type === 'job')?.name;
  }

  /** Follows depend jobs up to the job that owns the schedule. */
  effective(account: string, job: JobRow): Effective {
    let cur = job;
    for (let i = 0; cur.spec.scheduler.type === 'depend'; i++) {
      const up = this.upstreamOf(cur.spec);
      const next = up ? this.deps.store.getJob(account, up) : undefined;
      if (!next || i > MAX_CHAIN) break;
      cur = next;
    }
    return { root: cur, scheduler: cur.spec.scheduler, params: cur.spec.params, container: cur.spec.container };
  }

  /** Checks a parsed spec against the store and fills in its result schema. */
  private async check(account: string, name: string, spec: JobSpec): Promise<JobSpec> {
    const { store } = this.deps;
    const schemas = new Map<string, SchemaField[]>();
    const paths: Array<{ ds: string; texts: string[] }> = [];
    for (const s of spec.srcs) {
      if (s.type === 'datasource') {
        const d = store.getDatasource(account, s.name);
        if (!d) throw new ApiError('E18612', `datasource "${s.name}" does not exist`);
        schemas.set(s.tableName, d.schema);
        paths.push({ ds: s.name, texts: sourceSpecOf(d).prefixes });
      } else {
        if (s.name === name) throw new ApiError('E18614', 'a job cannot read its own output');
        const up = store.getJob(account, s.name);
        if (!up) throw new ApiError('E18612', `job "${s.name}" does not exist`);
        schemas.set(s.tableName, up.spec.schema ?? []);
        // Table names must be unique along the whole upstream chain, and the chain must not loop back.
        let cur: JobRow | undefined = up;
        for (let i = 0; cur; i++) {
          if (i > MAX_CHAIN) throw new ApiError('E18614', `upstream chain longer than ${MAX_CHAIN} jobs`);
          for (const us of cur.spec.srcs) {
            if (us.type === 'job' && us.name === name) throw new ApiError('E18614', `job "${cur.name}" already reads ${name}: sources may not form a cycle`);
            if (spec.srcs.some((own) => own.tableName.toLowerCase() === us.tableName.toLowerCase())) {
              throw new ApiError('E18613', `tableName "${us.tableName}" is already used by upstream job ${cur.name}`);
            }
          }
          const next = this.upstreamOf(cur.spec);
          cur = next ? store.getJob(account, next) : undefined;
        }
      }
    }
    const eff = spec.scheduler.type === 'depend'
      ? this.effective(account, { name, spec, paused: false, createTime: '', updateTime: '' })
      : { params: spec.params };
    const known = new Set([...eff.params.map((p) => p.name), ...store.listVariables(account).map((v) => v.name)]);
    checkDefined([spec.computation.code], known, 'the SQL');
    checkDefined(spec.srcs.map((s) => s.fileFilter ?? ''), known, 'a fileFilter');
    // A datasource's paths may use the job's params, so they are checked here, where the params are known.
    for (const p of paths) checkDefined(p.texts, known, `a path of datasource ${p.ds}`);
    const vars = variableValues(Date.now(), this.deps.config.timezone, store.listVariables(account), Object.fromEntries(eff.params.map((p) => [p.name, p.default])));
    const plan = await this.describe(expand(spec.computation.code, vars), schemas);
    spec.schema = plan.fields;
    spec.columns = plan.names;
    return spec;
  }

  /** The result schema of `sql` over empty tables of the sources' schemas; E18618 with the engine's reason. */
  private async describe(sql: string, tables: Map<string, SchemaField[]>): Promise<{ fields: SchemaField[]; names: string[] }> {
    const box = await openSandbox({
      memoryLimit: '256MB', threads: 1, tempDir: path.join(this.deps.tmpDir, `describe-${randomUUID()}`), readFiles: [], dirs: [],
    });
    try {
      for (const [t, schema] of tables) {
        if (schema.length) await box.conn.run(createTableSql(t, schema));
      }
      const plan = await checkQuery(box.conn, sql);
      return { fields: plan.fields, names: plan.names };
    } catch (err) {
      if (err instanceof ApiError) throw new ApiError('E18618', err.message.replace(/^invalid transform SQL: /, ''), { cause: err });
      throw err;
    } finally {
      await box.close();
    }
  }

  async create(account: string, name: string, body: Record<string, unknown>): Promise<JobRow> {
    checkName(name, 'E18604');
    const spec = await this.check(account, name, parseJobBody(body));
    const now = new Date().toISOString();
    const row: JobRow = { name, spec, paused: false, createTime: now, updateTime: now };
    this.deps.store.tx(() => {
      if (this.deps.store.getJob(account, name)) throw new ApiError('E18605', name);
      this.deps.store.putJob(account, row);
    });
    return row;
  }

  /** PUT: a full replace, validated like a create. */
  async replace(account: string, name: string, body: Record<string, unknown>): Promise<JobRow> {
    const cur = this.must(account, name);
    const spec = await this.check(account, name, parseJobBody(body));
    this.checkUsers(account, name, spec);
    const row: JobRow = { ...cur, spec, updateTime: new Date().toISOString() };
    this.deps.store.putJob(account, row);
    return row;
  }

  /**
   * A job's exports and its depend jobs (down the chain) take their variables
   * from this job's params: after a PUT every one they use must still be
   * defined (E18657 naming it and where it is used).
   */
  private checkUsers(account: string, name: string, spec: JobSpec): void {
    const { store } = this.deps;
    const params = spec.scheduler.type === 'depend' ? this.effective(account, { name, spec, paused: false, createTime: '', updateTime: '' }).params : spec.params;
    const known = new Set([...params.map((p) => p.name), ...store.listVariables(account).map((v) => v.name)]);
    const visit = (job: string, depth: number): void => {
      const of = job === name ? '' : ` of depend job ${job}`;
      for (const e of store.listExports(account, job)) checkDefined([String(e.spec.keyPrefix ?? e.spec.path ?? '')], known, `the keyPrefix of job export ${e.name}${of}`);
      if (depth >= MAX_CHAIN) return;
      for (const d of store.jobsUsing(account, 'job', job)) {
        const dj = store.getJob(account, d);
        if (!dj || dj.spec.scheduler.type !== 'depend') continue;
        checkDefined([dj.spec.computation.code], known, `the SQL of depend job ${d}`);
        checkDefined(dj.spec.srcs.map((x) => x.fileFilter ?? ''), known, `a fileFilter of depend job ${d}`);
        for (const x of dj.spec.srcs) {
          const ds = x.type === 'datasource' ? store.getDatasource(account, x.name) : undefined;
          if (ds) checkDefined(sourceSpecOf(ds).prefixes, known, `a path of datasource ${x.name} (read by depend job ${d})`);
        }
        visit(d, depth + 1);
      }
    };
    visit(name, 0);
  }

  /** Refuses (E18608) while another job reads this one or it has job exports. */
  checkDeletable(account: string, name: string): void {
    const users = this.deps.store.jobsUsing(account, 'job', name);
    if (users.length) throw new ApiError('E18608', `${name} is read by job(s) ${users.join(', ')}`);
    const exps = this.deps.store.listExports(account, name);
    if (exps.length) throw new ApiError('E18608', `${name} still has job export(s) ${exps.map((e) => e.name).join(', ')}`);
  }

  /** The wire form of a job (GET; list adds the name). */
  view(account: string, j: JobRow): Record<string, unknown> {
    const s = j.spec;
    return {
      ...s.extra,
      srcs: s.srcs.map((x) => ({ ...x, type: x.type })),
      computation: s.computation,
      ...(s.container ? { container: s.container } : {}),
      scheduler: s.scheduler,
      params: s.params,
      schema: (s.schema ?? []).map((f) => ({ key: f.key, valtype: f.valtype })),
      status: j.paused ? 'stopped' : 'scheduled',
      createTime: j.createTime,
      updateTime: j.updateTime,
      ...(s.scheduler.type === 'depend' ? { inherited: { scheduler: this.effective(account, j).scheduler } } : {}),
    };
  }
}
