/**
 * Offline datasources: kodo (bucket + key prefixes) and hdfs (paths) file
 * sets with a file type and a schema. The schema is inferred from the files,
 * or checked against them unless noVerifySchema is set. PUT may only add
 * schema fields. A datasource read by a job cannot be deleted.
 */
import type { AccountConfig, Config } from '../config.ts';
import { ApiError, type ErrorCode } from '../errors.ts';
import type { SchemaField, ValType } from '../ingest/types.ts';
import { checkTimes, inferSchema, SAMPLE_FILES, verifySchema, type InferDeps } from './infer.ts';
import { expand, variableValues } from './magic.ts';
import { bucketRoot, checkBucketName, checkHdfsGrant, checkKey, hdfsRelative } from './paths.ts';
import { checkS3Bucket, FetchArea, onS3, sourceFiles } from './s3sources.ts';
import { describeLocation, parseSourceSpec, type SourceFile, type SourceSpec } from './sources.ts';
import type { DatasourceRow, OfflineStore } from './store.ts';

export const OFFLINE_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
const FIELD_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
const DS_VALTYPES: ValType[] = ['long', 'float', 'string', 'date', 'boolean'];

/** Everything the offline services need from the server. */
export interface OfflineDeps extends InferDeps {
  config: Config;
  store: OfflineStore;
  /** The account's config (grants) by id. */
  account(id: string): AccountConfig;
}

/** Parses a datasource schema; E18106 / E18107 / E18614. */
export function parseSchema(raw: unknown): SchemaField[] {
  if (!Array.isArray(raw)) throw new ApiError('E18614', 'schema must be an array of {key, valtype, required}');
  if (raw.length > 1000) throw new ApiError('E18614', 'schema: at most 1000 fields');
  const seen = new Set<string>();
  return raw.map((e: unknown) => {
    const f = (e ?? {}) as Record<string, unknown>;
    if (typeof f.key !== 'string' || !FIELD_RE.test(f.key)) throw new ApiError('E18106', `"${String(f.key).slice(0, 80)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    if (seen.has(f.key)) throw new ApiError('E18106', `field "${f.key}" appears twice`);
    seen.add(f.key);
    if (!DS_VALTYPES.includes(f.valtype as ValType)) throw new ApiError('E18107', `field "${f.key}": valtype must be one of ${DS_VALTYPES.join(', ')}`);
    return { key: f.key, valtype: f.valtype as ValType, required: f.required === true };
  });
}

/** Checks paths and grants of a source spec (not the files). */
export async function checkSourceAccess(config: Config, account: AccountConfig, spec: SourceSpec): Promise<void> {
  if (spec.type === 'kodo') {
    checkBucketName(spec.bucket);
    for (const p of spec.prefixes) checkKey(p, 'keyPrefix');
    if (onS3(config)) await checkS3Bucket(config, account, spec.bucket as string);
    else bucketRoot(config, account, spec.bucket as string);
  } else {
    for (const p of spec.prefixes) checkHdfsGrant(account, hdfsRelative(p), p);
  }
}

/** The stored spec: both the reference's and the SDK's field names, so either client reads it back. */
function storedSpec(spec: SourceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = spec.type === 'kodo'
    ? { bucket: spec.bucket, keyPrefixes: spec.prefixes, keyPrefix: spec.prefixes, fileType: spec.fileType }
    : { paths: spec.prefixes, path: spec.prefixes, fileType: spec.fileType };
  if (spec.fileType === 'csv') Object.assign(out, { delimiter: spec.delimiter, containsHeader: spec.containsHeader });
  return out;
}

/** The source spec of a stored datasource. */
export function sourceSpecOf(d: DatasourceRow): SourceSpec {
  return parseSourceSpec(d.type, d.spec);
}

export function checkName(name: string, code: ErrorCode): string {
  if (!OFFLINE_NAME_RE.test(name)) throw new ApiError(code, `"${name.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
  return name;
}

/** Datasource create/update/get/delete. */
export class DatasourceService {
  constructor(private readonly deps: OfflineDeps) {}

  must(account: string, name: string): DatasourceRow {
    const d = this.deps.store.getDatasource(account, name);
    if (!d) throw new ApiError('E18602', name);
    return d;
  }

  /** Infers a schema from the files a spec matches (POST /v2/schemas). */
  async infer(account: string, type: unknown, rawSpec: unknown): Promise<SchemaField[]> {
    const spec = parseSourceSpec(type, rawSpec);
    const acc = this.deps.account(account);
    await checkSourceAccess(this.deps.config, acc, spec);
    return this.inferFrom(acc, spec, `nothing matches ${describeLocation(spec)}`);
  }

  /**
   * Infers from the first files `spec` matches (downloaded first on S3); E18620 with `none` when
   * there are none. `then` may look further at the same files before they go.
   */
  private async inferFrom(acc: AccountConfig, spec: SourceSpec, none: string, then?: (files: SourceFile[], inferred: SchemaField[]) => Promise<void>): Promise<SchemaField[]> {
    const area = new FetchArea(this.deps.tmpDir, this.deps.config.offlineFetchBytes);
    try {
      const files = await sourceFiles(this.deps.config, acc, spec, '', area, SAMPLE_FILES);
      if (files.length === 0) throw new ApiError('E18620', none);
      const inferred = await inferSchema(this.deps, spec, files);
      if (then) await then(files, inferred);
      return inferred;
    } finally {
      await area.close();
    }
  }

  /** The schema to store: given and checked, given and trusted (noVerifySchema), or inferred. */
  private async resolveSchema(account: string, spec: SourceSpec, rawSchema: unknown, noVerify: boolean): Promise<SchemaField[]> {
    const given = rawSchema === undefined || rawSchema === null ? undefined : parseSchema(rawSchema);
    if (noVerify) {
      if (!given || given.length === 0) throw new ApiError('E18614', 'schema is required when noVerifySchema is true');
      return given;
    }
    if (spec.fileType === 'text' && given && given.some((f) => f.key !== 'text' || f.valtype !== 'string')) {
      throw new ApiError('E18615', 'a text datasource has exactly one field: {"key":"text","valtype":"string"}');
    }
    // Paths may hold magic variables: check against the files they name now.
    const vars = variableValues(Date.now(), this.deps.config.timezone, this.deps.store.listVariables(account), {});
    const now = { ...spec, prefixes: spec.prefixes.map((p) => expand(p, vars)) };
    const checkGiven = async (files: SourceFile[], sniffed: SchemaField[]): Promise<void> => {
      if (!given || given.length === 0) return;
      // Without a header the schema names the columns in order.
      const positional = spec.fileType === 'csv' && !spec.containsHeader;
      if (positional && given.length > sniffed.length) throw new ApiError('E18615', `the schema has ${given.length} fields but the files have ${sniffed.length} columns`);
      const inferred = positional ? sniffed.map((f, i) => ({ ...f, key: given[i]?.key ?? f.key })) : sniffed;
      verifySchema(given, inferred);
      // A date field over strings: the strings must be times.
      const times = given.flatMap((f) => {
        const i = inferred.findIndex((x) => x.key === f.key);
        return f.valtype === 'date' && inferred[i]?.valtype === 'string' ? [{ key: f.key, col: sniffed[i]?.key ?? f.key }] : [];
      });
      await checkTimes(this.deps, now, files, times);
    };
    const inferred = await this.inferFrom(this.deps.account(account), now, `nothing matches ${describeLocation(now)}; create the files first or set noVerifySchema with a schema`, checkGiven);
    return given && given.length > 0 ? given : inferred;
  }

  async create(account: string, name: string, body: Record<string, unknown>): Promise<void> {
    checkName(name, 'E18600');
    const { config, store } = this.deps;
    const region = body.region ?? config.regions[0];
    if (typeof region !== 'string' || !config.regions.includes(region)) throw new ApiError('E18212', `"${String(region)}"; this server serves ${config.regions.join(', ')}`);
    const spec = parseSourceSpec(body.type, body.spec);
    await checkSourceAccess(config, this.deps.account(account), spec);
    if (body.noVerifySchema !== undefined && typeof body.noVerifySchema !== 'boolean') throw new ApiError('E18614', 'noVerifySchema must be a boolean');
    if (store.getDatasource(account, name)) throw new ApiError('E18601', name);
    const schema = await this.resolveSchema(account, spec, body.schema, body.noVerifySchema === true);
    const now = new Date().toISOString();
    const extra: Record<string, unknown> = { region, noVerifySchema: body.noVerifySchema === true };
    if (typeof body.workflow === 'string') extra.workflow = body.workflow;
    store.tx(() => {
      if (store.getDatasource(account, name)) throw new ApiError('E18601', name);
      store.putDatasource(account, { name, type: spec.type, spec: storedSpec(spec), schema, extra, createTime: now, updateTime: now });
    });
  }

  /** PUT: a new spec (same type and file type) and a schema that keeps every field with its type. */
  async update(account: string, name: string, body: Record<string, unknown>): Promise<void> {
    const cur = this.must(account, name);
    const old = sourceSpecOf(cur);
    const spec = body.spec === undefined ? old : parseSourceSpec(cur.type, { fileType: old.fileType, ...(body.spec as object) });
    if (spec.fileType !== old.fileType) throw new ApiError('E18614', `fileType cannot change (${old.fileType} -> ${spec.fileType}); create a new datasource`);
    await checkSourceAccess(this.deps.config, this.deps.account(account), spec);
    let schema = cur.schema;
    const noVerify = body.noVerifySchema === true || cur.extra.noVerifySchema === true;
    let check: SchemaField[] = [];
    if (body.schema !== undefined) {
      const next = parseSchema(body.schema);
      const byKey = new Map(next.map((f) => [f.key, f]));
      for (const f of cur.schema) {
        const n = byKey.get(f.key);
        if (!n) throw new ApiError('E18615', `field "${f.key}" cannot be removed (an update may only add fields)`);
        if (n.valtype !== f.valtype) throw new ApiError('E18615', `field "${f.key}" cannot change type (${f.valtype} -> ${n.valtype})`);
      }
      const added = next.filter((f) => !cur.schema.some((c) => c.key === f.key));
      // A csv without header names its columns by position: check the whole schema so each added field meets its own column.
      const positional = spec.fileType === 'csv' && !spec.containsHeader;
      if (added.length) check = positional ? next : added;
      schema = next;
    }
    // Files named by a new spec are checked against the whole schema, as at create.
    if (JSON.stringify(storedSpec(spec)) !== JSON.stringify(storedSpec(old))) check = schema;
    if (check.length && !noVerify) await this.resolveSchema(account, spec, check, false);
    this.deps.store.putDatasource(account, { ...cur, spec: storedSpec(spec), schema, updateTime: new Date().toISOString() });
  }

  delete(account: string, name: string): void {
    const { store } = this.deps;
    store.tx(() => {
      this.must(account, name);
      const users = store.jobsUsing(account, 'datasource', name);
      if (users.length) throw new ApiError('E18603', `${name} is read by job(s) ${users.join(', ')}`);
      store.deleteDatasource(account, name);
    });
  }

  /** The wire form of a datasource (GET one; list adds the name). */
  static view(d: DatasourceRow): Record<string, unknown> {
    return { region: d.extra.region, type: d.type, spec: d.spec, schema: d.schema, noVerifySchema: d.extra.noVerifySchema === true, ...(d.extra.workflow ? { workflow: d.extra.workflow } : {}), createTime: d.createTime, updateTime: d.updateTime };
  }
}
