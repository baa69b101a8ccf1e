/**
 * The web UI's files as the producer serves them (built by `pnpm build`
 * into dist/ui): the page at `/`, scripts and styles under `/ui/`, each
 * with a Content-Security-Policy that allows nothing inline.
 */
import { expect } from 'chai';
import { call, startApi, type Api } from '../helpers.js';

describe('web UI files', () => {
  let api: Api;
  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await api.close();
  });

  it('serves the page at / with a strict Content-Security-Policy and no inline script', async () => {
    const res = await call(api.app, 'GET', '/');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/html/);
    expect(res.headers['content-security-policy']).to.include("default-src 'self'");
    expect(res.headers['content-security-policy']).to.include("script-src 'self'");
    expect(res.headers['content-security-policy']).not.to.include('unsafe-inline');
    expect(res.headers['x-content-type-options']).to.equal('nosniff');
    expect(res.raw).to.include('<script type="module" src="/ui/js/main.js"></script>');
    // Every <script> has a src: nothing inline.
    expect(res.raw.match(/<script(?![^>]*\bsrc=)[^>]*>/g)).to.equal(null);
    // No asset from another origin.
    expect(res.raw).not.to.match(/(src|href)="(https?:)?\/\//);
  });

  it('serves the scripts and the stylesheet under /ui/ with the same policy', async () => {
    const js = await call(api.app, 'GET', '/ui/js/main.js');
    expect(js.status).to.equal(200);
    expect(js.headers['content-type']).to.match(/javascript/);
    expect(js.headers['content-security-policy']).to.include("default-src 'self'");
    const css = await call(api.app, 'GET', '/ui/style.css');
    expect(css.status).to.equal(200);
    expect(css.headers['content-type']).to.match(/^text\/css/);
  });

  it('answers an unknown asset with a 404 in the API error shape', async () => {
    const res = await call(api.app, 'GET', '/ui/nope.js');
    expect(res.status).to.equal(404);
    const other = await call(api.app, 'GET', '/nope');
    expect(other.status).to.equal(404);
    expect(other.body).to.have.nested.property('data.errors.path');
  });

  it('never builds HTML from data: the browser code has no innerHTML, outerHTML, insertAdjacentHTML or document.write', async () => {
    for (const file of [
      'main',
      'dom',
      'forms',
      'api',
      'view',
      'pages/messages',
      'pages/failing',
      'pages/topics',
      'pages/publisher',
      'pages/publishers',
    ]) {
      const res = await call(api.app, 'GET', `/ui/js/${file}.js`);
      expect(res.status, file).to.equal(200);
      expect(res.raw, file).not.to.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
  });
});
