import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';

/** One account: an access key / secret key pair owning its own groups, repos and data. */
export interface AccountConfig {
  /** Stable id used for storage paths; must match ^[a-zA-Z0-9_-]{1,64}$. */
  id: string;
  accessKey: string;
  secretKey: string;
  /** Buckets (kodo exports, kodo datasources, job exports) this account may use; absent = all. */
  buckets?: string[];
  /** Subtrees of the hdfs root this account may use; absent = all. */
  hdfsPaths?: string[];
  /** Whether this account may run Java (jar) plugins; absent = false. */
  jarPlugins?: boolean;
}

export type FsyncMode = 'always' | 'interval' | 'never';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  accounts: AccountConfig[];
  /** Allowed difference between a request's Date header and the server clock. */
  clockSkewMs: number;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  /** Largest accepted request body (after gzip decompression for data push). */
  maxBodyBytes: number;
  /** Largest single field value in a point (the reference's 100 KB). */
  maxValueBytes: number;
  segmentBytes: number;
  retentionMs: number;
  retentionBytes: number;
  /** Regions this server serves; repos and groups must name one of them. */
  regions: string[];
  logLevel: string;
  sqlMemory: string;
  sqlThreads: number;
  sqlTimeoutMs: number;
  transformSlots: number;
  transformBatch: number;
  transformStage: number;
  transformOutput: number;
  transformOutputBytes: number;
  pluginWorkers: number;
  pluginTimeoutMs: number;
  pluginMemoryMb: number;
  /** Largest plugin package accepted by upload (the official limit is 100 MB). */
  pluginMaxBytes: number;
  /** Java plugins for the account of accessKey/secretKey or the generated one (file accounts: their own jarPlugins). */
  jarPlugins: boolean;
  /** Confinement of Java plugin JVMs: auto (bubblewrap when it works), bwrap (required), none. */
  jvmSandbox: 'auto' | 'bwrap' | 'none';
  /** Root of the local bucket store: bucket B = <bucketsDir>/B (unless s3Endpoint is set). */
  bucketsDir: string;
  /** Root that hdfs:// paths of datasources and job exports resolve under. */
  hdfsRoot: string;
  /** IANA time zone of magic variables ($(year) ...) in key prefixes, file filters and SQL. */
  timezone: string;
  /** Offline job runs executing at once, server-wide. */
  offlineSlots: number;
  /** Longest an offline job run may take before it is interrupted. */
  offlineTimeoutMs: number;
  /** Most bytes one offline run (or schema inference) downloads from S3 into its private folder. */
  offlineFetchBytes: number;
  /** S3-compatible endpoint holding the buckets instead of bucketsDir ('' = local directories). */
  s3: { endpoint: string; accessKey: string; secretKey: string; region: string; pathStyle: boolean };
  /** InfluxDB 1.x base URL for tsdb exports ('' = tsdb exports cannot be created). */
  tsdb: { url: string; user: string; password: string };
  /** Most points per export batch (one request of a streaming sink). */
  exportBatch: number;
  /** Most bytes of wire lines per export batch. */
  exportBatchBytes: number;
  /** First retry delay of a failed export delivery; doubles up to exportRetryMaxMs. */
  exportRetryMinMs: number;
  exportRetryMaxMs: number;
  /** Networks exports may connect to ([] = any not denied) and networks they never connect to (CIDRs). */
  exportOutbound: { allow: string[]; deny: string[] };
  /** On SIGTERM, how long requests in progress may take to finish before their connections are cut. */
  shutdownTimeoutMs: number;
  /** Worker threads validating large push bodies (0 = on the main thread). */
  ingestWorkers: number;
  /** Bearer token of GET /metrics ('' = no metrics endpoint: it answers 404). */
  metricsToken: string;
  /** Log store writer threads (LogDB writes; one account uses at most all but one). */
  logWriters: number;
}

/** Link-local networks and cloud metadata endpoints (AWS, GCP, Azure, Alibaba, Oracle): never an export target by default. */
export const DEFAULT_EXPORT_DENY = '169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,168.63.129.16/32';

/** Every key, its environment variable, default and meaning; drives validation, docs and --help. */
export const CONFIG_KEYS = [
  ['port', 'PIPELINE_PORT', '9900', 'TCP port of the HTTP API'],
  ['host', 'PIPELINE_HOST', '127.0.0.1', 'interface to listen on (0.0.0.0 for all)'],
  ['dataDir', 'PIPELINE_DATA_DIR', './data', 'directory for metadata, repo logs and generated credentials'],
  ['accessKey', 'PIPELINE_ACCESS_KEY', '', 'access key of the initial account (id "default")'],
  ['secretKey', 'PIPELINE_SECRET_KEY', '', 'secret key of the initial account'],
  ['clockSkew', 'PIPELINE_CLOCK_SKEW', '15m', 'allowed skew of a signed request\'s Date header'],
  ['fsync', 'PIPELINE_FSYNC', 'always', 'always (durable before 200, group commit) | interval | never'],
  ['fsyncInterval', 'PIPELINE_FSYNC_INTERVAL', '1s', 'flush period when fsync=interval'],
  ['maxBodySize', 'PIPELINE_MAX_BODY_SIZE', '16MB', 'largest request body, after gzip decompression'],
  ['maxValueSize', 'PIPELINE_MAX_VALUE_SIZE', '100KB', 'largest single field value of a point'],
  ['segmentSize', 'PIPELINE_SEGMENT_SIZE', '64MB', 'repo log segment file size'],
  ['retention', 'PIPELINE_RETENTION', '7d', 'drop repo data older than this (0 = keep forever)'],
  ['retentionSize', 'PIPELINE_RETENTION_SIZE', '0', 'per-repo size cap in bytes, oldest segments first (0 = none)'],
  ['regions', 'PIPELINE_REGIONS', 'nb', 'comma-separated regions this server serves'],
  ['logLevel', 'PIPELINE_LOG_LEVEL', 'info', 'pino log level'],
  ['sqlMemory', 'PIPELINE_SQL_MEMORY', '1GB', 'DuckDB memory limit shared by transform SQL'],
  ['sqlThreads', 'PIPELINE_SQL_THREADS', '2', 'DuckDB worker threads'],
  ['sqlTimeout', 'PIPELINE_SQL_TIMEOUT', '60s', 'longest a transform\'s SQL may run before it is interrupted'],
  ['transformSlots', 'PIPELINE_TRANSFORM_SLOTS', '2', 'concurrent runs of transforms whose repo has no group'],
  ['transformBatch', 'PIPELINE_TRANSFORM_BATCH', '1000000', 'most source points one transform run reads'],
  ['transformOutput', 'PIPELINE_TRANSFORM_OUTPUT', '2000000', 'most points one transform run may write; a run producing more fails (state error) before encoding'],
  ['transformOutputBytes', 'PIPELINE_TRANSFORM_OUTPUT_BYTES', '512MB', 'most encoded bytes one transform run may write; a run producing more fails (state error)'],
  ['transformStage', 'PIPELINE_TRANSFORM_STAGE', '256MB', 'pushed data (wire size) decoded into DuckDB ahead of SQL transform runs, over all repos; 0 = only when a run starts'],
  ['pluginWorkers', 'PIPELINE_PLUGIN_WORKERS', '2', 'sandboxed worker processes for JavaScript plugins'],
  ['pluginTimeout', 'PIPELINE_PLUGIN_TIMEOUT', '30s', 'longest a plugin may take over one batch'],
  ['pluginMemory', 'PIPELINE_PLUGIN_MEMORY', '256MB', 'heap limit of each plugin worker'],
  ['pluginMaxSize', 'PIPELINE_PLUGIN_MAX_SIZE', '100MB', 'largest plugin package an upload may carry (not bounded by maxBodySize)'],
  ['jarPlugins', 'PIPELINE_JAR_PLUGINS', 'false', 'let the accessKey/secretKey (or generated) account run Java (jar) plugins; file accounts use their own jarPlugins'],
  ['jvmSandbox', 'PIPELINE_JVM_SANDBOX', 'auto', 'Java plugin JVMs: auto (bubblewrap when it works, else unconfined) | bwrap (required) | none'],
  ['bucketsDir', 'PIPELINE_BUCKETS_DIR', '', 'local bucket store, bucket B = folder B (default <dataDir>/buckets)'],
  ['hdfsRoot', 'PIPELINE_HDFS_ROOT', '', 'directory hdfs:// paths resolve under (default <dataDir>/hdfs)'],
  ['timezone', 'PIPELINE_TIMEZONE', 'UTC', 'IANA time zone of magic variables such as $(year) $(hour)'],
  ['offlineSlots', 'PIPELINE_OFFLINE_SLOTS', '4', 'offline job runs in progress at once (each job runs its batches one at a time; their SQL shares the SQL threads of Node\'s pool)'],
  ['offlineTimeout', 'PIPELINE_OFFLINE_TIMEOUT', '1h', 'longest an offline job run may take before it is interrupted and marked Failed'],
  ['offlineFetchMax', 'PIPELINE_OFFLINE_FETCH_MAX', '4GB', 'with an S3 endpoint: most bytes of objects one offline run or schema inference downloads before DuckDB reads them'],
  ['s3Endpoint', 'PIPELINE_S3_ENDPOINT', '', 'S3-compatible endpoint holding the buckets instead of the local bucket store'],
  ['s3AccessKey', 'PIPELINE_S3_ACCESS_KEY', '', 'access key for the S3 endpoint'],
  ['s3SecretKey', 'PIPELINE_S3_SECRET_KEY', '', 'secret key for the S3 endpoint'],
  ['s3Region', 'PIPELINE_S3_REGION', 'us-east-1', 'region sent to the S3 endpoint'],
  ['s3PathStyle', 'PIPELINE_S3_PATH_STYLE', 'true', 'path-style bucket addressing (true for most self-hosted S3 servers)'],
  ['tsdbUrl', 'PIPELINE_TSDB_URL', '', 'InfluxDB 1.x URL for tsdb exports, e.g. http://127.0.0.1:8086'],
  ['tsdbUser', 'PIPELINE_TSDB_USER', '', 'InfluxDB user (optional)'],
  ['tsdbPassword', 'PIPELINE_TSDB_PASSWORD', '', 'InfluxDB password (optional)'],
  ['exportBatch', 'PIPELINE_EXPORT_BATCH', '20000', 'most points per export batch (one http request)'],
  ['exportBatchSize', 'PIPELINE_EXPORT_BATCH_SIZE', '8MB', 'most bytes of points per export batch'],
  ['exportRetryMin', 'PIPELINE_EXPORT_RETRY_MIN', '1s', 'first retry delay of a failed export delivery (doubles, with jitter)'],
  ['exportRetryMax', 'PIPELINE_EXPORT_RETRY_MAX', '60s', 'longest retry delay of a failed export delivery'],
  ['exportAllow', 'PIPELINE_EXPORT_ALLOW', '', 'comma-separated CIDRs exports may connect to (empty = any address not denied)'],
  ['exportDeny', 'PIPELINE_EXPORT_DENY', DEFAULT_EXPORT_DENY, 'comma-separated CIDRs exports never connect to (default: link-local and cloud metadata)'],
  ['ingestWorkers', 'PIPELINE_INGEST_WORKERS', 'auto', 'worker threads that validate push bodies of 4MB and more, so they do not hold other requests (auto = cores - 1, at least 1; 0 = validate on the main thread)'],
  ['logWriters', 'PIPELINE_LOG_WRITERS', '2', 'threads that write LogDB repo files; one account runs on at most all but one of them, so its large batches never hold other accounts\' writes'],
  ['metricsToken', 'PIPELINE_METRICS_TOKEN', '', 'bearer token of GET /metrics (Prometheus text; spans accounts, for the operator); unset = /metrics answers 404'],
  ['shutdownTimeout', 'PIPELINE_SHUTDOWN_TIMEOUT', '10s', 'on SIGTERM/SIGINT, how long requests in progress may take to finish (a second signal exits at once)'],
] as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZES: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses "30s", "15m", "7d" or plain milliseconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? 1));
}

/** Parses "16MB", "100KB" or plain bytes. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(v.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * (SIZES[(m[2] ?? 'b').toLowerCase()] ?? 1));
}

type Raw = Record<string, unknown>;

/** Whether `c` is an IPv4 or IPv6 CIDR (a bare address counts as a /32 or /128). */
function isCidr(c: string): boolean {
  const [addr = '', bits] = c.split('/');
  const v = isIP(addr);
  if (v === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (v === 4 ? 32 : 128);
}

/** One entry of the config file's `accounts`, with its optional grants. */
function fileAccount(a: Raw, problems: string[]): AccountConfig {
  const acc: AccountConfig = { id: String(a.id), accessKey: String(a.accessKey), secretKey: String(a.secretKey) };
  for (const k of ['buckets', 'hdfsPaths'] as const) {
    const v = a[k];
    if (v === undefined) continue;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) problems.push(`account "${acc.id}": ${k} must be an array of strings`);
    else acc[k] = v as string[];
  }
  if (a.jarPlugins !== undefined) {
    if (typeof a.jarPlugins !== 'boolean') problems.push(`account "${acc.id}": jarPlugins must be true or false`);
    else acc.jarPlugins = a.jarPlugins;
  }
  return acc;
}

/**
 * Builds the configuration from an optional JSON file (PIPELINE_CONFIG, same
 * keys as CONFIG_KEYS plus `accounts`) overlaid by environment variables.
 * Validates everything at once and returns a frozen object.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Raw = {}): Config {
  let file: Raw = {};
  const problems: string[] = [];
  if (env.PIPELINE_CONFIG) {
    try {
      file = JSON.parse(readFileSync(env.PIPELINE_CONFIG, 'utf8')) as Raw;
    } catch (err) {
      problems.push(`PIPELINE_CONFIG ${env.PIPELINE_CONFIG}: ${(err as Error).message}`);
    }
  }
  const raw: Raw = {};
  for (const [key, envName, def] of CONFIG_KEYS) {
    raw[key] = overrides[key] ?? env[envName] ?? file[key] ?? def;
  }
  const str = (k: string): string => String(raw[k]);
  const dur = (k: string): number => {
    const v = parseDuration(raw[k] as string | number);
    if (v === undefined) problems.push(`${k}: "${str(k)}" is not a duration (e.g. 30s, 15m, 7d)`);
    return v ?? 0;
  };
  const size = (k: string): number => {
    const v = parseSize(raw[k] as string | number);
    if (v === undefined) problems.push(`${k}: "${str(k)}" is not a size (e.g. 512KB, 16MB)`);
    return v ?? 0;
  };
  const int = (k: string, min: number, max: number): number => {
    const v = Number(raw[k]);
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`${k}: "${str(k)}" must be an integer from ${min} to ${max}`);
    return v;
  };
  const cidrs = (k: string): string[] => {
    const list = str(k).split(',').map((c) => c.trim()).filter(Boolean);
    for (const c of list) if (!isCidr(c)) problems.push(`${k}: "${c}" is not a CIDR (e.g. 10.0.0.0/8, fe80::/10)`);
    return list;
  };
  const port = Number(raw.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`port: "${str('port')}" is not a TCP port`);
  const fsync = str('fsync');
  if (!['always', 'interval', 'never'].includes(fsync)) problems.push(`fsync: "${fsync}" must be always, interval or never`);

  const accounts: AccountConfig[] = [];
  const fileAccounts = (overrides.accounts ?? file.accounts ?? []) as unknown;
  if (!Array.isArray(fileAccounts)) problems.push('accounts: must be an array of {id, accessKey, secretKey}');
  else for (const a of fileAccounts as Raw[]) accounts.push(fileAccount(a, problems));
  const ak = str('accessKey');
  const sk = str('secretKey');
  if (ak || sk) {
    if (!ak || !sk) problems.push('accessKey and secretKey must be set together');
    else accounts.unshift({ id: 'default', accessKey: ak, secretKey: sk, jarPlugins: str('jarPlugins') === 'true' });
  }
  const seen = new Set<string>();
  for (const a of accounts) {
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(a.id)) problems.push(`account id "${a.id}" must match ^[a-zA-Z0-9_-]{1,64}$`);
    if (a.accessKey.length < 8 || a.secretKey.length < 16) problems.push(`account "${a.id}": access key needs >= 8 and secret key >= 16 characters`);
    if (seen.has(a.accessKey)) problems.push(`access key of account "${a.id}" is used twice`);
    seen.add(a.accessKey);
  }
  const dataDir = path.resolve(str('dataDir'));
  const timezone = str('timezone');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    problems.push(`timezone: "${timezone}" is not an IANA time zone (e.g. UTC, Asia/Shanghai)`);
  }
  const s3PathStyle = str('s3PathStyle');
  if (!['true', 'false'].includes(s3PathStyle)) problems.push(`s3PathStyle: "${s3PathStyle}" must be true or false`);
  const jarPlugins = str('jarPlugins');
  if (!['true', 'false'].includes(jarPlugins)) problems.push(`jarPlugins: "${jarPlugins}" must be true or false`);
  const jvmSandbox = str('jvmSandbox');
  if (!['auto', 'bwrap', 'none'].includes(jvmSandbox)) problems.push(`jvmSandbox: "${jvmSandbox}" must be auto, bwrap or none`);
  if (str('s3Endpoint') && (!str('s3AccessKey') || !str('s3SecretKey'))) problems.push('s3Endpoint needs s3AccessKey and s3SecretKey');
  const cfg: Config = {
    port,
    host: str('host'),
    dataDir,
    accounts,
    clockSkewMs: dur('clockSkew'),
    fsync: fsync as FsyncMode,
    fsyncIntervalMs: dur('fsyncInterval'),
    maxBodyBytes: size('maxBodySize'),
    maxValueBytes: size('maxValueSize'),
    segmentBytes: size('segmentSize'),
    retentionMs: dur('retention'),
    retentionBytes: size('retentionSize'),
    regions: str('regions').split(',').map((r) => r.trim()).filter(Boolean),
    logLevel: str('logLevel'),
    sqlMemory: str('sqlMemory'),
    sqlThreads: int('sqlThreads', 1, 64),
    sqlTimeoutMs: dur('sqlTimeout'),
    transformSlots: int('transformSlots', 1, 256),
    transformBatch: int('transformBatch', 1, 100_000_000),
    transformStage: size('transformStage'),
    transformOutput: int('transformOutput', 1, 100_000_000),
    transformOutputBytes: size('transformOutputBytes'),
    pluginWorkers: int('pluginWorkers', 1, 64),
    pluginTimeoutMs: dur('pluginTimeout'),
    pluginMemoryMb: Math.floor(size('pluginMemory') / 1024 / 1024),
    pluginMaxBytes: size('pluginMaxSize'),
    jarPlugins: jarPlugins === 'true',
    jvmSandbox: jvmSandbox as Config['jvmSandbox'],
    bucketsDir: path.resolve(str('bucketsDir') || path.join(dataDir, 'buckets')),
    hdfsRoot: path.resolve(str('hdfsRoot') || path.join(dataDir, 'hdfs')),
    timezone,
    offlineSlots: int('offlineSlots', 1, 256),
    offlineTimeoutMs: dur('offlineTimeout'),
    offlineFetchBytes: size('offlineFetchMax'),
    s3: { endpoint: str('s3Endpoint'), accessKey: str('s3AccessKey'), secretKey: str('s3SecretKey'), region: str('s3Region'), pathStyle: s3PathStyle !== 'false' },
    tsdb: { url: str('tsdbUrl').replace(/\/+$/, ''), user: str('tsdbUser'), password: str('tsdbPassword') },
    exportBatch: int('exportBatch', 1, 1_000_000),
    exportBatchBytes: size('exportBatchSize'),
    exportRetryMinMs: dur('exportRetryMin'),
    exportRetryMaxMs: dur('exportRetryMax'),
    exportOutbound: { allow: cidrs('exportAllow'), deny: cidrs('exportDeny') },
    shutdownTimeoutMs: dur('shutdownTimeout'),
    ingestWorkers: str('ingestWorkers') === 'auto' ? Math.max(1, availableParallelism() - 1) : int('ingestWorkers', 0, 64),
    metricsToken: str('metricsToken'),
    logWriters: int('logWriters', 1, 16),
  };
  if (cfg.metricsToken && !/^[\x21-\x7e]{16,256}$/.test(cfg.metricsToken)) problems.push('metricsToken: 16 to 256 printable characters without spaces');
  if (cfg.exportBatchBytes < 1024) problems.push('exportBatchSize: at least 1KB');
  if (cfg.exportRetryMinMs < 1 || cfg.exportRetryMaxMs < cfg.exportRetryMinMs) problems.push('exportRetryMin must be at least 1ms and exportRetryMax at least exportRetryMin');
  if (!/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(cfg.sqlMemory)) problems.push(`sqlMemory: "${cfg.sqlMemory}" must be a size like 512MB or 2GB`);
  if (cfg.pluginMemoryMb < 16) problems.push('pluginMemory: at least 16MB');
  if (cfg.regions.length === 0) problems.push('regions: at least one region is needed');
  if (cfg.pluginMaxBytes < 1024) problems.push('pluginMaxSize: at least 1KB');
  if (cfg.maxBodyBytes < 1024) problems.push('maxBodySize: at least 1KB');
  if (cfg.segmentBytes < 1024 * 1024) problems.push('segmentSize: at least 1MB');
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(cfg);
}
