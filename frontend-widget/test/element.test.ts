import { afterEach, describe, expect, it, vi } from 'vitest';
import '../src/index';
import type { HelpdeskAssistantElement } from '../src/element';
import type { InsertDetail, Ticket } from '../src/types';
import {
  CITATIONS,
  FakeApi,
  LiveStream,
  generated,
  json,
  sse,
  waitFor,
} from './fake-api';

const TICKET: Ticket = {
  id: '1042',
  source: 'file_export',
  subject: 'Hub keeps going offline',
  description: 'My Lumen hub drops off Wi-Fi every few hours since I changed my router.',
  status: 'open',
  language: 'en',
  requester: 'dana@example.com',
  conversation: [
    { author_role: 'customer', text: 'It is offline again.' },
    { author_role: 'agent', text: 'Known firmware 3.2 issue.', internal: true },
  ],
};

const DRAFT = 'Hold the reset button for 10 seconds [1].\n\nFirmware 3.3 fixes the drop-outs [2].';
const SIMILAR = [
  {
    document_id: 'doc-t-881',
    external_id: 'ticket:881',
    title: 'Hub loses Wi-Fi after router swap',
    url: 'https://lumen.example/tickets/881',
    status: 'resolved',
    score: 0.031,
    snippet: 'Re-pairing the hub with the new network fixed it.',
    resolved: true,
  },
];

function standardApi(): FakeApi {
  return new FakeApi()
    .on('POST /v1/draft-reply/stream', () =>
      sse([
        ['token', { text: 'Hold the reset button ' }],
        ['token', { text: 'for 10 seconds [1].' }],
        ['done', generated(DRAFT)],
      ]),
    )
    .on('POST /v1/summarize', () =>
      json(200, {
        summary: 'The hub drops off Wi-Fi since a router change.',
        citations: [],
        interaction_id: 'int-sum-1',
        provider: 'extractive',
        model: 'extractive',
      }),
    )
    .on('POST /v1/similar-tickets', () => json(200, { tickets: SIMILAR }))
    .on('POST /v1/feedback', () => json(201, { id: 'fb-1' }));
}

function mount(
  api: FakeApi,
  attributes: Record<string, string> = {},
  ticket: Ticket | null = TICKET,
): HelpdeskAssistantElement {
  const element = document.createElement('helpdesk-assistant');
  element.fetchImpl = api.fetch;
  const all = {
    'api-base': 'http://127.0.0.1:8000/',
    'company-id': 'lumen',
    token: 'hdw_test-token',
    lang: 'en',
    ...attributes,
  };
  for (const [name, value] of Object.entries(all)) element.setAttribute(name, value);
  if (ticket) element.ticket = ticket;
  document.body.append(element);
  return element;
}

function $(element: HelpdeskAssistantElement, selector: string): HTMLElement | null {
  return element.shadowRoot!.querySelector<HTMLElement>(selector);
}

function body(element: HelpdeskAssistantElement, panel: string): HTMLElement {
  return $(element, `[data-body="${panel}"]`)!;
}

function click(element: HelpdeskAssistantElement, panel: string, action: string): void {
  const target = $(element, `[data-panel="${panel}"][data-action="${action}"]`);
  if (!target) throw new Error(`no ${action} button in ${panel}`);
  target.click();
}

async function untilDone(element: HelpdeskAssistantElement): Promise<void> {
  await waitFor(() => $(element, '[data-panel="draft"][data-action="insert"]'), 'draft done');
  await waitFor(() => body(element, 'similar').querySelector('li'), 'similar tickets');
  await waitFor(() => body(element, 'summary').querySelector('.answer'), 'summary');
}

afterEach(() => {
  document.body.innerHTML = '';
  vi.restoreAllMocks();
});

describe('suggestions for the ticket in view', () => {
  it('asks for draft, summary and similar tickets at once, authenticated', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);

    const draft = api.calls('POST /v1/draft-reply/stream');
    expect(draft).toHaveLength(1);
    expect(draft[0].url).toBe('http://127.0.0.1:8000/v1/draft-reply/stream');
    expect(draft[0].body).toEqual({ ticket: TICKET });
    for (const request of api.requests) {
      expect(request.headers.authorization).toBe('Bearer hdw_test-token');
      expect(request.headers['x-company-id']).toBe('lumen');
    }
    expect(draft[0].headers.accept).toBe('text/event-stream');
    expect(api.calls('POST /v1/summarize')[0].body).toEqual({ ticket: TICKET });
    expect(api.calls('POST /v1/similar-tickets')[0].body).toEqual({ ticket: TICKET, limit: 5 });
    expect($(element, '.ticket-ref')!.textContent).toBe('#1042');
  });

  it('shows loading states, then streams the draft into a live region', async () => {
    const api = new FakeApi();
    let live: LiveStream | undefined;
    api.on('POST /v1/draft-reply/stream', (request) => {
      live = new LiveStream(request.signal);
      return live.response;
    });
    api.on('POST /v1/summarize', () => new Promise<Response>(() => undefined));
    api.on('POST /v1/similar-tickets', () => new Promise<Response>(() => undefined));
    const element = mount(api);

    await waitFor(() => live, 'draft request');
    expect(body(element, 'draft').textContent).toContain('Drafting a reply…');
    expect(body(element, 'summary').textContent).toContain('Summarizing the conversation…');
    expect(body(element, 'similar').textContent).toContain('Looking for similar tickets…');
    expect(body(element, 'draft').querySelector('[role="status"]')).not.toBeNull();

    live!.send('token', { text: 'Hold the reset ' });
    const region = await waitFor(() => $(element, '[data-stream="draft"]'), 'stream region');
    expect(region.getAttribute('aria-live')).toBe('polite');
    expect(region.getAttribute('aria-busy')).toBe('true');
    live!.send('token', { text: 'button.' });
    await waitFor(() => region.textContent === 'Hold the reset button.', 'second token');
    expect($(element, '[data-stream="draft"]')).toBe(region); // updated in place, not re-built

    live!.send('done', generated('Hold the reset button.', { citations: [] }));
    live!.close();
    await waitFor(() => $(element, '[data-action="insert"]'), 'done');
    expect($(element, '[data-stream="draft"]')).toBeNull();
    await waitFor(
      () => $(element, '[data-announcer]')!.textContent === 'The suggested reply is ready.',
      'announcement',
    );
  });

  it('renders numbered citations, marks internal sources and never links unsafe URLs', async () => {
    const element = mount(standardApi());
    await untilDone(element);
    const draft = body(element, 'draft');

    const items = [...draft.querySelectorAll<HTMLElement>('.citations li')];
    expect(items.map((item) => item.dataset.index)).toEqual(['1', '2']);
    const [publicSource, internalSource] = items;
    const link = publicSource.querySelector('a')!;
    expect(link.getAttribute('href')).toBe(CITATIONS[0].url);
    expect(link.getAttribute('target')).toBe('_blank');
    expect(link.getAttribute('rel')).toBe('noopener noreferrer');
    expect(publicSource.querySelector('.badge.internal')).toBeNull();

    expect(internalSource.classList.contains('is-internal')).toBe(true);
    expect(internalSource.querySelector('.badge.internal')!.textContent).toBe('Internal');
    expect(internalSource.textContent).toContain('never quote it to the customer');
    expect(internalSource.querySelector('a')).toBeNull(); // javascript: URL stays plain text
    expect(internalSource.textContent).toContain('Hub offline after router change');

    // [n] marks in the text point at the numbered sources.
    const marks = [...draft.querySelectorAll<HTMLAnchorElement>('.answer a.mark')];
    expect(marks.map((mark) => mark.getAttribute('href'))).toEqual([
      '#draft-cite-1',
      '#draft-cite-2',
    ]);
    expect(draft.querySelectorAll('.answer p')).toHaveLength(2);
    marks[1].click();
    expect(element.shadowRoot!.activeElement).toBe(internalSource);

    const similar = body(element, 'similar');
    expect(similar.querySelector('a')!.getAttribute('href')).toBe(SIMILAR[0].url);
    expect(similar.querySelector('.badge.solved')!.textContent).toBe('Solved');
    expect(similar.textContent).toContain('Re-pairing the hub');
    expect(body(element, 'summary').textContent).toContain('drops off Wi-Fi');
  });

  it('escapes everything the API returns', async () => {
    const api = standardApi().on('POST /v1/similar-tickets', () =>
      json(200, { tickets: [{ ...SIMILAR[0], title: '<img src=x onerror=alert(1)>' }] }),
    );
    const element = mount(api);
    await untilDone(element);
    const similar = body(element, 'similar');
    expect(similar.querySelector('img')).toBeNull();
    expect(similar.textContent).toContain('<img src=x onerror=alert(1)>');
  });

  it('shows empty states when the knowledge base has nothing', async () => {
    const api = new FakeApi()
      .on('POST /v1/draft-reply/stream', () =>
        sse([['done', generated('', { citations: [], interaction_id: 'int-empty' })]]),
      )
      .on('POST /v1/summarize', () =>
        json(200, { summary: '', citations: [], interaction_id: 'i', provider: 'p', model: 'm' }),
      )
      .on('POST /v1/similar-tickets', () => json(200, { tickets: [] }));
    const element = mount(api);
    await waitFor(() => body(element, 'similar').textContent?.includes('No similar'), 'empty');
    await waitFor(() => body(element, 'draft').textContent?.includes('Nothing in your'), 'empty');
    await waitFor(() => body(element, 'summary').textContent?.includes('nothing to'), 'empty');
    expect($(element, '[data-panel="draft"][data-action="regenerate"]')).not.toBeNull();
  });

  it('asks the host for a ticket when none is set', async () => {
    const element = mount(standardApi(), {}, null);
    await waitFor(() => $(element, '[data-banner]')!.textContent?.includes('Open a ticket'), 'hint');
  });

  it('says what is missing when it is not configured', async () => {
    const element = mount(standardApi(), { token: '' });
    await waitFor(() => $(element, '[data-banner]')!.textContent?.includes('not configured'), 'x');
  });

  it('loads the ticket itself from the ticket-id attribute', async () => {
    const api = standardApi().on('GET /v1/tickets/1042', () => json(200, TICKET));
    const element = mount(api, { 'ticket-id': '1042', 'ticket-source': 'freshdesk' }, null);
    await untilDone(element);
    const [load] = api.calls('GET /v1/tickets/1042');
    expect(new URL(load.url).searchParams.get('source')).toBe('freshdesk');
    expect(api.calls('POST /v1/draft-reply/stream')[0].body).toEqual({ ticket: TICKET });
    expect(element.ticket).toEqual(TICKET);
  });

  it('loads the next ticket when ticket-id changes', async () => {
    const api = standardApi()
      .on('GET /v1/tickets/1042', () => json(200, TICKET))
      .on('GET /v1/tickets/1043', () => json(200, { ...TICKET, id: '1043', subject: 'Plug' }));
    const element = mount(api, { 'ticket-id': '1042' }, null);
    await untilDone(element);
    element.setAttribute('ticket-id', '1043');
    await waitFor(() => api.calls('POST /v1/draft-reply/stream').length === 2, 'second draft');
    expect(api.calls('GET /v1/tickets/1043')).toHaveLength(1);
    expect(api.calls('POST /v1/draft-reply/stream')[1].body).toEqual({
      ticket: { ...TICKET, id: '1043', subject: 'Plug' },
    });
    expect($(element, '.ticket-ref')!.textContent).toBe('#1043');
  });

  it('reports a ticket that cannot be loaded, with a retry', async () => {
    const api = standardApi().on(
      'GET /v1/tickets/9',
      () => json(404, { error: 'not_found', detail: 'no ticket 9' }),
      () => json(200, { ...TICKET, id: '9' }),
    );
    const element = mount(api, { 'ticket-id': '9' }, null);
    await waitFor(() => $(element, '[data-banner] [role="alert"]'), 'ticket error');
    expect($(element, '[data-banner]')!.textContent).toContain('could not be loaded');
    click(element, 'ticket', 'retry-ticket');
    await untilDone(element);
    expect(api.calls('GET /v1/tickets/9')).toHaveLength(2);
  });
});

describe('errors and quotas', () => {
  it('shows an error with a retry that works', async () => {
    const api = standardApi();
    api.on(
      'POST /v1/summarize',
      () => json(500, { error: 'internal', detail: 'boom' }),
      () =>
        json(200, {
          summary: 'Recovered.',
          citations: [],
          interaction_id: 'i2',
          provider: 'p',
          model: 'm',
        }),
    );
    const element = mount(api);
    const alert = await waitFor(() => body(element, 'summary').querySelector('[role="alert"]'), 'error');
    expect(alert.textContent).toBe('Something went wrong. (boom)');
    click(element, 'summary', 'retry');
    await waitFor(() => body(element, 'summary').textContent?.includes('Recovered.'), 'retry');
  });

  it('shows a spent quota (HTTP 429 quota_exceeded) without a retry button', async () => {
    const api = standardApi().on('POST /v1/draft-reply/stream', () =>
      json(429, { error: 'quota_exceeded', detail: 'monthly budget spent' }),
    );
    const element = mount(api);
    const notice = await waitFor(() => body(element, 'draft').querySelector('.quota'), 'quota');
    expect(notice.getAttribute('data-error')).toBe('quota_exceeded');
    expect(notice.textContent).toContain('quota is used up');
    expect($(element, '[data-panel="draft"][data-action="retry"]')).toBeNull();
  });

  it('shows a rate limit with the wait from Retry-After, and a retry', async () => {
    const api = standardApi().on('POST /v1/similar-tickets', () =>
      json(429, { error: 'rate_limited', detail: null }, { 'Retry-After': '12' }),
    );
    const element = mount(api);
    const notice = await waitFor(() => body(element, 'similar').querySelector('.quota'), 'quota');
    expect(notice.textContent).toBe('Too many requests right now. Try again in 12 s.');
    expect($(element, '[data-panel="similar"][data-action="retry"]')).not.toBeNull();
  });

  it('treats a proxy 429 without our JSON as a rate limit', async () => {
    const api = standardApi().on(
      'POST /v1/summarize',
      () => new Response('<html>429 Too Many Requests</html>', { status: 429 }),
    );
    const element = mount(api);
    const notice = await waitFor(() => body(element, 'summary').querySelector('.quota'), 'quota');
    expect(notice.getAttribute('data-error')).toBe('rate_limited');
  });

  it('shows a quota error that arrives inside the event stream', async () => {
    const api = standardApi().on('POST /v1/draft-reply/stream', () =>
      sse([
        ['token', { text: 'Partial' }],
        ['error', { error: 'quota_exceeded', detail: 'daily token budget spent' }],
      ]),
    );
    const element = mount(api);
    const notice = await waitFor(() => body(element, 'draft').querySelector('.quota'), 'quota');
    expect(notice.textContent).toContain('quota is used up');
  });

  it('reports a stream that ends without a done event', async () => {
    const api = standardApi().on('POST /v1/draft-reply/stream', () =>
      sse([['token', { text: 'Half a sentence' }]]),
    );
    const element = mount(api);
    const alert = await waitFor(() => body(element, 'draft').querySelector('.error'), 'error');
    expect(alert.getAttribute('data-error')).toBe('stream_interrupted');
  });

  it('reports an unreachable API', async () => {
    const api = standardApi().on('POST /v1/draft-reply/stream', () => {
      throw new TypeError('Failed to fetch');
    });
    const element = mount(api);
    const alert = await waitFor(() => body(element, 'draft').querySelector('.error'), 'error');
    expect(alert.textContent).toContain('cannot be reached');
  });

  it('asks the host for a new token on 401 and retries with it', async () => {
    const api = standardApi();
    api.on(
      'POST /v1/draft-reply/stream',
      () => json(401, { error: 'invalid_token', detail: 'expired' }),
      () => sse([['done', generated(DRAFT)]]),
    );
    const element = mount(api);
    const authErrors: CustomEvent[] = [];
    document.addEventListener('helpdesk:auth-error', (event) => authErrors.push(event as CustomEvent), {
      once: true,
    });
    await waitFor(() => body(element, 'draft').querySelector('.error'), 'auth error');
    expect(authErrors[0].detail).toEqual({ status: 401, code: 'invalid_token' });
    element.setAttribute('token', 'hdw_fresh');
    await waitFor(() => $(element, '[data-panel="draft"][data-action="insert"]'), 'retried');
    const calls = api.calls('POST /v1/draft-reply/stream');
    expect(calls.at(-1)!.headers.authorization).toBe('Bearer hdw_fresh');
    expect(api.calls('POST /v1/summarize')).toHaveLength(1); // what worked is not redone
  });
});

describe('a refused ticket scope', () => {
  it('shows a 403 as an error, not as an expired session', async () => {
    const api = standardApi().on('POST /v1/draft-reply/stream', () =>
      json(403, { error: 'ticket_out_of_scope', detail: 'this widget token is for another ticket' }),
    );
    const element = mount(api);
    let authErrors = 0;
    element.addEventListener('helpdesk:auth-error', () => authErrors++);
    const alert = await waitFor(() => body(element, 'draft').querySelector('.error'), 'error');
    expect(alert.getAttribute('data-error')).toBe('ticket_out_of_scope');
    expect(alert.textContent).toContain('another ticket');
    expect(authErrors).toBe(0);
  });
});

describe('agent actions', () => {
  it('inserts the draft through a composed, bubbling event and records it', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    const inserts: CustomEvent<InsertDetail>[] = [];
    document.addEventListener('helpdesk:insert', (event) => inserts.push(event as CustomEvent), {
      once: true,
    });
    click(element, 'draft', 'insert');

    expect(inserts).toHaveLength(1);
    expect(inserts[0].bubbles).toBe(true);
    expect(inserts[0].composed).toBe(true);
    // The customer gets clean text: citation marks are for the agent.
    expect(inserts[0].detail).toEqual({
      text: 'Hold the reset button for 10 seconds.\n\nFirmware 3.3 fixes the drop-outs.',
      interactionId: 'int-draft-1',
    });
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'feedback');
    expect(api.calls('POST /v1/feedback')[0].body).toEqual({
      interaction_id: 'int-draft-1',
      inserted: true,
      outcome: 'inserted',
    });
    expect(body(element, 'draft').querySelector('.notice')!.textContent).toBe(
      'Inserted into the reply.',
    );
  });

  it('sends the vote already given along with an insert', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    click(element, 'draft', 'rate-up');
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'vote');
    click(element, 'draft', 'insert');
    await waitFor(() => api.calls('POST /v1/feedback').length === 2, 'insert');
    expect(api.calls('POST /v1/feedback')[1].body).toEqual({
      interaction_id: 'int-draft-1',
      outcome: 'inserted',
      rating: 'up',
      inserted: true,
    });
  });

  it('reports an inserted draft the agent changed before sending as edited, once', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    click(element, 'draft', 'insert');
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'insert');
    // Sent as inserted (markup and spacing aside): nothing more to say.
    element.reportReplySent(
      '<p>Hold the reset button for 10 seconds.</p>\n<p>Firmware 3.3 fixes the drop-outs.</p>',
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(api.calls('POST /v1/feedback')).toHaveLength(1);
    element.reportReplySent('Hold the reset button for 10 seconds. Then call us.');
    element.reportReplySent('Another edit.');
    await waitFor(() => api.calls('POST /v1/feedback').length === 2, 'edited');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(api.calls('POST /v1/feedback')).toHaveLength(2);
    expect(api.calls('POST /v1/feedback')[1].body).toEqual({
      interaction_id: 'int-draft-1',
      outcome: 'edited',
    });
  });

  it('reports a draft regenerated without an insert as discarded', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    click(element, 'draft', 'regenerate');
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'discarded');
    expect(api.calls('POST /v1/feedback')[0].body).toEqual({
      interaction_id: 'int-draft-1',
      outcome: 'discarded',
    });
    await waitFor(() => api.calls('POST /v1/draft-reply/stream').length === 2, 'second draft');
  });

  it('copies the draft to the clipboard', async () => {
    const writes: string[] = [];
    vi.spyOn(navigator.clipboard, 'writeText').mockImplementation(async (text: string) => {
      writes.push(text);
    });
    const element = mount(standardApi());
    await untilDone(element);
    click(element, 'draft', 'copy');
    await waitFor(() => writes.length === 1, 'clipboard write');
    expect(writes[0]).toBe('Hold the reset button for 10 seconds.\n\nFirmware 3.3 fixes the drop-outs.');
    await waitFor(() => body(element, 'draft').textContent?.includes('Copied'), 'notice');
  });

  it('regenerates: aborts the running stream and asks again with regenerate=true', async () => {
    const api = standardApi();
    let first: LiveStream | undefined;
    api.on(
      'POST /v1/draft-reply/stream',
      (request) => {
        first = new LiveStream(request.signal);
        return first.response;
      },
      () => sse([['done', generated('Second draft.')]]),
    );
    const element = mount(api);
    await waitFor(() => first, 'first stream');
    first!.send('token', { text: 'First' });
    first!.send('done', generated('First draft [1].'));
    first!.close();
    await waitFor(() => $(element, '[data-panel="draft"][data-action="regenerate"]'), 'done');

    const regenerate = $(element, '[data-panel="draft"][data-action="regenerate"]')!;
    regenerate.focus();
    regenerate.click();
    await waitFor(() => body(element, 'draft').textContent?.includes('Second draft.'), 'second');
    const calls = api.calls('POST /v1/draft-reply/stream');
    expect(calls).toHaveLength(2);
    expect(calls[1].body).toEqual({ ticket: TICKET, regenerate: true });
    // Keyboard focus stays on the control the agent used.
    expect((element.shadowRoot!.activeElement as HTMLElement).dataset.action).toBe('regenerate');
  });

  it('stops generating when asked, and when the agent leaves the ticket', async () => {
    const api = standardApi();
    const streams: LiveStream[] = [];
    api.on('POST /v1/draft-reply/stream', (request) => {
      const stream = new LiveStream(request.signal);
      streams.push(stream);
      return stream.response;
    });
    const element = mount(api);
    await waitFor(() => streams[0], 'stream');
    streams[0].send('token', { text: 'Partial draft' });
    await waitFor(() => $(element, '[data-stream="draft"]'), 'streaming');
    click(element, 'draft', 'stop');
    await waitFor(() => body(element, 'draft').textContent?.includes('Stopped.'), 'stopped');
    expect(streams[0].aborted).toBe(true);
    expect(body(element, 'draft').textContent).toContain('Partial draft');

    click(element, 'draft', 'regenerate');
    await waitFor(() => streams[1], 'second stream');
    element.remove();
    expect(api.calls('POST /v1/draft-reply/stream')[1].signal!.aborted).toBe(true);
    expect(streams[1].aborted).toBe(true);
  });

  it('starts over when the host shows another ticket', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    element.ticket = { ...TICKET }; // same content: nothing to redo
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(api.calls('POST /v1/draft-reply/stream')).toHaveLength(1);
    element.ticket = { ...TICKET, id: '1043', subject: 'Bulb flickers' };
    await waitFor(() => api.calls('POST /v1/draft-reply/stream').length === 2, 'second run');
    expect($(element, '.ticket-ref')!.textContent).toBe('#1043');
  });
});

describe('feedback', () => {
  it('sends a thumbs-up and shows it pressed', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    click(element, 'draft', 'rate-up');
    await waitFor(() => body(element, 'draft').textContent?.includes('Thanks'), 'thanks');
    expect(api.calls('POST /v1/feedback')[0].body).toEqual({
      interaction_id: 'int-draft-1',
      rating: 'up',
    });
    expect($(element, '[data-panel="draft"][data-action="rate-up"]')!.getAttribute('aria-pressed')).toBe(
      'true',
    );
  });

  it('asks why on thumbs-down and sends the reason and comment', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    click(element, 'draft', 'rate-down');
    const select = $(element, 'select[data-panel="draft"]') as HTMLSelectElement;
    expect(element.shadowRoot!.activeElement).toBe(select); // focus moves to the question
    expect([...select.options].map((option) => option.value)).toEqual([
      'incorrect',
      'incomplete',
      'outdated',
      'inappropriate',
      'other',
    ]);
    select.value = 'outdated';
    ($(element, 'input[data-field="comment"]') as HTMLInputElement).value = ' Firmware 3.4 is out ';
    click(element, 'draft', 'send-feedback');
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'feedback');
    expect(api.calls('POST /v1/feedback')[0].body).toEqual({
      interaction_id: 'int-draft-1',
      rating: 'down',
      reason: 'outdated',
      comment: 'Firmware 3.4 is out',
    });
    await waitFor(() => body(element, 'draft').textContent?.includes('Thanks'), 'thanks');
    expect($(element, 'select[data-panel="draft"]')).toBeNull();
  });

  it('rates the summary against its own interaction', async () => {
    const api = standardApi();
    const element = mount(api);
    await untilDone(element);
    click(element, 'summary', 'rate-up');
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'feedback');
    expect(api.calls('POST /v1/feedback')[0].body).toEqual({
      interaction_id: 'int-sum-1',
      rating: 'up',
    });
  });

  it('says so when feedback cannot be sent', async () => {
    const api = standardApi().on('POST /v1/feedback', () =>
      json(404, { error: 'not_found', detail: 'unknown interaction' }),
    );
    const element = mount(api);
    await untilDone(element);
    click(element, 'draft', 'rate-up');
    await waitFor(() => body(element, 'draft').textContent?.includes('could not be sent'), 'x');
  });
});

describe('keyboard and accessibility', () => {
  function key(target: HTMLElement, init: KeyboardEventInit): KeyboardEvent {
    const event = new KeyboardEvent('keydown', { bubbles: true, composed: true, cancelable: true, ...init });
    target.dispatchEvent(event);
    return event;
  }

  it('sends a question with Enter, in the ticket context, and streams the answer', async () => {
    const api = standardApi().on('POST /v1/answer/stream', () =>
      sse([
        ['token', { text: 'Use the Lumen app' }],
        ['done', generated('Use the Lumen app [1].', { interaction_id: 'int-answer-1' })],
      ]),
    );
    const element = mount(api);
    await untilDone(element);
    const field = $(element, 'textarea[data-field="question"]') as HTMLTextAreaElement;

    field.value = 'How do I pair a bulb?';
    expect(key(field, { key: 'Enter', shiftKey: true }).defaultPrevented).toBe(false);
    expect(key(field, { key: 'Enter', isComposing: true }).defaultPrevented).toBe(false);
    expect(api.calls('POST /v1/answer/stream')).toHaveLength(0);

    expect(key(field, { key: 'Enter' }).defaultPrevented).toBe(true);
    await waitFor(() => $(element, '[data-panel="answer"][data-action="insert"]'), 'answer');
    expect(api.calls('POST /v1/answer/stream')[0].body).toEqual({
      question: 'How do I pair a bulb?',
      ticket: TICKET,
    });
    expect(field.value).toBe('');
    const answer = body(element, 'answer');
    expect(answer.querySelector('.question')!.textContent).toBe('How do I pair a bulb?');
    expect(answer.querySelectorAll('.citations li')).toHaveLength(2);
    expect($(element, '[data-panel="answer"][data-action="regenerate"]')).toBeNull();

    click(element, 'answer', 'rate-up');
    await waitFor(() => api.calls('POST /v1/feedback').length === 1, 'feedback');
    expect(api.calls('POST /v1/feedback')[0].body).toMatchObject({ interaction_id: 'int-answer-1' });
  });

  it('sends with the Send button and ignores a blank question', async () => {
    const api = standardApi().on('POST /v1/answer/stream', () =>
      sse([['done', generated('Yes.', { citations: [] })]]),
    );
    const element = mount(api);
    await untilDone(element);
    const submit = $(element, 'form button[type="submit"]')!;
    submit.click();
    expect(api.calls('POST /v1/answer/stream')).toHaveLength(0);
    ($(element, 'textarea') as HTMLTextAreaElement).value = 'Is the hub waterproof?';
    submit.click();
    await waitFor(() => api.calls('POST /v1/answer/stream').length === 1, 'sent');
  });

  it('closes the reasons with Escape and gives focus back', async () => {
    const element = mount(standardApi());
    await untilDone(element);
    click(element, 'draft', 'rate-down');
    const select = $(element, 'select[data-panel="draft"]')!;
    key(select, { key: 'Escape' });
    expect($(element, 'select[data-panel="draft"]')).toBeNull();
    expect((element.shadowRoot!.activeElement as HTMLElement).dataset.action).toBe('rate-down');
  });

  it('uses real, labelled controls in a sensible tab order', async () => {
    const element = mount(standardApi());
    await untilDone(element);
    const controls = [
      ...element.shadowRoot!.querySelectorAll<HTMLElement>('button, a[href], textarea, select, input'),
    ];
    for (const control of controls) {
      const name = control.getAttribute('aria-label') || control.textContent?.trim();
      const labelled = control.tagName === 'TEXTAREA' ? Boolean($(element, `label[for="${control.id}"]`)) : false;
      expect(Boolean(name) || labelled, control.outerHTML).toBe(true);
      expect(control.getAttribute('tabindex')).not.toBe('-1');
    }
    const order = controls
      .filter((control) => control.tagName === 'BUTTON' || control.tagName === 'TEXTAREA')
      .map((control) => control.dataset.action ?? control.dataset.field ?? control.getAttribute('type'));
    expect(order).toEqual([
      'copy', 'insert', 'regenerate', 'rate-up', 'rate-down', // the draft first
      'rate-up', 'rate-down', // the summary
      'question', 'submit', // then the ask box
    ]);
  });
});

describe('triage suggestions', () => {
  const TRIAGE = {
    ticket_id: null,
    suggestions: {
      category: { value: 'Connectivity', values: [], confidence: 0.62, candidates: [] },
      tags: { value: 'wifi', values: ['wifi', 'router'], confidence: 0.55, candidates: [] },
      group: { value: null, values: [], confidence: 0.1, candidates: [] },
      priority: { value: 'high', values: [], confidence: 0.4, candidates: [] },
      sentiment: { value: 'negative', values: [], confidence: 0.7, candidates: [] },
      language: { value: 'en', values: [], confidence: 1, candidates: [] },
    },
  };

  it('shows the suggested fields and records an accepted one as feedback', async () => {
    const api = standardApi()
      .on('POST /v1/triage', () => json(200, TRIAGE))
      .on('POST /v1/triage/feedback', () => json(201, { id: 'tf-1' }));
    const element = mount(api);
    const accepted: unknown[] = [];
    element.addEventListener('helpdesk:triage-accept', (event) =>
      accepted.push((event as CustomEvent).detail),
    );
    await waitFor(() => body(element, 'triage').querySelector('li'), 'triage suggestions');

    expect(api.calls('POST /v1/triage')[0].body).toEqual({
      text: `${TICKET.subject}\n\n${TICKET.description}`,
    });
    const text = body(element, 'triage').textContent ?? '';
    expect(text).toContain('Connectivity');
    expect(text).toContain('wifi, router');
    expect(text).toContain('62%');
    expect(text).not.toContain('Group'); // no suggestion: not shown at all

    const accept = body(element, 'triage').querySelector<HTMLElement>(
      '[data-action="accept-suggestion"][data-field="category"]',
    );
    accept!.click();
    await waitFor(() => api.calls('POST /v1/triage/feedback').length > 0, 'triage feedback');
    expect(api.calls('POST /v1/triage/feedback')[0].body).toEqual({
      field: 'category',
      suggested: 'Connectivity',
      accepted: true,
      ticket_id: '1042',
    });
    expect(accepted).toEqual([{ field: 'category', value: 'Connectivity' }]);
    expect(body(element, 'triage').textContent).toContain('Accepted');
  });

  it('stays empty when triage is refused (a customer-audience token)', async () => {
    const api = standardApi().on('POST /v1/triage', () =>
      json(403, { error: 'agent_only', detail: 'triage is available to agents only' }),
    );
    const element = mount(api);
    await untilDone(element);
    await waitFor(() => api.calls('POST /v1/triage').length > 0, 'triage asked');
    expect(body(element, 'triage').innerHTML).toBe('');
    expect($(element, '[data-section="triage"]')!.hidden).toBe(true);
  });
});
