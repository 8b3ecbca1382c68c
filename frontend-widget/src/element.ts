// <helpdesk-assistant>: the agent's sidebar. For the ticket in view it streams a reply draft,
// lists similar solved tickets and shows a summary without the agent typing anything, and it
// answers free questions. The host page supplies the ticket (property `ticket`, or attribute
// `ticket-id` to load it) and handles `helpdesk:insert` to put text into its reply editor.

import { ApiError, HelpdeskApi, isAbort, type FetchLike } from './api';
import { resolveLanguage, translator, type MessageKey, type Translate } from './i18n';
import {
  answerHtml,
  button,
  citationsHtml,
  customerText,
  escapeHtml,
  feedbackHtml,
  similarHtml,
  statusHtml,
  triageHtml,
} from './render';
import { STYLES } from './styles';
import type {
  Feedback,
  FeedbackReason,
  GeneratedAnswer,
  InsertDetail,
  Rating,
  SimilarTicket,
  Summary,
  Ticket,
  TriageField,
  TriageResult,
} from './types';

export const INSERT_EVENT = 'helpdesk:insert';
/** Fired when the API refuses the token (401/403): the host can mint a new one and set it. */
export const AUTH_ERROR_EVENT = 'helpdesk:auth-error';
/** Fired when the agent accepts a triage suggestion: `detail` is `{ field, value }`. */
export const TRIAGE_ACCEPT_EVENT = 'helpdesk:triage-accept';

type GenerationPanel = 'draft' | 'answer';
type LookupPanel = 'summary' | 'similar' | 'triage';
type Panel = GenerationPanel | LookupPanel;
const PANELS: Panel[] = ['draft', 'summary', 'triage', 'similar', 'answer'];

type Phase = 'idle' | 'loading' | 'streaming' | 'done' | 'empty' | 'stopped' | 'error' | 'quota';

interface GenerationState {
  phase: Phase;
  text: string;
  question?: string;
  result?: GeneratedAnswer;
  error?: ApiError;
  rating?: Rating;
  reasonOpen: boolean;
  notice?: string;
  controller?: AbortController;
}

interface LookupState<T> {
  phase: Phase;
  value?: T;
  error?: ApiError;
  rating?: Rating;
  reasonOpen: boolean;
  notice?: string;
  controller?: AbortController;
}

function generation(): GenerationState {
  return { phase: 'idle', text: '', reasonOpen: false };
}

function lookup<T>(): LookupState<T> {
  return { phase: 'idle', reasonOpen: false };
}

const CONFIG_ATTRIBUTES = ['api-base', 'company-id', 'token'];

export class HelpdeskAssistantElement extends HTMLElement {
  static readonly observedAttributes = [
    ...CONFIG_ATTRIBUTES,
    'lang',
    'ticket-id',
    'ticket-source',
    'similar-limit',
  ];

  /** Replaceable transport (tests, or hosts that proxy requests); defaults to window.fetch. */
  fetchImpl: FetchLike | undefined;

  private readonly root: ShadowRoot;
  private ticketValue: Ticket | null = null;
  private loadedTicketId: string | null = null;
  /** The ticket came from `ticket-id` (not from the host): a new id replaces it. */
  private ticketFromId = false;
  private ticketController: AbortController | undefined;
  private runQueued = false;
  private lastRunKey: string | null = null;
  private rendered = false;
  private draft = generation();
  /** The draft in view and what was reported of it: the draft-acceptance analytics learn
   * whether it was inserted, inserted then edited (the host tells, see `reportReplySent`),
   * or discarded (regenerated without an insert). */
  private draftOutcome: { interactionId: string; inserted: string | null; reported: boolean } | null =
    null;
  private answer = generation();
  private summary = lookup<Summary>();
  private similar = lookup<SimilarTicket[]>();
  private triage = lookup<TriageResult>();
  /** `field:value` of the suggestions the agent accepted for the ticket in view. */
  private acceptedSuggestions = new Set<string>();
  private t: Translate = translator('en');
  /** A focused control that a re-render removed (e.g. Regenerate while loading): focus it
   * again when it comes back, so keyboard users stay where they were. */
  private pendingFocus: Partial<Record<Panel, string>> = {};

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.root.addEventListener('click', (event) => this.onClick(event));
    this.root.addEventListener('keydown', (event) => this.onKeyDown(event as KeyboardEvent));
    this.root.addEventListener('submit', (event) => {
      event.preventDefault();
      this.ask();
    });
  }

  // ---- public API -------------------------------------------------------------------------

  get ticket(): Ticket | null {
    return this.ticketValue;
  }

  set ticket(value: Ticket | null) {
    this.ticketValue = value ?? null;
    this.ticketFromId = false;
    this.loadedTicketId = null;
    this.scheduleRun();
  }

  /** The language the UI speaks: the `lang` attribute, else the browser's, else English. */
  get language(): string {
    return resolveLanguage(this.getAttribute('lang'), globalThis.navigator?.language);
  }

  /** The host tells the widget the reply the agent sent: if it carries an inserted draft
   * that the agent changed first, the draft is recorded as `edited` (once). */
  reportReplySent(text: string): void {
    const outcome = this.draftOutcome;
    if (!outcome || outcome.inserted === null || outcome.reported) return;
    if (normalizeReply(text) === normalizeReply(outcome.inserted)) return;
    outcome.reported = true;
    this.reportOutcome({ interaction_id: outcome.interactionId, outcome: 'edited' });
  }

  /** Abort what is in flight and start the ticket's suggestions again. */
  refresh(): void {
    this.lastRunKey = null;
    this.scheduleRun();
  }

  connectedCallback(): void {
    // A host may set `ticket` before this script upgraded the element: that value sits on the
    // instance and would shadow the accessor, so take it over.
    if (Object.prototype.hasOwnProperty.call(this, 'ticket')) {
      const early = (this as unknown as { ticket: Ticket | null }).ticket;
      delete (this as unknown as { ticket?: unknown }).ticket;
      this.ticket = early;
    }
    if (!this.rendered) this.renderSkeleton();
    this.scheduleRun();
  }

  disconnectedCallback(): void {
    // The agent left the ticket: stop generating (the server sees the closed stream).
    this.abortAll();
    this.lastRunKey = null;
  }

  attributeChangedCallback(name: string, previous: string | null, value: string | null): void {
    if (previous === value) return;
    if (name === 'lang') {
      if (this.rendered) this.renderSkeleton();
      return;
    }
    if (name === 'token' && this.rendered) {
      // A re-minted token: only what failed on authentication needs another try.
      this.retryAuthFailures();
    }
    if (name === 'ticket-id' || name === 'ticket-source') {
      this.loadedTicketId = null;
      if (this.ticketFromId) this.ticketValue = null;
    }
    this.scheduleRun();
  }

  // ---- orchestration ----------------------------------------------------------------------

  private api(): HelpdeskApi | null {
    const apiBase = this.getAttribute('api-base');
    const companyId = this.getAttribute('company-id');
    const token = this.getAttribute('token');
    if (!apiBase || !companyId || !token) return null;
    return new HelpdeskApi({ apiBase, companyId, token, fetch: this.fetchImpl });
  }

  private scheduleRun(): void {
    if (this.runQueued) return;
    this.runQueued = true;
    // Attributes and the ticket usually arrive together: start once, after all of them.
    queueMicrotask(() => {
      this.runQueued = false;
      this.run();
    });
  }

  private run(): void {
    if (!this.isConnected) return;
    if (!this.rendered) this.renderSkeleton();
    const api = this.api();
    if (!api) {
      this.setBanner(escapeHtml(this.t('notConfigured')));
      return;
    }
    const ticketId = this.getAttribute('ticket-id');
    if (!this.ticketValue && ticketId && this.loadedTicketId !== ticketId) {
      this.loadTicket(api, ticketId);
      return;
    }
    const ticket = this.ticketValue;
    const key = JSON.stringify([
      this.getAttribute('api-base'),
      this.getAttribute('company-id'),
      ticket,
    ]);
    if (key === this.lastRunKey) return;
    this.lastRunKey = key;
    this.abortAll();
    this.draft = generation();
    this.answer = generation();
    this.summary = lookup();
    this.similar = lookup();
    this.triage = lookup();
    this.acceptedSuggestions = new Set();
    this.renderTicketRef();
    if (!ticket) {
      this.setBanner(escapeHtml(this.t('noTicket')));
      PANELS.forEach((panel) => this.renderPanel(panel));
      return;
    }
    this.setBanner('');
    this.startDraft(api, false);
    this.loadSummary(api);
    this.loadSimilar(api);
    this.loadTriage(api);
    this.renderPanel('answer');
  }

  private loadTicket(api: HelpdeskApi, ticketId: string): void {
    this.ticketController?.abort();
    const controller = new AbortController();
    this.ticketController = controller;
    this.setBanner(statusHtml(this.t('loadingTicket')));
    api.getTicket(ticketId, this.getAttribute('ticket-source'), controller.signal).then(
      (ticket) => {
        if (controller.signal.aborted) return;
        this.ticketValue = ticket;
        this.ticketFromId = true;
        this.loadedTicketId = ticketId;
        this.scheduleRun();
      },
      (error: unknown) => {
        if (isAbort(error)) return;
        const failure = this.asApiError(error);
        this.setBanner(
          `<div class="error" role="alert">${escapeHtml(this.t('ticketError'))} ${escapeHtml(this.errorText(failure))}</div>` +
            `<div class="row">${button('retry-ticket', 'ticket', this.t('retry'))}</div>`,
        );
      },
    );
  }

  private abortAll(): void {
    this.ticketController?.abort();
    for (const state of [this.draft, this.answer, this.summary, this.similar, this.triage]) {
      state.controller?.abort();
    }
  }

  private retryAuthFailures(): void {
    const api = this.api();
    if (!api || !this.ticketValue) return;
    if (this.draft.error?.isAuth) this.startDraft(api, false);
    if (this.summary.error?.isAuth) this.loadSummary(api);
    if (this.similar.error?.isAuth) this.loadSimilar(api);
    if (this.triage.error?.isAuth) this.loadTriage(api);
  }

  /** A draft shown and never inserted, then replaced: recorded as `discarded` (once). */
  private reportDiscardedDraft(): void {
    const interactionId = this.draft.result?.interaction_id;
    if (!interactionId) return;
    const outcome = this.draftOutcome;
    if (outcome?.interactionId === interactionId && (outcome.inserted !== null || outcome.reported))
      return;
    this.draftOutcome = { interactionId, inserted: null, reported: true };
    this.reportOutcome({ interaction_id: interactionId, outcome: 'discarded' });
  }

  /** Outcomes are analytics, not something the agent asked for: sent quietly, nothing shown
   * (the panel may already hold the next draft). */
  private reportOutcome(feedback: Feedback): void {
    void this.api()
      ?.sendFeedback(feedback)
      .catch(() => undefined);
  }

  private startDraft(api: HelpdeskApi, regenerate: boolean): void {
    const ticket = this.ticketValue;
    if (!ticket) return;
    this.draft.controller?.abort();
    this.draft = generation();
    this.stream('draft', (handlers, signal) =>
      api.draftReply(ticket, regenerate, handlers, signal),
    );
  }

  private ask(): void {
    const field = this.root.querySelector<HTMLTextAreaElement>('textarea[data-field="question"]');
    const question = field?.value.trim() ?? '';
    const api = this.api();
    if (!question || !api || !field) return;
    field.value = '';
    this.answer.controller?.abort();
    this.answer = { ...generation(), question };
    const ticket = this.ticketValue;
    this.stream('answer', (handlers, signal) => api.answer(question, ticket, handlers, signal));
  }

  private stream(
    panel: GenerationPanel,
    call: (
      handlers: { onToken(text: string): void },
      signal: AbortSignal,
    ) => Promise<GeneratedAnswer>,
  ): void {
    const state = panel === 'draft' ? this.draft : this.answer;
    const controller = new AbortController();
    state.controller = controller;
    state.phase = 'loading';
    this.renderPanel(panel);
    const onToken = (text: string) => {
      if (controller.signal.aborted) return;
      state.text += text;
      if (state.phase === 'loading') {
        state.phase = 'streaming';
        this.renderPanel(panel);
      } else {
        const live = this.root.querySelector(`[data-stream="${panel}"]`);
        if (live) live.textContent = state.text;
      }
    };
    call({ onToken }, controller.signal).then(
      (result) => {
        if (controller.signal.aborted) return;
        state.result = result;
        state.text = result.answer ?? state.text;
        state.phase = state.text.trim() ? 'done' : 'empty';
        state.controller = undefined;
        this.renderPanel(panel);
        if (state.phase === 'done') {
          this.announce(this.t(panel === 'draft' ? 'draftReady' : 'answerReady'));
        }
      },
      (error: unknown) => {
        state.controller = undefined;
        if (isAbort(error)) {
          if (state.phase === 'loading' || state.phase === 'streaming') {
            state.phase = 'stopped';
            this.renderPanel(panel);
          }
          return;
        }
        this.fail(state, error);
        this.renderPanel(panel);
      },
    );
  }

  private loadSummary(api: HelpdeskApi): void {
    const ticket = this.ticketValue;
    if (!ticket) return;
    this.runLookup('summary', this.summary, (signal) => api.summarize(ticket, signal), (value) =>
      Boolean(value.summary?.trim()),
    );
  }

  private loadSimilar(api: HelpdeskApi): void {
    const ticket = this.ticketValue;
    if (!ticket) return;
    const limit = Number(this.getAttribute('similar-limit') ?? 5) || 5;
    this.runLookup(
      'similar',
      this.similar,
      (signal) => api.similarTickets(ticket, limit, signal),
      (value) => value.length > 0,
    );
  }

  private loadTriage(api: HelpdeskApi): void {
    const ticket = this.ticketValue;
    if (!ticket) return;
    this.runLookup(
      'triage',
      this.triage,
      (signal) => api.triage(ticket, signal),
      (value) => Object.values(value.suggestions).some((s) => Boolean(s?.value)),
    );
  }

  /** Accepting a suggestion is feedback: it tells the service its vote was right. The host
   * hears of it too (`helpdesk:triage-accept`), to set the field in its own form. */
  private acceptSuggestion(field: TriageField, value: string): void {
    const api = this.api();
    const key = `${field}:${value}`;
    if (!api || this.acceptedSuggestions.has(key)) return;
    this.acceptedSuggestions.add(key);
    this.renderPanel('triage');
    this.dispatchEvent(
      new CustomEvent(TRIAGE_ACCEPT_EVENT, {
        detail: { field, value },
        bubbles: true,
        composed: true,
      }),
    );
    const verdict = { field, suggested: value, accepted: true };
    const ticketId = this.ticketValue?.id;
    void api
      .triageFeedback(ticketId ? { ...verdict, ticket_id: ticketId } : verdict)
      .catch((error: unknown) => {
        this.acceptedSuggestions.delete(key);
        this.fail(this.triage, error);
        this.renderPanel('triage');
      });
  }

  private runLookup<T>(
    panel: LookupPanel,
    state: LookupState<T>,
    call: (signal: AbortSignal) => Promise<T>,
    hasContent: (value: T) => boolean,
  ): void {
    state.controller?.abort();
    const controller = new AbortController();
    Object.assign(state, { phase: 'loading', value: undefined, error: undefined, controller });
    this.renderPanel(panel);
    call(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        state.value = value;
        state.phase = hasContent(value) ? 'done' : 'empty';
        state.controller = undefined;
        this.renderPanel(panel);
      },
      (error: unknown) => {
        if (isAbort(error)) return;
        state.controller = undefined;
        this.fail(state, error);
        this.renderPanel(panel);
      },
    );
  }

  private asApiError(error: unknown): ApiError {
    return error instanceof ApiError ? error : new ApiError(0, 'client_error', String(error));
  }

  private fail(state: { phase: Phase; error?: ApiError }, error: unknown): void {
    const failure = this.asApiError(error);
    state.error = failure;
    state.phase = failure.isQuota ? 'quota' : 'error';
    if (failure.isAuth) {
      this.dispatchEvent(
        new CustomEvent(AUTH_ERROR_EVENT, {
          detail: { status: failure.status, code: failure.code },
          bubbles: true,
          composed: true,
        }),
      );
    }
  }

  // ---- actions ----------------------------------------------------------------------------

  private onClick(event: Event): void {
    const target = (event.target as Element | null)?.closest<HTMLElement>('[data-action]');
    if (!target) return;
    const action = target.dataset.action;
    const panel = target.dataset.panel as Panel | undefined;
    const api = this.api();
    switch (action) {
      case 'focus-cite': {
        event.preventDefault();
        const href = target.getAttribute('href')?.slice(1) ?? '';
        this.root.getElementById(href)?.focus();
        return;
      }
      case 'retry-ticket':
        this.loadedTicketId = null;
        this.scheduleRun();
        return;
      case 'stop':
        if (panel === 'draft' || panel === 'answer') this.generationState(panel).controller?.abort();
        return;
      case 'regenerate':
        if (api) {
          this.reportDiscardedDraft();
          this.startDraft(api, true);
        }
        return;
      case 'retry':
        if (!api) return;
        if (panel === 'draft') this.startDraft(api, false);
        else if (panel === 'summary') this.loadSummary(api);
        else if (panel === 'similar') this.loadSimilar(api);
        else if (panel === 'answer' && this.answer.question) {
          const question = this.answer.question;
          this.answer = { ...generation(), question };
          const ticket = this.ticketValue;
          this.stream('answer', (handlers, signal) =>
            api.answer(question, ticket, handlers, signal),
          );
        }
        return;
      case 'copy':
        if (panel === 'draft' || panel === 'answer') void this.copy(panel);
        return;
      case 'insert':
        if (panel === 'draft' || panel === 'answer') this.insert(panel);
        return;
      case 'rate-up':
        if (panel) this.rate(panel, 'up');
        return;
      case 'rate-down':
        if (panel) this.rate(panel, 'down');
        return;
      case 'send-feedback':
        if (panel) this.sendDownVote(panel);
        return;
      case 'cancel-feedback':
        if (panel) this.closeReasons(panel);
        return;
      case 'accept-suggestion': {
        const { field, value } = target.dataset;
        if (field && value) this.acceptSuggestion(field as TriageField, value);
        return;
      }
    }
  }

  private onKeyDown(event: KeyboardEvent): void {
    const target = event.target as HTMLElement | null;
    if (!target) return;
    if (target.dataset.field === 'question' && event.key === 'Enter' && !event.shiftKey) {
      // Korean (and other IME) input confirms a syllable with Enter: that is not "send".
      if (event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.ask();
      return;
    }
    if (event.key === 'Escape') {
      const reasons = target.closest<HTMLElement>('.reasons');
      const panel = reasons?.dataset.panel as Panel | undefined;
      if (panel) {
        event.preventDefault();
        this.closeReasons(panel);
      }
    }
  }

  private generationState(panel: GenerationPanel): GenerationState {
    return panel === 'draft' ? this.draft : this.answer;
  }

  private feedbackState(panel: Panel): GenerationState | LookupState<unknown> {
    switch (panel) {
      case 'draft':
        return this.draft;
      case 'answer':
        return this.answer;
      case 'summary':
        return this.summary;
      case 'similar':
        return this.similar;
      case 'triage':
        return this.triage;
    }
  }

  private interactionId(panel: Panel): string | undefined {
    if (panel === 'draft' || panel === 'answer') {
      return this.generationState(panel).result?.interaction_id;
    }
    if (panel === 'summary') return this.summary.value?.interaction_id;
    return undefined;
  }

  private async copy(panel: GenerationPanel): Promise<void> {
    const state = this.generationState(panel);
    const text = customerText(state.text);
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch {
      copied = this.copyWithSelection(text);
    }
    state.notice = this.t(copied ? 'copied' : 'copyFailed');
    this.renderPanel(panel);
  }

  /** Fallback for pages without clipboard permission (e.g. inside a sandboxed iframe). */
  private copyWithSelection(text: string): boolean {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'sr-only';
    this.root.appendChild(area);
    area.select();
    try {
      return document.execCommand?.('copy') ?? false;
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }

  private insert(panel: GenerationPanel): void {
    const state = this.generationState(panel);
    const interactionId = state.result?.interaction_id ?? '';
    const detail: InsertDetail = { text: customerText(state.text), interactionId };
    this.dispatchEvent(
      new CustomEvent<InsertDetail>(INSERT_EVENT, { detail, bubbles: true, composed: true }),
    );
    state.notice = this.t('inserted');
    this.renderPanel(panel);
    if (interactionId) {
      // Recorded on its own: inserting says the draft was used, not how good it was; a vote
      // the agent already gave travels along.
      const feedback: Feedback = { interaction_id: interactionId, inserted: true };
      if (panel === 'draft') {
        feedback.outcome = 'inserted';
        this.draftOutcome = { interactionId, inserted: detail.text, reported: false };
      }
      if (state.rating) feedback.rating = state.rating;
      void this.postFeedback(panel, feedback, false);
    }
  }

  private rate(panel: Panel, rating: Rating): void {
    const state = this.feedbackState(panel);
    const interactionId = this.interactionId(panel);
    if (!interactionId) return;
    state.rating = rating;
    if (rating === 'down') {
      state.reasonOpen = true;
      state.notice = undefined;
      this.renderPanel(panel);
      this.root.querySelector<HTMLElement>(`select[data-panel="${panel}"]`)?.focus();
      return;
    }
    state.reasonOpen = false;
    this.renderPanel(panel);
    void this.postFeedback(panel, { interaction_id: interactionId, rating: 'up' }, true);
  }

  private sendDownVote(panel: Panel): void {
    const interactionId = this.interactionId(panel);
    if (!interactionId) return;
    const reason = this.root.querySelector<HTMLSelectElement>(
      `select[data-field="reason"][data-panel="${panel}"]`,
    )?.value as FeedbackReason | undefined;
    const comment = this.root
      .querySelector<HTMLInputElement>(`input[data-field="comment"][data-panel="${panel}"]`)
      ?.value.trim();
    const feedback: Feedback = { interaction_id: interactionId, rating: 'down' };
    if (reason) feedback.reason = reason;
    if (comment) feedback.comment = comment;
    this.feedbackState(panel).reasonOpen = false;
    void this.postFeedback(panel, feedback, true).then(() =>
      this.root.querySelector<HTMLElement>(`[data-action="rate-down"][data-panel="${panel}"]`)
        ?.focus(),
    );
  }

  private closeReasons(panel: Panel): void {
    const state = this.feedbackState(panel);
    state.reasonOpen = false;
    state.rating = undefined;
    this.renderPanel(panel);
    this.root.querySelector<HTMLElement>(`[data-action="rate-down"][data-panel="${panel}"]`)
      ?.focus();
  }

  private async postFeedback(panel: Panel, feedback: Feedback, thank: boolean): Promise<void> {
    const api = this.api();
    if (!api) return;
    const state = this.feedbackState(panel);
    try {
      await api.sendFeedback(feedback);
      if (thank) state.notice = this.t('feedbackThanks');
    } catch {
      state.notice = this.t('feedbackFailed');
    }
    this.renderPanel(panel);
  }

  // ---- rendering --------------------------------------------------------------------------

  private renderSkeleton(): void {
    this.t = translator(this.language);
    const t = this.t;
    const section = (panel: Panel, heading: MessageKey, extra = '') =>
      `<section data-section="${panel}" aria-labelledby="h-${panel}">
  <h3 id="h-${panel}">${escapeHtml(t(heading))}</h3>${extra}
  <div class="body" data-body="${panel}" tabindex="-1"></div>
</section>`;
    const askForm = `<form data-form="ask">
  <label class="sr-only" for="question">${escapeHtml(t('askLabel'))}</label>
  <textarea id="question" data-field="question" rows="2" placeholder="${escapeHtml(t('askPlaceholder'))}"></textarea>
  <div class="row"><button type="submit" class="primary" data-panel="answer">${escapeHtml(t('send'))}</button></div>
</form>`;
    this.root.innerHTML = `<style>${STYLES}</style>
<div class="root" lang="${this.language}">
  <header><h2>${escapeHtml(t('title'))}</h2><span class="ticket-ref"></span></header>
  <div class="banner" data-banner></div>
  ${section('draft', 'draftHeading')}
  ${section('summary', 'summaryHeading')}
  ${section('triage', 'triageHeading')}
  ${section('similar', 'similarHeading')}
  ${section('answer', 'askHeading', askForm)}
  <div class="sr-only" role="status" aria-live="polite" data-announcer></div>
</div>`;
    this.rendered = true;
    this.renderTicketRef();
    PANELS.forEach((panel) => this.renderPanel(panel));
  }

  private setBanner(html: string): void {
    const banner = this.root.querySelector<HTMLElement>('[data-banner]');
    if (banner) banner.innerHTML = html;
  }

  private renderTicketRef(): void {
    const ref = this.root.querySelector<HTMLElement>('.ticket-ref');
    if (ref) ref.textContent = this.ticketValue?.id ? `#${this.ticketValue.id}` : '';
  }

  private announce(message: string): void {
    const announcer = this.root.querySelector<HTMLElement>('[data-announcer]');
    if (!announcer) return;
    announcer.textContent = '';
    // A changed text (not the same one twice) is what screen readers announce.
    setTimeout(() => {
      announcer.textContent = message;
    }, 50);
  }

  private renderPanel(panel: Panel): void {
    const body = this.root.querySelector<HTMLElement>(`[data-body="${panel}"]`);
    if (!body) return;
    let html: string;
    if (panel === 'draft' || panel === 'answer') html = this.generationHtml(panel);
    else if (panel === 'summary') html = this.summaryHtml();
    else if (panel === 'triage') html = this.triageHtml();
    else html = this.similarHtml();
    // Re-rendering replaces the buttons: keep keyboard focus on "the same" control.
    const active = this.root.activeElement as HTMLElement | null;
    const focusKey =
      active === body
        ? (this.pendingFocus[panel] ?? null)
        : active && body.contains(active)
          ? selectorFor(active)
          : null;
    body.innerHTML = html;
    // Triage is optional help: its section shows only when there is something to accept.
    if (panel === 'triage') body.closest('section')?.toggleAttribute('hidden', !html);
    if (!focusKey) return;
    const again = body.querySelector<HTMLElement>(focusKey);
    if (again) {
      again.focus();
      delete this.pendingFocus[panel];
    } else {
      this.pendingFocus[panel] = focusKey;
      body.focus();
    }
  }

  private generationHtml(panel: GenerationPanel): string {
    const t = this.t;
    const state = this.generationState(panel);
    const question = state.question
      ? `<p class="question">${escapeHtml(state.question)}</p>`
      : '';
    const stop = `<div class="actions">${button('stop', panel, t('stop'))}</div>`;
    switch (state.phase) {
      case 'idle':
        return '';
      case 'loading':
        return question + statusHtml(t(panel === 'draft' ? 'drafting' : 'answering')) + stop;
      case 'streaming':
        return `${question}<div class="answer streaming" data-stream="${panel}" aria-live="polite" aria-busy="true">${escapeHtml(state.text)}</div>${stop}`;
      case 'stopped':
        return `${question}<div class="answer streaming">${escapeHtml(state.text)}</div><p class="muted" role="status">${escapeHtml(t('stopped'))}</p>${
          panel === 'draft' ? `<div class="actions">${button('regenerate', panel, t('regenerate'))}</div>` : ''
        }`;
      case 'empty':
        return `${question}<p class="muted">${escapeHtml(t(panel === 'draft' ? 'draftEmpty' : 'answerEmpty'))}</p>${
          panel === 'draft' ? `<div class="actions">${button('regenerate', panel, t('regenerate'))}</div>` : ''
        }`;
      case 'error':
      case 'quota':
        return question + this.errorHtml(panel, state.error);
      case 'done': {
        const result = state.result;
        const citations = result?.citations ?? [];
        const cached = result?.cached ? ` <span class="badge">${escapeHtml(t('cached'))}</span>` : '';
        const actions = [
          button('copy', panel, t('copy')),
          button('insert', panel, t('insert'), '', panel === 'draft' ? 'primary' : ''),
          panel === 'draft' ? button('regenerate', panel, t('regenerate')) : '',
        ].join('');
        return `${question}<div class="answer" aria-busy="false">${answerHtml(state.text, citations, panel)}</div>${cached}
${citationsHtml(citations, t, panel)}
<div class="actions">${actions}</div>
${feedbackHtml(panel, state, t)}
<p class="notice" role="status">${escapeHtml(state.notice ?? '')}</p>`;
      }
    }
  }

  private summaryHtml(): string {
    const t = this.t;
    const state = this.summary;
    switch (state.phase) {
      case 'idle':
      case 'stopped':
      case 'streaming':
        return '';
      case 'loading':
        return statusHtml(t('summarizing'));
      case 'empty':
        return `<p class="muted">${escapeHtml(t('summaryEmpty'))}</p>`;
      case 'error':
      case 'quota':
        return this.errorHtml('summary', state.error);
      case 'done': {
        const summary = state.value;
        if (!summary) return '';
        return `<div class="answer">${answerHtml(summary.summary, summary.citations ?? [], 'summary')}</div>
${citationsHtml(summary.citations ?? [], t, 'summary')}
${feedbackHtml('summary', state, t)}
<p class="notice" role="status">${escapeHtml(state.notice ?? '')}</p>`;
      }
    }
  }

  private similarHtml(): string {
    const t = this.t;
    const state = this.similar;
    switch (state.phase) {
      case 'idle':
      case 'stopped':
      case 'streaming':
        return '';
      case 'loading':
        return statusHtml(t('searching'));
      case 'empty':
        return `<p class="muted">${escapeHtml(t('similarEmpty'))}</p>`;
      case 'error':
      case 'quota':
        return this.errorHtml('similar', state.error);
      case 'done':
        return similarHtml(state.value ?? [], t);
    }
  }

  private triageHtml(): string {
    const state = this.triage;
    // Suggestions are optional help: while loading, without any, or when the service
    // declines (a customer-audience token, triage unavailable) the panel stays empty.
    if (state.phase !== 'done' || !state.value) return '';
    return triageHtml(state.value, this.acceptedSuggestions, this.t);
  }

  private errorText(error: ApiError | undefined): string {
    const t = this.t;
    if (!error) return t('error');
    if (error.isQuota) {
      const base = t(error.code === 'quota_exceeded' ? 'quotaExceeded' : 'rateLimited');
      return error.retryAfterSeconds !== null
        ? `${base} ${t('retryIn', { seconds: error.retryAfterSeconds })}`
        : base;
    }
    if (error.isAuth) return t('authError');
    if (error.code === 'network_error') return t('networkError');
    return typeof error.detail === 'string' && error.detail
      ? `${t('error')} (${error.detail})`
      : t('error');
  }

  private errorHtml(panel: Panel, error: ApiError | undefined): string {
    const quota = error?.isQuota ?? false;
    // A spent quota does not come back by clicking; a rate limit or a failure may.
    const retry =
      error?.code === 'quota_exceeded' ? '' : button('retry', panel, this.t('retry'));
    return `<div class="${quota ? 'quota' : 'error'}" role="alert" data-error="${escapeHtml(error?.code ?? 'error')}">${escapeHtml(this.errorText(error))}</div>${
      retry ? `<div class="actions">${retry}</div>` : ''
    }`;
  }
}

function selectorFor(element: HTMLElement): string | null {
  if (element.dataset.action) return `[data-action="${element.dataset.action}"]`;
  if (element.dataset.field) return `[data-field="${element.dataset.field}"]`;
  return null;
}

/** Replies compare on their words: hosts reflow whitespace and wrap text in markup. */
function normalizeReply(text: string): string {
  return text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}
