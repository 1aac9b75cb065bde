/**
 * The error catalogue: every client-visible failure has its E-code, HTTP
 * status and default message here. Statuses follow the reference's table
 * (spec/pipeline-api-v2.zh.md); codes beyond it follow spec/error-codes.md.
 * docs/errors.md lists the same table; test/errors.test.ts checks both.
 */
export const ERRORS = {
  E18003: [411, 'missing content length'],
  E18004: [400, 'invalid content length'],
  E18005: [413, 'request entity too large'],
  E18006: [400, 'request entity is empty'],
  E18007: [400, 'invalid request entity'],
  E18008: [400, 'field value exceeds the size limit'],
  E18009: [507, 'server storage is full'],
  E18010: [400, 'invalid query parameter'],
  E18101: [409, 'repo already exists'],
  E18102: [404, 'repo does not exist'],
  E18103: [400, 'invalid repo name'],
  E18104: [400, 'invalid date format'],
  E18105: [400, 'repo schema is empty'],
  E18106: [400, 'invalid field name'],
  E18107: [400, 'unsupported field type'],
  E18108: [400, 'invalid timestamp type'],
  E18109: [400, 'invalid repo schema'],
  E18110: [400, 'invalid field format'],
  E18111: [404, 'field does not exist'],
  E18112: [400, 'repo still has transforms or exports attached'],
  E18113: [409, 'repo is being deleted'],
  E18117: [400, 'invalid plugin name'],
  E18120: [404, 'group does not exist'],
  E18122: [404, 'exported repo does not exist in the log store'],
  E18124: [202, 'repo is being created'],
  E18125: [400, 'cannot read the gzip request body'],
  E18128: [400, 'incompatible repo schema'],
  E18136: [400, 'stored field exceeds the depth or size limit'],
  E18138: [400, 'cannot decode tags'],
  E18201: [409, 'transform already exists'],
  E18202: [404, 'transform does not exist'],
  E18203: [415, 'unsupported transform type'],
  E18204: [409, 'transform source and destination repo are the same'],
  E18205: [409, 'destination repo is already written by another transform'],
  E18206: [400, 'a transform destination repo is deleted by deleting its transform'],
  E18207: [400, 'invalid transform spec'],
  E18208: [400, 'invalid transform interval'],
  E18209: [400, 'invalid transform SQL'],
  E18211: [400, 'invalid plugin output field type'],
  E18212: [400, 'region is not served by this server'],
  E18213: [400, 'invalid container type'],
  E18214: [400, 'invalid container count'],
  E18215: [409, 'group is in use'],
  E18216: [404, 'plugin does not exist'],
  E18217: [409, 'plugin already exists'],
  E18218: [409, 'group already exists'],
  E18219: [400, 'plugin content length mismatch'],
  E18220: [400, 'plugin content MD5 mismatch'],
  E18221: [400, 'invalid group name'],
  E18222: [400, 'group region does not match'],
  E18223: [400, 'cannot push data into a transform destination repo'],
  E18229: [400, 'destination repo schema does not accept the transform output'],
  E18301: [409, 'export already exists'],
  E18302: [404, 'export does not exist'],
  E18303: [400, 'cannot submit export'],
  E18304: [400, 'cannot delete export'],
  E18305: [400, 'invalid export spec'],
  E18617: [400, 'invalid transform plugin'],
  E18660: [400, 'invalid transform update'],
  E18665: [403, 'access denied'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERRORS;

/** A client-visible failure. Rendered as `{"error":"<code>: <message>"}`. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const [status, text] = ERRORS[code];
    super(detail ? `${text}: ${detail}` : text, options);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
  /** The wire body's `error` string. */
  get wire(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Authentication failure: 401 with `{"error":"unauthorized: <reason>"}`. */
export class AuthError extends Error {
  readonly status = 401;
  constructor(reason: string) {
    super(reason);
    this.name = 'AuthError';
  }
  get wire(): string {
    return `unauthorized: ${this.message}`;
  }
}
