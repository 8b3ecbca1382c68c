// Knowledge: the indexed documents by source and kind, and search as the assistant sees it.
import { ApiError, describeError, listOf } from '../api';
import { canManage, type Context } from '../context';
import { field, h, statusLine } from '../dom';
import { formatNumber, formatTime } from '../format';
import { t } from '../i18n';

interface DocumentRow {
  id: string;
  source: string;
  kind: string;
  title: string;
  url: string | null;
  language: string | null;
  chunk_count: number;
  updated_at: string;
}

interface Passage {
  document_id: string;
  title: string;
  url: string | null;
  kind: string;
  source: string;
  internal: boolean;
  snippet: string;
  score: number;
}

const KINDS = ['ticket', 'conversation', 'article', 'review'];
const PAGE_SIZE = 50;

export async function knowledgePage(ctx: Context): Promise<HTMLElement> {
  const { api } = ctx;
  const manager = canManage(ctx.session);
  const kind = h('select', { name: 'kind' }, h('option', { value: '' }, t('knowledge.allKinds')), KINDS.map((k) => h('option', { value: k }, t(`kind.${k}`))));
  const source = h('input', { type: 'text', name: 'source', maxlength: 64, placeholder: 'freshdesk' });
  const table = h('div', { class: 'table-wrap' });
  const status = statusLine();
  let offset = 0;

  const load = async () => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
    if (kind.value) query.set('kind', kind.value);
    if (source.value.trim()) query.set('source', source.value.trim());
    const documents = listOf<DocumentRow>(await api.get<unknown>(`/v1/documents?${query}`), 'documents');
    const bySource = new Map<string, number>();
    for (const doc of documents) bySource.set(`${doc.source} · ${t(`kind.${doc.kind}`)}`, (bySource.get(`${doc.source} · ${t(`kind.${doc.kind}`)}`) ?? 0) + 1);
    table.replaceChildren(
      h('p', { class: 'muted' }, [...bySource].map(([name, count]) => `${name}: ${formatNumber(count)}`).join(' · ') || t('knowledge.none')),
      h(
        'table',
        { 'aria-label': t('knowledge.documents') },
        h('thead', {}, h('tr', {}, [t('knowledge.title'), t('knowledge.source'), t('knowledge.kind'), t('knowledge.chunks'), t('knowledge.updated'), ''].map((name) => h('th', { scope: 'col' }, name)))),
        h(
          'tbody',
          {},
          documents.map((doc) =>
            h(
              'tr',
              {},
              h('td', {}, doc.url ? h('a', { href: doc.url, target: '_blank', rel: 'noopener' }, doc.title || doc.id) : doc.title || doc.id),
              h('td', {}, doc.source),
              h('td', {}, t(`kind.${doc.kind}`)),
              h('td', {}, formatNumber(doc.chunk_count)),
              h('td', {}, formatTime(doc.updated_at)),
              h(
                'td',
                { class: 'row' },
                manager
                  ? h('button', { type: 'button', onclick: () => void reindex(doc) }, t('knowledge.reindex'))
                  : null,
                manager
                  ? h('button', { type: 'button', class: 'danger', onclick: () => void remove(doc) }, t('knowledge.delete'))
                  : null,
              ),
            ),
          ),
        ),
      ),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE_SIZE); void load(); } }, t('app.previous')),
        h('button', { type: 'button', disabled: documents.length < PAGE_SIZE, onclick: () => { offset += PAGE_SIZE; void load(); } }, t('app.next')),
      ),
    );
  };
  const remove = async (doc: DocumentRow) => {
    if (!window.confirm(t('knowledge.confirmDelete', { title: doc.title }))) return;
    try {
      await api.delete(`/v1/documents/${doc.id}`);
      status.say(t('knowledge.deleted'), 'ok');
      await load();
    } catch (error) {
      status.say(describeError(error), 'error');
    }
  };
  const reindex = async (doc: DocumentRow) => {
    try {
      await api.post(`/v1/documents/${doc.id}/reindex`);
      status.say(t('knowledge.reindexed'), 'ok');
    } catch (error) {
      // An older server has no such route (404 without our error code, or 405); a deleted
      // document or a stored copy that needs a re-sync is explained by the API's own message.
      const noRoute = error instanceof ApiError && ((error.status === 404 && error.code !== 'document_not_found') || error.status === 405);
      status.say(noRoute ? t('knowledge.reindexMissing') : describeError(error), 'error');
    }
  };
  kind.addEventListener('change', () => { offset = 0; void load(); });
  source.addEventListener('change', () => { offset = 0; void load(); });
  await load();

  return h(
    'div',
    { class: 'page' },
    h('h1', {}, t('nav.knowledge')),
    searchPanel(ctx),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'documents-title' },
      h('h2', { id: 'documents-title' }, t('knowledge.documents')),
      h('div', { class: 'row' }, field(t('knowledge.kind'), kind), field(t('knowledge.source'), source)),
      table,
      status,
    ),
  );
}

function searchPanel(ctx: Context): HTMLElement {
  const query = h('input', { type: 'search', name: 'query', maxlength: 2000, required: true });
  const internal = h('input', { type: 'checkbox', name: 'include_internal', checked: true });
  const results = h('ol', { class: 'results' });
  const status = statusLine();
  const form = h(
    'form',
    { role: 'search' },
    field(t('knowledge.searchQuery'), query, t('knowledge.searchHint')),
    h('label', { class: 'check' }, internal, ' ', t('knowledge.includeInternal')),
    h('button', { type: 'submit', class: 'primary' }, t('knowledge.search')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.say(t('app.working'));
    try {
      const found = await ctx.api.post<{ results: Passage[] }>('/v1/search', {
        query: query.value.trim(),
        include_internal: internal.checked,
        limit: 8,
      });
      status.say(t('knowledge.found', { count: found.results.length }));
      results.replaceChildren(
        ...found.results.map((passage) =>
          h(
            'li',
            { class: 'citation' },
            h('div', {}, passage.url ? h('a', { href: passage.url, target: '_blank', rel: 'noopener' }, passage.title) : h('strong', {}, passage.title), ' ', h('span', { class: 'tag' }, `${passage.source} · ${t(`kind.${passage.kind}`)}`), passage.internal ? h('span', { class: 'tag warn' }, t('knowledge.internal')) : null),
            h('p', {}, passage.snippet),
            h('small', {}, `${t('knowledge.score')} ${passage.score.toFixed(3)}`),
          ),
        ),
      );
    } catch (error) {
      status.say(describeError(error), 'error');
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'search-title' }, h('h2', { id: 'search-title' }, t('knowledge.searchTitle')), form, status, results);
}
