/**
 * Throughput of parsePoints and decodeLine on ~90-byte points (host=string,
 * latency=long, cpu=float, region=string, ts=date), single-threaded, no I/O.
 * Run: node --import tsx bench/ingest-parse.ts
 */
import { compileSchema, decodeLine, parsePoints } from '../src/ingest/points.ts';
import { validateSchema } from '../src/ingest/schema.ts';

const schema = compileSchema(
  validateSchema([
    { key: 'host', valtype: 'string', required: true },
    { key: 'latency', valtype: 'long', required: true },
    { key: 'cpu', valtype: 'float' },
    { key: 'region', valtype: 'string' },
    { key: 'ts', valtype: 'date', required: true },
  ]),
);

const POINTS_PER_BODY = 5000;
const ROLES = ['web', 'api', 'db', 'cache', 'mq', 'edge'];
const lines: string[] = [];
for (let i = 0; i < POINTS_PER_BODY; i++) {
  // Deterministic values; timestamps alternate between the two shapes SDKs
  // send (UTC with milliseconds, +08:00 with nanoseconds).
  const ts = i % 2 === 0
    ? new Date(1483297445000 + i * 1000).toISOString()
    : `2017-01-02T03:04:05.${String(123456789 + i).padStart(9, '0')}+08:00`;
  lines.push(
    `host=${ROLES[i % ROLES.length]}-${String(i % 500).padStart(3, '0')}.nb\tlatency=${(i * 7919) % 100000}` +
      `\tcpu=${((i * 13) % 10000) / 100}\tregion=cn-east-${i % 4}\tts=${ts}`,
  );
}
const body = `${lines.join('\n')}\n`;
const bytesPerPoint = body.length / POINTS_PER_BODY;

function measure(name: string, fn: () => void, points: number): void {
  for (let i = 0; i < 50; i++) fn(); // warm up the JIT
  let runs = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 2e9) {
    fn();
    runs++;
    elapsed = Number(process.hrtime.bigint() - t0);
  }
  const pps = (runs * points) / (elapsed / 1e9);
  console.log(`${name}: ${Math.round(pps).toLocaleString('en-US')} points/s (${(1e9 / pps).toFixed(0)} ns/point)`);
}

console.log(`${POINTS_PER_BODY} points per body, ${bytesPerPoint.toFixed(1)} bytes per point`);
measure('parsePoints', () => void parsePoints(body, schema), POINTS_PER_BODY);
const tags = 'dc=hz1';
const tagSchema = compileSchema(
  validateSchema([...schema.source, { key: 'dc', valtype: 'string' }]),
);
measure('parsePoints with tags', () => void parsePoints(body, tagSchema, { tags }), POINTS_PER_BODY);
measure('decodeLine', () => {
  for (const l of lines) decodeLine(l, schema);
}, POINTS_PER_BODY);

// The reference's example repo: an array and a nested map per point, which
// take the JSON scanner instead of the scalar fast path.
const refSchema = compileSchema(
  validateSchema([
    { key: 'userName', valtype: 'string', required: true },
    { key: 'age', valtype: 'float', required: true },
    { key: 'addresses', valtype: 'array', elemtype: 'long', required: true },
    {
      key: 'profile', valtype: 'map', required: true, schema: [
        { key: 'position', valtype: 'string', required: true },
        { key: 'salary', valtype: 'float', required: true },
        { key: 'education', valtype: 'array', elemtype: 'string' },
      ],
    },
  ]),
);
const refBody = Array.from({ length: POINTS_PER_BODY }, (_, i) =>
  `userName=user${i}\tage=${20 + (i % 50)}\taddresses=[${i},${i + 1}]` +
    `\tprofile={"position":"engineer","salary":${10000 + i},"education":["BS","MS"]}`).join('\n');
measure('parsePoints, reference example schema (array + map)', () => void parsePoints(refBody, refSchema), POINTS_PER_BODY);

// The official escape modes (options.unescapeLine true / false) decode string
// values by other rules; jsonstring values are scanned for their JSON strings.
for (const mode of ['unescape', 'verbatim'] as const) {
  const cs = compileSchema(schema.source, mode);
  measure(`decodeLine, unescapeLine ${String(mode === 'unescape')}`, () => {
    for (const l of lines) decodeLine(l, cs);
  }, POINTS_PER_BODY);
}
const jsonSchema = compileSchema(validateSchema([{ key: 'host', valtype: 'string' }, { key: 'obj', valtype: 'jsonstring' }]), 'verbatim');
const jsonLines = lines.map((_, i) => `host=h${i}\tobj={"path":"C:\\\\logs\\\\${i}.txt","msg":"line one\\nline two","n":${i}}`);
measure('decodeLine, jsonstring with escapes in its strings', () => {
  for (const l of jsonLines) decodeLine(l, jsonSchema);
}, POINTS_PER_BODY);
