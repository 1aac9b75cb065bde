/**
 * The object store for a server's config, and the per-account bucket grants
 * (AccountConfig.buckets). Every user of buckets (kodo exports, kodo
 * datasources, job exports) goes through here.
 */
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { bucketProblem } from './keys.ts';
import { LocalObjectStore } from './local.ts';
import { S3ObjectStore } from './s3.ts';
import type { ObjectStore } from './types.ts';

export * from './types.ts';
export { bucketProblem, keyProblem, TEMP_PREFIX } from './keys.ts';

const stores = new WeakMap<Config, ObjectStore>();

/**
 * The store for `config`: S3 when `s3.endpoint` is set, else local folders
 * under `bucketsDir`. One instance per (frozen) config, shared by its users;
 * it holds no resources beyond the S3 client's sockets, which do not keep
 * the process alive.
 */
export function objectStoreFor(config: Config): ObjectStore {
  let store = stores.get(config);
  if (!store) {
    store = config.s3.endpoint ? new S3ObjectStore(config.s3) : new LocalObjectStore(config.bucketsDir);
    stores.set(config, store);
  }
  return store;
}

/** Why `account` may not use `bucket` (bad name, or not among its grants), or undefined. */
export function bucketRefusal(config: Config, account: string, bucket: string): string | undefined {
  const bad = bucketProblem(bucket);
  if (bad) return bad;
  const grants = config.accounts.find((a) => a.id === account)?.buckets;
  if (grants && !grants.includes(bucket)) {
    return `bucket "${bucket}" is not one of the buckets this account may use (${grants.length === 0 ? 'none are granted' : grants.join(', ')})`;
  }
  return undefined;
}

/**
 * Checks that `account` may use `bucket` and that it exists where buckets
 * must exist beforehand (S3): ApiError E18305 for a bad name, E18323 for a
 * bucket outside the account's grants or missing on S3.
 */
export async function checkBucket(config: Config, account: string, bucket: string): Promise<void> {
  const bad = bucketProblem(bucket);
  if (bad) throw new ApiError('E18305', bad);
  const refused = bucketRefusal(config, account, bucket);
  if (refused) throw new ApiError('E18323', refused);
  const store = objectStoreFor(config);
  if (store.kind === 's3' && !(await store.bucketExists(bucket))) {
    throw new ApiError('E18323', `bucket "${bucket}" does not exist at the S3 endpoint ${config.s3.endpoint}`);
  }
}
