import { ApiError } from '../../errors.ts';
import type { RepoRow } from '../../storage/meta.ts';
import { deadLetterMisfit } from './deadletter.ts';

const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;

/** Spec fields every export kind understands; the engine reads them, sinks ignore them. */
export interface CommonSpec {
  /** Drop records the sink can never take (counted) instead of dead-lettering them. */
  omitInvalid: boolean;
  /** Repo receiving records the sink can never take. */
  deadLetterRepo: string;
}

/** The default dead-letter repo of an export. */
export const defaultDeadLetterRepo = (exportName: string): string => `${exportName}_deadletter`;

/** Reads the common fields of a stored spec (already validated). */
export function commonSpec(exportName: string, spec: Record<string, unknown>): CommonSpec {
  return {
    omitInvalid: spec.omitInvalid === true,
    deadLetterRepo: typeof spec.deadLetterRepo === 'string' && spec.deadLetterRepo !== '' ? spec.deadLetterRepo : defaultDeadLetterRepo(exportName),
  };
}

/**
 * Checks the common fields (E18303 naming the field): `omitInvalid` a
 * boolean; the dead-letter repo a valid name, not the source repo, and when
 * it exists, a repo with the dead-letter fields.
 */
export function checkCommonSpec(exportName: string, spec: Record<string, unknown>, source: RepoRow, existing: RepoRow | undefined): void {
  if (spec.omitInvalid !== undefined && typeof spec.omitInvalid !== 'boolean') {
    throw new ApiError('E18303', `omitInvalid must be true or false, got ${JSON.stringify(spec.omitInvalid)?.slice(0, 40)}`);
  }
  if (spec.deadLetterRepo !== undefined && spec.deadLetterRepo !== '' && typeof spec.deadLetterRepo !== 'string') {
    throw new ApiError('E18303', 'deadLetterRepo must be a repo name');
  }
  const { deadLetterRepo } = commonSpec(exportName, spec);
  if (!NAME_RE.test(deadLetterRepo)) {
    const why = spec.deadLetterRepo ? 'is not a valid repo name' : 'would be longer than 128 characters: set deadLetterRepo';
    throw new ApiError('E18303', `deadLetterRepo "${deadLetterRepo.slice(0, 64)}" ${why}`);
  }
  if (deadLetterRepo === source.name) throw new ApiError('E18303', 'deadLetterRepo must not be the exported repo itself');
  const misfit = existing && deadLetterMisfit(existing);
  if (misfit) throw new ApiError('E18303', `deadLetterRepo: ${misfit}; name a new repo or one with those fields`);
}
