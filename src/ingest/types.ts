/** Repo schema as stored and as sent by clients (after normalisation). */
export type ValType = 'long' | 'date' | 'float' | 'string' | 'array' | 'map' | 'boolean' | 'jsonstring';
export type ElemType = 'long' | 'float' | 'string';

export interface SchemaField {
  key: string;
  valtype: ValType;
  /** Only for valtype array. */
  elemtype?: ElemType;
  required: boolean;
  /** Only for valtype map: the nested fields (depth at most 5). */
  schema?: SchemaField[];
  description?: string;
}

/** A decoded point: long -> number (or bigint beyond 2^53), float -> number,
 *  date -> string (RFC 3339 as sent), array -> array, map -> object,
 *  boolean -> boolean, jsonstring -> string. */
export type Point = Record<string, unknown>;
