/**
 * The web UI: static files built into `dist/ui` (see `ui/` and the
 * package's build script), served at `/` (the page) and under `/ui/` (its
 * scripts and stylesheet). Every asset ships with the package: no CDN. The
 * pages use only the JSON API, so they are public; the API decides who may
 * read what. A strict Content-Security-Policy allows scripts and styles
 * from this origin only, never inline.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { errorBody } from '../http-errors.js';

/** `dist/ui` of this package, from `src/routes` (tests) and `dist/routes` alike. */
export const UI_ROOT = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function secure(reply: FastifyReply | { setHeader(name: string, value: string): unknown }): void {
  const set = (name: string, value: string): unknown =>
    'header' in reply ? reply.header(name, value) : reply.setHeader(name, value);
  set('content-security-policy', CONTENT_SECURITY_POLICY);
  set('x-content-type-options', 'nosniff');
  set('referrer-policy', 'no-referrer');
  set('x-frame-options', 'DENY');
}

export function registerUiRoutes(app: FastifyInstance, root = UI_ROOT): void {
  if (!existsSync(`${root}index.html`)) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.code(404).send(errorBody({ ui: ['is not built: run pnpm build'] })),
    );
    return;
  }
  void app.register(fastifyStatic, {
    root,
    prefix: '/ui/',
    index: false,
    setHeaders: (res) => secure(res),
  });
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    secure(reply);
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  });
}
