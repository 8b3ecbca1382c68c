// Assistant settings with a live draft preview: every edit re-asks POST /v1/assistant/preview
// with the unsaved settings (debounced), so the admin sees the effect before saving.
import { describeError } from '../api';
import type { Context } from '../context';
import { field, h, statusLine } from '../dom';
import { formatUsd } from '../format';
import { t } from '../i18n';

export interface CompanySettings {
  tone?: { style?: string | null; greeting?: string | null; sign_off?: string | null; signature?: string | null };
  languages?: string[] | null;
  pii_redaction?: boolean;
  llm?: { route?: string | null; monthly_budget_usd?: number | null } | null;
  widget_origins?: string[] | null;
  audiences?: string[] | null;
  [other: string]: unknown;
}

interface Draft {
  answer: string;
  citations: { index: number; title: string; url: string | null; source: string; kind: string }[];
  provider?: string;
  model?: string;
  cost_usd?: number;
}

/** Wait this long after the last keystroke before asking for a new preview. */
export const PREVIEW_DEBOUNCE_MS = 600;
export const STYLES = ['friendly', 'formal', 'concise'];

/** Text of one-per-line (or comma separated) lists → trimmed values. */
export function parseList(text: string): string[] {
  return text.split(/[\n,]/).map((part) => part.trim()).filter(Boolean);
}

/** An empty list is sent as null: the API clears the setting (its default applies). */
export function orNull(values: string[]): string[] | null {
  return values.length ? values : null;
}

export async function settingsPage(ctx: Context): Promise<HTMLElement> {
  const { api } = ctx;
  const loaded = await api.get<{ settings?: CompanySettings } & CompanySettings>('/v1/company/settings');
  const current: CompanySettings = (loaded.settings as CompanySettings | undefined) ?? loaded;

  const style = h('input', { type: 'text', name: 'style', list: 'tone-styles', maxlength: 200, value: current.tone?.style ?? '' });
  const styles = h('datalist', { id: 'tone-styles' }, STYLES.map((value) => h('option', { value })));
  const greeting = h('input', { type: 'text', name: 'greeting', maxlength: 200, value: current.tone?.greeting ?? '' });
  const signOff = h('input', { type: 'text', name: 'sign_off', maxlength: 200, value: current.tone?.sign_off ?? '' });
  const signature = h('input', { type: 'text', name: 'signature', maxlength: 200, value: current.tone?.signature ?? '' });
  const languages = h('input', { type: 'text', name: 'languages', value: (current.languages ?? []).join(', ') });
  const pii = h('input', { type: 'checkbox', name: 'pii_redaction', checked: current.pii_redaction === true });
  const route = h('input', { type: 'text', name: 'route', maxlength: 100, value: current.llm?.route ?? '' });
  const budget = h('input', { type: 'number', name: 'monthly_budget_usd', min: 0, step: '0.01', value: current.llm?.monthly_budget_usd ?? '' });
  const origins = h('textarea', { name: 'widget_origins', rows: 2, spellcheck: 'false' });
  origins.value = (current.widget_origins ?? []).join('\n');
  const audiences = h('input', { type: 'text', name: 'audiences', value: (current.audiences ?? []).join(', ') });

  const edited = (): CompanySettings => ({
    tone: { style: style.value.trim() || null, greeting: greeting.value.trim() || null, sign_off: signOff.value.trim() || null, signature: signature.value.trim() || null },
    languages: orNull(parseList(languages.value)),
    pii_redaction: pii.checked,
    llm: { route: route.value.trim() || null, monthly_budget_usd: budget.value === '' ? null : Number(budget.value) },
    widget_origins: orNull(parseList(origins.value)),
    audiences: orNull(parseList(audiences.value)),
  });

  const saveStatus = statusLine();
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, t('settings.title')),
    h('fieldset', {}, h('legend', {}, t('settings.tone')),
      field(t('settings.style'), style, t('settings.styleHint')), styles,
      field(t('settings.greeting'), greeting, t('settings.greetingHint')),
      field(t('settings.signOff'), signOff),
      field(t('settings.signature'), signature),
    ),
    field(t('settings.languages'), languages, t('settings.languagesHint')),
    h('label', { class: 'check' }, pii, ' ', t('settings.pii')),
    h('fieldset', {}, h('legend', {}, t('settings.llm')),
      field(t('settings.route'), route, t('settings.routeHint')),
      field(t('settings.budget'), budget, t('settings.budgetHint')),
    ),
    field(t('settings.origins'), origins, t('settings.originsHint')),
    field(t('settings.audiences'), audiences, t('settings.audiencesHint')),
    h('button', { type: 'submit', class: 'primary' }, t('settings.save')),
    saveStatus,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api.patch('/v1/company/settings', edited());
      saveStatus.say(t('settings.saved'), 'ok');
    } catch (error) {
      saveStatus.say(describeError(error), 'error');
    }
  });

  const preview = previewPanel(ctx, edited);
  form.addEventListener('input', preview.schedule);
  form.addEventListener('change', preview.schedule);
  preview.schedule();
  return h('div', { class: 'page' }, h('h1', {}, t('nav.assistant')), h('div', { class: 'split' }, form, preview.element));
}

function previewPanel(ctx: Context, edited: () => CompanySettings): { element: HTMLElement; schedule: () => void } {
  const subject = h('input', { type: 'text', name: 'subject', maxlength: 500, value: t('settings.sampleSubject') });
  const description = h('textarea', { name: 'description', rows: 3 });
  description.value = t('settings.sampleDescription');
  const output = h('div', { class: 'draft', 'aria-live': 'polite', 'aria-busy': 'false', 'data-generation': '0' });
  const status = statusLine();
  let timer: number | undefined;
  let generation = 0;
  ctx.onLeave(() => window.clearTimeout(timer));

  const run = async () => {
    const mine = ++generation;
    output.setAttribute('aria-busy', 'true');
    try {
      const draft = await ctx.api.post<Draft>('/v1/assistant/preview', {
        ticket: { subject: subject.value, description: description.value },
        settings: edited(),
      });
      if (mine !== generation) return; // a newer edit's preview is on its way
      output.replaceChildren(
        ...[h('p', { class: 'draft-text' }, draft.answer),
        draft.citations.length
          ? h('ol', { class: 'citations' }, draft.citations.map((c) => h('li', {}, c.url ? h('a', { href: c.url, target: '_blank', rel: 'noopener' }, c.title) : c.title, ' ', h('span', { class: 'tag' }, c.source))))
          : null,
        h('small', {}, [draft.provider, draft.model].filter(Boolean).join(' / '), draft.cost_usd ? ` · ${formatUsd(draft.cost_usd)}` : '')].filter((node): node is HTMLElement => node !== null),
      );
      output.dataset.generation = String(mine);
      status.say('');
    } catch (error) {
      if (mine === generation) status.say(describeError(error), 'error');
    } finally {
      if (mine === generation) output.setAttribute('aria-busy', 'false');
    }
  };
  const schedule = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void run(), PREVIEW_DEBOUNCE_MS);
  };
  subject.addEventListener('input', schedule);
  description.addEventListener('input', schedule);
  return {
    schedule,
    element: h(
      'section',
      { class: 'card', 'aria-labelledby': 'preview-title' },
      h('h2', { id: 'preview-title' }, t('settings.preview')),
      h('p', { class: 'muted' }, t('settings.previewHint')),
      field(t('settings.sampleSubjectLabel'), subject),
      field(t('settings.sampleDescriptionLabel'), description),
      output,
      status,
    ),
  };
}
