import { compileSchema, encodePoint } from '../../ingest/points.ts';
import type { SchemaField } from '../../ingest/types.ts';
import { repoEscapeMode, type RepoService } from '../../services/repos.ts';
import type { MetaStore, RepoRow } from '../../storage/meta.ts';

/** Fields of a dead-letter repo: an ordinary typed repo users query and replay from. */
export const DEAD_LETTER_SCHEMA: SchemaField[] = [
  { key: 'record', valtype: 'string', required: true },
  { key: 'error', valtype: 'string', required: true },
  { key: 'export', valtype: 'string', required: true },
  { key: 'offset', valtype: 'long', required: true },
  { key: 'time', valtype: 'date', required: true },
];
const COMPILED = compileSchema(DEAD_LETTER_SCHEMA);

/**
 * Why an existing repo cannot hold dead letters (a dead-letter field missing or of
 * another type, a required field dead letters do not have, written by a transform, or
 * an escape mode other than the reference's), or undefined when it can.
 */
export function deadLetterMisfit(repo: RepoRow): string | undefined {
  for (const f of DEAD_LETTER_SCHEMA) {
    const have = repo.schema.find((s) => s.key === f.key);
    if (!have || have.valtype !== f.valtype) {
      return `repo ${repo.name} has no dead-letter field "${f.key}" (${f.valtype}); dead-letter repos have ${DEAD_LETTER_SCHEMA.map((d) => `${d.key}:${d.valtype}`).join(', ')}`;
    }
  }
  const extra = repo.schema.find((s) => s.required && !DEAD_LETTER_SCHEMA.some((d) => d.key === s.key));
  if (extra) return `repo ${repo.name} requires field "${extra.key}", which dead letters do not have`;
  if (repo.derivedFrom) return `repo ${repo.name} is written by transform ${repo.derivedFrom}`;
  // Dead letters are written with the reference escapes: a repo created with options.unescapeLine
  // would read their backslashes (and, unescapeLine false, their TABs) back as other text.
  if (repoEscapeMode(repo) !== 'reference') return `repo ${repo.name} was created with options.unescapeLine, which would alter the records' backslashes and TABs on read`;
  return undefined;
}

export interface DeadLetter {
  /** Source offset. */
  offset: number;
  /** The stored wire line of the record. */
  record: string;
  error: string;
}

/**
 * Appends dead letters to the export's dead-letter repo, creating it (in the
 * source repo's region and group) on first use. Resolves once they are
 * durable, so the engine may then commit past them.
 */
export async function writeDeadLetters(
  deps: { meta: MetaStore; repos: RepoService },
  account: string,
  source: RepoRow,
  exportName: string,
  repoName: string,
  letters: readonly DeadLetter[],
  now: number,
): Promise<void> {
  if (letters.length === 0) return;
  let repo = deps.meta.getRepo(account, repoName);
  if (!repo) {
    try {
      repo = deps.repos.create(account, repoName, { region: source.region, group: source.group, schema: DEAD_LETTER_SCHEMA });
    } catch (err) {
      repo = deps.meta.getRepo(account, repoName); // created meanwhile by another export
      if (!repo) throw err;
    }
  }
  const misfit = deadLetterMisfit(repo);
  if (misfit) throw new Error(`cannot write dead letters: ${misfit}`);
  const time = new Date(now).toISOString();
  const lines = letters.map((l) => encodePoint({ record: l.record, error: l.error.slice(0, 4096), export: exportName, offset: l.offset, time }, COMPILED));
  const log = await deps.repos.log(account, repo);
  await log.append(lines);
  for (const fn of deps.repos.appended) fn(account, repoName);
}
