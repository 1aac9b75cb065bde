import type { AccountConfig } from '../config.ts';
import { AuthError } from '../errors.ts';
import type { Accounts } from './accounts.ts';
import { sameSignature, sign, signDesc, type SignedRequest, type TokenDesc } from './signature.ts';

export interface VerifyOptions {
  clockSkewMs: number;
  now?: number;
}

/**
 * Authenticates a request by its `Authorization: Pandora AK:SIGN` signature or
 * `Pandora AK:SIGN:DESC` token. Returns the account or throws AuthError.
 */
export function verifyRequest(accounts: Accounts, req: SignedRequest, opts: VerifyOptions): AccountConfig {
  const raw = req.headers.authorization;
  const auth = Array.isArray(raw) ? raw[0] : raw;
  if (!auth) throw new AuthError('missing Authorization header');
  const m = /^Pandora ([^:\s]+):([^:\s]+)(?::([^:\s]+))?$/.exec(auth.trim());
  if (!m) throw new AuthError('malformed Authorization header, expected "Pandora <AK>:<SIGN>"');
  const [, ak = '', signature = '', desc] = m;
  const account = accounts.get(ak);
  if (!account) throw new AuthError('unknown access key');
  const now = opts.now ?? Date.now();
  if (desc !== undefined) return verifyToken(account, req, signature, desc, now);
  if (!sameSignature(signature, sign(account.secretKey, req))) throw new AuthError('signature does not match');
  const dateRaw = req.headers.date;
  const date = Array.isArray(dateRaw) ? dateRaw[0] : dateRaw;
  if (date) {
    const t = Date.parse(date);
    if (Number.isNaN(t)) throw new AuthError('unreadable Date header');
    if (Math.abs(now - t) > opts.clockSkewMs) throw new AuthError('request Date is outside the allowed clock skew');
  }
  return account;
}

function verifyToken(account: AccountConfig, req: SignedRequest, signature: string, desc: string, now: number): AccountConfig {
  if (!sameSignature(signature, signDesc(account.secretKey, desc))) throw new AuthError('bad token');
  let d: Partial<TokenDesc>;
  try {
    d = JSON.parse(Buffer.from(desc, 'base64url').toString('utf8')) as Partial<TokenDesc>;
  } catch {
    throw new AuthError('bad token: unreadable description');
  }
  if (typeof d.expires !== 'number' || d.expires * 1000 < now) throw new AuthError('token expired');
  if (typeof d.method !== 'string' || d.method.toUpperCase() !== req.method.toUpperCase()) {
    throw new AuthError('token is not valid for this method');
  }
  const resource = typeof d.resource === 'string' ? d.resource.split('?')[0] : undefined;
  if (resource !== req.path) throw new AuthError('token is not valid for this resource');
  return account;
}
