import { ApiError } from '../errors.ts';
import type { Row } from './convert.ts';
import type { RepoFile } from './repo-file.ts';

/** What a `POST .../data` answers (official-extensions 3.3). */
export interface IngestResult {
  success: number;
  failed: number;
  total: number;
}

/**
 * A `POST /v5/repos/<repo>/data` body on the writer thread: parsed, converted
 * against the file's schema and inserted in one transaction. Parsing here
 * rather than on the event loop keeps a 20,000-log body (~5 MB) from
 * holding the server for ~150 ms before the write even starts. A log that
 * does not fit the schema fails the whole batch (E8104, nothing written)
 * unless `omit` is set, which skips such logs.
 */
export function ingestText(repo: RepoFile, text: string, omit: boolean, now: number): IngestResult {
  let docs: unknown;
  try {
    docs = JSON.parse(text);
  } catch (err) {
    throw new ApiError('E8116', `body is not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(docs)) throw new ApiError('E8116', 'body must be a JSON array of logs');
  const rows = repo.convert(docs);
  const good: Row[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if ('error' in r) {
      if (!omit) throw new ApiError('E8104', `log ${i}: ${r.error} (nothing was written; omitInvalidLog=true skips such logs)`);
    } else good.push(r);
  }
  if (good.length > 0) repo.insert(good, now);
  return { success: good.length, failed: docs.length - good.length, total: docs.length };
}
