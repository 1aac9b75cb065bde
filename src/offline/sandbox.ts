/**
 * A DuckDB instance per job run (and per schema inference): it may read
 * exactly the files the run matched and write only below its staging
 * folders. enable_external_access=false with allowed_paths /
 * allowed_directories is DuckDB's own file sandbox; lock_configuration keeps
 * user SQL from changing it back. No extensions are installed or loaded, so
 * there is no network access. Memory and threads are the run's own.
 */
import { mkdir, rm } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { quoteLiteral } from '../sql/types.ts';

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
  close(): Promise<void>;
}

const list = (xs: string[]): string => `[${xs.map(quoteLiteral).join(', ')}]`;

/** Opens a sandboxed in-memory instance. */
export async function openSandbox(opts: SandboxOptions): Promise<Sandbox> {
  await mkdir(opts.tempDir, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    allow_community_extensions: 'false',
    allow_unsigned_extensions: 'false',
    memory_limit: opts.memoryLimit,
    threads: String(opts.threads),
  });
  let conn: DuckDBConnection | undefined;
  try {
    conn = await instance.connect();
    // Paths first: DuckDB refuses to change them once external access is off.
    await conn.run(`SET temp_directory = ${quoteLiteral(opts.tempDir)}`);
    await conn.run(`SET allowed_paths = ${list(opts.readFiles)}`);
    await conn.run(`SET allowed_directories = ${list(opts.dirs.map((d) => (d.endsWith('/') ? d : d + '/')))}`);
    await conn.run('SET enable_external_access = false');
    await conn.run("SET TimeZone = 'UTC'");
    await conn.run('SET lock_configuration = true');
  } catch (err) {
    conn?.closeSync();
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
