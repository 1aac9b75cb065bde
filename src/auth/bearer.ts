import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthError } from '../errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Checks `Authorization: Bearer <token>` against the configured token in
 * constant time (both sides are hashed first, so neither the content nor the
 * length of the token leaks through timing). Throws AuthError otherwise.
 */
export function verifyBearer(header: string | string[] | undefined, token: string): void {
  const auth = Array.isArray(header) ? header[0] : header;
  if (!auth) throw new AuthError('missing Authorization header');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m) throw new AuthError('malformed Authorization header, expected "Bearer <token>"');
  if (!timingSafeEqual(digest(m[1] ?? ''), digest(token))) throw new AuthError('wrong metrics token');
}
