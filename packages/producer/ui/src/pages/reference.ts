/**
 * The API reference: the producer's own OpenAPI document
 * (`/api/openapi.json`, generated from the schemas the routes validate
 * with), drawn as a page of the UI. Nothing comes from another origin, and
 * every text from the document is shown as text.
 */
import { api } from '../api.js';
import { badge, card, h, replace, type Child } from '../dom.js';
import { pageHeader, type Page } from '../view.js';

type Schema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  not?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: boolean | Schema;
};

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: Schema }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, { description: string }>;
  security?: unknown[];
}

interface Document {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
}

/** Descriptions are Markdown; here they are plain text, without the code quotes. */
const plain = (text: string | undefined): string => (text ?? '').replace(/`/g, '');

const TAGS = ['topics', 'publishers', 'messages', 'failing', 'pull', 'operations'];
const METHOD_TONE: Record<string, string> = {
  get: 'blue',
  post: 'green',
  patch: 'amber',
  delete: 'red',
  put: 'purple',
};

/** A schema in a few words: `whole number, 1 to 1000`, `string, at most 2048`. */
function describe(s: Schema | undefined): string {
  if (!s) return 'any';
  if (s.not !== undefined && Object.keys(s.not as object).length === 0) return 'not accepted';
  const parts: string[] = [];
  const types = [s.type ?? []].flat().filter((t) => t !== 'null');
  const nullable = [s.type ?? []].flat().includes('null');
  if (s.enum) parts.push(`one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  else if (types.length === 0) parts.push('any JSON');
  else if (types.length > 3) parts.push('any JSON but null');
  else
    parts.push(
      types
        .map((t) =>
          t === 'integer'
            ? 'whole number'
            : t === 'array'
              ? `list${s.items ? ` of ${describe({ ...s.items, description: undefined })}` : ''}`
              : t,
        )
        .join(' or '),
    );
  if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`${s.minimum} to ${s.maximum}`);
  else if (s.minimum !== undefined) parts.push(`at least ${s.minimum}`);
  else if (s.maximum !== undefined) parts.push(`at most ${s.maximum}`);
  if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`);
  if (s.maxItems !== undefined) parts.push(`at most ${s.maxItems} items`);
  if (s.maxProperties !== undefined) parts.push(`at most ${s.maxProperties} entries`);
  if (s.pattern !== undefined && s.pattern !== '\\S') parts.push(`matching ${s.pattern}`);
  if (nullable) parts.push('or null');
  return parts.join(', ');
}

/** Rows for an object's fields, nested objects as `parent.child`. */
function fieldRows(s: Schema, prefix = ''): HTMLElement[] {
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {}).flatMap(([name, f]) => [
    h(
      'tr',
      null,
      h('td', { class: 'mono' }, `${prefix}${name}`),
      h('td', null, required.has(name) ? 'required' : h('span', { class: 'muted' }, 'optional')),
      h('td', null, describe(f)),
      h('td', null, plain(f.description)),
    ),
    ...(f.properties ? fieldRows(f, `${prefix}${name}.`) : []),
  ]);
}

function fields(title: string, rows: HTMLElement[]): Child {
  if (rows.length === 0) return null;
  return [
    h('h3', { class: 'op-section' }, title),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        null,
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Name', '', 'Takes', 'Meaning'].map((c) => h('th', null, c)),
          ),
        ),
        h('tbody', null, rows),
      ),
    ),
  ];
}

function operationCard(method: string, path: string, op: Operation): HTMLElement {
  const parameters = (op.parameters ?? []).map((p) =>
    h(
      'tr',
      null,
      h('td', { class: 'mono' }, p.name),
      h('td', null, p.in === 'path' ? 'in the path' : p.in === 'header' ? 'header' : 'query'),
      h('td', null, describe(p.schema)),
      h('td', null, p.description ? plain(p.description) : p.required ? 'required' : ''),
    ),
  );
  const body = op.requestBody?.content['application/json']?.schema;
  return h(
    'section',
    { class: 'card op', id: `${method}-${path}`, 'data-route': `${method.toUpperCase()} ${path}` },
    h(
      'h2',
      { class: 'op-title' },
      badge(method.toUpperCase(), METHOD_TONE[method] ?? 'grey'),
      h('span', { class: 'mono' }, path),
      op.security && op.security.length === 0 ? h('span', { class: 'tag' }, 'open') : null,
    ),
    op.summary ? h('p', null, op.summary) : null,
    op.description ? h('p', { class: 'muted' }, plain(op.description)) : null,
    fields('Parameters', parameters),
    body ? fields(op.requestBody?.required ? 'Body (JSON)' : 'Body (JSON, may be left out)', fieldRows(body)) : null,
    h('h3', { class: 'op-section' }, 'Answers'),
    h(
      'ul',
      { class: 'op-answers' },
      Object.entries(op.responses).map(([status, r]) =>
        h('li', null, h('span', { class: 'mono' }, status), ' ', plain(r.description)),
      ),
    ),
  );
}

export const referencePage: Page = async (view) => {
  const doc = await api<Document>('GET', '/api/openapi.json');
  if (view.gone) return;
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method, path, op, tag: op.tags?.[0] ?? 'session' })),
  );
  const tags = [...TAGS, ...new Set(operations.map((o) => o.tag).filter((t) => !TAGS.includes(t)))];
  replace(
    view.main,
    pageHeader(
      'API reference',
      h(
        'span',
        null,
        `${doc.info.title} ${doc.info.version}: every route, what it takes and what it answers. `,
        h('a', { href: '/api/openapi.json' }, 'OpenAPI 3.1 document'),
        '.',
      ),
    ),
    doc.info.description ? card(null, h('p', null, plain(doc.info.description))) : null,
    h(
      'nav',
      { class: 'chips op-index', 'aria-label': 'Sections' },
      tags.map((t) => h('a', { class: 'chip', href: `#/api?section=${t}` }, t)),
    ),
    tags.map((t) => {
      const ops = operations.filter((o) => o.tag === t);
      if (ops.length === 0) return null;
      const wanted = view.query.get('section');
      return h(
        'div',
        { class: 'op-group', 'data-section': t, hidden: wanted !== null && wanted !== t },
        h('h2', { class: 'section-title' }, t),
        ops.map((o) => operationCard(o.method, o.path, o.op)),
      );
    }),
  );
};
