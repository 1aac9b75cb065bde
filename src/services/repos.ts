import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { compileSchema, decodeLine, escapeModeOf, parsePoints, type CompiledSchema, type EscapeMode } from '../ingest/points.ts';
import type { ParsePool } from '../ingest/parse-pool.ts';
import { caseClash, checkSchemaUpdate, validateSchema } from '../ingest/schema.ts';
import { verbatimPayload } from '../ingest/validate.ts';
import type { Point, SchemaField } from '../ingest/types.ts';
import { LogFailedError } from '../storage/log/errors.ts';
import type { LogStore, RepoLog } from '../storage/log/types.ts';
import type { MetaStore, RepoRow } from '../storage/meta.ts';
import { checkStoredFields } from './limits.ts';

const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;

/** Fields of a create request kept as they were sent (the SDK sends more than the reference). */
const EXTRA_KEYS = ['description', 'options', 'workflow', 'ruleNames'] as const;

/**
 * A repo's escape mode, from the `options.unescapeLine` it was created with
 * (fixed for the repo's life: updates never change stored options). Repos
 * created before modes existed kept their options as sent, so one created
 * by logkit now decodes as logkit asked; without the option it is the
 * reference mode, as before.
 */
export function repoEscapeMode(repo: Pick<RepoRow, 'extra'>): EscapeMode {
  try {
    return escapeModeOf(repo.extra['options']);
  } catch {
    return 'reference'; // options stored unvalidated before modes existed, e.g. unescapeLine: "yes"
  }
}

/** A repo's `stats` in GET /v2/repos/<Repo>. */
export interface RepoStats {
  /** Points retained (endOffset - startOffset). */
  points: number;
  /** Bytes of the repo's log files on disk. */
  bytes: number;
  /** Offset of the oldest retained point. */
  startOffset: number;
  /** Offset one past the newest durable point (the next point's offset). */
  endOffset: number;
  /** When the oldest retained point was stored (ISO 8601), null while empty. */
  oldestTime: string | null;
  /** When the newest point was stored (ISO 8601), null while empty. */
  newestTime: string | null;
  /** Points removed by retention since the repo was created. */
  droppedPoints: number;
}

export interface CreateRepoInput {
  region?: unknown;
  group?: unknown;
  schema?: unknown;
  [k: string]: unknown;
}

/**
 * Repos and their data: the rules shared by the repos API, data push and the
 * transforms that create and feed derived repos.
 */
export class RepoService {
  private readonly schemas = new Map<string, { version: string; compiled: CompiledSchema }>();

  /** Called after points were durably appended to a pushed repo (the stage feeder listens). */
  readonly appended: Array<(account: string, repo: string) => void> = [];

  /** Called once per accepted push with its point count and body bytes (metrics listen). */
  readonly pushed: Array<(account: string, repo: string, points: number, bytes: number) => void> = [];

  /** Called after a repo was deleted. */
  readonly deleted: Array<(account: string, repo: string) => void> = [];

  /** Why the last append failed, until an append succeeds again (read by /health). */
  private lastWriteError: string | undefined;

  constructor(
    private readonly meta: MetaStore,
    private readonly logs: LogStore,
    private readonly config: Config,
    /** Worker threads validating large bodies (none: everything is parsed on the main thread). */
    private readonly parsePool?: ParsePool,
  ) {}

  /** Where a repo's log lives: unique per incarnation of the name. */
  static logKey(account: string, repo: Pick<RepoRow, 'name' | 'uid'>): string {
    return `${account}/${repo.name}.${repo.uid}`;
  }

  /** Validates the name (E18103) and returns the repo (E18102 when missing). */
  must(account: string, name: string): RepoRow {
    if (!NAME_RE.test(name)) throw new ApiError('E18103', `"${name.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    const r = this.meta.getRepo(account, name);
    if (!r) throw new ApiError('E18102', name);
    return r;
  }

  /** Creates a repo after validating every field; nothing is stored when any check fails. */
  create(account: string, name: string, input: CreateRepoInput, opts: { derivedFrom?: string } = {}): RepoRow {
    if (!NAME_RE.test(name)) throw new ApiError('E18103', `"${name.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    const region = input.region ?? this.config.regions[0];
    if (typeof region !== 'string' || !this.config.regions.includes(region)) {
      throw new ApiError('E18212', `"${String(region)}"; this server serves ${this.config.regions.join(', ')}`);
    }
    const schema = validateSchema(input.schema);
    let group: string | null = null;
    if (input.group !== undefined && input.group !== null && input.group !== '') {
      if (typeof input.group !== 'string') throw new ApiError('E18120', 'group must be a group name');
      const g = this.meta.getGroup(account, input.group);
      if (!g) throw new ApiError('E18120', input.group);
      if (g.region !== region) throw new ApiError('E18222', `group ${g.name} is in region ${g.region}, the repo in ${region}`);
      group = g.name;
    }
    const extra: Record<string, unknown> = {};
    for (const k of EXTRA_KEYS) if (input[k] !== undefined) extra[k] = input[k];
    const mode = escapeModeOf(input.options); // E18007 for a malformed options / unescapeLine
    // Stored (and shown by GET) as a boolean, so a client sending "true" reads back true.
    if (mode !== 'reference') extra['options'] = { ...(input.options as Record<string, unknown>), unescapeLine: mode === 'unescape' };
    checkStoredFields(extra);
    const now = new Date().toISOString();
    const row: RepoRow = {
      name, uid: randomBytes(6).toString('hex'), region, group, schema,
      derivedFrom: opts.derivedFrom ?? null, extra, createTime: now, updateTime: now,
    };
    this.meta.tx(() => {
      if (this.meta.getRepo(account, name)) throw new ApiError('E18101', name);
      this.meta.insertRepo(account, row);
    });
    return row;
  }

  /** Replaces the schema with a compatible one (fields added, required relaxed). */
  updateSchema(account: string, name: string, rawSchema: unknown): RepoRow {
    const next = validateSchema(rawSchema);
    return this.meta.tx(() => {
      const cur = this.must(account, name);
      checkSchemaUpdate(cur.schema, next);
      this.checkSqlReadable(account, name, next);
      const now = new Date().toISOString();
      this.meta.updateRepoSchema(account, name, next, now);
      return { ...cur, schema: next, updateTime: now };
    });
  }

  /**
   * A SQL transform (without a plugin) reads the repo as a table: a new field that
   * differs from another only in case would make that table impossible and stall
   * the transform for good (fields cannot be removed again), so it is refused.
   */
  private checkSqlReadable(account: string, name: string, schema: SchemaField[]): void {
    const reader = this.meta.listTransforms(account, name).find((t) => t.spec['code'] && !t.spec['plugin']);
    const clash = reader ? caseClash(schema) : undefined;
    if (reader && clash) {
      throw new ApiError('E18128', `field "${clash[1]}" differs from "${clash[0]}" only in case, which SQL does not tell apart, and transform ${reader.name} reads this repo with SQL`);
    }
  }

  /** Grows the schema by fields that are not there yet (derived repos whose transform added output). */
  growSchema(account: string, name: string, added: SchemaField[]): void {
    if (added.length === 0) return;
    this.meta.tx(() => {
      const cur = this.must(account, name);
      const have = new Set(cur.schema.map((f) => f.key));
      const next = [...cur.schema, ...added.filter((f) => !have.has(f.key)).map((f) => ({ ...f, required: false }))];
      this.meta.updateRepoSchema(account, name, next, new Date().toISOString());
    });
  }

  /**
   * Deletes a repo: refused while transforms or exports hang off it (E18112)
   * and, unless `viaTransform`, when a transform writes it (E18206). The data
   * goes only after the metadata delete committed.
   */
  async delete(account: string, name: string, opts: { viaTransform?: boolean } = {}): Promise<void> {
    const row = this.meta.tx(() => {
      const r = this.must(account, name);
      if (r.derivedFrom && !opts.viaTransform) throw new ApiError('E18206', `${name} is written by transform ${r.derivedFrom}`);
      const writer = this.meta.transformWriting(account, name);
      if (writer && !opts.viaTransform) throw new ApiError('E18206', `${name} is written by transform ${writer.repo}/${writer.name}`);
      const deps = this.meta.dependents(account, name);
      if (deps.transforms.length || deps.exports.length) {
        const list = [...deps.transforms.map((t) => `transform ${t}`), ...deps.exports.map((e) => `export ${e}`)];
        throw new ApiError('E18112', `${name} still feeds ${list.join(', ')}`);
      }
      this.meta.deleteRepo(account, name);
      return r;
    });
    this.schemas.delete(RepoService.logKey(account, row));
    for (const fn of this.deleted) fn(account, name);
    await this.logs.remove(RepoService.logKey(account, row));
  }

  /** The repo's log, opened on first use. */
  log(account: string, repo: RepoRow): Promise<RepoLog> {
    return this.logs.open(RepoService.logKey(account, repo));
  }

  /**
   * What the repo's log holds: retained points and bytes, the offset range,
   * append times of the oldest and newest point, and how many points
   * retention dropped (offsets start at 0, so all those before the oldest).
   */
  async stats(account: string, repo: RepoRow): Promise<RepoStats> {
    const log = await this.log(account, repo);
    const start = log.startOffset();
    const end = log.endOffset();
    const range = log.timeRange();
    return {
      points: end - start,
      bytes: log.sizeBytes(),
      startOffset: start,
      endOffset: end,
      oldestTime: range ? new Date(range.oldest).toISOString() : null,
      newestTime: range ? new Date(range.newest).toISOString() : null,
      droppedPoints: start,
    };
  }

  /** The compiled schema (with the repo's escape mode), cached until the repo's schema changes. */
  compiled(account: string, repo: RepoRow): CompiledSchema {
    const key = RepoService.logKey(account, repo);
    const hit = this.schemas.get(key);
    if (hit && hit.version === repo.updateTime) return hit.compiled;
    const compiled = compileSchema(repo.schema, repoEscapeMode(repo));
    this.schemas.set(key, { version: repo.updateTime, compiled });
    return compiled;
  }

  /**
   * Validates and durably appends one request's points (all or nothing).
   * `raw` is the UTF-8 body `text` was decoded from: when the validated lines
   * are the body verbatim (no tags, CR, BOM or blank lines) it is stored as is.
   * Returns how many points were stored.
   */
  async push(account: string, name: string, text: string, tags?: string, raw?: Buffer): Promise<number> {
    const repo = this.writable(account, name);
    const lines = parsePoints(text, this.compiled(account, repo), { tags, maxValueBytes: this.config.maxValueBytes });
    const payload = raw && !tags ? verbatimPayload(text, raw, lines) : undefined;
    const n = await this.store(account, repo, payload ? { payload, count: lines.length } : { lines });
    this.accepted(account, repo.name, n, raw?.length ?? Buffer.byteLength(text));
    return n;
  }

  /**
   * Same as push() for a raw (gunzipped) body. Large bodies are validated on
   * a parse worker thread so other requests are not held meanwhile; the body
   * may be moved there, so the caller must not use it afterwards.
   */
  async pushBody(account: string, name: string, raw: Buffer, tags?: string): Promise<number> {
    const repo = this.writable(account, name);
    if (!this.parsePool?.wants(raw.length)) {
      if (!isUtf8(raw)) throw new ApiError('E18007', 'body is not valid UTF-8');
      return this.push(account, name, raw.toString('utf8'), tags, raw);
    }
    const bytes = raw.length; // the body may be transferred to the worker
    const r = await this.parsePool.parse({
      body: raw, schemaKey: RepoService.logKey(account, repo), schemaVersion: repo.updateTime, schema: repo.schema, mode: repoEscapeMode(repo), tags, maxValueBytes: this.config.maxValueBytes,
    });
    const n = await this.store(account, repo, r);
    this.accepted(account, repo.name, n, bytes);
    return n;
  }

  private accepted(account: string, repo: string, points: number, bytes: number): void {
    for (const fn of this.pushed) fn(account, repo, points, bytes);
  }

  /** The repo, when data may be pushed to it (not a transform's destination). */
  private writable(account: string, name: string): RepoRow {
    const repo = this.must(account, name);
    if (repo.derivedFrom) throw new ApiError('E18223', `${name} is written by transform ${repo.derivedFrom}`);
    const writer = this.meta.transformWriting(account, name);
    if (writer) throw new ApiError('E18223', `${name} is written by transform ${writer.repo}/${writer.name}`);
    return repo;
  }

  /** Appends validated points durably and tells the listeners; a full disk is E18009. */
  private async store(account: string, repo: RepoRow, points: { lines: string[] } | { payload: Buffer; count: number }): Promise<number> {
    const log = await this.log(account, repo);
    try {
      await ('lines' in points ? log.append(points.lines) : log.appendPayload(points.payload, points.count));
    } catch (err) {
      throw this.writeFailed(err);
    }
    this.lastWriteError = undefined;
    for (const fn of this.appended) fn(account, repo.name);
    return 'lines' in points ? points.lines.length : points.count;
  }

  /** Why writes are failing right now (the last append failed and none succeeded since), else undefined. */
  writeProblem(): string | undefined {
    return this.lastWriteError;
  }

  /** Maps an append failure: a full disk is E18009 (507, retry later); anything else stays internal. */
  private writeFailed(err: unknown): unknown {
    const code = errnoCode(err);
    const disk = code === 'ENOSPC' || code === 'EDQUOT';
    if (disk || code === 'EIO' || err instanceof LogFailedError) this.lastWriteError = `the last append failed (${code ?? (err as Error).message})`;
    if (disk) return new ApiError('E18009', 'no space left for repo data; the request was not acknowledged, retry when space is freed', { cause: err });
    return err;
  }

  /** The newest `count` points, oldest first. */
  async sample(account: string, name: string, count: number): Promise<Point[]> {
    const repo = this.must(account, name);
    const log = await this.log(account, repo);
    const from = Math.max(log.startOffset(), log.endOffset() - count);
    const { lines } = await log.read(from, count);
    const schema = this.compiled(account, repo);
    return lines.map((l) => decodeLine(l, schema));
  }
}

/** The errno code of an error or of its cause (the log wraps failed fsyncs). */
function errnoCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}
