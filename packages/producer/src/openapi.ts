/**
 * The OpenAPI 3.1 description of the API, generated from the routes' own
 * schemas (the ones requests are validated with), served at
 * `GET /api/openapi.json`. Routes are recorded as they are registered
 * (`collectRoutes` must come before them); a route with `hide: true` in its
 * schema (the web UI's files) is left out.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { isPublic } from './auth.js';
import type { Schema } from './schemas.js';

declare module 'fastify' {
  interface FastifySchema {
    /** Left out of the OpenAPI document. */
    hide?: boolean;
    tags?: readonly string[];
    summary?: string;
    description?: string;
  }
}

export interface RouteInfo {
  readonly method: string;
  readonly url: string;
  readonly schema: Schema | undefined;
}

const ROUTES = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Starts recording the routes registered on `app` from now on (HEAD routes fastify adds by itself are left out). */
export function collectRoutes(app: FastifyInstance): void {
  const routes: RouteInfo[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      routes.push({ method, url: route.url, schema: route.schema as Schema | undefined });
    }
  });
}

/** Every route registered on `app` since `collectRoutes`. */
export function registeredRoutes(app: FastifyInstance): readonly RouteInfo[] {
  return ROUTES.get(app) ?? [];
}

/** Annotations for the validation only (see `schema-compilers.ts`), and fastify's own route fields. */
const INTERNAL = new Set(['x-error', 'x-group']);
const ROUTE_FIELDS = new Set(['body', 'querystring', 'params', 'headers', 'response', 'hide']);

/** A copy of a JSON schema without the validation's annotations. */
function clean(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(clean);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) if (!INTERNAL.has(k)) out[k] = clean(v);
  return out;
}

function parameters(schema: Schema | undefined, where: 'path' | 'query' | 'header'): unknown[] {
  const properties = (schema?.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema?.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => {
    const { description, ...rest } = clean(s) as Schema;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(description === undefined ? {} : { description }),
      schema: rest,
    };
  });
}

const STATUS_TEXT: Record<string, string> = { '200': 'OK', '201': 'Created', '204': 'No content' };

function responses(response: Record<string, Schema> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, s] of Object.entries(response ?? { 200: {} })) {
    const { description, content, ...schema } = clean(s) as Schema;
    const text = (description as string | undefined) ?? STATUS_TEXT[status] ?? 'Answer';
    const key = status.toUpperCase();
    if (content !== undefined) out[key] = { description: text, content };
    else if (schema.type === 'null') out[key] = { description: text };
    else out[key] = { description: text, content: { 'application/json': { schema } } };
  }
  return out;
}

function operation(route: RouteInfo): Record<string, unknown> {
  const s = route.schema ?? {};
  const extra = Object.fromEntries(Object.entries(s).filter(([k]) => !ROUTE_FIELDS.has(k)));
  const body = s.body as Schema | undefined;
  const bodyOptional = Array.isArray(body?.type) && (body.type as string[]).includes('null');
  return {
    ...extra,
    parameters: [
      ...parameters(s.params as Schema | undefined, 'path'),
      ...parameters(s.querystring as Schema | undefined, 'query'),
      ...parameters(s.headers as Schema | undefined, 'header'),
    ],
    ...(body === undefined
      ? {}
      : {
          requestBody: {
            required: !bodyOptional,
            content: { 'application/json': { schema: clean(bodyOptional ? { ...body, type: 'object' } : body) } },
          },
        }),
    responses: responses(s.response as Record<string, Schema> | undefined),
    ...(isPublic(route.url) ? { security: [] } : {}),
  };
}

/** The OpenAPI 3.1 document of every route registered on `app` and not hidden. */
export function openApiDocument(app: FastifyInstance, version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of registeredRoutes(app)) {
    if (route.schema?.hide === true) continue;
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Postoffice',
      version,
      description:
        'Buffers and delivers messages: send a message to a topic, and each publisher of the topic delivers it to its target. Errors have Postoffice\'s shape, `{"data":{"errors":{"<field>":["<why>"]}}}`.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'One of API_TOKENS (when set).' },
        session: { type: 'apiKey', in: 'cookie', name: 'po_session', description: 'The web UI’s session.' },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}

/** This package's version (from `src/` in tests and `dist/` alike). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

/** `GET /api/openapi.json`. */
export function registerOpenApiRoute(app: FastifyInstance): void {
  let document: string | undefined;
  app.get(
    '/api/openapi.json',
    {
      schema: {
        tags: ['operations'],
        summary: 'This document: the API in OpenAPI 3.1',
        response: { 200: { type: 'object', description: 'The OpenAPI document.' } },
      },
    },
    async (_request, reply) => {
      // Routes are all registered once the server is ready: the document is made once, on first use.
      document ??= JSON.stringify(openApiDocument(app, packageVersion()));
      return reply.header('content-type', 'application/json; charset=utf-8').send(document);
    },
  );
}
