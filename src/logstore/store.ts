import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ApiError } from '../errors.ts';
import type { Row } from './convert.ts';
import type { IngestResult } from './ingest.ts';
import { LogRepo, type RepoDef } from './repo.ts';
import { checkEvolution, normaliseSchema, parseRetention, REPO_NAME_RE } from './schema.ts';
import { parseKeepAlive, ScrollCache } from './scroll.ts';
import { planHistogram, type HistogramAnswer } from './histogram.ts';
import { QueryPool, type PoolOptions } from './pool.ts';
import { LogWriter, type WriterOptions } from './writer.ts';
import { isDefaultOrder, planSearch, QUERY_TIME_LIMIT_MS, type PageResult, type SearchAnswer, type SearchParams, type SearchResult } from './search.ts';

export interface LogDbOptions {
  /** Root directory: one sub-directory per account, one SQLite file per repo. */
  dir: string;
  regions: readonly string[];
  now?: () => number;
  /** Wall-clock limit of one search or histogram (default 5 s). */
  queryTimeMs?: number;
  /** Query worker pool sizing and per-account fairness (pool.ts). */
  pool?: PoolOptions;
  /** Writer threads and per-account write queue (writer.ts). */
  writer?: WriterOptions;
}

const DAY = 86_400_000;
const open = new Map<string, LogDb>();

/** The log store serving a data directory (the logdb export sink finds it this way). */
export function logDbFor(dataDir: string): LogDb | undefined {
  return open.get(path.resolve(dataDir));
}

/**
 * The built-in log store behind the LogDB v5 API. Accounts are isolated by
 * directory: every operation takes the account first and only ever opens
 * files under `<dir>/<account>/`.
 */
export class LogDb {
  private readonly repos = new Map<string, LogRepo>();
  readonly scrolls = new ScrollCache();
  /** The clock (tests replace it to check retention). */
  now: () => number;
  queryTimeMs: number;
  /** Searches, scroll pages and histograms run here, off the event loop. */
  readonly pool: QueryPool;
  /** Every change to a repo file runs here, off the event loop, in posting order per file, fair across accounts. */
  readonly writer: LogWriter;
  /** Files being deleted by the writer: not found meanwhile, even though they still exist. */
  private readonly deleting = new Map<string, Promise<unknown>>();
  /** Repos (account/name) whose file the writer is creating: not found until it answers. */
  private readonly creating = new Set<string>();

  constructor(readonly opts: LogDbOptions) {
    this.now = opts.now ?? Date.now;
    this.queryTimeMs = opts.queryTimeMs ?? QUERY_TIME_LIMIT_MS;
    this.pool = new QueryPool(opts.pool);
    this.writer = new LogWriter(opts.writer);
    mkdirSync(opts.dir, { recursive: true });
  }

  /** Registers this store as the one of `dataDir` (for sinks). */
  register(dataDir: string): void {
    open.set(path.resolve(dataDir), this);
  }

  private file(account: string, name: string): string {
    return path.join(this.opts.dir, account, `${name}.db`);
  }

  /** The open repo, or undefined. */
  find(account: string, name: string): LogRepo | undefined {
    const key = `${account}/${name}`;
    const hit = this.repos.get(key);
    if (hit) return hit;
    if (!REPO_NAME_RE.test(name) || this.creating.has(key)) return undefined;
    const file = this.file(account, name);
    if (this.deleting.has(file) || !existsSync(file)) return undefined;
    const repo = LogRepo.load(file);
    if (repo) this.repos.set(key, repo);
    return repo;
  }

  /** The repo or E8111. */
  get(account: string, name: string): LogRepo {
    const r = this.find(account, name);
    if (!r) throw new ApiError('E8111', `log repo "${name}" does not exist`);
    return r;
  }

  /** Creates a repo from a create body (official-extensions 3.2, 3.9); the writer thread makes the file. */
  async create(account: string, name: string, body: Record<string, unknown>): Promise<RepoDef> {
    if (!REPO_NAME_RE.test(name)) throw new ApiError('E8105', `"${name}" must match ${REPO_NAME_RE.source}`);
    const region = body.region;
    if (typeof region !== 'string' || region === '') throw new ApiError('E8103');
    if (!this.opts.regions.includes(region)) throw new ApiError('E8107', `region "${region}" is not served (regions: ${this.opts.regions.join(', ')})`);
    if (body.retention === undefined || body.retention === null || body.retention === '') throw new ApiError('E8102');
    const days = parseRetention(body.retention);
    const schema = normaliseSchema(body.schema ?? []);
    const ft = (body.fullText ?? {}) as { enabled?: unknown; analyzer?: unknown };
    const now = new Date(this.now()).toISOString();
    const def: RepoDef = {
      name,
      region,
      retention: `${days}d`,
      coldRetention: typeof body.coldRetention === 'string' ? body.coldRetention : '',
      schema,
      fullText: { enabled: ft.enabled === true, analyzer: typeof ft.analyzer === 'string' && ft.analyzer !== '' ? ft.analyzer : 'standard' },
      description: typeof body.description === 'string' ? body.description : null,
      primaryField: typeof body.primaryField === 'string' ? body.primaryField : '',
      dateIndexField: typeof body.dateIndexField === 'string' ? body.dateIndexField : '',
      createTime: now,
      updateTime: now,
    };
    if (def.fullText.enabled) normaliseSchema([{ key: 'x', valtype: 'string', analyzer: def.fullText.analyzer }]);
    const key = `${account}/${name}`;
    if (this.creating.has(key) || this.find(account, name)) throw new ApiError('E8112', `log repo "${name}" already exists`);
    // Until the writer made the file (it may be queued behind a large write) the repo is not found,
    // as before this create was answered, and a second create answers E8112.
    const repo = new LogRepo(this.file(account, name), def);
    this.creating.add(key);
    try {
      const made = await this.writer.run<{ cols: string }>({ kind: 'create', file: repo.file, def });
      this.repos.set(key, repo);
      this.checkColumns(repo, made);
    } finally {
      this.creating.delete(key);
    }
    return def;
  }

  /** Updates retention, description and the schema (fields may be added, analyzers changed). */
  async update(account: string, name: string, body: Record<string, unknown>): Promise<RepoDef> {
    const repo = this.get(account, name);
    const prev = repo.def;
    const schema = body.schema === undefined || body.schema === null ? prev.schema : normaliseSchema(body.schema);
    checkEvolution(prev.schema, schema);
    const days = body.retention === undefined || body.retention === '' ? undefined : parseRetention(body.retention);
    const def: RepoDef = {
      ...prev,
      schema,
      retention: days === undefined ? prev.retention : `${days}d`,
      coldRetention: typeof body.coldRetention === 'string' ? body.coldRetention : prev.coldRetention,
      description: typeof body.description === 'string' ? body.description : prev.description,
      updateTime: new Date(this.now()).toISOString(),
    };
    const applied = await this.writer.run<{ cols: string }>({ kind: 'apply', file: repo.file, def });
    // Only now: queries planned meanwhile used the columns the file had. An export's rows converted
    // against the old layout and queued behind the apply fail their column check and are redelivered.
    repo.setDef(def);
    this.checkColumns(repo, applied);
    return def;
  }

  /** The writer laid the file out differently from this thread's view (never expected): re-read it. */
  private checkColumns(repo: LogRepo, got: { cols: string }): void {
    if (got.cols === repo.signature) return;
    for (const [k, v] of this.repos) if (v === repo) this.repos.delete(k);
    throw new ApiError('E8004', `log repo columns disagree (${got.cols} written, ${repo.signature} expected)`);
  }

  /**
   * Inserts converted rows in one transaction on the writer thread; resolves
   * once committed (durable in the WAL, visible to searches). `source`
   * records an export's next offset in the same transaction. E8111 when the
   * repo was deleted before the write was posted.
   */
  async write(repo: LogRepo, rows: Row[], source?: { key: string; next: number }): Promise<void> {
    if (repo.deleted) throw new ApiError('E8111', `log repo "${repo.def.name}" does not exist`);
    // Rows cross by structured clone as they are: ~25-40 ms of this thread for 20,000 rows, less than
    // serialising their JSON here first (~30-85 ms); a columnar encoding saved ~5-15 ms more (decision 015).
    const r = await this.writer.run<{ multi: string[] }>({ kind: 'insert', file: repo.file, cols: repo.signature, rows, now: this.now(), source });
    repo.noteMulti(r.multi);
  }

  /**
   * A `POST .../data` body, parsed, converted and inserted on the writer
   * thread (ingest.ts): only the text crosses. E8116 / E8104 as before.
   */
  async ingest(repo: LogRepo, text: string, omit: boolean): Promise<IngestResult> {
    if (repo.deleted) throw new ApiError('E8111', `log repo "${repo.def.name}" does not exist`);
    const { multi, ...r } = await this.writer.run<IngestResult & { multi: string[] }>({ kind: 'ingest', file: repo.file, text, omit, now: this.now() });
    repo.noteMulti(multi);
    return r;
  }

  /** The next source offset an export recorded in a repo (0 when none), read after every write queued before. */
  sourceNext(repo: LogRepo, key: string): Promise<number> {
    if (repo.deleted) return Promise.reject(new ApiError('E8111', `log repo "${repo.def.name}" does not exist`));
    return this.writer.run<number>({ kind: 'next', file: repo.file, key });
  }

  /** Repo definitions of an account, by name. */
  list(account: string): RepoDef[] {
    const dir = path.join(this.opts.dir, account);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.db'))
      .map((f) => this.find(account, f.slice(0, -3))?.def)
      .filter((d): d is RepoDef => d !== undefined)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Deletes a repo and its file. Gone for requests at once; writes posted
   * before finish first (the writer runs a file's jobs in order), later ones answer E8111.
   */
  async delete(account: string, name: string): Promise<void> {
    const repo = this.get(account, name);
    repo.deleted = true;
    this.repos.delete(`${account}/${name}`);
    this.scrolls.dropRepo(repo);
    const done = this.writer.run({ kind: 'delete', file: repo.file });
    this.deleting.set(repo.file, done);
    try {
      await done;
    } finally {
      if (this.deleting.get(repo.file) === done) this.deleting.delete(repo.file);
      this.pool.forget(repo.file);
    }
  }

  /** Drops documents older than each repo's retention (ingest time) on the writer thread; returns how many. */
  async enforceRetention(): Promise<number> {
    this.scrolls.sweep(this.now());
    if (!existsSync(this.opts.dir)) return 0;
    const jobs: Array<Promise<number>> = [];
    for (const account of readdirSync(this.opts.dir)) {
      for (const def of this.list(account)) {
        const days = Number(def.retention.slice(0, -1));
        const repo = this.find(account, def.name);
        if (days > 0 && repo) jobs.push(this.writer.run<number>({ kind: 'expire', file: repo.file, cutoff: this.now() - days * DAY }));
      }
    }
    // A repo deleted meanwhile fails its job with E8111: nothing left to expire there.
    const done = await Promise.allSettled(jobs);
    const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected' && !(d.reason instanceof ApiError && d.reason.code === 'E8111'));
    if (failed) throw failed.reason;
    return done.reduce((n, d) => n + (d.status === 'fulfilled' ? d.value : 0), 0);
  }

  /**
   * A search (GET or POST form): total, one page, optionally a scroll over
   * the rest. Checked and compiled here, run by a query worker.
   */
  async search(account: string, name: string, p: SearchParams): Promise<SearchAnswer> {
    const repo = this.get(account, name);
    const job = planSearch(repo, p);
    const r = await this.pool.run<SearchResult>(account, { kind: 'search', file: repo.file, limitMs: this.queryTimeMs, job });
    const answer: SearchAnswer = { total: r.total, partialSuccess: false, data: r.data };
    if (job.keepAlive > 0) {
      const now = this.now();
      const id = this.scrolls.open({
        ...r.state, account, repo, total: r.total, view: job.view, expires: now + job.keepAlive,
        offset: job.from + r.count,
        lastId: isDefaultOrder(job.order) ? r.lastId : undefined,
      }, now);
      answer.scroll_id = id;
      if (r.count < job.size || job.from + r.count >= r.total) {
        this.scrolls.close(id);
        answer.scroll_id = '';
      }
    }
    return answer;
  }

  /** The next page of a scroll; `scroll_id` is empty once the results are exhausted. */
  async scroll(account: string, name: string, body: { scroll_id?: unknown; scroll?: unknown }): Promise<SearchAnswer> {
    const repo = this.get(account, name);
    if (typeof body.scroll_id !== 'string' || body.scroll_id === '') throw new ApiError('E8201', 'scroll_id is required');
    const id = body.scroll_id;
    const s = this.scrolls.take(id, account, repo, this.now());
    if (s.busy) throw new ApiError('E8113', 'the previous page of this scroll is still being read; ask for the next page after it');
    if (typeof body.scroll === 'string' && body.scroll !== '') s.expires = this.now() + parseKeepAlive(body.scroll);
    s.busy = true;
    let r: PageResult;
    try {
      const { account: _a, repo: _r, view, total: _t, expires: _e, busy: _b, ...state } = s;
      r = await this.pool.run<PageResult>(account, { kind: 'page', file: repo.file, limitMs: this.queryTimeMs, state, view });
    } finally {
      s.busy = false;
    }
    s.offset += r.count;
    if (isDefaultOrder(s.order) && r.count > 0) s.lastId = r.lastId;
    const answer: SearchAnswer = { scroll_id: id, total: s.total, partialSuccess: false, data: r.data };
    if (r.count < s.size || s.offset >= s.total) {
      this.scrolls.close(id);
      answer.scroll_id = '';
    }
    return answer;
  }

  /** Counts per time bucket (histogram.ts), run by a query worker. */
  async histogram(account: string, name: string, params: { q: string; from: unknown; to: unknown; field: unknown }): Promise<HistogramAnswer> {
    const repo = this.get(account, name);
    const job = planHistogram(repo, params);
    return this.pool.run<HistogramAnswer>(account, { kind: 'histogram', file: repo.file, limitMs: this.queryTimeMs, job });
  }

  /** Lets queued writes finish (bounded, writer.ts), then ends the writer and query threads. */
  async close(): Promise<void> {
    for (const [k, v] of open) if (v === this) open.delete(k);
    await this.writer.close();
    this.pool.close();
    this.repos.clear();
  }
}
