/**
 * Warm sandboxed DuckDB instances, one per account, so a run costs a
 * connection (~1 ms) instead of a new instance (~11 ms of CPU, decision 016).
 *
 * An account's instance may read and write only below folders that account
 * may reach anyway: its granted buckets (the whole bucket store when it has
 * no list, which it can read through datasources), its granted hdfs subtrees
 * (all of hdfsRoot without a list), and its own job-output folder. External
 * access is off and the configuration locked before any job SQL runs, so a
 * job can never read another account's buckets, outputs or staging, nor the
 * data dir (meta.db). A run whose files or staging folders are not all below
 * those folders (S3 downloads, hdfs staging for an account with hdfs grants)
 * gets its own per-run sandbox as before. Each run has its own connection,
 * so its temp views are private to it; a connection goes back to the
 * instance's idle list only from a run that succeeded without creating any
 * (runner.ts). Memory and threads are per instance, i.e. shared by the
 * account's runs in flight.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { AccountConfig, Config } from '../config.ts';
import { openSandbox, type Sandbox, type SandboxOptions } from './sandbox.ts';
import { openLockedInstance } from '../sql/sandbox.ts';

interface Engine {
  instance: DuckDBInstance;
  dirs: string[];
  tempDir: string;
  /** Connections of finished runs, clean, for the next runs (a connect costs ~0.1 ms of CPU). */
  idle: DuckDBConnection[];
}

/** Most idle connections kept per instance. */
const MAX_IDLE = 8;

const slash = (d: string): string => (d.endsWith('/') ? d : d + '/');
const below = (p: string, dirs: string[]): boolean => {
  const n = path.resolve(p);
  return dirs.some((d) => (n + '/').startsWith(d));
};

/** Folders an account's warm instance may use (each ends with '/'). */
export function accountDirs(config: Config, account: AccountConfig, outputRoot: string): string[] {
  // A grant that would resolve outside its root (a "..", an absolute path) grants nothing here.
  const inside = (root: string, rel: string): string[] => {
    const d = path.resolve(root, rel);
    return d.startsWith(slash(path.resolve(root))) ? [d] : [];
  };
  const buckets = account.buckets ? account.buckets.flatMap((b) => inside(config.bucketsDir, b)) : [config.bucketsDir];
  const hdfs = account.hdfsPaths ? account.hdfsPaths.flatMap((p) => inside(config.hdfsRoot, p)) : [config.hdfsRoot];
  return [...buckets, ...hdfs, path.join(outputRoot, account.id)].map((d) => slash(path.resolve(d)));
}

export class AccountEngines {
  private readonly engines = new Map<string, Promise<Engine>>();
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly tmpDir: string,
    private readonly outputRoot: string,
    private readonly memoryLimit: string,
    private readonly threads: number,
  ) {}

  /**
   * A connection on the account's warm instance when every file and folder
   * of the run lies below its folders, else a per-run sandbox.
   */
  async open(account: AccountConfig, opts: SandboxOptions): Promise<Sandbox> {
    if (this.closed) return openSandbox(opts);
    const engine = await this.engine(account);
    if (!opts.readFiles.every((f) => below(f, engine.dirs)) || !opts.dirs.every((d) => below(d, engine.dirs))) return openSandbox(opts);
    const conn = engine.idle.pop() ?? (await engine.instance.connect());
    let done = false;
    return {
      conn,
      close: async (o) => {
        if (done) return;
        done = true;
        if (o?.reuse && !this.closed && engine.idle.length < MAX_IDLE) engine.idle.push(conn);
        else conn.closeSync();
      },
    };
  }

  private engine(account: AccountConfig): Promise<Engine> {
    // Keyed by the grants too, so an account whose grants differ never reuses a wider instance.
    const key = JSON.stringify([account.id, account.buckets ?? null, account.hdfsPaths ?? null]);
    let e = this.engines.get(key);
    if (!e) {
      e = this.create(account);
      // A failed creation is retried by the next run rather than cached.
      e.catch(() => this.engines.delete(key));
      this.engines.set(key, e);
    }
    return e;
  }

  private async create(account: AccountConfig): Promise<Engine> {
    const dirs = accountDirs(this.config, account, this.outputRoot);
    const tempDir = path.join(this.tmpDir, `engine-${randomUUID()}`);
    let instance: DuckDBInstance;
    try {
      instance = await openLockedInstance({ memoryLimit: this.memoryLimit, threads: this.threads, tempDir, allowedDirectories: dirs });
    } catch (err) {
      await rm(tempDir, { recursive: true, force: true });
      throw err;
    }
    return { instance, dirs, tempDir, idle: [] };
  }

  /** Closes every instance (runs must have ended) and removes their spill folders. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.engines.values()];
    this.engines.clear();
    for (const p of all) {
      const e = await p.catch(() => undefined);
      if (!e) continue;
      for (const c of e.idle.splice(0)) c.closeSync();
      e.instance.closeSync();
      await rm(e.tempDir, { recursive: true, force: true });
    }
  }
}
