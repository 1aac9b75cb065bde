import { createHmac, timingSafeEqual } from 'node:crypto';

/** The parts of a request that the Pandora signature covers. */
export interface SignedRequest {
  method: string;
  /** URL path only; the query string is not signed. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

function header(h: SignedRequest['headers'], name: string): string {
  const v = h[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** Base64url with padding, as the official clients produce it. */
export function base64url(buf: Buffer): string {
  return buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/**
 * StringToSign = METHOD \n Content-MD5 \n Content-Type \n Date \n X-Qiniu-* headers + path.
 * X-Qiniu-* headers are sorted by name and rendered `\n<lowercase name>:<value>`.
 */
export function stringToSign(req: SignedRequest): string {
  const h = req.headers;
  const qiniu = Object.keys(h)
    .filter((k) => k.toLowerCase().startsWith('x-qiniu-'))
    .map((k) => k.toLowerCase())
    .sort()
    .map((k) => `\n${k}:${header(h, k)}`)
    .join('');
  return `${req.method.toUpperCase()}\n${header(h, 'content-md5')}\n${header(h, 'content-type')}\n${header(h, 'date')}\n${qiniu}${req.path}`;
}

/** Computes `SIGN` for a request with secret key `sk`. */
export function sign(sk: string, req: SignedRequest): string {
  return base64url(createHmac('sha1', sk).update(stringToSign(req)).digest());
}

/** Builds the full Authorization header value `Pandora AK:SIGN`. */
export function authorization(ak: string, sk: string, req: SignedRequest): string {
  return `Pandora ${ak}:${sign(sk, req)}`;
}

/** Token description signed for browser/device tokens. */
export interface TokenDesc {
  resource: string;
  expires: number;
  contentMD5?: string;
  contentType?: string;
  headers?: string;
  method: string;
}

/** Makes a token `AK:SIGN:DESC` valid for one method and resource until `expires` (unix seconds). */
export function makeToken(ak: string, sk: string, desc: TokenDesc): string {
  const d = base64url(Buffer.from(JSON.stringify(desc)));
  const s = base64url(createHmac('sha1', sk).update(d).digest());
  return `Pandora ${ak}:${s}:${d}`;
}

/** Constant-time comparison of two signatures. */
export function sameSignature(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Signature of a token's DESC part. */
export function signDesc(sk: string, desc: string): string {
  return base64url(createHmac('sha1', sk).update(desc).digest());
}
