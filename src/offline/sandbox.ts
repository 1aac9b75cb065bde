/**
 * A DuckDB instance per job run (and per schema inference): it may read
 * exactly the files the run matched and write only below its staging
 * folders. enable_external_access=false with allowed_paths /
 * allowed_directories is DuckDB's own file sandbox; lock_configuration keeps
 * user SQL from changing it back. No extensions are installed or loaded, so
 * there is no network access. Memory and threads are the run's own.
 */
import { rm } from 'node:fs/promises';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { openLockedInstance } from '../sql/sandbox.ts';

export interface SandboxOptions {
  memoryLimit: string;
  threads: number;
  /** Spill folder, private to this sandbox and removed on close. */
  tempDir: string;
  /** Files the SQL may read. */
  readFiles: string[];
  /** Folders the SQL may read and write (staging of outputs). */
  dirs: string[];
}

export interface Sandbox {
  conn: DuckDBConnection;
  /**
   * Done with the connection. `reuse`: the run succeeded and left nothing
   * on the connection (no temp views or tables, no interrupt), so a warm
   * instance may hand it to the account's next run.
   */
  close(opts?: { reuse?: boolean }): Promise<void>;
}

/** Opens a sandboxed in-memory instance. */
export async function openSandbox(opts: SandboxOptions): Promise<Sandbox> {
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  try {
    instance = await openLockedInstance({ memoryLimit: opts.memoryLimit, threads: opts.threads, tempDir: opts.tempDir, allowedPaths: opts.readFiles, allowedDirectories: opts.dirs });
  } catch (err) {
    await rm(opts.tempDir, { recursive: true, force: true });
    throw err;
  }
  try {
    conn = await instance.connect();
  } catch (err) {
    instance.closeSync();
    await rm(opts.tempDir, { recursive: true, force: true });
    throw err;
  }
  const c = conn;
  let closed = false;
  return {
    conn: c,
    close: async () => {
      if (closed) return;
      closed = true;
      c.closeSync();
      instance.closeSync();
      await rm(opts.tempDir, { recursive: true, force: true });
    },
  };
}
