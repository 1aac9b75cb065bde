/**
 * Writing one job export of a run: DuckDB COPY into a hidden staging folder
 * next to the target (same file system), then publish by rename, so readers
 * of the target never see half a run's files. Partitioned output is hive
 * style (`key=value/`), written by COPY ... PARTITION_BY.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteLiteral } from '../sql/types.ts';
import type { JobExportSpec } from './exportspec.ts';
import { poolTurn } from '../sql/exec.ts';

/** Hidden folder of a bucket / the hdfs root where runs stage their output. */
export const STAGING = '.offline-staging';

const EXT: Record<JobExportSpec['format'], string> = { parquet: 'parquet', json: 'json', csv: 'csv', text: 'txt' };

export interface ExportTarget {
  /** The job export's name. */
  name: string;
  /** Bucket folder or hdfs root. */
  root: string;
  /** Expanded key (relative to root), without trailing '/'. */
  key: string;
  /** Whether the key is the output file itself (once/manual jobs, one file, no partitions). */
  singleFile: boolean;
  runId: number;
  /** How the target is shown in messages (kodo://bucket/key). */
  shown: string;
}

export interface ExportResult {
  files: number;
  rows: number;
  bytes: number;
  skipped?: string;
}

/** A staged export: written, waiting to be published or dropped. */
export class StagedExport {
  readonly staging: string;
  /** Where COPY writes: a folder inside staging (DuckDB's sandbox allows paths below an allowed folder, not the folder itself). */
  protected readonly out: string;
  result: ExportResult = { files: 0, rows: 0, bytes: 0 };

  constructor(readonly spec: JobExportSpec, readonly target: ExportTarget) {
    this.staging = path.join(target.root, STAGING, randomUUID());
    this.out = path.join(this.staging, 'out');
  }

  protected get targetPath(): string {
    return path.join(this.target.root, this.target.key);
  }

  /** Checks saveMode against an existing target before any work: errorIfExists fails, ignore skips. */
  async precheck(): Promise<'write' | 'skip'> {
    return this.decide(existsSync(this.targetPath) && (!lstatSync(this.targetPath).isDirectory() || readdirSync(this.targetPath).length > 0));
  }

  /** What saveMode says to do given whether the target already exists. */
  protected decide(exists: boolean): 'write' | 'skip' {
    if (!exists) return 'write';
    if (this.spec.saveMode === 'errorIfExists') throw new Error(`${this.target.shown} already exists (saveMode errorIfExists)`);
    if (this.spec.saveMode === 'ignore') {
      this.result = { files: 0, rows: 0, bytes: 0, skipped: 'target exists, saveMode ignore' };
      return 'skip';
    }
    return 'write';
  }

  /** COPY of `source` (a table name or a parenthesised query) into the staging folder. */
  async write(conn: DuckDBConnection, source: string): Promise<void> {
    const s = this.spec;
    await mkdir(this.out, { recursive: true });
    // text and json are written as one "line" column through the csv writer: DuckDB's own JSON
    // COPY refuses PARTITION_BY, and builds the same to_json(struct) lines (byte-equal, tested).
    const partCols = s.partitionBy.map((p) => `${quoteIdent(s.fields.find((f) => f.out === p)?.col ?? p)} AS ${quoteIdent(p)}, `).join('');
    const body = s.fields.filter((f) => !s.partitionBy.includes(f.out));
    let select: string;
    if (s.format === 'text') {
      // concat_ws skips NULL arguments, which would shift the later columns: a null is an empty field.
      select = `SELECT ${partCols}concat_ws(${quoteLiteral('\t')}, ${body.map((f) => `coalesce(CAST(${quoteIdent(f.col)} AS VARCHAR), '')`).join(', ')}) AS "line" FROM ${source}`;
    } else if (s.format === 'json') {
      select = `SELECT ${partCols}to_json(struct_pack(${body.map((f) => `${quoteIdent(f.out)} := ${quoteIdent(f.col)}`).join(', ')})) AS "line" FROM ${source}`;
    } else {
      select = `SELECT ${s.fields.map((f) => `${quoteIdent(f.col)} AS ${quoteIdent(f.out)}`).join(', ')} FROM ${source}`;
    }
    const parts = [...s.partitionBy];
    if (s.fileCount > 1) {
      // Numbered within each partition, so every partition gets fileCount files (or one per row when fewer).
      const over = s.partitionBy.length ? `PARTITION BY ${s.partitionBy.map(quoteIdent).join(', ')}` : '';
      select = `SELECT *, (row_number() OVER (${over}) - 1) % ${s.fileCount} AS "__file" FROM (${select})`;
      parts.push('__file');
    }
    const opts: string[] = [];
    switch (s.format) {
      case 'parquet': opts.push('FORMAT parquet', `COMPRESSION ${s.compression}`); break;
      case 'csv': opts.push('FORMAT csv', `DELIMITER ${quoteLiteral(s.delimiter)}`, `HEADER ${s.containsHeader}`, `COMPRESSION ${quoteLiteral(s.compression)}`); break;
      case 'json':
      case 'text': opts.push('FORMAT csv', 'HEADER false', "QUOTE ''", "ESCAPE ''", `DELIMITER ${quoteLiteral('\u0001')}`, `COMPRESSION ${quoteLiteral(s.compression)}`); break;
    }
    const ext = EXT[s.format] + (s.compression === 'gzip' && s.format !== 'parquet' ? '.gz' : '');
    let to: string;
    if (parts.length) {
      opts.push(`PARTITION_BY (${parts.map(quoteIdent).join(', ')})`, `FILENAME_PATTERN 'part-{i}'`, `FILE_EXTENSION ${quoteLiteral(ext)}`);
      to = this.out;
    } else {
      to = path.join(this.out, `part-00000.${ext}`);
    }
    const r = await poolTurn(() => conn.runAndReadAll(`COPY (${select}) TO ${quoteLiteral(to)} (${opts.join(', ')})`));
    const rows = Number(r.getRows()[0]?.[0] ?? 0);
    if (s.fileCount > 1) await flattenFileBuckets(this.out, ext);
    const { files, bytes } = await sizeOf(this.out);
    this.result = { files, rows, bytes };
  }

  /** Moves the staged files to the target: a rename of the whole folder (overwrite) or of each file (append). */
  async publish(): Promise<void> {
    const t = this.targetPath;
    await mkdir(path.dirname(t), { recursive: true });
    if (this.target.singleFile) {
      const only = (await listAll(this.out))[0];
      if (!only) return;
      let dest = t;
      if (this.spec.saveMode === 'append' && existsSync(t)) dest = `${t}.${this.target.runId}`;
      await rename(only, dest);
    } else if (this.spec.saveMode === 'append' && existsSync(t)) {
      for (const f of await listAll(this.out)) {
        const rel = path.relative(this.out, f);
        const dest = path.join(t, path.dirname(rel), `run${this.target.runId}-${path.basename(rel)}`);
        await mkdir(path.dirname(dest), { recursive: true });
        await rename(f, dest);
      }
    } else {
      // Overwrite: the old output is moved aside in one rename, the new one moved in with the next.
      let old: string | undefined;
      if (existsSync(t)) {
        old = path.join(this.target.root, STAGING, `old-${randomUUID()}`);
        await rename(t, old);
      }
      await rename(this.out, t);
      if (old) await rm(old, { recursive: true, force: true });
    }
    await rm(this.staging, { recursive: true, force: true });
  }

  /** Retention: removes output files below `prefix` older than `days`; the number removed. */
  retention(prefix: string, days: number, now: number): Promise<number> {
    return enforceRetention(this.target.root, prefix, days, now);
  }

  /** Drops the staged files (failed or cancelled run). */
  async abort(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
  }
}

/** Every file below `dir`. */
export async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  if (existsSync(dir)) await walk(dir);
  return out;
}

async function sizeOf(dir: string): Promise<{ files: number; bytes: number }> {
  const files = await listAll(dir);
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  return { files: files.length, bytes };
}

/** `…/__file=3/part-0.ext` -> `…/part-00003.ext`: fileCount buckets become files of their partition. */
async function flattenFileBuckets(dir: string, ext: string): Promise<void> {
  for (const f of await listAll(dir)) {
    const bucketDir = path.dirname(f);
    const m = /^__file=(\d+)$/.exec(path.basename(bucketDir));
    if (!m) continue;
    const n = Number(m[1]);
    const idx = Number(/part-(\d+)/.exec(path.basename(f))?.[1] ?? 0);
    const name = `part-${String(n).padStart(5, '0')}${idx ? `-${idx}` : ''}.${ext}`;
    await rename(f, path.join(path.dirname(bucketDir), name));
    await rmdir(bucketDir).catch(() => undefined);
  }
}

/**
 * Retention: removes files whose key starts with `prefix` and that are
 * older than `days` (by mtime), never following symlinks and never touching
 * staging folders.
 */
export async function enforceRetention(root: string, prefix: string, days: number, now: number): Promise<number> {
  if (days <= 0 || !prefix) return 0;
  const dir = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
  const base = path.join(root, dir);
  if (!existsSync(base)) return 0;
  // A symlink on the way would lead the clean-up out of the root.
  if (realpathSync.native(base) !== path.join(realpathSync.native(root), dir)) return 0;
  const cutoff = now - days * 86_400_000;
  let removed = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name === STAGING || e.isSymbolicLink()) continue;
      const p = path.join(d, e.name);
      const key = path.relative(root, p).split(path.sep).join('/');
      if (!key.startsWith(prefix) && !prefix.startsWith(key + '/')) continue;
      if (e.isDirectory()) {
        await walk(p);
        if ((await readdir(p)).length === 0) await rmdir(p).catch(() => undefined);
      } else if (e.isFile() && (await stat(p)).mtimeMs < cutoff) {
        await rm(p, { force: true });
        removed++;
      }
    }
  };
  await walk(base);
  return removed;
}
