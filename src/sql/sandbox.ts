/**
 * The one way this server opens a DuckDB instance that runs user SQL or
 * writes files: extensions never installed or loaded, no file or network
 * access outside the given paths, UTC, and the configuration locked so SQL
 * cannot SET any of it back. Used by the transform engine, offline runs and
 * the kodo parquet writer.
 */
import { mkdir } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { quoteLiteral } from './types.ts';

export interface LockedInstanceOptions {
  /** memory_limit, e.g. '1GB'. */
  memoryLimit: string;
  threads: number;
  /** Where DuckDB may spill (created when missing); '' = nothing spills and memory_limit is hard. */
  tempDir: string;
  /** Single files the SQL may read. */
  allowedPaths?: readonly string[];
  /** Directories the SQL may read and write below. */
  allowedDirectories?: readonly string[];
}

const list = (xs: readonly string[]): string => `[${xs.map(quoteLiteral).join(', ')}]`;

/** Opens a sandboxed, configuration-locked in-memory instance. */
export async function openLockedInstance(opts: LockedInstanceOptions): Promise<DuckDBInstance> {
  // DuckDB creates only the last level of temp_directory when it first spills.
  if (opts.tempDir) await mkdir(opts.tempDir, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    allow_community_extensions: 'false',
    allow_unsigned_extensions: 'false',
    memory_limit: opts.memoryLimit,
    threads: String(opts.threads),
  });
  const setup = await instance.connect();
  try {
    // Paths first: DuckDB refuses to change them once external access is off.
    await setup.run(`SET temp_directory = ${quoteLiteral(opts.tempDir)}`);
    await setup.run(`SET allowed_paths = ${list(opts.allowedPaths ?? [])}`);
    await setup.run(`SET allowed_directories = ${list((opts.allowedDirectories ?? []).map((d) => (d.endsWith('/') ? d : d + '/')))}`);
    await setup.run('SET enable_external_access = false');
    // TimeZone exists only once ICU is loaded, so it cannot go in the config map;
    // UTC makes TIMESTAMPTZ casts and now() independent of the host.
    await setup.run("SET GLOBAL TimeZone = 'UTC'");
    await setup.run('SET lock_configuration = true');
  } catch (err) {
    setup.closeSync();
    instance.closeSync();
    throw err;
  }
  setup.closeSync();
  return instance;
}
