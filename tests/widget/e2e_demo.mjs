// Browser check of the built widget in Debian's Chromium, driven by playwright-core.
//
//   node tests/widget/e2e_demo.mjs                      # against a built-in contract replay
//   API_BASE=http://127.0.0.1:8000 COMPANY=demo TOKEN=hdw_… TICKET_ID=LH-1042 \
//     TICKET_SOURCE=file_export node tests/widget/e2e_demo.mjs   # against the real API
//
// Without API_BASE it starts a stub on 127.0.0.1 that answers the v1 widget endpoints with
// payloads shaped like the contract (SSE token/done events, JSON lookups), so the bundle, the
// shadow DOM, streaming over fetch and the insert event are checked in a real browser.
// Prints a JSON summary and exits non-zero on failure. Run `npm run build` first.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const widgetDir = join(here, '..', '..', 'frontend-widget');
const require = createRequire(join(widgetDir, 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function listen(server, port = 0) {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server.address().port)));
}

/** Serves dist/ (the bundle and demo.html) the way the API serves /widget/. */
async function serveWidget() {
  const server = createServer(async (request, response) => {
    const name = new URL(request.url, 'http://x').pathname.replace(/^\/widget\//, '');
    try {
      const body = await readFile(join(widgetDir, 'dist', name));
      const type = name.endsWith('.html') ? 'text/html' : 'text/javascript';
      response.writeHead(200, { 'Content-Type': `${type}; charset=utf-8` }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  // A fixed port when the API under test must trust this page's origin (CORS).
  return { server, port: await listen(server, Number(process.env.WIDGET_PORT ?? 0)) };
}

/** A replay of the v1 widget endpoints, with CORS as the real API must answer it. */
async function stubApi() {
  const seen = [];
  const cors = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'Authorization, X-Company-ID, Content-Type, Accept',
    'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  };
  const citations = [
    { index: 1, document_id: 'd1', title: 'Lumen Hub keeps going offline', url: 'https://help.lumenhome.example/en/articles/hub-offline', kind: 'article', source: 'article_folder', internal: false, snippet: 'only 2.4 GHz' },
    { index: 2, document_id: 'd2', title: 'Hub goes offline every night', url: null, kind: 'ticket', source: 'file_export', internal: true, snippet: 'firmware 3.4 already' },
  ];
  const server = createServer(async (request, response) => {
    if (request.method === 'OPTIONS') return response.writeHead(204, cors).end();
    let body = '';
    for await (const chunk of request) body += chunk;
    seen.push({ method: request.method, path: request.url, auth: request.headers.authorization, company: request.headers['x-company-id'] });
    const json = (status, value) =>
      response.writeHead(status, { ...cors, 'Content-Type': 'application/json' }).end(JSON.stringify(value));
    const path = new URL(request.url, 'http://x').pathname;
    if (path === '/v1/draft-reply/stream' || path === '/v1/answer/stream') {
      response.writeHead(200, { ...cors, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      const answer = 'Your hub only supports 2.4 GHz Wi-Fi [1]. Please turn off band steering on your mesh router.';
      for (const word of answer.split(/(?<= )/)) {
        response.write(`event: token\ndata: ${JSON.stringify({ text: word })}\n\n`);
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      response.end(`event: done\ndata: ${JSON.stringify({ answer, citations, interaction_id: 'int-e2e', provider: 'stub', model: 'stub', cached: false, language: 'en' })}\n\n`);
      return;
    }
    if (path === '/v1/similar-tickets') {
      return json(200, { tickets: [{ document_id: 'd3', external_id: 'ticket:LH-1001', title: 'Hub disconnects every evening', url: null, status: 'resolved', score: 0.03, snippet: 'mesh band steering', resolved: true }] });
    }
    if (path === '/v1/summarize') {
      return json(200, { summary: 'The hub drops off a dual-band mesh network every night.', citations: [], interaction_id: 'int-sum', provider: 'stub', model: 'stub' });
    }
    if (path === '/v1/triage') {
      const none = { value: null, values: [], confidence: 0.1, candidates: [] };
      return json(200, { ticket_id: null, neighbors: [], suggestions: { category: { value: 'Connectivity', values: [], confidence: 0.64, candidates: [] }, tags: none, group: none, priority: none, sentiment: none, language: { value: 'en', values: [], confidence: 1, candidates: [] } } });
    }
    if (path === '/v1/triage/feedback') return json(201, { id: 'tf-1' });
    if (path === '/v1/feedback') return json(201, { id: 'fb-1' });
    return json(404, { error: 'not_found', detail: path });
  });
  return { server, port: await listen(server), seen };
}

async function main() {
  const widget = await serveWidget();
  const stub = process.env.API_BASE ? null : await stubApi();
  const apiBase = process.env.API_BASE ?? `http://127.0.0.1:${stub.port}`;
  const params = new URLSearchParams({
    api: apiBase,
    company: process.env.COMPANY ?? 'demo',
    token: process.env.TOKEN ?? 'hdw_e2e',
    lang: process.env.LANG_TAG ?? 'en',
  });
  if (process.env.TICKET_ID) params.set('ticket-id', process.env.TICKET_ID);
  if (process.env.TICKET_SOURCE) params.set('ticket-source', process.env.TICKET_SOURCE);

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    await page.goto(`http://127.0.0.1:${widget.port}/widget/demo.html?${params}`);

    // Playwright's CSS engine pierces open shadow roots.
    const insert = page.locator('helpdesk-assistant [data-panel="draft"][data-action="insert"]');
    await insert.waitFor({ timeout: Number(process.env.DRAFT_TIMEOUT_MS ?? 60000) });
    const draft = await page.locator('helpdesk-assistant [data-body="draft"] .answer').innerText();
    const citationCount = await page.locator('helpdesk-assistant [data-body="draft"] .citations li').count();
    const internalCount = await page.locator('helpdesk-assistant [data-body="draft"] .badge.internal').count();
    // The host page styles `button` hot pink at 30px: the shadow DOM must not inherit that.
    const buttonFont = await insert.evaluate((button) => getComputedStyle(button).fontSize);

    await insert.click();
    await page.waitForFunction(() => document.getElementById('editor').value.length > 0);
    const inserted = await page.locator('#editor').inputValue();

    await page.locator('helpdesk-assistant [data-body="similar"] li, helpdesk-assistant [data-body="similar"] p').first().waitFor();
    await page.locator('helpdesk-assistant [data-body="summary"] .answer, helpdesk-assistant [data-body="summary"] p').first().waitFor();

    const field = page.locator('helpdesk-assistant textarea[data-field="question"]');
    await field.fill('Does the hub support 5 GHz?');
    await field.press('Enter');
    await page.locator('helpdesk-assistant [data-panel="answer"][data-action="insert"]').waitFor({ timeout: 60000 });

    if (process.env.SCREENSHOT) {
      await page.waitForTimeout(300); // let the last streamed tokens paint
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    }
    const result = {
      ok: errors.length === 0 && draft.length > 0 && citationCount > 0 && buttonFont !== '30px' && !/\[\d+\]/.test(inserted),
      draft, citationCount, internalCount, buttonFont, inserted, errors,
      requests: stub?.seen.map((r) => `${r.method} ${r.path} ${r.company}`),
    };
    console.log(JSON.stringify(result, null, 2));
    process.exitCode = result.ok ? 0 : 1;
  } finally {
    await browser.close();
    widget.server.close();
    stub?.server.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
