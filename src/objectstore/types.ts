/**
 * The object store behind kodo exports, kodo datasources and job exports:
 * flat namespaces of buckets holding objects addressed by key. Two
 * implementations pass the same contract: local directories (bucket B =
 * folder B under PIPELINE_BUCKETS_DIR) and an S3-compatible endpoint.
 * See docs/decisions/013-kodo-export-and-object-store.md.
 */
import type { Readable } from 'node:stream';

/** One stored object as listed. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** Last modification time, ms since epoch. */
  modified: number;
}

export interface ObjectStore {
  /** Which implementation answers: 'local' or 's3'. */
  readonly kind: 'local' | 's3';
  /** Stores `data` under `key`, atomically: readers see the old object, none, or all of the new one. */
  put(bucket: string, key: string, data: Uint8Array | string): Promise<void>;
  /**
   * Stores the contents of the local file `file` under `key`, atomically
   * (large files upload in parts). With `move` the store may take the file
   * itself (a rename on the same file system) instead of copying it; the
   * caller then must not use it any more, and removes it only if it is still there.
   */
  putFile(bucket: string, key: string, file: string, opts?: { move?: boolean }): Promise<void>;
  /** Streams an object; throws NoSuchKeyError when absent. */
  get(bucket: string, key: string): Promise<Readable>;
  /** Objects whose key starts with `prefix`, in byte order of their keys (as S3 lists them). */
  list(bucket: string, prefix?: string): AsyncIterable<ObjectInfo>;
  /** Deletes objects; absent keys are ignored. */
  delete(bucket: string, keys: readonly string[]): Promise<void>;
  /** Whether the bucket exists (a local bucket is created by its first put). */
  bucketExists(bucket: string): Promise<boolean>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/** A key or bucket name the store refuses (escapes its bucket, bad characters, too long). */
export class InvalidObjectKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidObjectKeyError';
  }
}

/** The object does not exist. */
export class NoSuchKeyError extends Error {
  constructor(readonly bucket: string, readonly key: string) {
    super(`object "${key}" does not exist in bucket "${bucket}"`);
    this.name = 'NoSuchKeyError';
  }
}

/** The bucket does not exist (S3; a local bucket is created by its first put). */
export class NoSuchBucketError extends Error {
  constructor(readonly bucket: string) {
    super(`bucket "${bucket}" does not exist`);
    this.name = 'NoSuchBucketError';
  }
}
