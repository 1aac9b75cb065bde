import { JsPluginRuntime } from './js-runtime.ts';
const rt = new JsPluginRuntime({ workers: 1, timeoutMs: Number(process.argv[2]), memoryMb: 64 });
const hog3 = process.argv[3] ?? 'export default () => { const a = new Array(2**31 - 1).fill(1); }';
const t = Date.now();
try { await rt.run('hog3', hog3, [{}], []); } catch (e) { console.log((e as Error).name, (e as Error).message, Date.now() - t); }
console.log(await rt.run('ok', 'export default p => p', [{a:1}], [{name:'a', type:'long'}]));
await rt.close();
