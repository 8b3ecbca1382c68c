// HTML for each part of the widget, as strings. Every value from the API or the host page
// goes through escapeHtml (or safeUrl): retrieved text is data, never markup.

import type { Translate } from './i18n';
import {
  FEEDBACK_REASONS,
  type Citation,
  type Rating,
  type SimilarTicket,
  type TriageResult,
} from './types';

// Inline icons: emoji glyphs depend on the host machine's fonts (many agents' desktops and
// headless browsers have none), an SVG path does not.
const THUMB_UP =
  '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false"><path fill="currentColor" d="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z"/></svg>';
const THUMB_DOWN =
  '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false"><path fill="currentColor" d="M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.4 1.1l1.1 1 6.6-6.6c.4-.4.6-.9.6-1.4V5a2 2 0 0 0-2-2H7c-.8 0-1.5.5-1.8 1.2l-3 7.1c-.1.2-.2.5-.2.7v2z"/></svg>';

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Only http(s) links are rendered: a `javascript:` URL in a source must never become clickable. */
export function safeUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

const CITATION_MARK = /\[(\d{1,3})\]/g;

/** Text for the customer: citation marks removed (the sources are for the agent). */
export function customerText(answer: string): string {
  return answer
    .replace(/[ \t]*\[\d{1,3}\]/g, '')
    .replace(/[ \t]+\n/g, '\n')
    .trim();
}

/** Answer text as paragraphs, with [n] marks linked to the numbered source below it. */
export function answerHtml(answer: string, citations: Citation[], idPrefix: string): string {
  const known = new Set(citations.map((citation) => citation.index));
  return answer
    .trim()
    .split(/\n{2,}/)
    .map((paragraph) => {
      const html = escapeHtml(paragraph)
        .replace(CITATION_MARK, (mark, digits: string) => {
          const index = Number(digits);
          return known.has(index)
            ? `<a class="mark" href="#${idPrefix}-cite-${index}" data-action="focus-cite" data-index="${index}">${mark}</a>`
            : mark;
        })
        .replace(/\n/g, '<br>');
      return `<p>${html}</p>`;
    })
    .join('');
}

export function citationsHtml(citations: Citation[], t: Translate, idPrefix: string): string {
  if (citations.length === 0) return '';
  const items = [...citations]
    .sort((a, b) => a.index - b.index)
    .map((citation) => {
      const url = safeUrl(citation.url);
      const title = escapeHtml(citation.title || citation.document_id);
      const label = url
        ? `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${title}<span class="sr-only"> ${escapeHtml(t('opensInNewTab'))}</span></a>`
        : `<span class="cite-title">${title}</span>`;
      const badge = citation.internal
        ? ` <span class="badge internal" title="${escapeHtml(t('internalHint'))}">${escapeHtml(t('internal'))}</span><span class="sr-only"> — ${escapeHtml(t('internalHint'))}</span>`
        : '';
      const meta = [citation.kind, citation.source].filter(Boolean).map(escapeHtml).join(' · ');
      return `<li id="${idPrefix}-cite-${citation.index}" tabindex="-1" class="citation${citation.internal ? ' is-internal' : ''}" data-index="${citation.index}">
  <span class="num" aria-hidden="true">${citation.index}</span>
  <div><div>${label}${badge}</div>${meta ? `<div class="meta">${meta}</div>` : ''}</div>
</li>`;
    })
    .join('');
  return `<div class="sources"><h4>${escapeHtml(t('sources'))}</h4><ol class="citations">${items}</ol></div>`;
}

export function similarHtml(tickets: SimilarTicket[], t: Translate): string {
  const items = tickets
    .map((ticket) => {
      const url = safeUrl(ticket.url);
      const title = escapeHtml(ticket.title || ticket.external_id);
      const link = url
        ? `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${title}<span class="sr-only"> ${escapeHtml(t('opensInNewTab'))}</span></a>`
        : `<span class="cite-title">${title}</span>`;
      const badges = [
        ticket.resolved ? `<span class="badge solved">${escapeHtml(t('resolved'))}</span>` : '',
        ticket.status && !ticket.resolved
          ? `<span class="badge">${escapeHtml(ticket.status)}</span>`
          : '',
      ].join('');
      const snippet = ticket.snippet ? `<p class="snippet">${escapeHtml(ticket.snippet)}</p>` : '';
      return `<li class="similar-ticket"><div>${link} ${badges}</div>${snippet}</li>`;
    })
    .join('');
  return `<ul class="similar">${items}</ul>`;
}

export function statusHtml(message: string): string {
  return `<p class="status" role="status"><span class="spinner" aria-hidden="true"></span>${escapeHtml(message)}</p>`;
}

export function button(
  action: string,
  panel: string,
  label: string,
  extra = '',
  className = '',
): string {
  return `<button type="button" class="${className}" data-action="${action}" data-panel="${panel}" ${extra}>${escapeHtml(label)}</button>`;
}

export interface FeedbackView {
  rating?: Rating;
  reasonOpen: boolean;
  notice?: string;
}

export function feedbackHtml(panel: string, view: FeedbackView, t: Translate): string {
  const pressed = (rating: Rating) => `aria-pressed="${view.rating === rating}"`;
  const thumbs = `<div class="feedback" role="group" aria-label="${escapeHtml(t('helpfulQuestion'))}">
  <span aria-hidden="true">${escapeHtml(t('helpfulQuestion'))}</span>
  <button type="button" class="icon" data-action="rate-up" data-panel="${panel}" aria-label="${escapeHtml(t('helpful'))}" title="${escapeHtml(t('helpful'))}" ${pressed('up')}>${THUMB_UP}</button>
  <button type="button" class="icon" data-action="rate-down" data-panel="${panel}" aria-label="${escapeHtml(t('notHelpful'))}" title="${escapeHtml(t('notHelpful'))}" ${pressed('down')}>${THUMB_DOWN}</button>
</div>`;
  const options = FEEDBACK_REASONS.map(
    (reason) => `<option value="${reason}">${escapeHtml(t(`reason_${reason}`))}</option>`,
  ).join('');
  const reasons = view.reasonOpen
    ? `<div class="reasons" data-panel="${panel}">
  <label>${escapeHtml(t('reasonLabel'))} <select data-field="reason" data-panel="${panel}">${options}</select></label>
  <label>${escapeHtml(t('commentLabel'))} <input type="text" data-field="comment" data-panel="${panel}" maxlength="2000"></label>
  <div class="row">${button('send-feedback', panel, t('sendFeedback'), '', 'primary')}${button('cancel-feedback', panel, t('cancel'))}</div>
</div>`
    : '';
  return thumbs + reasons;
}

const TRIAGE_FIELDS = ['category', 'tags', 'group', 'priority', 'sentiment', 'language'] as const;

/** The suggested fields with an Accept button each; fields with no suggestion are left out. */
export function triageHtml(
  result: TriageResult,
  accepted: ReadonlySet<string>,
  t: Translate,
): string {
  const rows = TRIAGE_FIELDS.flatMap((field) => {
    const suggestion = result.suggestions[field];
    if (!suggestion?.value) return [];
    const shown = field === 'tags' && suggestion.values.length ? suggestion.values.join(', ') : suggestion.value;
    const percent = Math.round(suggestion.confidence * 100);
    const key = `${field}:${shown}`;
    const control = accepted.has(key)
      ? `<span class="badge solved">${escapeHtml(t('triageAccepted'))}</span>`
      : `<button type="button" data-action="accept-suggestion" data-panel="triage" data-field="${field}" data-value="${escapeHtml(shown)}">${escapeHtml(t('triageAccept'))}</button>`;
    return [
      `<li class="triage-field"><span class="cite-title">${escapeHtml(t(`field_${field}`))}</span>: ${escapeHtml(shown)} <span class="muted">${percent}%</span> ${control}</li>`,
    ];
  });
  return rows.length ? `<ul class="similar">${rows.join('')}</ul>` : '';
}
