import { afterEach, describe, expect, it, vi } from 'vitest';
import '../src/index';
import { HelpdeskAssistantElement } from '../src/element';
import { CATALOGS, resolveLanguage, translator } from '../src/i18n';
import { FakeApi, generated, json, sse, waitFor } from './fake-api';

afterEach(() => {
  document.body.innerHTML = '';
  vi.restoreAllMocks();
});

function koreanApi(): FakeApi {
  return new FakeApi()
    .on('POST /v1/draft-reply/stream', () =>
      sse([['done', generated('허브를 재설정하세요 [1].', { language: 'ko' })]]),
    )
    .on('POST /v1/summarize', () => json(429, { error: 'quota_exceeded', detail: null }))
    .on('POST /v1/similar-tickets', () => json(200, { tickets: [] }));
}

function mount(api: FakeApi, lang?: string) {
  const element = document.createElement('helpdesk-assistant');
  element.fetchImpl = api.fetch;
  element.setAttribute('api-base', 'http://127.0.0.1:8000');
  element.setAttribute('company-id', 'lumen');
  element.setAttribute('token', 'hdw_t');
  if (lang) element.setAttribute('lang', lang);
  element.ticket = { subject: '허브 오프라인', description: '허브가 계속 끊겨요.', language: 'ko' };
  document.body.append(element);
  return element;
}

describe('language', () => {
  it('maps language tags to a catalog, English when unsupported', () => {
    expect(resolveLanguage('ko-KR')).toBe('ko');
    expect(resolveLanguage('KO')).toBe('ko');
    expect(resolveLanguage('en_GB')).toBe('en');
    expect(resolveLanguage(null, 'ko-KR')).toBe('ko');
    expect(resolveLanguage('fr', 'de')).toBe('en');
    expect(resolveLanguage(undefined, '')).toBe('en');
  });

  it('has every message, non-empty, in every language, with the same placeholders', () => {
    const english = CATALOGS.en;
    const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [language, catalog] of Object.entries(CATALOGS)) {
      expect(Object.keys(catalog).sort(), language).toEqual(Object.keys(english).sort());
      for (const [key, text] of Object.entries(catalog)) {
        expect(text.trim(), `${language}.${key}`).not.toBe('');
        expect(placeholders(text), `${language}.${key}`).toEqual(
          placeholders(english[key as keyof typeof english]),
        );
      }
    }
  });

  it('fills placeholders', () => {
    expect(translator('ko')('retryIn', { seconds: 30 })).toBe('30초 후에 다시 시도하세요.');
    expect(translator('en')('citationLabel', { index: 2, title: 'Reset' })).toBe('Source 2: Reset');
  });

  it('speaks Korean from the lang attribute', async () => {
    const element = mount(koreanApi(), 'ko');
    await waitFor(() => element.shadowRoot!.querySelector('[data-action="insert"]'), 'draft');
    const root = element.shadowRoot!;
    expect(root.querySelector('h2')!.textContent).toBe('헬프데스크 어시스턴트');
    expect(root.querySelector('#h-draft')!.textContent).toBe('추천 답변');
    expect(root.querySelector('[data-action="insert"]')!.textContent).toBe('답변에 넣기');
    expect(root.querySelector('[data-action="rate-down"]')!.getAttribute('aria-label')).toBe(
      '도움이 안 됨',
    );
    await waitFor(() => root.querySelector('[data-body="summary"] .quota'), 'quota');
    expect(root.querySelector('[data-body="summary"]')!.textContent).toContain('사용 한도');
    expect(root.querySelector('[data-body="similar"]')!.textContent).toContain(
      '비슷한 해결 티켓이 없습니다',
    );
    expect(root.querySelector('.root')!.getAttribute('lang')).toBe('ko');
  });

  it("falls back to the browser's language, and follows a lang change", async () => {
    vi.spyOn(navigator, 'language', 'get').mockReturnValue('ko-KR');
    const element = mount(koreanApi());
    await waitFor(() => element.shadowRoot!.querySelector('[data-action="insert"]'), 'draft');
    expect(element.language).toBe('ko');
    expect(element.shadowRoot!.querySelector('[data-action="copy"]')!.textContent).toBe('복사');

    element.setAttribute('lang', 'en');
    expect(element.shadowRoot!.querySelector('[data-action="copy"]')!.textContent).toBe('Copy');
    // The draft survives the switch.
    expect(element.shadowRoot!.querySelector('[data-body="draft"]')!.textContent).toContain(
      '허브를 재설정하세요',
    );
  });
});

describe('embedding', () => {
  it('takes a ticket set before the element was upgraded', async () => {
    const api = koreanApi();
    // A host that sets the property before the script ran: the value lands on the plain
    // element, then defining the tag upgrades it.
    const early = document.createElement('helpdesk-assistant-late') as HTMLElement & {
      ticket: unknown;
      fetchImpl: unknown;
    };
    early.setAttribute('api-base', 'http://127.0.0.1:8000');
    early.setAttribute('company-id', 'lumen');
    early.setAttribute('token', 'hdw_t');
    early.ticket = { subject: 'Early', description: 'Set before upgrade' };
    early.fetchImpl = api.fetch;
    document.body.append(early);
    customElements.define('helpdesk-assistant-late', class extends HelpdeskAssistantElement {});
    await waitFor(() => api.calls('POST /v1/draft-reply/stream').length === 1, 'draft');
    expect(api.calls('POST /v1/draft-reply/stream')[0].body).toEqual({
      ticket: { subject: 'Early', description: 'Set before upgrade' },
    });
    expect(early.ticket).toEqual({ subject: 'Early', description: 'Set before upgrade' });
  });

  it('keeps host styles out of its shadow root', () => {
    const style = document.createElement('style');
    style.textContent = 'button { display: none !important; }';
    document.head.append(style);
    const element = mount(koreanApi(), 'en');
    expect(element.shadowRoot).not.toBeNull();
    expect(element.shadowRoot!.querySelector('style')!.textContent).toContain('all: initial');
    expect(document.querySelectorAll('button')).toHaveLength(0); // nothing leaks into the page
    style.remove();
  });
});
