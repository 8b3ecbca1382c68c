// The Freshdesk sidebar app: its package files, and app.js run against a stand-in for the
// Freshworks client SDK (the documented client.data / request / interface / iparams calls)
// with the Helpdesk Assistant API replayed by FakeApi.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import '../src/index';
import type { HelpdeskAssistantElement } from '../src/element';
import { FakeApi, generated, json, sse, waitFor } from './fake-api';

// Paths as strings: under happy-dom, URL is the DOM's class, which node:fs does not take.
const APP = join(dirname(fileURLToPath(import.meta.url)), '..', 'freshdesk-app');
const read = (path: string) => readFileSync(join(APP, path), 'utf8');
const readJson = (path: string) => JSON.parse(read(path));

interface AppModule {
  toTicket(ticket: unknown, contact?: unknown): unknown;
  apiBaseFrom(host: string): string;
  start(client: unknown, doc: Document): { ready: Promise<void>; stop(): void };
}

beforeAll(() => {
  // app.js is a classic script for the Freshdesk iframe; run it as the browser would.
  new Function(read('app/scripts/app.js'))();
});

afterEach(() => {
  document.body.innerHTML = '';
});

function appModule(): AppModule {
  return (window as unknown as { HelpdeskFreshdeskApp: AppModule }).HelpdeskFreshdeskApp;
}

const FRESHDESK_TICKET = {
  id: 77,
  subject: 'Hub offline',
  description: '<div>My hub is <b>offline</b></div>',
  description_text: 'My hub is offline',
  status: 2,
  priority: 1,
  requester_id: 5001,
};

function fakeClient(options: { setValueFails?: boolean } = {}) {
  const templates: { name: string; options: { body: string } }[] = [];
  const triggers: { action: string; payload: Record<string, unknown> }[] = [];
  let minted = 0;
  const client = {
    iparams: {
      get: async () => ({ api_host: 'assist.lumen.example', company_id: 'lumen' }),
    },
    data: {
      get: async (what: string) => {
        const data: Record<string, unknown> = {
          ticket: { ticket: FRESHDESK_TICKET },
          contact: { contact: { email: 'minji@example.kr', language: 'ko' } },
          loggedInUser: { loggedInUser: { contact: { language: 'en' } } },
        };
        if (!(what in data)) throw new Error(`no ${what}`);
        return data[what];
      },
    },
    request: {
      invokeTemplate: async (name: string, requestOptions: { body: string }) => {
        templates.push({ name, options: requestOptions });
        minted += 1;
        return {
          status: 201,
          headers: { 'content-type': 'application/json' },
          response: JSON.stringify({
            token: `hdw_minted_${minted}`,
            expires_at: new Date(Date.now() + 900_000).toISOString(),
            company_id: 'lumen',
            ticket_id: '77',
          }),
        };
      },
    },
    interface: {
      trigger: async (action: string, payload: Record<string, unknown>) => {
        triggers.push({ action, payload });
        if (action === 'setValue' && options.setValueFails) throw new Error('editor closed');
        return { success: true };
      },
    },
    events: { on: () => undefined },
  };
  return { client, templates, triggers };
}

function sidebar(api: FakeApi): HelpdeskAssistantElement {
  document.body.innerHTML = read('app/index.html').match(/<body>([\s\S]*)<\/body>/)![1].replace(
    /<script[\s\S]*?<\/script>/g,
    '',
  );
  const element = document.getElementById('assistant') as HelpdeskAssistantElement;
  element.fetchImpl = api.fetch;
  return element;
}

function backend(): FakeApi {
  return new FakeApi()
    .on('POST /v1/draft-reply/stream', () =>
      sse([['done', generated('안녕하세요. 허브를 재설정해 주세요 [1].', { language: 'ko' })]]),
    )
    .on('POST /v1/summarize', () =>
      json(200, { summary: 'Hub offline.', citations: [], interaction_id: 's', provider: 'p', model: 'm' }),
    )
    .on('POST /v1/similar-tickets', () => json(200, { tickets: [] }))
    .on('POST /v1/feedback', () => json(201, { id: 'fb' }));
}

describe('Freshdesk app package', () => {
  it('declares a platform 3.0 ticket sidebar with an icon that exists', () => {
    const manifest = readJson('manifest.json');
    expect(manifest['platform-version']).toBe('3.0');
    const sidebarLocation = manifest.modules.support_ticket.location.ticket_sidebar;
    expect(sidebarLocation.url).toBe('index.html');
    expect(existsSync(join(APP, 'app', sidebarLocation.icon))).toBe(true);
    expect(existsSync(join(APP, 'app', 'index.html'))).toBe(true);
  });

  it('mints tokens through a declared request template; the API key stays secure', () => {
    const manifest = readJson('manifest.json');
    const requests = readJson('config/requests.json');
    const iparams = readJson('config/iparams.json');
    expect(Object.keys(manifest.modules.common.requests)).toEqual(Object.keys(requests));
    const schema = requests.mintWidgetToken.schema;
    expect(schema.method).toBe('POST');
    expect(schema.path).toBe('/v1/widget-tokens');
    // Request templates take a bare host name: no scheme, no path.
    expect(schema.host).toBe('<%= iparam.api_host %>');
    expect(schema.headers.Authorization).toBe('Bearer <%= iparam.api_key %>');
    expect(schema.headers['X-Company-ID']).toBe('<%= iparam.company_id %>');
    for (const match of JSON.stringify(requests).matchAll(/iparam\.(\w+)/g)) {
      expect(iparams).toHaveProperty(match[1]);
    }
    expect(iparams.api_key.secure).toBe(true);
    expect(iparams.api_host.secure ?? false).toBe(false); // read by app.js via iparams.get()
    expect(read('app/scripts/app.js')).not.toContain('api_key');
  });

  it('loads the Freshworks client and the app script', () => {
    const html = read('app/index.html');
    expect(html).toContain('<script src="{{{appclient}}}"></script>');
    expect(html).toContain('<script src="scripts/app.js"></script>');
    expect(html).toContain('<helpdesk-assistant id="assistant">');
  });
});

describe('Freshdesk app script', () => {
  it('maps a Freshdesk ticket to the assistant Ticket', () => {
    const { toTicket } = appModule();
    expect(toTicket(FRESHDESK_TICKET, { email: 'minji@example.kr', language: 'ko' })).toEqual({
      id: '77',
      source: 'freshdesk',
      subject: 'Hub offline',
      description: 'My hub is offline',
      status: 'open',
      language: 'ko',
      requester: 'minji@example.kr',
    });
    expect(
      toTicket({ id: 3, subject: 'S', description: '<p>Only <i>html</i></p>', status: 4 }, null),
    ).toEqual({ id: '3', source: 'freshdesk', subject: 'S', description: 'Only html', status: 'resolved' });
    expect(appModule().apiBaseFrom('https://assist.lumen.example/')).toBe('https://assist.lumen.example');
  });

  it('mints a token, mounts the widget and inserts drafts into the reply editor', async () => {
    const api = backend();
    const element = sidebar(api);
    const { client, templates, triggers } = fakeClient();
    const mounted = appModule().start(client, document);
    await mounted.ready;

    expect(templates).toEqual([
      { name: 'mintWidgetToken', options: { body: JSON.stringify({ ticket_id: '77', ttl_seconds: 900 }) } },
    ]);
    expect(element.getAttribute('api-base')).toBe('https://assist.lumen.example');
    expect(element.getAttribute('company-id')).toBe('lumen');
    expect(element.getAttribute('token')).toBe('hdw_minted_1');
    expect(element.getAttribute('lang')).toBe('en');

    await waitFor(() => element.shadowRoot!.querySelector('[data-panel="draft"][data-action="insert"]'), 'draft');
    const [draft] = api.calls('POST /v1/draft-reply/stream');
    expect(draft.url).toBe('https://assist.lumen.example/v1/draft-reply/stream');
    expect(draft.headers.authorization).toBe('Bearer hdw_minted_1');
    expect(draft.headers['x-company-id']).toBe('lumen');
    expect((draft.body as { ticket: { language: string } }).ticket.language).toBe('ko');

    element.shadowRoot!.querySelector<HTMLElement>('[data-panel="draft"][data-action="insert"]')!.click();
    await waitFor(() => triggers.some((t) => t.action === 'showNotify'), 'notify');
    expect(triggers[0]).toEqual({
      action: 'setValue',
      payload: { id: 'editor', text: '안녕하세요. 허브를 재설정해 주세요.' },
    });
    expect(triggers[1].payload).toMatchObject({ type: 'success' });
    mounted.stop();
  });

  it('opens the reply editor with the draft when none is open', async () => {
    const api = backend();
    const element = sidebar(api);
    const { client, triggers } = fakeClient({ setValueFails: true });
    const mounted = appModule().start(client, document);
    await mounted.ready;
    await waitFor(() => element.shadowRoot!.querySelector('[data-action="insert"]'), 'draft');
    element.shadowRoot!.querySelector<HTMLElement>('[data-panel="draft"][data-action="insert"]')!.click();
    await waitFor(() => triggers.some((t) => t.action === 'showNotify'), 'notify');
    expect(triggers.map((t) => t.action)).toEqual(['setValue', 'click', 'showNotify']);
    expect(triggers[1].payload).toEqual({ id: 'reply', text: '안녕하세요. 허브를 재설정해 주세요.' });
    mounted.stop();
  });

  it('mints a new token when the API refuses the current one', async () => {
    const api = backend().on(
      'POST /v1/draft-reply/stream',
      () => json(401, { error: 'token_expired', detail: 'expired' }),
      () => sse([['done', generated('Fresh draft.')]]),
    );
    const element = sidebar(api);
    const { client, templates } = fakeClient();
    const mounted = appModule().start(client, document);
    await mounted.ready;
    await waitFor(() => templates.length === 2, 're-mint');
    await waitFor(() => element.shadowRoot!.textContent?.includes('Fresh draft.'), 'retried draft');
    expect(api.calls('POST /v1/draft-reply/stream').at(-1)!.headers.authorization).toBe(
      'Bearer hdw_minted_2',
    );
    mounted.stop();
  });

  it('re-mints once, not in a loop, when fresh tokens keep being refused', async () => {
    const api = backend().on('POST /v1/draft-reply/stream', () =>
      json(401, { error: 'invalid_token', detail: 'clock skew' }),
    );
    const element = sidebar(api);
    const { client, templates } = fakeClient();
    const mounted = appModule().start(client, document);
    await mounted.ready;
    await waitFor(() => document.getElementById('sidebar-status')!.textContent?.includes('refused'), 'gave up');
    expect(templates).toHaveLength(2);
    expect(api.calls('POST /v1/draft-reply/stream')).toHaveLength(2);
    expect(element.getAttribute('token')).toBe('hdw_minted_2');
    mounted.stop();
  });
});
