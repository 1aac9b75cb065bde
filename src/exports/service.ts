import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { RepoService } from '../services/repos.ts';
import type { ExportRow, MetaStore, RepoRow } from '../storage/meta.ts';
import type { ExportEngine } from './engine.ts';
import { SINK_KINDS, sinkKind } from './registry.ts';
import { exportConsumer } from './runner.ts';
import { makeBatch } from './shared/batch.ts';
import { checkCommonSpec, commonSpec } from './shared/common.ts';
import type { Rejected, SinkKind } from './shared/sink.ts';

const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
/** Most points a preview renders. */
export const MAX_PREVIEW = 100;

interface ParsedBody {
  kind: SinkKind;
  type: string;
  spec: Record<string, unknown>;
  whence: 'oldest' | 'newest';
}

/** Reads `{type, spec, whence}` of a create or preview body (E18305 for the shape). */
function parseBody(body: Record<string, unknown>): ParsedBody {
  const type = body.type;
  if (typeof type !== 'string' || type === '') throw new ApiError('E18305', 'type is required (http, kodo, tsdb, ...)');
  const kind = sinkKind(type);
  if (!kind) throw new ApiError('E18305', `unknown export type "${type.slice(0, 40)}"; this server supports ${SINK_KINDS.map((k) => k.types[0]).join(', ')}`);
  const spec = body.spec;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new ApiError('E18305', 'spec must be an object');
  // The SDK omits an empty whence; other clients send "" for the default.
  const whence = body.whence === undefined || body.whence === null || body.whence === '' ? 'oldest' : body.whence;
  if (whence !== 'oldest' && whence !== 'newest') throw new ApiError('E18305', `whence must be "oldest" or "newest", got ${JSON.stringify(whence)?.slice(0, 40)}`);
  return { kind, type: type.toLowerCase(), spec: spec as Record<string, unknown>, whence };
}

/** Export lifecycle: validation against the repo, the stored rows and offsets, and keeping the engine in step. */
export class ExportService {
  constructor(
    private readonly meta: MetaStore,
    private readonly repos: RepoService,
    private readonly engine: ExportEngine,
    private readonly config: Config,
  ) {}

  /** The export (E18102 without the repo, E18302 without the export). */
  must(account: string, repo: string, name: string): ExportRow {
    this.repos.must(account, repo);
    const e = this.meta.getExport(account, repo, name);
    if (!e) throw new ApiError('E18302', `${repo}/${name}`);
    return e;
  }

  private checkName(name: string): void {
    if (!NAME_RE.test(name)) throw new ApiError('E18305', `export name "${name.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
  }

  /** The common fields plus the sink's check; returns the spec to store. */
  private async validate(account: string, name: string, repo: RepoRow, kind: SinkKind, spec: Record<string, unknown>, preview = false): Promise<Record<string, unknown>> {
    // The common fields first: a sink's check may create its target (logdb), which a refused spec must not leave behind.
    checkCommonSpec(name, spec, repo, this.meta.getRepo(account, commonSpec(name, spec).deadLetterRepo));
    return kind.validate(spec, { account, repo, config: this.config, preview });
  }

  async create(account: string, repoName: string, name: string, body: Record<string, unknown>): Promise<ExportRow> {
    this.checkName(name);
    const repo = this.repos.must(account, repoName);
    if (this.meta.getExport(account, repoName, name)) throw new ApiError('E18301', `${repoName}/${name}`);
    const p = parseBody(body);
    const spec = await this.validate(account, name, repo, p.kind, p.spec);
    const log = await this.repos.log(account, repo);
    const now = new Date().toISOString();
    const row: ExportRow = { repo: repoName, name, type: p.type, spec, whence: p.whence, createTime: now, updateTime: now };
    this.meta.tx(() => {
      if (!this.meta.getRepo(account, repoName)) throw new ApiError('E18102', repoName);
      if (this.meta.getExport(account, repoName, name)) throw new ApiError('E18301', `${repoName}/${name}`);
      this.meta.insertExport(account, row);
      // whence is applied once, here: the export then only ever moves from its committed offset.
      const start = p.whence === 'newest' ? log.endOffset() : log.startOffset();
      this.meta.setOffset(account, exportConsumer(row), { logKey: `${account}/${repo.name}.${repo.uid}`, nextOffset: start, state: {} });
      // A group that allocates on first use starts with its first export, as with transforms.
      const g = repo.group ? this.meta.getGroup(account, repo.group) : undefined;
      if (g && g.state === 'idle') this.meta.updateGroup(account, { ...g, state: 'running', updateTime: now });
    });
    this.engine.add(account, row);
    return row;
  }

  /** Replaces the spec (type and whence stay); delivery resumes from the committed offset. */
  async update(account: string, repoName: string, name: string, body: Record<string, unknown>): Promise<ExportRow> {
    const cur = this.must(account, repoName, name);
    const repo = this.repos.must(account, repoName);
    const kind = sinkKind(cur.type);
    if (!kind) throw new ApiError('E18305', `export type "${cur.type}" is not supported by this server`);
    const raw = body.spec ?? body;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError('E18305', 'spec must be an object');
    const spec = await this.validate(account, name, repo, kind, raw as Record<string, unknown>);
    const now = new Date().toISOString();
    this.meta.updateExportSpec(account, repoName, name, spec, now);
    const row = { ...cur, spec, updateTime: now };
    await this.engine.update(account, row);
    return row;
  }

  /** Stops the export (waiting for its batch in flight) and forgets it and its offset; the dead-letter repo stays. */
  async delete(account: string, repoName: string, name: string): Promise<void> {
    const e = this.must(account, repoName, name);
    await this.engine.remove(account, repoName, name);
    this.meta.tx(() => {
      this.meta.deleteExport(account, repoName, name);
      this.meta.deleteOffset(account, exportConsumer(e));
    });
  }

  list(account: string, repoName: string): ExportRow[] {
    this.repos.must(account, repoName);
    return this.meta.listExports(account, repoName);
  }

  /**
   * Renders what the sink would receive for the newest `count` points of the
   * repo and which of them it cannot convert; sends nothing. The body is an
   * export body (`type`, `spec`); without one, the stored export is previewed.
   */
  async preview(account: string, repoName: string, name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.checkName(name);
    const repo = this.repos.must(account, repoName);
    const count = body.count ?? 10;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_PREVIEW) {
      throw new ApiError('E18305', `count must be an integer from 1 to ${MAX_PREVIEW}`);
    }
    let p: Pick<ParsedBody, 'kind' | 'type' | 'spec'>;
    if (body.type === undefined && body.spec === undefined) {
      const e = this.must(account, repoName, name);
      const kind = sinkKind(e.type);
      if (!kind) throw new ApiError('E18305', `export type "${e.type}" is not supported by this server`);
      p = { kind, type: e.type, spec: e.spec };
    } else {
      p = parseBody(body);
    }
    const spec = await this.validate(account, name, repo, p.kind, p.spec, true);
    const log = await this.repos.log(account, repo);
    const from = Math.max(log.startOffset(), log.endOffset() - count);
    const r = await log.read(from, count);
    const schema = this.repos.compiled(account, repo);
    const sink = p.kind.create(spec, { account, exportName: name, repo, schema, config: this.config, log: silentLog, now: () => Date.now() });
    try {
      const out = await sink.preview(makeBatch(r.from, r.lines, r.times, schema));
      return { type: p.type, points: r.lines.length, from: r.from, rendered: out.rendered, rejected: out.rejected.map((x: Rejected) => ({ ...x, record: r.lines[x.offset - r.from] ?? null })) };
    } finally {
      await sink.close();
    }
  }
}

/** Preview sinks never log. */
const silentLog = {
  level: 'silent', fatal() {}, error() {}, warn() {}, info() {}, debug() {}, trace() {}, silent() {},
  child() { return silentLog; },
} as unknown as import('fastify').FastifyBaseLogger;
