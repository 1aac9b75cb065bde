/**
 * Buckets in an S3-compatible store (PIPELINE_S3_ENDPOINT) through the
 * official client, so a real S3, MinIO or Ceph endpoint works unchanged.
 * A PUT is atomic on S3 by definition; files larger than one part go up as
 * a multipart upload (lib-storage), which S3 also publishes atomically on
 * completion.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config.ts';
import { checkObjectName } from './keys.ts';
import { NoSuchBucketError, NoSuchKeyError, type ObjectInfo, type ObjectStore } from './types.ts';

/** Part size of multipart uploads; files up to this size go up in one PUT. */
const PART_BYTES = 16 * 1024 * 1024;

const status = (err: unknown): number | undefined => (err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined);
const named = (err: unknown, ...names: string[]): boolean => err instanceof Error && names.includes(err.name);

export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  private readonly client: S3Client;

  constructor(s3: Config['s3']) {
    this.client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: s3.pathStyle,
      credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
      // Self-hosted S3 servers often lack the newer flexible checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(bucket: string, key: string, data: Uint8Array | string): Promise<void> {
    checkObjectName(bucket, key);
    await this.send(bucket, key, () => this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data })));
  }

  async putFile(bucket: string, key: string, file: string, _opts?: { move?: boolean }): Promise<void> {
    checkObjectName(bucket, key);
    const { size } = await stat(file);
    if (size <= PART_BYTES) {
      await this.send(bucket, key, () => this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(file), ContentLength: size })));
      return;
    }
    const upload = new Upload({ client: this.client, params: { Bucket: bucket, Key: key, Body: createReadStream(file) }, partSize: PART_BYTES, queueSize: 2, leavePartsOnError: false });
    await this.send(bucket, key, () => upload.done());
  }

  async get(bucket: string, key: string): Promise<Readable> {
    checkObjectName(bucket, key);
    const out = await this.send(bucket, key, () => this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
    return out.Body as Readable;
  }

  async *list(bucket: string, prefix = ''): AsyncIterable<ObjectInfo> {
    checkObjectName(bucket);
    let token: string | undefined;
    do {
      const page = await this.send(bucket, undefined, () => this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token })));
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0, modified: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(bucket: string, keys: readonly string[]): Promise<void> {
    checkObjectName(bucket);
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      const out = await this.send(bucket, undefined, () => this.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: chunk, Quiet: true } })));
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`deleting ${failed.length} objects from bucket "${bucket}" failed: ${failed[0]?.Code} ${failed[0]?.Message ?? ''}`);
    }
  }

  async bucketExists(bucket: string): Promise<boolean> {
    checkObjectName(bucket);
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (status(err) === 404 || named(err, 'NotFound', 'NoSuchBucket')) return false;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Runs a request, turning S3's not-found answers into the store's error classes. */
  private async send<T>(bucket: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (named(err, 'NoSuchBucket')) throw new NoSuchBucketError(bucket);
      if (key !== undefined && (named(err, 'NoSuchKey', 'NotFound') || status(err) === 404)) throw new NoSuchKeyError(bucket, key);
      throw err;
    }
  }
}
