// Browser check of the built console in Debian's Chromium, driven by playwright-core.
//
//   node tests/console_ui/e2e_console.mjs                 # against a built-in contract replay
//   API_BASE=http://127.0.0.1:8000 EMAIL=… PASSWORD=… FRESHDESK_DOMAIN=127.0.0.1:PORT \
//     FRESHDESK_API_KEY=… node tests/console_ui/e2e_console.mjs   # against the real API
//
// Signs in, connects Freshdesk through the schema-generated form (test connection, save and
// sync), watches the sync run to its end, edits the tone and waits for the draft preview to
// change, reads the insight charts, switches to Korean, checks keyboard focus, and takes
// screenshots at 1280 and 390 px wide into SCREENSHOT_DIR (when set).
// Prints a JSON summary and exits non-zero on failure. Run `npm run build` first.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const consoleDir = join(here, '..', '..', 'frontend-console');
const require = createRequire(join(consoleDir, 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const STEP_TIMEOUT_MS = Number(process.env.STEP_TIMEOUT_MS ?? 30_000);
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** A replay of the console contract (/console/api and the /v1 endpoints the console calls),
 *  on the same origin as the built files, as the API serves them. */
async function replayApi() {
  const seen = [];
  const csrf = 'csrf-replay';
  let signedIn = false;
  let agentSignedIn = false;
  const connectors = [];
  const runs = new Map();
  const freshdeskSchema = {
    type: 'object', title: 'Freshdesk', required: ['domain', 'api_key'],
    properties: {
      domain: { type: 'string', title: 'Domain', description: 'Helpdesk host, e.g. acme.freshdesk.com (or just acme).' },
      api_key: { type: 'string', title: 'Api Key', description: 'An agent API key (Profile settings).' },
      per_page: { type: 'integer', default: 100, minimum: 1, maximum: 100, title: 'Per Page' },
      include_articles: { type: 'boolean', default: true, title: 'Include Articles' },
      attachments: { $ref: '#/$defs/AttachmentSettings' },
    },
  };
  const kinds = [
    { kind: 'freshdesk', title: 'Freshdesk', settings_schema: freshdeskSchema, secret_fields: ['api_key'] },
    { kind: 'zendesk', title: 'Zendesk', secret_fields: ['api_token'], settings_schema: { type: 'object', required: ['subdomain', 'email', 'api_token'], properties: { subdomain: { type: 'string' }, email: { type: 'string' }, api_token: { type: 'string' } } } },
  ];
  const days = Array.from({ length: 7 }, (_, i) => new Date(Date.UTC(2026, 10, 28 + i)).toISOString().slice(0, 10));
  const assistant = {
    by_day: days.flatMap((day, i) => [
      { day, task: 'draft_reply', calls: 20 + i * 3, cache_hits: 4 + i, cache_hit_rate: null, latency_p50_ms: 820, latency_p95_ms: 1900 - i * 40 },
      { day, task: 'answer', calls: 11 + i, cache_hits: 5, cache_hit_rate: null, latency_p50_ms: 610, latency_p95_ms: 1400 },
    ]),
    by_task: [{ task: 'draft_reply', calls: 203 }, { task: 'answer', calls: 98 }],
    by_provider: days.map((day, i) => ({ day, provider: 'openai', calls: 31 + i * 4, prompt_tokens: 40000, completion_tokens: 9000, cost_usd: 0.11 + i * 0.02 })),
  };
  const drafts = (inserted, edited, discarded) => ({ inserted, edited, discarded, reported: inserted + edited + discarded, acceptance_rate: (inserted + edited) / (inserted + edited + discarded) });
  const feedback = {
    by_day: days.map((day, i) => ({ day, up: 6 + i, down: 2, reasons: { outdated: 1, wrong_tone: 1 }, drafts: drafts(8 + i, 3, 4 - (i % 3)) })),
    reasons: { outdated: 7, wrong_tone: 5, missing_steps: 3 },
    drafts: drafts(77, 21, 19),
  };
  const reviews = { by_day: days.map((day, i) => ({ day, platform: 'google_business', location: null, reviews: 5, average_rating: 3.6 + i * 0.1, positive: 2 + (i % 3), neutral: 1, negative: 2 - (i % 2) })) };
  const gaps = { gaps: [{ volume: 9, trend: 0.4, representative_questions: ['Can the hub work on 5 GHz?', 'Hub drops after router update'], draft_article: { title: 'Using the Lumen hub with 5 GHz routers', body: 'The hub only supports 2.4 GHz...', cites: ['ticket:LH-1001'] } }] };
  const accuracy = { fields: [{ field: 'priority', accepted: 30, overridden: 6, accuracy: 0.833 }, { field: 'group', accepted: 21, overridden: 9, accuracy: 0.7 }] };
  const users = [{ id: 'u-1', email: 'admin@lumen.example', name: 'Demo Admin', role: 'owner', company_id: 'demo', invitation_pending: false }];
  const keys = [];
  let companySettings = { tone: { style: 'friendly', greeting: 'Hi {name},', sign_off: 'Cheers,', signature: 'The Lumen Home support team' }, languages: ['en', 'ko'], pii_redaction: true, llm: { route: 'openai-mini', monthly_budget_usd: 50 }, widget_origins: ['https://lumen-home.freshdesk.com'], audiences: ['agent', 'customer'] };

  const route = async (method, path, body, headers) => {
    const user = { id: 'u-1', email: 'admin@lumen.example', name: 'Demo Admin', role: 'owner', company_id: 'demo' };
    if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method) && !['/console/api/session', '/console/api/invitations/accept'].includes(path) && headers['x-csrf-token'] !== csrf) return [403, { error: 'csrf_failed', detail: 'missing X-CSRF-Token' }];
    if (path === '/console/api/invitations/accept') {
      const invited = users.find((u) => u.invitation_pending);
      if (!invited || body.token !== 'tok-replay') return [404, { error: 'invitation_not_found', detail: null }];
      invited.invitation_pending = false;
      invited.name = body.name;
      agentSignedIn = true;
      return [200, { user: invited, csrf_token: csrf }];
    }
    if (path === '/console/api/session' && method === 'GET' && agentSignedIn && !headers.cookie?.includes('owner')) {
      return [200, { user: users.find((u) => u.role === 'agent'), csrf_token: csrf }];
    }
    if (path === '/console/api/session' && method === 'POST') {
      if (body.password !== 'correct horse battery') return [401, { error: 'invalid_credentials', detail: null }];
      signedIn = true;
      return [200, { user, csrf_token: csrf }];
    }
    if (!signedIn) return [401, { error: 'not_signed_in', detail: null }];
    if (path === '/console/api/session') return [200, { user, csrf_token: csrf }];
    if (path === '/v1/connectors/kinds') return [200, kinds];
    if (path === '/v1/connectors/test') return body.settings.api_key ? [200, { ok: true, detail: 'Signed in to Freshdesk as an agent.' }] : [200, { ok: false, detail: '401 from Freshdesk' }];
    if (path === '/v1/connectors' && method === 'GET') return [200, connectors];
    if (path === '/v1/connectors' && method === 'POST') {
      const created = { id: `c-${connectors.length + 1}`, platform: body.platform, name: body.name, operator_managed: false, has_credentials: true, enabled: true, schedule_minutes: body.schedule_minutes, last_sync_at: null };
      connectors.push(created);
      return [201, created];
    }
    let match = path.match(/^\/v1\/connectors\/([^/]+)\/sync$/);
    if (match) {
      const run = { id: `run-${runs.size + 1}`, connector_id: match[1], status: 'queued', trigger: 'manual', started_at: new Date().toISOString(), finished_at: null, fetched: 0, upserted: 0, unchanged: 0, deleted: 0, failed: 0, errors: [], polls: 0 };
      runs.set(run.id, run);
      return [202, run];
    }
    match = path.match(/^\/v1\/sync-runs\/(.+)$/);
    if (match) {
      const run = runs.get(match[1]);
      run.polls += 1;
      const step = Math.min(run.polls, 4);
      Object.assign(run, step < 4
        ? { status: 'running', documents: step * 4, upserted: step * 4, fetched: step * 4, chunks: step * 11, chunks_per_second: 11.2, eta_seconds: (4 - step) * 1.0 }
        : { status: 'succeeded', documents: 14, upserted: 14, fetched: 14, chunks: 41, chunks_per_second: 10.8, eta_seconds: null, finished_at: new Date().toISOString() });
      if (run.status === 'succeeded') connectors.find((c) => c.id === run.connector_id).last_sync_at = run.finished_at;
      return [200, run];
    }
    if (path.startsWith('/v1/connectors/') && path.endsWith('/sync-runs')) return [200, [...runs.values()].reverse()];
    if (path === '/v1/company/settings' && method === 'GET') return [200, { settings: companySettings }];
    if (path === '/v1/company/settings' && method === 'PATCH') { companySettings = { ...companySettings, ...body }; return [200, { settings: companySettings }]; }
    if (path === '/v1/assistant/preview') {
      const tone = body.settings.tone ?? {};
      const greeting = (tone.greeting ?? 'Hi {name},').replace('{name}', 'there');
      const core = tone.style === 'formal'
        ? 'Thank you for contacting us. The hub supports only 2.4 GHz networks [1]; kindly disable band steering on your router.'
        : 'Thanks for reaching out! Your hub only supports 2.4 GHz Wi-Fi [1], so turn off band steering on your mesh router.';
      return [200, { answer: `${greeting}\n\n${core}\n\n${tone.sign_off ?? ''}\n${tone.signature ?? ''}`.trim(), citations: [{ index: 1, passage_id: 'p1', document_id: 'd1', title: 'Lumen Hub keeps going offline', url: 'https://help.lumenhome.example/en/articles/hub-offline', kind: 'article', source: 'freshdesk', internal: false, snippet: 'only 2.4 GHz' }], context: [], interaction_id: 'preview', provider: 'extractive', model: 'extractive', cached: false, language: 'en', flagged_passages: [], usage: {}, cost_usd: 0 }];
    }
    if (path === '/v1/analytics/assistant') return [200, assistant];
    if (path === '/v1/analytics/feedback') return [200, feedback];
    if (path === '/v1/analytics/reviews') return [200, reviews];
    if (path === '/v1/insights/gaps') return [200, gaps];
    if (path === '/v1/triage/accuracy') return [200, accuracy];
    if (path === '/console/api/users' && method === 'GET') return [200, users];
    if (path === '/console/api/users' && method === 'POST') {
      const invited = { id: `u-${users.length + 1}`, email: body.email, name: body.name, role: body.role, company_id: 'demo', invitation_pending: true };
      users.push(invited);
      return [201, { user: invited, invite_token: 'tok-replay', invite_url: '/console/#/accept?token=tok-replay' }];
    }
    if (path === '/v1/company/api-keys' && method === 'GET') return [200, keys];
    if (path === '/v1/company/api-keys' && method === 'POST') {
      const created = { id: `k-${keys.length + 1}`, name: body.name, prefix: 'hd_live_abcd', scopes: body.scopes, created_at: new Date().toISOString(), created_by: 'user:u-1', last_used_at: null, expires_at: null, revoked_at: null };
      keys.push(created);
      return [201, { ...created, key: 'hd_live_abcd_replayed-secret-key-value' }];
    }
    if (path === '/v1/search') return [200, { results: [{ document_id: 'd1', passage_id: 'p1', external_id: 'article:1', title: 'Lumen Hub keeps going offline', url: 'https://help.lumenhome.example/en/articles/hub-offline', kind: 'article', source: 'freshdesk', language: 'en', status: null, internal: false, snippet: 'The hub only supports 2.4 GHz networks; mesh routers that steer bands drop it.', score: 0.0328, updated_at: null }, { document_id: 'd2', passage_id: 'p2', external_id: 'ticket:LH-1001', title: 'Hub disconnects every evening', url: null, kind: 'ticket', source: 'freshdesk', language: 'en', status: 'resolved', internal: true, snippet: 'Firmware 3.4 already installed; band steering was the cause.', score: 0.0311, updated_at: null }] }];
    if (path === '/v1/documents') return [200, [{ id: 'd1', connector_id: 'c-1', source: 'freshdesk', external_id: 'article:1', kind: 'article', title: 'Lumen Hub keeps going offline', url: null, language: 'en', status: null, tags: [], chunk_count: 3, source_updated_at: null, updated_at: new Date().toISOString() }]];
    return [404, { error: 'not_found', detail: path }];
  };

  const server = createServer(async (request, response) => {
    const url = new URL(request.url, 'http://x');
    if (url.pathname === '/console' || url.pathname === '/console/' || url.pathname.startsWith('/console/assets/')) {
      const name = url.pathname.replace(/^\/console\/?/, '') || 'index.html';
      try {
        const body = await readFile(join(consoleDir, 'dist', name));
        return response.writeHead(200, { 'Content-Type': `${TYPES[extname(name)] ?? 'application/octet-stream'}; charset=utf-8` }).end(body);
      } catch {
        return response.writeHead(404).end();
      }
    }
    let raw = '';
    for await (const chunk of request) raw += chunk;
    const body = raw ? JSON.parse(raw) : {};
    seen.push(`${request.method} ${url.pathname}`);
    await new Promise((resolve) => setTimeout(resolve, 40)); // a little latency, as over a network
    const [status, value] = await route(request.method, url.pathname, body, request.headers);
    response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
  });
  const port = await listen(server);
  return { server, base: `http://127.0.0.1:${port}`, seen };
}

async function main() {
  const replay = process.env.API_BASE ? null : await replayApi();
  const base = process.env.API_BASE ?? replay.base;
  const email = process.env.EMAIL ?? 'admin@lumen.example';
  const password = process.env.PASSWORD ?? 'correct horse battery';
  const shots = process.env.SCREENSHOT_DIR;
  const started = Date.now();
  const summary = { ok: false, base, steps: [] };
  const step = (name) => summary.steps.push({ name, ms: Date.now() - started });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const consoleErrors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    const shoot = async (name, widths = [1280, 390], anchor = null) => {
      if (!shots) return;
      for (const width of widths) {
        await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
        await page.waitForTimeout(300);
        // A phone shows one screen: the part the check is about.
        if (anchor) await page.locator(anchor).evaluate((node) => node.scrollIntoView({ block: 'start' }));
        else await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: join(shots, `console-${name}-${width}.png`), fullPage: width > 500 });
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    };

    // Sign in (a wrong password first: the error is said, not thrown).
    await page.goto(`${base}/console/`);
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill('wrong password!');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.status[data-kind="error"]').waitFor();
    summary.wrongPassword = await page.locator('.status[data-kind="error"]').textContent();
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation').waitFor();
    summary.signedInAs = await page.locator('.who').textContent();
    step('signed in');

    // Keyboard: a new page puts focus on its content; Tab goes on inside it, visibly.
    await page.waitForFunction(() => document.activeElement?.id === 'main');
    summary.focusAfterSignIn = 'main';
    await page.keyboard.press('Tab');
    summary.tabTarget = await page.evaluate(() => `${document.activeElement?.tagName} in main: ${Boolean(document.activeElement?.closest('main'))}`);
    summary.focusOutline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);

    // Connect Freshdesk through the generated form; test, save and sync; watch the run.
    await page.goto(`${base}/console/#/connectors`);
    await page.getByLabel('Platform', { exact: true }).selectOption('freshdesk');
    await page.getByLabel('Domain *', { exact: true }).fill(process.env.FRESHDESK_DOMAIN ?? 'lumen-home.freshdesk.com');
    await page.getByLabel('Api Key *', { exact: true }).fill(process.env.FRESHDESK_API_KEY ?? 'replayed-key');
    await page.getByLabel('Name', { exact: true }).fill('Freshdesk support');
    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.locator('text=/Connection (works|failed)/').waitFor();
    summary.testConnection = await page.locator('text=/Connection (works|failed)/').textContent();
    await page.getByRole('button', { name: 'Save and sync now' }).click();
    const statuses = new Set();
    const figures = page.locator('dl.figures');
    await figures.waitFor();
    const deadline = Date.now() + STEP_TIMEOUT_MS * 3;
    for (;;) {
      const state = await figures.getAttribute('data-run-status');
      statuses.add(state);
      if (state === 'running' && !summary.runningFigures) {
        summary.runningFigures = await figures.innerText();
      }
      if (!['queued', 'running'].includes(state)) break;
      if (Date.now() > deadline) throw new Error(`sync still ${state}`);
      await page.waitForTimeout(150);
    }
    summary.syncStatuses = [...statuses];
    summary.finalFigures = await figures.innerText();
    await page.locator('li.connector[data-connector="Freshdesk support"]').waitFor();
    step('sync finished');
    await page.locator('li.connector small', { hasNotText: '—' }).first().waitFor();
    await shoot('sync', [1280, 390], '#connected-title');

    // Knowledge: search as the assistant sees it.
    await page.goto(`${base}/console/#/knowledge`);
    await page.getByLabel('Question', { exact: true }).fill(process.env.SEARCH_QUERY ?? 'hub offline 2.4 GHz');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('li.citation').first().waitFor();
    summary.searchResults = await page.locator('li.citation').count();
    step('searched');

    // Assistant settings: the preview follows the edited tone.
    await page.goto(`${base}/console/#/assistant`);
    const draft = page.locator('.draft');
    await page.waitForFunction(() => Number(document.querySelector('.draft')?.dataset.generation) >= 1);
    summary.previewBefore = await draft.locator('.draft-text').textContent();
    const generation = Number(await draft.getAttribute('data-generation'));
    await page.getByLabel('Style', { exact: true }).fill('formal');
    await page.getByLabel('Greeting', { exact: true }).fill('Dear customer,');
    await page.waitForFunction((g) => Number(document.querySelector('.draft')?.dataset.generation) > g && document.querySelector('.draft')?.getAttribute('aria-busy') === 'false', generation);
    await page.waitForFunction((before) => document.querySelector('.draft-text')?.textContent !== before, summary.previewBefore);
    summary.previewAfter = await draft.locator('.draft-text').textContent();
    await shoot('assistant', [1280, 390], '#preview-title');
    step('preview changed');

    // Insight: every chart panel drew.
    await page.goto(`${base}/console/#/insight`);
    await page.waitForFunction(() => document.querySelectorAll('section[aria-busy="true"]').length === 0 && document.querySelectorAll('figure.chart').length >= 7);
    await page.waitForFunction((least) => document.querySelectorAll('figure.chart canvas').length >= least, Number(process.env.MIN_CHARTS ?? 4));
    summary.charts = await page.$$eval('figure.chart', (nodes) => nodes.map((n) => ({ title: n.querySelector('figcaption')?.textContent, points: Number(n.getAttribute('data-points')), canvas: Boolean(n.querySelector('canvas')) })));
    summary.kpis = await page.$$eval('[data-kpi]', (nodes) => Object.fromEntries(nodes.map((n) => [n.getAttribute('data-kpi'), n.textContent])));
    await shoot('insight', [1280]);
    step('charts read');

    // Users and keys: an invitation link and a new key, each shown once.
    await page.goto(`${base}/console/#/team`);
    await page.locator('input[name="email"]').fill('new.agent@example.org');
    await page.locator('input[name="name"]').fill('New Agent');
    await page.getByRole('button', { name: 'Invite', exact: true }).click();
    const link = page.locator('input[aria-label="Invitation link"]');
    await link.waitFor();
    summary.inviteLink = await link.inputValue();
    await page.locator('td', { hasText: 'new.agent@example.org' }).waitFor();
    await page.locator('input[name="key_name"]').fill('Helpdesk sync job');
    await page.getByLabel('ingest (connectors, documents)').check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const newKey = page.locator('input[aria-label="New API key"]');
    await newKey.waitFor();
    summary.newKeyLength = (await newKey.inputValue()).length;
    const keyRow = page.locator('tr', { hasText: 'Helpdesk sync job' });
    await keyRow.waitFor();
    summary.keyScopes = await keyRow.locator('td').nth(2).textContent();
    step('team');

    // The invitee accepts in a browser of their own and, as an agent, sees Knowledge only.
    const invitee = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US' });
    const inviteePage = await invitee.newPage();
    inviteePage.setDefaultTimeout(STEP_TIMEOUT_MS);
    await inviteePage.goto(summary.inviteLink);
    await inviteePage.getByLabel('Your name', { exact: true }).fill('New Agent');
    await inviteePage.getByLabel('Choose a password', { exact: true }).fill('agent password 123');
    await inviteePage.getByRole('button', { name: 'Accept and sign in' }).click();
    await inviteePage.getByRole('navigation').waitFor();
    summary.agentNav = await inviteePage.$$eval('nav a', (links) => links.map((a) => a.textContent));
    summary.agentWho = await inviteePage.locator('.who').textContent();
    await invitee.close();
    step('invitation accepted');

    // Korean.
    await page.getByLabel('Language', { exact: true }).selectOption('ko');
    await page.getByRole('link', { name: '인사이트' }).waitFor();
    summary.koreanNav = await page.$$eval('nav a', (links) => links.map((a) => a.textContent));
    await page.waitForFunction(() => document.querySelectorAll('section[aria-busy="true"]').length === 0);
    await shoot('insight-ko', [390]);
    summary.lang = await page.evaluate(() => document.documentElement.lang);
    const overflow = await (async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300);
      return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    })();
    summary.phoneOverflowPx = overflow;
    step('korean');

    summary.consoleErrors = consoleErrors;
    summary.requests = replay?.seen.length ?? null;
    summary.ok = true;
  } catch (error) {
    // Say what the page said (its error lines) along with where the check stopped.
    const pages = browser.contexts().flatMap((c) => c.pages());
    const said = pages.length ? await pages[0].$$eval('.status[data-kind="error"]', (n) => n.map((e) => e.textContent)).catch(() => []) : [];
    error.message = `${error.message}\npage errors: ${JSON.stringify(said)}\nconsole: ${JSON.stringify(consoleErrors)}`;
    throw error;
  } finally {
    await browser.close();
    replay?.server.close();
  }
  summary.ms = Date.now() - started;
  console.log(JSON.stringify(summary, null, 1));
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
