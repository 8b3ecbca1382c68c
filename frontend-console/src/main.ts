// The console shell: sign-in gate, navigation, language switch and a hash router
// (#/connectors, #/knowledge, ...), so the API serves one static index.html.
import './styles.css';
import { Api, describeError, type Session } from './api';
import { canManage, type Context, type Page } from './context';
import { h } from './dom';
import { getLanguage, LANGUAGES, setLanguage, t } from './i18n';
import { connectorsPage } from './pages/connectors';
import { insightPage } from './pages/insight';
import { knowledgePage } from './pages/knowledge';
import { settingsPage } from './pages/settings';
import { acceptPage, signInPage } from './pages/signin';
import { teamPage } from './pages/team';

interface Route {
  path: string;
  label: () => string;
  page: Page;
  managersOnly: boolean;
}

const ROUTES: Route[] = [
  { path: 'connectors', label: () => t('nav.connectors'), page: connectorsPage, managersOnly: true },
  { path: 'knowledge', label: () => t('nav.knowledge'), page: knowledgePage, managersOnly: false },
  { path: 'assistant', label: () => t('nav.assistant'), page: settingsPage, managersOnly: true },
  { path: 'insight', label: () => t('nav.insight'), page: insightPage, managersOnly: true },
  { path: 'team', label: () => t('nav.team'), page: teamPage, managersOnly: true },
];

const api = new Api();
const root = document.getElementById('app')!;
let session: Session | null = null;
let cleanups: (() => void)[] = [];
let lastPath: string | null = null;

function currentPath(): { path: string; params: URLSearchParams } {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  return { path, params: new URLSearchParams(query) };
}

function languageSwitch(): HTMLElement {
  const select = h(
    'select',
    { id: 'language', 'aria-label': t('app.language') },
    LANGUAGES.map((code) => h('option', { value: code, selected: code === getLanguage() }, t(`language.${code}`))),
  );
  select.addEventListener('change', () => {
    setLanguage(select.value);
    void render();
  });
  return select;
}

function shell(current: Session, routes: Route[], active: string, content: HTMLElement): HTMLElement {
  return h(
    'div',
    { class: 'shell' },
    h(
      'header',
      { class: 'top' },
      h('span', { class: 'brand' }, t('app.title')),
      h(
        'nav',
        { 'aria-label': t('app.navigation') },
        h(
          'ul',
          {},
          routes.map((route) =>
            h(
              'li',
              {},
              h(
                'a',
                { href: `#/${route.path}`, 'aria-current': route.path === active ? 'page' : undefined },
                route.label(),
              ),
            ),
          ),
        ),
      ),
      h(
        'div',
        { class: 'account' },
        languageSwitch(),
        h('span', { class: 'who' }, `${current.user.name || current.user.email} (${t(`role.${current.user.role}`)})`),
        h('button', { type: 'button', onclick: () => void signOut(false) }, t('app.signOut')),
        h('button', { type: 'button', class: 'link', onclick: () => void signOut(true) }, t('app.signOutEverywhere')),
      ),
    ),
    h('main', { id: 'main', tabindex: '-1' }, content),
  );
}

async function signOut(everywhere: boolean): Promise<void> {
  try {
    await api.signOut(everywhere);
  } finally {
    session = null;
    lastPath = null;
    if (location.hash === '#/signin') void render();
    else location.hash = '#/signin';
  }
}

async function render(): Promise<void> {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  document.documentElement.lang = getLanguage();
  document.title = t('app.title');
  const { path, params } = currentPath();
  const signedIn = (next: Session) => {
    session = next;
    lastPath = null;
    // Changing the hash renders (hashchange); render here only when it does not change.
    if (location.hash === '#/') void render();
    else location.hash = '#/';
  };
  if (path === 'accept') {
    root.replaceChildren(acceptPage(api, params.get('token') ?? '', signedIn, languageSwitch()));
    return;
  }
  if (!session) session = await api.currentSession().catch(() => null);
  if (!session) {
    root.replaceChildren(signInPage(api, signedIn, languageSwitch()));
    return;
  }
  const routes = ROUTES.filter((route) => !route.managersOnly || canManage(session!));
  const route = routes.find((r) => r.path === path) ?? routes[0];
  const ctx: Context = {
    api,
    session,
    refresh: () => void render(),
    onLeave: (cleanup) => cleanups.push(cleanup),
  };
  const content = h('div', { class: 'loading', role: 'status' }, t('app.loading'));
  root.replaceChildren(shell(session, routes, route.path, content));
  // A new page moves focus to its content (screen readers announce it, Tab continues there).
  const moved = route.path !== lastPath;
  lastPath = route.path;
  try {
    const page = await route.page(ctx);
    content.replaceWith(page);
    if (moved) document.getElementById('main')?.focus({ preventScroll: true });
  } catch (error) {
    content.replaceWith(h('p', { class: 'status', 'data-kind': 'error', role: 'alert' }, describeError(error)));
  }
}

window.addEventListener('hashchange', () => void render());
void render();
