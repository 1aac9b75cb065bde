/**
 * A log store writer thread: changes to repo files (create, schema update,
 * insert batch, retention delete, delete) run here, one at a time in the
 * order the main thread posted them, on this thread's own read-write
 * connection per file. writer.ts runs a few of them and gives each file's
 * jobs to one thread at a time.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ApiError } from '../errors.ts';
import { serveRequests, type WorkerReply } from './worker-serve.ts';
import type { Row } from './convert.ts';
import { ingestText, type IngestResult } from './ingest.ts';
import { RepoFile } from './repo-file.ts';
import type { RepoDef } from './repo.ts';

/**
 * A request to a writer thread. `cols` is the column signature the main thread converted against.
 * `close` (from writer.ts, when another thread takes the file) drops this thread's connection, so
 * that it never writes with a stale layout nor, after a delete, closes onto the old file's WAL.
 */
export type WriteRequest =
  | { id: number; kind: 'close'; file: string }
  | { id: number; kind: 'create'; file: string; def: RepoDef }
  | { id: number; kind: 'apply'; file: string; def: RepoDef }
  | { id: number; kind: 'insert'; file: string; cols: string; rows: Row[]; now: number; source?: { key: string; next: number } }
  | { id: number; kind: 'ingest'; file: string; text: string; omit: boolean; now: number }
  | { id: number; kind: 'next'; file: string; key: string }
  | { id: number; kind: 'expire'; file: string; cutoff: number }
  | { id: number; kind: 'delete'; file: string };

/** What each request answers: the column signature (create, apply), multi-valued paths (insert, ingest), a number. */
export type WriteValue = { cols: string } | { multi: string[] } | (IngestResult & { multi: string[] }) | number | null;

/** The writer's answer: the value, or the error (an ApiError keeps its code). */
export type WriteReply = WorkerReply<WriteValue>;

/** Open files, least recently used first; at most MAX_OPEN (file handles and page caches). */
const files = new Map<string, RepoFile>();
const MAX_OPEN = 64;

function keep(file: string, repo: RepoFile): RepoFile {
  if (files.size >= MAX_OPEN) {
    const [oldest, old] = files.entries().next().value as [string, RepoFile];
    old.close();
    files.delete(oldest);
  }
  files.set(file, repo);
  return repo;
}

function open(file: string): RepoFile {
  const hit = files.get(file);
  if (hit) {
    files.delete(file);
    return keep(file, hit);
  }
  // The main thread never posts a write for a repo it deleted; a missing file is one removed behind our back.
  if (!existsSync(file)) throw new ApiError('E8111', `log repo file ${path.basename(file)} does not exist`);
  return keep(file, new RepoFile(file));
}

function drop(file: string): void {
  files.get(file)?.close();
  files.delete(file);
}

function handle(m: WriteRequest): WriteValue {
  switch (m.kind) {
    case 'create': {
      if (existsSync(m.file)) throw new ApiError('E8112', `log repo "${m.def.name}" already exists`);
      mkdirSync(path.dirname(m.file), { recursive: true });
      try {
        return { cols: keep(m.file, new RepoFile(m.file, m.def)).signature };
      } catch (err) {
        drop(m.file);
        for (const suffix of ['', '-wal', '-shm']) rmSync(m.file + suffix, { force: true });
        throw err;
      }
    }
    case 'apply': {
      const repo = open(m.file);
      repo.apply(m.def);
      return { cols: repo.signature };
    }
    case 'insert': {
      const repo = open(m.file);
      if (repo.signature !== m.cols) {
        throw new Error(`the rows were converted for columns ${m.cols}, the file has ${repo.signature}`);
      }
      const before = repo.multi.length;
      repo.insert(m.rows, m.now, m.source);
      return { multi: repo.multi.length === before ? [] : [...repo.multi] };
    }
    case 'ingest': {
      // Converted here against the file's own schema: no column signature to compare.
      const repo = open(m.file);
      const before = repo.multi.length;
      const r = ingestText(repo, m.text, m.omit, m.now);
      return { ...r, multi: repo.multi.length === before ? [] : [...repo.multi] };
    }
    case 'next':
      return open(m.file).sourceNext(m.key);
    case 'expire':
      return open(m.file).expire(m.cutoff);
    case 'close':
      drop(m.file);
      return null;
    case 'delete':
      drop(m.file);
      for (const suffix of ['', '-wal', '-shm']) rmSync(m.file + suffix, { force: true });
      return null;
  }
}

serveRequests<WriteRequest, WriteValue>(handle);
