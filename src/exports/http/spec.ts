import { ApiError } from '../../errors.ts';
import { OutboundDeniedError, OutboundPolicy } from '../shared/outbound.ts';

/** A validated http export spec. */
export interface HttpSpec {
  /** Target URL: host (scheme optional, http by default) + uri. */
  url: URL;
  format: 'text' | 'json';
}

/**
 * Reads an http spec: `host` (required; `127.0.0.1:7758`, `https://a.b`),
 * `uri` (path, a leading `/` added when missing), `format` `text` (default)
 * | `json`. E18303 naming the field and why.
 */
export function parseHttpSpec(spec: Record<string, unknown>): HttpSpec {
  const host = spec.host;
  if (typeof host !== 'string' || host.trim() === '') throw new ApiError('E18303', 'host is required: the receiver\'s address, e.g. "127.0.0.1:7758" or "https://logs.example.com"');
  const uri = spec.uri ?? '';
  if (typeof uri !== 'string') throw new ApiError('E18303', 'uri must be a path such as "/ingest"');
  if (/\s/.test(uri) || uri.includes('#')) throw new ApiError('E18303', `uri "${uri.slice(0, 80)}" must be a path without spaces or "#"`);
  const format = spec.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new ApiError('E18303', `format must be "text" or "json", got ${JSON.stringify(format)?.slice(0, 40)}`);
  const base = /^[a-z][a-z0-9+.-]*:\/\//i.test(host.trim()) ? host.trim() : `http://${host.trim()}`;
  let url: URL;
  try {
    url = new URL(base.replace(/\/+$/, '') + (uri === '' || uri.startsWith('/') ? uri : `/${uri}`));
  } catch {
    throw new ApiError('E18303', `host "${host.slice(0, 80)}" with uri "${uri.slice(0, 80)}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ApiError('E18303', `host must use http or https, got ${url.protocol}`);
  if (url.username || url.password) throw new ApiError('E18303', 'host must not carry a user name or password');
  return { url, format };
}

/** Create-time check of the target against the outbound policy (literal IPs; names are checked on every connect). */
export function checkTarget(url: URL, policy: OutboundPolicy): void {
  try {
    policy.checkHost(url.hostname);
  } catch (err) {
    if (err instanceof OutboundDeniedError) throw new ApiError('E18303', `host: ${err.message}`);
    throw err;
  }
}
