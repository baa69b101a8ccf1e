/**
 * The web UI's entry point: the layout, a hash router, and the session.
 *
 * States: checking (GET /api/session) -> login (tokens are configured and
 * there is no session) or app (routes drawn into <main>); any 401 from the
 * API moves app -> login, a successful login moves login -> app, and the
 * logout button moves app -> login.
 */
import { api, plainError, whenUnauthorized, type Session } from './api.js';
import { act, h, replace, toast } from './dom.js';
import { clusterPage } from './pages/cluster.js';
import { dashboardPage } from './pages/dashboard.js';
import { failingListPage, failingPage } from './pages/failing.js';
import { loginPage } from './pages/login.js';
import { messagePage, messagesPage } from './pages/messages.js';
import { publisherPage } from './pages/publisher.js';
import { publisherFormPage, publishersPage } from './pages/publishers.js';
import { referencePage } from './pages/reference.js';
import { sourcesPage } from './pages/sources.js';
import { topicsPage } from './pages/topics.js';
import { go, type Page, type View } from './view.js';

const NAV: [hash: string, label: string, icon: string][] = [
  ['#/', 'Dashboard', '◧'],
  ['#/topics', 'Topics', '#'],
  ['#/publishers', 'Publishers', '⇢'],
  ['#/sources', 'Sources', '⇠'],
  ['#/messages', 'Messages', '✉'],
  ['#/failing', 'Failing', '!'],
  ['#/cluster', 'Cluster', '⬡'],
  ['#/api', 'API', '{}'],
];

function route(name: string, rest: string[]): Page | undefined {
  switch (name) {
    case '':
      return dashboardPage;
    case 'topics':
      return topicsPage;
    case 'publishers':
      if (rest.length === 0) return publishersPage;
      return rest[0] === 'new' || rest[1] === 'edit'
        ? publisherFormPage
        : rest.length === 1
          ? publisherPage
          : undefined;
    case 'sources':
      return sourcesPage;
    case 'messages':
      return rest.length === 0 ? messagesPage : rest.length === 1 ? messagePage : undefined;
    case 'failing':
      return rest.length === 0 ? failingListPage : rest.length === 1 ? failingPage : undefined;
    case 'cluster':
      return clusterPage;
    case 'api':
      return referencePage;
    case 'login':
      return loginPage;
    default:
      return undefined;
  }
}

let session: Session = { auth_required: false, authenticated: true };
let leave: () => void = () => undefined;
let afterLogin = '#/';

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const logout = document.getElementById('logout') as HTMLButtonElement;

function drawNav(current: string): void {
  replace(
    nav,
    NAV.map(([hash, label, icon]) => {
      const here = hash === '#/' ? current === '' : current === hash.slice(2);
      return h(
        'a',
        { href: hash, class: here ? 'nav-item active' : 'nav-item', 'aria-current': here ? 'page' : null },
        h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, icon),
        h('span', null, label),
      );
    }),
  );
}

async function render(): Promise<void> {
  leave();
  const raw = location.hash.replace(/^#\/?/, '');
  const [path = '', search = ''] = raw.split('?', 2);
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  const name = parts[0] ?? '';
  const needsLogin = session.auth_required && !session.authenticated;
  if (needsLogin && name !== 'login') {
    afterLogin = location.hash && !location.hash.startsWith('#/login') ? location.hash : '#/';
    go('#/login');
    return;
  }
  document.body.classList.toggle('logged-out', name === 'login');
  logout.hidden = !session.auth_required || !session.authenticated;
  drawNav(name);
  const page = route(name, parts.slice(1));
  const timers: number[] = [];
  let gone = false;
  leave = () => {
    gone = true;
    for (const t of timers) clearInterval(t);
  };
  const view: View = {
    main,
    params: parts.slice(1),
    query: new URLSearchParams(search),
    every(ms, fn) {
      let busy = false;
      timers.push(
        window.setInterval(() => {
          if (busy || document.hidden || gone) return;
          busy = true;
          fn()
            .catch(() => undefined)
            .finally(() => (busy = false));
        }, ms),
      );
    },
    get gone() {
      return gone;
    },
  };
  main.setAttribute('aria-busy', 'true');
  replace(main, h('div', { class: 'loading' }, 'Loading…'));
  try {
    if (!page)
      replace(
        main,
        h(
          'div',
          { class: 'card empty-state not-found', 'data-testid': 'not-found' },
          h('h1', null, 'Page not found'),
          h('p', null, `Nothing lives at ${location.hash || '/'}.`),
          h('a', { class: 'btn', href: '#/' }, 'Back to the dashboard'),
        ),
      );
    else await page(view);
  } catch (err) {
    if (!gone)
      replace(
        main,
        h(
          'div',
          { class: 'card empty-state', role: 'alert' },
          h('h1', null, 'Something went wrong'),
          h('p', null, plainError(err)),
          h('a', { class: 'btn', href: '#/' }, 'Back to the dashboard'),
        ),
      );
  } finally {
    main.removeAttribute('aria-busy');
  }
  main.focus({ preventScroll: true });
}

// The login page says when it has a session.
window.addEventListener('po:login', () => {
  session = { ...session, authenticated: true };
  go(afterLogin);
});

whenUnauthorized(() => {
  if (!session.auth_required || session.authenticated) toast('Your session ended: log in again.', 'error');
  session = { auth_required: true, authenticated: false };
  if (!location.hash.startsWith('#/login')) {
    afterLogin = location.hash || '#/';
    go('#/login');
  }
});

logout.addEventListener(
  'click',
  act(async () => {
    await api('DELETE', '/api/session');
    session = { ...session, authenticated: false };
    afterLogin = '#/';
    go('#/login');
  }),
);

async function start(): Promise<void> {
  try {
    session = await api<Session>('GET', '/api/session');
  } catch {
    // A server without sessions (no auth configured): everything is open.
    session = { auth_required: false, authenticated: true };
  }
  window.addEventListener('hashchange', () => void render());
  await render();
}

void start();
