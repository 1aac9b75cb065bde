/** The repo log: public entry point. */
import { SegmentedLogStore } from './store.ts';
import type { LogOptions, LogStore } from './types.ts';

export type { AppendResult, FsyncPolicy, LogOptions, LogStore, ReadResult, RepoLog } from './types.ts';
export { InvalidLineError, InvalidLogKeyError, LogClosedError, LogCorruptError, LogFailedError } from './errors.ts';

/**
 * Creates the embedded segmented log store: one directory of segment files
 * per repo under `opts.dir`, frames of one append each, CRC-checked, with
 * crash recovery at open and retention by age and size.
 */
export function createLogStore(opts: LogOptions): LogStore {
  return new SegmentedLogStore(opts);
}
