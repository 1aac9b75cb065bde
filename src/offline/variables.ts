/**
 * User variables (`/v2/variables`): `time` values are `$(now)` with an
 * offset and a Java-style format; `string` values are constants. They are
 * visible to every job of the account as `$(name)`.
 */
import { ApiError } from '../errors.ts';
import { checkName } from './datasources.ts';
import { checkFormat, checkTimeValue, formatTime, isSystemVariable, SYSTEM_VARIABLES } from './magic.ts';
import type { OfflineStore, VariableRow } from './store.ts';

const SYSTEM_FORMATS: Record<string, string> = { year: 'yyyy', mon: 'MM', day: 'dd', hour: 'HH', min: 'mm', sec: 'ss', date: 'yyyy-MM-dd', now: 'yyyy-MM-dd HH:mm:ss' };

export class VariableService {
  constructor(private readonly store: OfflineStore, private readonly timezone: string) {}

  private parse(name: string, body: Record<string, unknown>): VariableRow {
    checkName(name, 'E18614');
    if (isSystemVariable(name)) throw new ApiError('E18656', `"${name}" is a system variable`);
    const type = body.type;
    if (type !== 'time' && type !== 'string') throw new ApiError('E18614', 'type must be time or string');
    if (typeof body.value !== 'string' || body.value.length > 256) throw new ApiError('E18614', 'value must be a string of at most 256 characters');
    let format = '';
    if (type === 'time') {
      checkTimeValue(body.value);
      if (typeof body.format !== 'string') throw new ApiError('E18658', 'a time variable needs a format such as yyyy-MM-dd HH:mm:ss');
      checkFormat(body.format);
      format = body.format;
    }
    return { name, type, value: body.value, format };
  }

  create(account: string, name: string, body: Record<string, unknown>): void {
    const v = this.parse(name, body);
    this.store.tx(() => {
      if (this.store.getVariable(account, name)) throw new ApiError('E18655', name);
      this.store.putVariable(account, v);
    });
  }

  update(account: string, name: string, body: Record<string, unknown>): void {
    this.must(account, name);
    this.store.putVariable(account, this.parse(name, body));
  }

  must(account: string, name: string): VariableRow {
    const v = this.store.getVariable(account, name);
    if (!v) throw new ApiError('E18654', name);
    return v;
  }

  delete(account: string, name: string): void {
    this.must(account, name);
    this.store.deleteVariable(account, name);
  }

  /** `type`: system, user or both (undefined). System variables show their value now. */
  list(account: string, type?: string): Array<Record<string, string>> {
    const out: Array<Record<string, string>> = [];
    if (type === undefined || type === 'system') {
      for (const n of SYSTEM_VARIABLES) out.push({ name: n, type: 'system', value: formatTime(Date.now(), SYSTEM_FORMATS[n] ?? '', this.timezone), format: SYSTEM_FORMATS[n] ?? '' });
    }
    if (type === undefined || type === 'user') out.push(...this.store.listVariables(account).map((v) => ({ ...v })));
    return out;
  }
}
