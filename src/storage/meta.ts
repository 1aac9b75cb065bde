import Database from 'better-sqlite3';
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SchemaField } from '../ingest/types.ts';

export type GroupState = 'idle' | 'running' | 'stopped';
const GROUP_STATES: GroupState[] = ['idle', 'running', 'stopped'];

export interface GroupRow {
  name: string;
  region: string;
  containerType: string;
  containerCount: number;
  allocateOnStart: boolean;
  /** idle: never allocated; running; stopped: stopped by the user (status idle on the wire). */
  state: GroupState;
  createTime: string;
  updateTime: string;
}

export interface RepoRow {
  name: string;
  uid: string;
  region: string;
  group: string | null;
  schema: SchemaField[];
  derivedFrom: string | null;
  extra: Record<string, unknown>;
  createTime: string;
  updateTime: string;
}

export interface TransformRow {
  repo: string;
  name: string;
  destRepo: string;
  spec: Record<string, unknown>;
  createdDest: boolean;
  createTime: string;
  updateTime: string;
}

export interface ExportRow {
  repo: string;
  name: string;
  type: string;
  spec: Record<string, unknown>;
  /** Where reading started at creation: the oldest retained point or the points arriving after creation. */
  whence: 'oldest' | 'newest';
  createTime: string;
  updateTime: string;
}

export interface PluginRow {
  name: string;
  kind: string;
  size: number;
  md5: string;
  createTime: string;
}

export interface OffsetRow {
  logKey: string;
  nextOffset: number;
  state: Record<string, unknown>;
}

type Row = Record<string, unknown>;
const MIGRATIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

const group = (r: Row): GroupRow => ({
  name: r.name as string,
  region: r.region as string,
  containerType: r.container_type as string,
  containerCount: r.container_count as number,
  allocateOnStart: r.allocate_on_start === 1,
  state: GROUP_STATES[r.state as number] ?? 'idle',
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});
const repo = (r: Row): RepoRow => ({
  name: r.name as string,
  uid: r.uid as string,
  region: r.region as string,
  group: (r.group_name as string | null) ?? null,
  schema: JSON.parse(r.schema_json as string) as SchemaField[],
  derivedFrom: (r.derived_from as string | null) ?? null,
  extra: JSON.parse(r.extra_json as string) as Record<string, unknown>,
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});
const transform = (r: Row): TransformRow => ({
  repo: r.repo as string,
  name: r.name as string,
  destRepo: r.dest_repo as string,
  spec: JSON.parse(r.spec_json as string) as Record<string, unknown>,
  createdDest: r.created_dest === 1,
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});
const exportRow = (r: Row): ExportRow => ({
  repo: r.repo as string,
  name: r.name as string,
  type: r.type as string,
  spec: JSON.parse(r.spec_json as string) as Record<string, unknown>,
  whence: r.whence === 'newest' ? 'newest' : 'oldest',
  createTime: r.create_time as string,
  updateTime: r.update_time as string,
});

/**
 * The metadata store on SQLite (WAL, synchronous=FULL so a 200 on a create
 * survives power loss). Every method takes the account first: rows of other
 * accounts are invisible.
 */
export class MetaStore {
  readonly db: Database.Database;
  private closed = false;

  constructor(file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared statements are cached: preparing costs ~50 µs, more than most queries here. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    const files = readdirSync(MIGRATIONS).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
    for (const f of files) {
      const n = Number.parseInt(f, 10);
      if (n <= version) continue;
      const sql = readFileSync(path.join(MIGRATIONS, f), 'utf8');
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.pragma(`user_version = ${n}`);
      })();
    }
  }

  /** Runs fn in one SQLite transaction (all or nothing). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // groups
  getGroup(account: string, name: string): GroupRow | undefined {
    const r = this.stmt('SELECT * FROM groups WHERE account = ? AND name = ?').get(account, name) as Row | undefined;
    return r && group(r);
  }
  listGroups(account: string): GroupRow[] {
    return (this.stmt('SELECT * FROM groups WHERE account = ? ORDER BY name').all(account) as Row[]).map(group);
  }
  insertGroup(account: string, g: GroupRow): void {
    this.db
      .prepare('INSERT INTO groups VALUES (?,?,?,?,?,?,?,?,?)')
      .run(account, g.name, g.region, g.containerType, g.containerCount, g.allocateOnStart ? 1 : 0, GROUP_STATES.indexOf(g.state), g.createTime, g.updateTime);
  }
  updateGroup(account: string, g: GroupRow): void {
    this.db
      .prepare('UPDATE groups SET container_type=?, container_count=?, state=?, update_time=? WHERE account=? AND name=?')
      .run(g.containerType, g.containerCount, GROUP_STATES.indexOf(g.state), g.updateTime, account, g.name);
  }
  deleteGroup(account: string, name: string): void {
    this.stmt('DELETE FROM groups WHERE account=? AND name=?').run(account, name);
  }
  /** Whether any repo of the account is assigned to the group (transforms use it through their source repo). */
  groupInUse(account: string, name: string): boolean {
    return this.stmt('SELECT 1 FROM repos WHERE account=? AND group_name=? LIMIT 1').get(account, name) !== undefined;
  }

  // repos
  getRepo(account: string, name: string): RepoRow | undefined {
    const r = this.stmt('SELECT * FROM repos WHERE account=? AND name=?').get(account, name) as Row | undefined;
    return r && repo(r);
  }
  listRepos(account: string): RepoRow[] {
    return (this.stmt('SELECT * FROM repos WHERE account=? ORDER BY name').all(account) as Row[]).map(repo);
  }
  /** Every repo of every account (for startup sweeps). */
  allRepos(): Array<RepoRow & { account: string }> {
    return (this.stmt('SELECT * FROM repos').all() as Row[]).map((r) => ({ ...repo(r), account: r.account as string }));
  }
  insertRepo(account: string, r: RepoRow): void {
    this.db
      .prepare('INSERT INTO repos VALUES (?,?,?,?,?,?,?,?,?,?)')
      .run(account, r.name, r.uid, r.region, r.group, JSON.stringify(r.schema), r.derivedFrom, JSON.stringify(r.extra), r.createTime, r.updateTime);
  }
  updateRepoSchema(account: string, name: string, schema: SchemaField[], updateTime: string): void {
    this.stmt('UPDATE repos SET schema_json=?, update_time=? WHERE account=? AND name=?').run(JSON.stringify(schema), updateTime, account, name);
  }
  deleteRepo(account: string, name: string): void {
    this.stmt('DELETE FROM repos WHERE account=? AND name=?').run(account, name);
  }

  // transforms
  getTransform(account: string, repoName: string, name: string): TransformRow | undefined {
    const r = this.stmt('SELECT * FROM transforms WHERE account=? AND repo=? AND name=?').get(account, repoName, name) as Row | undefined;
    return r && transform(r);
  }
  listTransforms(account: string, repoName?: string): TransformRow[] {
    const rows = repoName === undefined
      ? this.stmt('SELECT * FROM transforms WHERE account=? ORDER BY repo, name').all(account)
      : this.stmt('SELECT * FROM transforms WHERE account=? AND repo=? ORDER BY name').all(account, repoName);
    return (rows as Row[]).map(transform);
  }
  /** Every transform of every account (the runner schedules them all). */
  allTransforms(): Array<TransformRow & { account: string }> {
    return (this.stmt('SELECT * FROM transforms').all() as Row[]).map((r) => ({ ...transform(r), account: r.account as string }));
  }
  transformWriting(account: string, destRepo: string): TransformRow | undefined {
    const r = this.stmt('SELECT * FROM transforms WHERE account=? AND dest_repo=?').get(account, destRepo) as Row | undefined;
    return r && transform(r);
  }
  insertTransform(account: string, t: TransformRow): void {
    this.db
      .prepare('INSERT INTO transforms VALUES (?,?,?,?,?,?,?,?)')
      .run(account, t.repo, t.name, t.destRepo, JSON.stringify(t.spec), t.createdDest ? 1 : 0, t.createTime, t.updateTime);
  }
  updateTransformSpec(account: string, repoName: string, name: string, spec: Record<string, unknown>, updateTime: string): void {
    this.stmt('UPDATE transforms SET spec_json=?, update_time=? WHERE account=? AND repo=? AND name=?').run(JSON.stringify(spec), updateTime, account, repoName, name);
  }
  deleteTransform(account: string, repoName: string, name: string): void {
    this.stmt('DELETE FROM transforms WHERE account=? AND repo=? AND name=?').run(account, repoName, name);
  }

  // exports
  getExport(account: string, repoName: string, name: string): ExportRow | undefined {
    const r = this.stmt('SELECT * FROM exports WHERE account=? AND repo=? AND name=?').get(account, repoName, name) as Row | undefined;
    return r && exportRow(r);
  }
  /** Every export of every account (the engine starts them all). */
  allExports(): Array<ExportRow & { account: string }> {
    return (this.stmt('SELECT * FROM exports').all() as Row[]).map((r) => ({ ...exportRow(r), account: r.account as string }));
  }
  insertExport(account: string, e: ExportRow): void {
    this.stmt('INSERT INTO exports (account, repo, name, type, spec_json, create_time, update_time, whence) VALUES (?,?,?,?,?,?,?,?)')
      .run(account, e.repo, e.name, e.type, JSON.stringify(e.spec), e.createTime, e.updateTime, e.whence);
  }
  updateExportSpec(account: string, repoName: string, name: string, spec: Record<string, unknown>, updateTime: string): void {
    this.stmt('UPDATE exports SET spec_json=?, update_time=? WHERE account=? AND repo=? AND name=?').run(JSON.stringify(spec), updateTime, account, repoName, name);
  }
  deleteExport(account: string, repoName: string, name: string): void {
    this.stmt('DELETE FROM exports WHERE account=? AND repo=? AND name=?').run(account, repoName, name);
  }
  listExports(account: string, repoName: string): ExportRow[] {
    return (this.stmt('SELECT * FROM exports WHERE account=? AND repo=? ORDER BY name').all(account, repoName) as Row[]).map(exportRow);
  }
  /** Number of transforms reading from and exports attached to a repo. */
  dependents(account: string, repoName: string): { transforms: string[]; exports: string[] } {
    const t = this.stmt('SELECT name FROM transforms WHERE account=? AND repo=?').all(account, repoName) as Row[];
    const e = this.stmt('SELECT name FROM exports WHERE account=? AND repo=?').all(account, repoName) as Row[];
    return { transforms: t.map((r) => r.name as string), exports: e.map((r) => r.name as string) };
  }

  // plugins
  getPlugin(account: string, name: string): PluginRow | undefined {
    const r = this.stmt('SELECT name, kind, size, md5, create_time FROM plugins WHERE account=? AND name=?').get(account, name) as Row | undefined;
    return r && { name: r.name as string, kind: r.kind as string, size: r.size as number, md5: r.md5 as string, createTime: r.create_time as string };
  }
  listPlugins(account: string): PluginRow[] {
    const rows = this.stmt('SELECT name, kind, size, md5, create_time FROM plugins WHERE account=? ORDER BY name').all(account) as Row[];
    return rows.map((r) => ({ name: r.name as string, kind: r.kind as string, size: r.size as number, md5: r.md5 as string, createTime: r.create_time as string }));
  }
  insertPlugin(account: string, p: PluginRow): void {
    this.stmt('INSERT INTO plugins VALUES (?,?,?,?,?,?)').run(account, p.name, p.kind, p.size, p.md5, p.createTime);
  }
  deletePlugin(account: string, name: string): void {
    this.stmt('DELETE FROM plugins WHERE account=? AND name=?').run(account, name);
  }

  // consumer offsets
  getOffset(account: string, consumer: string): OffsetRow | undefined {
    const r = this.stmt('SELECT log_key, next_offset, state_json FROM offsets WHERE account=? AND consumer=?').get(account, consumer) as Row | undefined;
    return r && { logKey: r.log_key as string, nextOffset: r.next_offset as number, state: JSON.parse(r.state_json as string) as Record<string, unknown> };
  }
  /**
   * Stores a consumer's offset. `durable: false` skips the fsync of this
   * commit (WAL, synchronous=NORMAL for this one transaction): it may be
   * lost in a power cut but never reordered before earlier commits. Only for
   * writes that recovery can redo, like a transform's commit after its
   * pending marker (decision 005).
   */
  setOffset(account: string, consumer: string, o: OffsetRow, opts: { durable?: boolean } = {}): void {
    const st = this.stmt('INSERT INTO offsets VALUES (?,?,?,?,?,?) ON CONFLICT(account, consumer) DO UPDATE SET log_key=excluded.log_key, next_offset=excluded.next_offset, state_json=excluded.state_json, update_time=excluded.update_time');
    const args = [account, consumer, o.logKey, o.nextOffset, JSON.stringify(o.state), new Date().toISOString()];
    if (opts.durable !== false) {
      st.run(...args);
      return;
    }
    this.db.pragma('synchronous = NORMAL');
    try {
      st.run(...args);
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }
  deleteOffset(account: string, consumer: string): void {
    this.stmt('DELETE FROM offsets WHERE account=? AND consumer=?').run(account, consumer);
  }

  /** Closes the database. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
