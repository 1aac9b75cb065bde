/**
 * The mongo export spec (official-extensions 1.11): `host` ("ip:port", a
 * list "h1:p1,h2:p2", or a `mongodb://` / `mongodb+srv://` URI), `dbName`,
 * `collName`, `mode` INSERT | UPDATE | UPSERT, `updateKey` (fields whose
 * record values form the match filter), `doc` (a document template:
 * `"#field"` strings at any depth take the record's value, top-level keys
 * may be update operators). `version` and unknown fields are kept, ignored.
 */
import { MongoClient } from 'mongodb';
import { ApiError } from '../../errors.ts';
import type { SchemaField } from '../../ingest/types.ts';
import { mustField } from '../shared/fields.ts';
import type { OutboundPolicy } from '../shared/outbound.ts';

export type Mode = 'INSERT' | 'UPDATE' | 'UPSERT';

/** A compiled `doc` template node. */
export type Template =
  | { t: 'field'; path: string[]; field: SchemaField }
  | { t: 'literal'; value: unknown }
  | { t: 'object'; entries: Array<[string, Template]> }
  | { t: 'array'; items: Template[] };

export interface MongoPlan {
  /** Connection string handed to the driver. */
  uri: string;
  dbName: string;
  collName: string;
  mode: Mode;
  /** Source fields whose values form the match filter (UPDATE/UPSERT). */
  updateKey: Array<{ name: string; path: string[]; field: SchemaField }>;
  /** Compiled `doc`; undefined = the record as it is. */
  doc: Template | undefined;
  /** The template's top-level keys are update operators ($set, $inc, ...). */
  operators: boolean;
}

/** Update operators a `doc` may use (UPDATE and UPSERT modes). */
export const OPERATORS = ['$set', '$setOnInsert', '$unset', '$inc', '$mul', '$min', '$max', '$push', '$addToSet', '$pull', '$pullAll', '$rename', '$currentDate'];
/** Modifiers allowed inside an operator's argument ($push: {a: {$each: [...]}}). */
const MODIFIERS = ['$each', '$slice', '$position', '$sort', '$type'];
const MODES: readonly Mode[] = ['INSERT', 'UPDATE', 'UPSERT'];

function bad(msg: string): never {
  throw new ApiError('E18303', msg);
}

function str(spec: Record<string, unknown>, key: string): string {
  const v = spec[key];
  if (typeof v !== 'string' || v === '') bad(`${key} is required and must be a non-empty string`);
  return v;
}

/**
 * URI options refused in user specs: a SOCKS proxy is connected to without the
 * outbound policy's lookup, and the TLS file options read files of this server.
 */
const REFUSED_OPTIONS = ['proxyHost', 'proxyPort', 'proxyUsername', 'proxyPassword', 'tlsCAFile', 'tlsCertificateKeyFile', 'tlsCertificateKeyFilePassword', 'tlsCRLFile'];
/** Mechanisms that fetch this server's cloud or Kerberos credentials (metadata endpoints, keytabs) and hand them to the target. */
const REFUSED_MECHANISMS: readonly string[] = ['MONGODB-AWS', 'MONGODB-OIDC', 'GSSAPI'];

/** The connection string for `host`, and the hosts to check against the outbound policy. */
function connection(host: string, policy: OutboundPolicy): string {
  const uri = /^mongodb(\+srv)?:\/\//.test(host) ? host : `mongodb://${host}/`;
  if (!/^mongodb(\+srv)?:\/\//.test(host) && !/^[A-Za-z0-9._\-:[\],]+$/.test(host)) {
    bad(`host must be "ip:port", "h1:p1,h2:p2" or a mongodb:// URI, got ${JSON.stringify(host.slice(0, 100))}`);
  }
  let hosts: string[];
  let options: MongoClient['options'];
  try {
    // Parses only (no connection): the driver's own URI rules, including its errors.
    options = new MongoClient(uri).options;
    hosts = options.hosts.map((h) => h.host ?? '').filter((h) => h !== '');
  } catch (err) {
    bad(`host: ${(err as Error).message}`);
  }
  // Options the driver acts on outside the connection to `hosts` (checked on the parsed options, as URI option names are case-insensitive).
  for (const k of REFUSED_OPTIONS) {
    if ((options as unknown as Record<string, unknown>)[k] !== undefined) bad(`host: the URI option ${k} is not allowed in exports (it would reach another host or read files of this server)`);
  }
  const mechanism = options.credentials?.mechanism;
  if (mechanism && REFUSED_MECHANISMS.includes(mechanism)) bad(`host: authMechanism ${mechanism} is not allowed in exports (it fetches credentials of this server's environment); use SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN`);
  for (const h of hosts) {
    try {
      policy.checkHost(h);
    } catch (err) {
      bad(`host: ${(err as Error).message}`);
    }
  }
  return uri;
}

function compile(node: unknown, schema: readonly SchemaField[], where: string, depth: number): Template {
  if (depth > 20) bad(`doc is nested deeper than 20 levels at ${where}`);
  if (typeof node === 'string' && node.startsWith('#')) {
    const { path, field } = mustField(schema, where, node);
    return { t: 'field', path, field };
  }
  if (Array.isArray(node)) return { t: 'array', items: node.map((x, i) => compile(x, schema, `${where}[${i}]`, depth + 1)) };
  if (node !== null && typeof node === 'object') {
    const entries: Array<[string, Template]> = [];
    for (const [k, v] of Object.entries(node)) {
      if (k === '' || k.includes('\0')) bad(`${where}: a key is empty or holds a NUL character`);
      if (depth > 0 && k.startsWith('$') && !(where.startsWith('doc.$') && MODIFIERS.includes(k))) bad(`${where}.${k}: only top-level keys of doc may be operators (and ${MODIFIERS.join(' ')} inside them)`);
      entries.push([k, compile(v, schema, `${where}.${k}`, depth + 1)]);
    }
    return { t: 'object', entries };
  }
  return { t: 'literal', value: node };
}

/**
 * Checks a mongo spec against the repo schema and the outbound policy, and
 * compiles it. @throws ApiError E18303 naming the spec key and why.
 */
export function compileMongoSpec(spec: Record<string, unknown>, schema: readonly SchemaField[], policy: OutboundPolicy): MongoPlan {
  const uri = connection(str(spec, 'host'), policy);
  const dbName = str(spec, 'dbName');
  if (/[/\\. "$*<>:|?\0]/.test(dbName) || Buffer.byteLength(dbName) > 63) bad(`dbName ${JSON.stringify(dbName)}: MongoDB database names have at most 63 bytes and none of / \\ . " $ * < > : | ? or spaces`);
  const collName = str(spec, 'collName');
  if (collName.includes('$') || collName.includes('\0') || collName.startsWith('system.') || Buffer.byteLength(collName) > 255) {
    bad(`collName ${JSON.stringify(collName)}: MongoDB collection names have no $, do not start with "system." and have at most 255 bytes`);
  }
  const rawMode = spec.mode ?? 'INSERT';
  const mode = (typeof rawMode === 'string' ? rawMode.toUpperCase() : '') as Mode;
  if (!MODES.includes(mode)) bad(`mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(rawMode)}`);
  const updateKey: MongoPlan['updateKey'] = [];
  if (mode !== 'INSERT') {
    const keys = spec.updateKey;
    if (!Array.isArray(keys) || keys.length === 0) bad(`updateKey must list the fields that identify a document (mode ${mode})`);
    keys.forEach((k, i) => {
      const ref = typeof k === 'string' && !k.startsWith('#') ? `#${k}` : k;
      const { path, field } = mustField(schema, `updateKey[${i}]`, ref);
      if (field.valtype === 'array' || field.valtype === 'map') bad(`updateKey[${i}] refers to "#${path.join('.')}", a ${field.valtype}: use scalar fields`);
      updateKey.push({ name: path.join('.'), path, field });
    });
  }
  let doc: Template | undefined;
  let operators = false;
  if (spec.doc !== undefined && spec.doc !== null) {
    if (typeof spec.doc !== 'object' || Array.isArray(spec.doc)) bad('doc must be an object (a document template)');
    const keys = Object.keys(spec.doc);
    operators = keys.some((k) => k.startsWith('$'));
    if (operators && !keys.every((k) => k.startsWith('$'))) bad('doc mixes update operators and plain fields at the top level: use operators only (e.g. {"$set": {...}, "$inc": {...}})');
    if (operators && mode === 'INSERT') bad('doc uses update operators, which need mode UPDATE or UPSERT');
    for (const k of keys) {
      if (operators && !OPERATORS.includes(k)) bad(`doc.${k}: unknown update operator (supported: ${OPERATORS.join(', ')})`);
      const arg = (spec.doc as Record<string, unknown>)[k];
      if (operators && (arg === null || typeof arg !== 'object' || Array.isArray(arg))) bad(`doc.${k} must be an object {field: value}`);
    }
    doc = compile(spec.doc, schema, 'doc', 0);
  }
  return { uri, dbName, collName, mode, updateKey, doc, operators };
}
