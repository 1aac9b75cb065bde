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
  E18323: [404, 'no such bucket'],
  E18600: [400, 'invalid datasource name'],
  E18601: [409, 'datasource already exists'],
  E18602: [404, 'datasource does not exist'],
  E18603: [400, 'datasource is still used by jobs'],
  E18604: [400, 'invalid job name'],
  E18605: [409, 'job already exists'],
  E18606: [404, 'job does not exist'],
  E18608: [400, 'job is still used by other jobs or job exports'],
  E18609: [400, 'invalid job export name'],
  E18610: [409, 'job export already exists'],
  E18611: [404, 'job export does not exist'],
  E18612: [404, 'job source does not exist'],
  E18613: [400, 'duplicate table name'],
  E18614: [400, 'invalid offline spec'],
  E18615: [400, 'schema does not match the files'],
  E18617: [400, 'invalid transform plugin'],
  E18618: [400, 'invalid job SQL'],
  E18619: [404, 'bucket does not exist'],
  E18620: [400, 'no files match'],
  E18621: [400, 'cannot start job'],
  E18622: [400, 'cannot stop job'],
  E18623: [400, 'files cannot be read as the file type'],
  E18624: [404, 'job run does not exist'],
  E18625: [400, 'batch cannot be rerun'],
  E18626: [400, 'batch cannot be stopped in its status'],
  E18638: [400, 'illegal character in path'],
  E18649: [400, 'batch status does not allow a rerun'],
  E18651: [400, 'invalid job export spec'],
  E18654: [404, 'variable does not exist'],
  E18655: [409, 'variable already exists'],
  E18656: [400, 'same name as a system variable'],
  E18657: [400, 'undefined variable'],
  E18658: [400, 'invalid time variable'],
  E18660: [400, 'invalid transform update'],
  E18662: [400, 'batch is restarting or cancelling'],
  E18665: [403, 'access denied'],
  E18666: [400, 'matched objects exceed the offline fetch limit'],
  // LogDB v5 (official-extensions 3 and 6); the Go SDK reads the first 5 characters as the code.
  E8001: [400, 'invalid arguments'],
  E8004: [500, 'log store internal error'],
  E8101: [400, 'log repo name is missing'],
  E8102: [400, 'log repo retention is missing'],
  E8103: [400, 'log repo region is missing'],
  E8104: [400, 'pushed logs do not match the log repo schema'],
  E8105: [400, 'invalid log repo name'],
  E8106: [400, 'invalid log repo retention'],
  E8107: [400, 'invalid log repo region'],
  E8108: [400, 'invalid log repo schema'],
  E8111: [404, 'log repo does not exist'],
  E8112: [409, 'log repo already exists'],
  E8113: [400, 'too many requests, retry later'],
  E8114: [413, 'log request entity too large'],
  E8115: [400, 'log request entity is empty'],
  E8116: [400, 'malformed log request entity'],
  E8201: [400, 'invalid search argument'],
  E8202: [400, 'invalid query string'],
  E8203: [400, 'invalid from'],
  E8204: [400, 'invalid size'],
  E8205: [400, 'invalid sort'],
  E8206: [400, 'time range (from, to) is missing'],
  E8207: [400, 'invalid end time'],
  E8208: [400, 'end time is not after start time'],
  E8209: [400, 'histogram field is missing or not a date field'],
  E8210: [400, 'query exceeded the time limit'],
  E8211: [404, 'scroll id does not exist or expired'],
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
