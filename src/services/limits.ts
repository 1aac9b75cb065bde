/**
 * Limits of the fields a resource stores as sent (a repo's `options`,
 * `description`, `workflow`, `ruleNames`): they are written back in every GET
 * and list, so an unbounded one makes later reads slow or fail (a 3,000-deep
 * `options` once overflowed the JSON writer's stack).
 */
import { ApiError } from '../errors.ts';

/** Deepest nesting of objects and arrays inside one stored field. */
export const MAX_STORED_DEPTH = 32;
/** Largest JSON encoding of all stored fields of one resource together. */
export const MAX_STORED_BYTES = 64 * 1024;

/** Depth of `v`, counting only up to `limit + 1` so a hostile value costs no more than that. */
function depthOver(v: unknown, limit: number, depth = 0): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (depth + 1 > limit) return true;
  for (const child of Array.isArray(v) ? v : Object.values(v)) {
    if (depthOver(child, limit, depth + 1)) return true;
  }
  return false;
}

/**
 * Checks the stored-as-sent fields of one resource: each at most
 * MAX_STORED_DEPTH deep, all together at most MAX_STORED_BYTES of JSON.
 * Throws E18136 naming the field.
 */
export function checkStoredFields(fields: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(fields)) {
    if (depthOver(value, MAX_STORED_DEPTH)) {
      throw new ApiError('E18136', `"${key}" nests objects or arrays deeper than ${MAX_STORED_DEPTH} levels`);
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(fields));
  if (bytes > MAX_STORED_BYTES) {
    throw new ApiError('E18136', `${Object.keys(fields).join(', ')} take ${bytes} bytes of JSON together, more than ${MAX_STORED_BYTES}`);
  }
}
