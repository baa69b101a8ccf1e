import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { registeredRoutes } from '../src/openapi.js';
import { call, startApi, type Api } from './helpers.js';

type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
};
type Operation = {
  parameters?: { name: string; in: string; schema: object }[];
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
  security?: unknown[];
};

/** `GET /api/topics/:name`, as fastify and docs/api.md spell a route. */
function routeKey(method: string, url: string): string {
  return `${method.toUpperCase()} ${url}`;
}

describe('the OpenAPI document at GET /api/openapi.json', () => {
  let api: Api;
  let doc: Document;

  before(async () => {
    api = await startApi();
    const res = await call(api.app, 'GET', '/api/openapi.json');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    doc = res.body as Document;
  });
  after(async () => {
    await api.close();
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).to.equal('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)).to.deep.equal([]);
    expect(result.valid).to.equal(true);
  });

  it('holds JSON schemas (2020-12) that compile, for every parameter, body and answer', () => {
    const ajv = new Ajv2020({ strict: false });
    let count = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const schemas = [
          ...(op.parameters ?? []).map((p) => p.schema),
          ...Object.values(op.requestBody?.content ?? {}).map((c) => c.schema),
          ...Object.values(op.responses).flatMap((r) => Object.values(r.content ?? {}).map((c) => c.schema)),
        ];
        for (const schema of schemas) {
          expect(() => ajv.compile(schema), `${method} ${path}`).not.to.throw();
          count++;
        }
      }
    }
    expect(count).to.be.above(100);
  });

  it('describes every route the server has, and no other (the web UI’s files aside)', () => {
    const registered = registeredRoutes(api.app)
      .filter((r) => r.url !== '/' && !r.url.startsWith('/ui/'))
      .map((r) => routeKey(r.method, r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')))
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => routeKey(method, path)))
      .sort();
    expect(documented).to.deep.equal(registered);
    expect(registered).to.include('POST /api/messages');
    expect(registered).to.include('GET /api/openapi.json');
  });

  it('declares the body, parameters and answers of the routes that take them', () => {
    const send = doc.paths['/api/messages']?.post;
    expect(send?.requestBody?.content['application/json']?.schema).to.deep.include({ required: ['topic', 'payload'] });
    expect(Object.keys(send?.responses ?? {})).to.include.members(['201', '400', '503']);
    const lease = doc.paths['/api/publishers/{id}/lease']?.post;
    expect(lease?.parameters?.map((p) => [p.name, p.in])).to.deep.equal([['id', 'path']]);
    const search = doc.paths['/api/messages']?.get;
    expect(search?.parameters?.map((p) => p.name)).to.include.members(['topic', 'state', 'limit', 'cursor']);
  });

  it('marks the open routes as needing no credentials', () => {
    expect(doc.paths['/api/health']?.get?.security).to.deep.equal([]);
    expect(doc.paths['/api/topics']?.get?.security).to.equal(undefined);
  });
});

describe('docs/api.md', () => {
  let api: Api;
  const lines = readFileSync(new URL('../../../docs/api.md', import.meta.url), 'utf8').split('\n');
  // The table of routes: from its header (| route | …) to the first line that is not a row.
  const start = lines.findIndex((l) => /^\|\s*route\s*\|/.test(l));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  // Each row starts with the route in backquotes: | `GET /api/topics/:name` …
  const documented = lines
    .slice(start, end)
    .flatMap((l) => [...l.matchAll(/^\|\s*`(GET|POST|PATCH|PUT|DELETE) ([^`\s?]+)/g)])
    .map((m) => routeKey(m[1] as string, m[2] as string));

  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await api.close();
  });

  it('lists every route the server has, and no other', () => {
    const registered = [...new Set(registeredRoutes(api.app).map((r) => routeKey(r.method, r.url)))].sort();
    expect([...new Set(documented)].sort()).to.deep.equal(registered);
  });

  it('lists each route once', () => {
    expect(start).to.be.above(-1);
    expect(documented.length).to.equal(new Set(documented).size);
  });
});
