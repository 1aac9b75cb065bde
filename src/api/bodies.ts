/**
 * Schemas of the routes added with exports, the v5 log store and offline
 * jobs (see schema.ts). Body schemas type only the fields whose wrong type
 * the route's errorCode already describes; everything else stays the
 * services' to check, with their precise codes.
 */
import { params, query, routeSchema, type JsonSchema } from './schema.ts';

const obj = (properties: Record<string, JsonSchema>): JsonSchema => ({ type: 'object', properties });
const str: JsonSchema = { type: 'string' };
const object: JsonSchema = { type: 'object' };
const array: JsonSchema = { type: 'array' };
const any = (description: string): JsonSchema => ({ description });

const exportBody = obj({ type: { ...str, description: 'sink type: http, kodo, logdb, mongo, tsdb, ...' }, whence: { type: 'string', enum: ['oldest', 'newest', ''] }, spec: { ...object, description: 'sink spec; unknown fields are stored as sent' } });
const repoExport = params({ repo: 'repo', name: 'export' });
const paging = { limit: 'entries per answer, 1..1000 (default 1000)', marker: 'the marker of the previous answer' };

/** Exports of a repo. */
export const exportSchemas = {
  one: routeSchema('E18305', { params: repoExport }),
  write: routeSchema('E18305', { params: repoExport, body: exportBody }),
  /** An update changes the spec only; type and whence in its body are ignored. */
  update: routeSchema('E18305', { params: repoExport, body: obj({ spec: exportBody.properties!.spec! }) }),
  preview: routeSchema('E18305', { params: repoExport, body: obj({ ...exportBody.properties, count: any('points to preview, 1..1000') }) }),
  list: routeSchema('E18010', { params: params({ repo: 'repo' }), querystring: query(paging) }),
};

const logRepo = params({ repo: 'log repo' });
const logRepoBody = obj({ region: str, retention: any('days kept, e.g. "30d"'), fullText: any('full-text index'), schema: { ...array, description: 'fields: {key, valtype, analyzer, primary, nested}' }, description: any('stored as sent') });
const search = { q: 'Lucene query', sort: 'field[:asc|desc]', from: 'offset', size: 'hits per answer', scroll: 'scroll keep-alive, e.g. 1m', highlight: 'true to highlight' };

/** v5 log store. */
export const logdbSchemas = {
  write: routeSchema('E8108', { params: logRepo, body: logRepoBody }),
  one: routeSchema('E8105', { params: logRepo }),
  list: routeSchema('E18010', { querystring: query(paging) }),
  data: routeSchema('E8116', { params: logRepo, querystring: query({ omitInvalidLog: 'true skips logs that do not match the schema' }) }),
  searchGet: routeSchema('E8201', { params: logRepo, querystring: query(search) }),
  searchPost: routeSchema('E8201', { params: logRepo, body: obj({ query: any('Lucene query'), sort: any('sort'), from: any('offset'), size: any('hits'), scroll: any('keep-alive'), fields: any('comma-separated fields'), highlight: any('highlight spec') }) }),
  scroll: routeSchema('E8201', { params: logRepo, body: obj({ scroll: any('keep-alive'), scroll_id: any('from the previous answer') }) }),
  histogram: routeSchema('E8201', { params: logRepo, querystring: query({ q: 'Lucene query', from: 'start (ms)', to: 'end (ms)', field: 'time field' }) }),
};

const ds = params({ name: 'datasource' });
/** Offline datasources and schema inference. */
export const datasourceSchemas = {
  write: routeSchema('E18614', { params: ds, body: obj({ region: str, type: { ...str, description: 'kodo or hdfs' }, spec: object, schema: array, noVerifySchema: { type: 'boolean' } }) }),
  one: routeSchema('E18602', { params: ds }),
  list: routeSchema('E18010', { querystring: query(paging) }),
  infer: routeSchema('E18614', { body: obj({ type: str, spec: object }) }),
};

const job = params({ name: 'job' });
const jobExport = params({ name: 'job', exp: 'job export' });
/** Offline jobs, their exports, runs and history. */
export const jobSchemas = {
  write: routeSchema('E18614', { params: job, body: obj({ srcs: array, computation: object, container: any('{type, count}'), scheduler: object, params: array }) }),
  one: routeSchema('E18606', { params: job }),
  list: routeSchema('E18007', { querystring: query({ srcDatasource: 'jobs reading this datasource', srcJob: 'jobs reading this job', parentRepo: 'as srcDatasource', parentJob: 'as srcJob', page: 'page number from 1', size: 'jobs per page, 1..1000', ...paging }) }),
  start: routeSchema('E18621', { params: job, body: obj({ params: any('[{name, default}] for this run') }) }),
  backfill: routeSchema('E18614', { params: job, body: obj({ from: any('RFC 3339 or epoch ms'), to: any('RFC 3339 or epoch ms') }) }),
  history: routeSchema('E18007', { params: job, querystring: query({ page: 'page from 1', size: '1..1000, default 20', sortBy: 'runId, batchTime, startTime, endTime, duration (-x: descending)', order: 'asc or desc', status: 'run status', runId: 'one run' }) }),
  exportWrite: routeSchema('E18651', { params: jobExport, body: obj({ type: str, spec: object }) }),
  exportOne: routeSchema('E18611', { params: jobExport }),
  exportList: routeSchema('E18010', { params: job, querystring: query(paging) }),
};

const v = params({ name: 'variable' });
/** User variables. */
export const variableSchemas = {
  write: routeSchema('E18614', { params: v, body: obj({ type: { type: 'string', enum: ['time', 'string'] }, value: { type: 'string', maxLength: 256 }, format: any('time format, e.g. yyyy-MM-dd') }) }),
  one: routeSchema('E18654', { params: v }),
  list: routeSchema('E18007', { querystring: query({ type: 'system or user', ...paging }) }),
};

/** Stop and rerun of one batch. */
export const batchSchema = routeSchema('E18007', { body: obj({ jobName: str, runId: { type: ['integer', 'string'] } }) });
