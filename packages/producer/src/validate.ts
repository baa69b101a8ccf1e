/**
 * Request validation. A `Checker` reads fields of a JSON body, collects
 * every problem (field -> reasons, Postoffice's error shape) and throws one
 * `ValidationError` naming them all. Types must be right: a number sent as a
 * string is refused, never coerced. Unknown fields are ignored.
 */
import { TOPIC_NAME, ValidationError, type FieldErrors, type RateLimit } from '@postoffice/shared';

export const BLANK = "can't be blank";
export const INVALID = 'is invalid';
export const BAD_FORMAT = 'has invalid format';

export type Body = Readonly<Record<string, unknown>>;

/** The request body as a JSON object, or a 400 naming `body`. */
export function objectBody(body: unknown): Body {
  if (body === undefined || body === null) throw new ValidationError({ body: [BLANK] });
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationError({ body: ['must be a JSON object'] });
  return body as Body;
}

/** What is wrong with `s` as an http target: not an absolute http(s) URL with a host, or credentials in it. */
export function httpUrlProblem(s: string): string | undefined {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return 'must be an http or https URL';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '')
    return 'must be an http or https URL';
  if (url.username !== '' || url.password !== '') return 'must not contain a user or password';
  return undefined;
}

/** Whether `s` is an absolute http:// or https:// URL with a host and no credentials (`user:password@`). */
export function isHttpUrl(s: string): boolean {
  return httpUrlProblem(s) === undefined;
}

/**
 * Limits of a message's attributes: Google Cloud Pub/Sub's own, since
 * attributes are forwarded to Pub/Sub publishers as they are.
 */
export const MAX_ATTRIBUTES = 100;
export const MAX_ATTRIBUTE_KEY_BYTES = 256;
export const MAX_ATTRIBUTE_VALUE_BYTES = 1024;

/**
 * What is wrong with attributes sent under `field`, as [field, reason]
 * pairs (a value too long is named `<field>.<key>`); empty when they are
 * fine. Anything but an object of strings is one problem.
 */
export function attributeProblems(value: unknown, field = 'attributes'): [string, string][] {
  if (!isStringMap(value)) return [[field, 'must be a map of strings']];
  const entries = Object.entries(value);
  if (entries.length > MAX_ATTRIBUTES) return [[field, `must have at most ${MAX_ATTRIBUTES} attributes`]];
  const out: [string, string][] = [];
  for (const [key, v] of entries) {
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes === 0) out.push([field, 'must not have an empty key']);
    else if (keyBytes > MAX_ATTRIBUTE_KEY_BYTES)
      out.push([field, `must not have a key longer than ${MAX_ATTRIBUTE_KEY_BYTES} bytes`]);
    else if (Buffer.byteLength(v) > MAX_ATTRIBUTE_VALUE_BYTES)
      out.push([`${field}.${key}`, `must be at most ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`]);
  }
  return out;
}

/** Whether `name` may be a topic name (it goes into a Redis hash tag and a URL path). */
export function isTopicName(name: string): boolean {
  return TOPIC_NAME.test(name);
}

/** Whether `value` is an object whose values are all strings. */
export function isStringMap(value: unknown): value is Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return Object.values(value).every((v) => typeof v === 'string');
}

/** Deepest nesting of arrays and objects accepted in a payload (JSON.stringify recurses, and would overflow the stack). */
export const MAX_PAYLOAD_DEPTH = 100;

/** Whether `value` nests arrays and objects more than `max` levels deep. Iterative: any depth is safe to check. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Object.values(v))
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

export class Checker {
  readonly errors: FieldErrors = {};

  constructor(readonly body: Body) {}

  /** The field's value; own properties only, so `constructor` and friends are never read from the prototype. */
  value(field: string): unknown {
    return Object.hasOwn(this.body, field) ? this.body[field] : undefined;
  }

  /** Whether the field was sent with a value other than null. */
  present(field: string): boolean {
    const v = this.value(field);
    return v !== undefined && v !== null;
  }

  add(field: string, why: string): void {
    (this.errors[field] ??= []).push(why);
  }

  get ok(): boolean {
    return Object.keys(this.errors).length === 0;
  }

  /** Throws the collected problems, if any, with the given status. */
  done(statusCode = 400): void {
    if (!this.ok) throw new ValidationError({ ...this.errors }, statusCode);
  }

  /** A required, non-blank string (trimmed). */
  requiredString(field: string): string | undefined {
    const v = this.value(field);
    if (v === undefined || v === null) return this.fail(field, BLANK);
    if (typeof v !== 'string') return this.fail(field, INVALID);
    const s = v.trim();
    if (s === '') return this.fail(field, BLANK);
    return s;
  }

  /**
   * A required topic name matching `TOPIC_NAME`. A new topic's name is
   * refused as `has invalid format`; a reference to a topic as `is invalid`,
   * like any unknown topic.
   */
  topicName(field = 'topic', why = INVALID): string | undefined {
    const name = this.requiredString(field);
    if (name === undefined) return undefined;
    if (!isTopicName(name)) return this.fail(field, why);
    return name;
  }

  /** A required http(s) URL. */
  httpUrl(field: string): string | undefined {
    const s = this.requiredString(field);
    if (s === undefined) return undefined;
    const problem = httpUrlProblem(s);
    if (problem) return this.fail(field, problem);
    return s;
  }

  /** An optional boolean; null counts as absent. */
  optionalBoolean(field: string): boolean | undefined {
    const v = this.value(field);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') return this.fail(field, INVALID);
    return v;
  }

  /** An optional number above 0, at most `max`; null counts as absent. */
  optionalPositiveNumber(field: string, max?: { value: number; why: string }): number | undefined {
    const v = this.value(field);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return this.fail(field, 'must be a positive number');
    if (max && v > max.value) return this.fail(field, max.why);
    return v;
  }

  /** An optional whole number in `[min, max]`; null counts as absent. */
  optionalInteger(field: string, min: number, max: number): number | undefined {
    const v = this.value(field);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.fail(field, `must be a whole number from ${min} to ${max}`);
    }
    return v;
  }

  /**
   * An optional rate limit: `{"per_second": number > 0, "burst": whole
   * number >= 1}`, or null for none (returned as null, unlike absent).
   */
  optionalRateLimit(field: string, max: number): RateLimit | null | undefined {
    const v = this.value(field);
    if (v === undefined) return undefined;
    if (v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) {
      return this.fail(field, 'must be an object {"per_second": number, "burst": number} or null');
    }
    const o = v as Record<string, unknown>;
    const perSecond = Object.hasOwn(o, 'per_second') ? o.per_second : undefined;
    const burst = Object.hasOwn(o, 'burst') ? o.burst : undefined;
    const before = this.errors[field]?.length ?? 0;
    if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0 || perSecond > max) {
      this.add(field, `per_second must be a number above 0, at most ${max}`);
    }
    if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > max) {
      this.add(field, `burst must be a whole number from 1 to ${max}`);
    }
    for (const key of Object.keys(o)) {
      if (key !== 'per_second' && key !== 'burst') this.add(field, `has an unknown field ${JSON.stringify(key)}`);
    }
    if ((this.errors[field]?.length ?? 0) > before) return undefined;
    return { per_second: perSecond as number, burst: burst as number };
  }

  /** A required payload: any JSON value but null, nested at most `MAX_PAYLOAD_DEPTH` levels. */
  payload(field = 'payload'): unknown {
    const v = this.value(field);
    if (v === undefined || v === null) return this.fail(field, BLANK);
    if (nestedDeeperThan(v, MAX_PAYLOAD_DEPTH))
      return this.fail(field, `is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
    return v;
  }

  /** Optional attributes: an object of strings within the attribute limits; null counts as absent. */
  optionalAttributes(field = 'attributes'): Record<string, string> | undefined {
    const v = this.value(field);
    if (v === undefined || v === null) return undefined;
    const problems = attributeProblems(v, field);
    for (const [f, why] of problems) this.add(f, why);
    return problems.length === 0 ? (v as Record<string, string>) : undefined;
  }

  private fail(field: string, why: string): undefined {
    this.add(field, why);
    return undefined;
  }
}
