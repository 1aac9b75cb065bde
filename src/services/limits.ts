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
/**
 * Largest JSON encoding of a whole spec body stored as sent (an export's,
 * a job's, a datasource's, a variable's, a log repo's): larger than
 * MAX_STORED_BYTES because a job's SQL or an export's field map may be long.
 */
export const MAX_SPEC_BYTES = 1024 * 1024;

/** Whether `v` nests objects or arrays deeper than `limit`; counts only up to `limit + 1`, so a hostile value costs no more than that. */
export function depthOver(v: unknown, limit: number, depth = 0): boolean {
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
export function checkStoredFields(fields: Record<string, unknown>, maxBytes = MAX_STORED_BYTES): void {
  for (const [key, value] of Object.entries(fields)) {
    if (depthOver(value, MAX_STORED_DEPTH)) {
      throw new ApiError('E18136', `"${key}" nests objects or arrays deeper than ${MAX_STORED_DEPTH} levels`);
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(fields));
  if (bytes > maxBytes) {
    const names = Object.keys(fields);
    const what = names.length > 8 ? `${names.length} fields` : names.join(', ');
    throw new ApiError('E18136', `${what} take ${bytes} bytes of JSON together, more than ${maxBytes}`);
  }
}

/**
 * Checks a whole spec body that is stored as sent: every top-level field at
 * most MAX_STORED_DEPTH deep, the body at most MAX_SPEC_BYTES of JSON.
 * Called before anything is stored, so a refused body leaves no trace.
 */
export function checkSpecBody(body: Record<string, unknown>): Record<string, unknown> {
  checkStoredFields(body, MAX_SPEC_BYTES);
  return body;
}
