/**
 * How route schemas become checks. Requests are validated by Ajv, compiled
 * once per route: bodies are never coerced (a number sent as a string is
 * refused), query strings and path parameters are (they are text). Every
 * problem is reported at once in Postoffice's shape, field -> reasons:
 *
 * - a field is named by its path: `worker.pid`, `messages[1].topic`;
 * - a missing required field, a null one or a blank string "can't be
 *   blank"; a field of the wrong type "is invalid"; an unknown field "is an
 *   unknown field";
 * - a schema may say better with annotations (never used to validate):
 *   `x-error`, a reason for any failure of that schema (a string) or per
 *   keyword (`{maximum: "…", null: "…", blank: "…", default: "…"}`, each a
 *   reason or `{why, status}` when it is not a 400); `x-group`, report every
 *   problem inside this value under its own name (`rate_limit`, `attributes`).
 * - When problems have different statuses, only those with the lowest are
 *   answered (Postoffice's bulk route answers 406 only for a body that is
 *   otherwise well formed). A path parameter that does not match is a 404.
 *
 * Responses are serialized with JSON.stringify, as without schemas. Given
 * `onMismatch` (tests), each response is also checked against its schema
 * and every difference reported, so the OpenAPI document cannot drift from
 * what the API answers.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { AppError, type FieldErrors } from '@postoffice/shared';
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';

export const BLANK = "can't be blank";
export const INVALID = 'is invalid';
export const UNKNOWN = 'is an unknown field';

/** A reason, or a reason with the status it calls for. */
export type Why = string | { readonly why: string; readonly status: number };
/** The `x-error` annotation. */
export type ErrorAnnotation = string | Readonly<Record<string, Why>>;

/** Annotations the schemas carry: known to Ajv, so that strict mode accepts them; they validate nothing. */
export const ANNOTATIONS = ['x-error', 'x-group'] as const;

type Node = Readonly<Record<string, unknown>>;
type Part = 'body' | 'querystring' | 'params' | 'headers';

const DEFAULT_STATUS: Record<Part, number> = { body: 400, querystring: 400, params: 404, headers: 400 };
/** What the value at the root of each part is called. */
const ROOT_FIELD: Record<Part, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'headers' };
/** Keywords whose value maps names (or indexes) to schemas. */
const CONTAINERS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'anyOf', 'oneOf', 'allOf']);
/** Keywords whose schema applies one level down in the data. */
const DESCENDS = new Set(['properties', 'patternProperties', 'items', 'additionalProperties']);

function ajv(coerceTypes: boolean): Ajv {
  return new Ajv({
    allErrors: true,
    coerceTypes,
    useDefaults: false,
    removeAdditional: false,
    allowUnionTypes: true,
    strict: true,
    keywords: [...ANNOTATIONS],
  });
}

/**
 * Fastify's validator compiler: one Ajv for bodies (no coercion), one for
 * the text parts. A failure is a `ValidationError` (an `AppError`) with
 * every problem, which the error handler answers as it is.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strictTypes = ajv(false);
  const textTypes = ajv(true);
  return ({ schema, httpPart }) => {
    const part = (httpPart ?? 'body') as Part;
    const validate: ValidateFunction = (part === 'body' ? strictTypes : textTypes).compile(schema as object);
    const numeric = part === 'body' ? [] : numericFields(schema as Node);
    return (data: unknown) => {
      // Ajv turns any text JavaScript reads as a number into one ('1e400' is Infinity, which then passes
      // `maximum`; '0x10' is 16): numbers in a query or path are plain decimals, or refused.
      const malformed = numeric.length === 0 ? [] : malformedNumbers(numeric, data);
      const valid = validate(data);
      if (valid && malformed.length === 0) return true;
      const rest = valid
        ? []
        : (validate.errors ?? []).filter((e) => !malformed.some((m) => m.instancePath === e.instancePath));
      return { error: requestError([...malformed, ...rest], schema as Node, part, data) };
    };
  };
}

const DECIMAL = /^-?\d{1,15}(\.\d{1,15})?$/;

/** The top-level properties of a query or path schema that hold numbers, with their type. */
function numericFields(schema: Node): [string, string][] {
  const properties = schema.properties as Record<string, Node> | undefined;
  if (!properties) return [];
  return Object.entries(properties)
    .filter(([, s]) => s.type === 'integer' || s.type === 'number')
    .map(([name, s]) => [name, String(s.type)]);
}

/** A type error, as Ajv reports one, for each numeric field whose text is not a plain decimal number. */
function malformedNumbers(fields: readonly [string, string][], data: unknown): ErrorObject[] {
  if (data === null || typeof data !== 'object') return [];
  const values = data as Record<string, unknown>;
  const out: ErrorObject[] = [];
  for (const [name, type] of fields) {
    const v = values[name];
    if (typeof v === 'string' && !DECIMAL.test(v.trim())) {
      out.push({
        instancePath: `/${name}`,
        schemaPath: `#/properties/${name}/type`,
        keyword: 'type',
        params: { type },
        message: `must be ${type}`,
      });
    }
  }
  return out;
}

/** The error that answers a request whose `part` failed `root`: every problem, at the lowest status among them. */
export function requestError(errors: readonly ErrorObject[], root: Node, part: Part, data: unknown): AppError {
  const problems = errors.flatMap((e) => {
    try {
      return problemOf(e, root, part, data) ?? [];
    } catch {
      // A problem that cannot be described is still a problem with this part of the request.
      return [{ field: ROOT_FIELD[part], why: INVALID, status: DEFAULT_STATUS[part] }];
    }
  });
  if (problems.length === 0) problems.push({ field: ROOT_FIELD[part], why: INVALID, status: DEFAULT_STATUS[part] });
  const status = Math.min(...problems.map((p) => p.status));
  // A Map, not an object: a field may be called `__proto__` or `constructor`.
  const fields = new Map<string, string[]>();
  for (const p of problems) {
    if (p.status !== status) continue;
    const reasons = fields.get(p.field) ?? [];
    if (!reasons.includes(p.why)) reasons.push(p.why);
    fields.set(p.field, reasons);
  }
  const body: FieldErrors = Object.fromEntries<string[]>(fields);
  const code = status === 404 ? 'not_found' : 'validation_failed';
  const message = [...fields].map(([f, r]) => `${f} ${r.join(', ')}`).join('; ');
  return new AppError(code, status, message, body);
}

interface Problem {
  readonly field: string;
  readonly why: string;
  readonly status: number;
}

function problemOf(e: ErrorObject, root: Node, part: Part, data: unknown): Problem | undefined {
  // The key that failed `propertyNames` comes with an error of its own (minLength, pattern…), which says why.
  if (e.keyword === 'propertyNames') return undefined;
  const path = pointer(e.instancePath);
  const chain = schemaChain(root, pointer(e.schemaPath.replace(/^#/, '')));
  const failing = chain[chain.length - 1] as Link;
  const group = chain.find((l) => l.node['x-group'] === true && l.depth > 0);
  const status = DEFAULT_STATUS[part];

  if (e.keyword === 'additionalProperties') {
    const name = String(e.params.additionalProperty);
    if (group)
      return {
        field: fieldName(data, path.slice(0, group.depth), part),
        why: `has an unknown field ${JSON.stringify(name)}`,
        status,
      };
    const known = Object.keys((failing.node.properties as Node | undefined) ?? {});
    const why = known.length > 0 ? `${UNKNOWN} (expected one of: ${known.join(', ')})` : UNKNOWN;
    return { field: fieldName(data, [...path, name], part), why, status };
  }

  const grouped = group !== undefined && (group !== failing || e.keyword === 'required');
  const fieldPath = group ? path.slice(0, group.depth) : path;
  const relative = group ? path.slice(group.depth) : [];

  if (e.keyword === 'required') {
    const name = String(e.params.missingProperty);
    const properties = (failing.node.properties as Record<string, Node> | undefined) ?? {};
    const own = Object.hasOwn(properties, name) ? properties[name]?.['x-error'] : undefined;
    const why = resolve(own as ErrorAnnotation | undefined, 'required') ?? (grouped ? `${name} ${BLANK}` : BLANK);
    return { ...withStatus(why, status), field: fieldName(data, grouped ? fieldPath : [...path, name], part) };
  }

  const annotation = failing.node['x-error'] as ErrorAnnotation | undefined;
  const value = valueAt(data, path);
  // A query parameter given twice arrives as a list, whatever the schema says it should be.
  let why: Why | undefined =
    part === 'querystring' && path.length === 1 && Array.isArray(value)
      ? 'must be given once'
      : typeof annotation === 'string'
        ? annotation
        : undefined;
  if (why === undefined && !grouped) {
    if (value === null) why = resolve(annotation, 'null') ?? (requiredHere(chain, path) ? BLANK : INVALID);
    else if (typeof value === 'string' && value.trim() === '') why = resolve(annotation, 'blank') ?? BLANK;
  }
  why ??= resolve(annotation, e.keyword) ?? inherited(chain, group) ?? defaultWhy(e);
  const out = withStatus(why, status);
  return { ...out, why: out.why.replace('{index}', relative[0] ?? ''), field: fieldName(data, fieldPath, part) };
}

/** A reason with its status: the one it names, else the part's. */
function withStatus(why: Why, status: number): { why: string; status: number } {
  return typeof why === 'string' ? { why, status } : why;
}

/** The reason the annotation gives for `keyword`: its own entry, else its `default`. */
function resolve(annotation: ErrorAnnotation | undefined, keyword: string): Why | undefined {
  if (annotation === undefined) return undefined;
  if (typeof annotation === 'string') return annotation;
  if (Object.hasOwn(annotation, keyword)) return annotation[keyword];
  if (keyword === 'null' || keyword === 'blank' || keyword === 'required') return undefined;
  return Object.hasOwn(annotation, 'default') ? annotation.default : undefined;
}

/** Inside a group, a schema without a reason of its own takes the nearest reason above it, up to the group. */
function inherited(chain: readonly Link[], group: Link | undefined): Why | undefined {
  if (!group) return undefined;
  for (let i = chain.length - 2; i >= 0; i--) {
    const link = chain[i] as Link;
    const a = link.node['x-error'] as ErrorAnnotation | undefined;
    if (typeof a === 'string') return a;
    if (a && Object.hasOwn(a, 'default')) return a.default;
    if (link === group) break;
  }
  return undefined;
}

function defaultWhy(e: ErrorObject): string {
  const limit = (e.params as { limit?: number }).limit;
  switch (e.keyword) {
    case 'maxLength':
      return `must be at most ${String(limit)} characters`;
    case 'minLength':
      return limit === 1 ? BLANK : `must be at least ${String(limit)} characters`;
    case 'maxItems':
      return `must have at most ${String(limit)} items`;
    case 'minItems':
      return limit === 1 ? 'must not be empty' : `must have at least ${String(limit)} items`;
    case 'maxProperties':
      return `must have at most ${String(limit)} fields`;
    case 'minProperties':
      return 'must not be empty';
    case 'maximum':
      return `must be at most ${String(limit)}`;
    case 'minimum':
      return `must be at least ${String(limit)}`;
    case 'exclusiveMaximum':
      return `must be below ${String(limit)}`;
    case 'exclusiveMinimum':
      return `must be above ${String(limit)}`;
    default:
      return INVALID;
  }
}

interface Link {
  readonly node: Node;
  /** How many levels into the data this schema applies. */
  readonly depth: number;
}

/** The schemas from the root to the one whose keyword failed, each with the data depth it applies at. */
function schemaChain(root: Node, segments: readonly string[]): Link[] {
  const chain: Link[] = [{ node: root, depth: 0 }];
  let node: unknown = root;
  let depth = 0;
  // The last segment is the keyword that failed.
  for (let i = 0; i < segments.length - 1; i++) {
    const keyword = segments[i] as string;
    node = isNode(node) ? node[keyword] : undefined;
    if (CONTAINERS.has(keyword) && i + 1 < segments.length - 1)
      node = isNode(node) ? node[segments[++i] as string] : undefined;
    if (DESCENDS.has(keyword)) depth++;
    if (!isNode(node)) break;
    chain.push({ node, depth });
  }
  return chain;
}

/** Whether the value at `path` is a required property of its parent (the root always is). */
function requiredHere(chain: readonly Link[], path: readonly string[]): boolean {
  if (path.length === 0) return true;
  const parent = [...chain].reverse().find((l) => l.depth === path.length - 1);
  const required = parent?.node.required;
  return Array.isArray(required) && required.includes(path[path.length - 1]);
}

function isNode(v: unknown): v is Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The segments of a JSON pointer (`/a/0/b~1c` -> a, 0, b/c). */
function pointer(text: string): string[] {
  if (text === '') return [];
  return text
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(data: unknown, path: readonly string[]): unknown {
  let v = data;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** `worker.pid`, `messages[1].topic`: keys joined with dots, array positions in brackets. */
function fieldName(data: unknown, path: readonly string[], part: Part): string {
  if (path.length === 0) return ROOT_FIELD[part];
  let name = '';
  let v = data;
  for (const key of path) {
    name += Array.isArray(v) ? `[${key}]` : name === '' ? key : `.${key}`;
    v = v !== null && typeof v === 'object' && Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
  }
  return name;
}

/**
 * Fastify's serializer compiler: JSON.stringify, as without schemas. With
 * `onMismatch`, each response is first checked against its schema and each
 * difference reported as one line naming the route and status.
 */
export function serializerCompiler(onMismatch?: (problem: string) => void): FastifySerializerCompiler<unknown> {
  if (!onMismatch) return () => (data) => JSON.stringify(data);
  const check = ajv(false);
  return ({ schema, method, url, httpStatus }) => {
    const validate = check.compile(schema as object);
    return (data) => {
      if (!validate(data)) {
        const what = (validate.errors ?? []).map(
          (e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
        );
        onMismatch(`${method} ${url} ${httpStatus}: ${what.join('; ')}`);
      }
      return JSON.stringify(data);
    };
  };
}
