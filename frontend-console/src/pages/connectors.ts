// Connect a platform, test it, sync it and watch the sync: the form comes from the
// connector kind's JSON Schema; a running sync is followed by polling its sync run.
import { ApiError, describeError, listOf } from '../api';
import type { Context } from '../context';
import { field, h, statusLine } from '../dom';
import { formatDuration, formatNumber, formatTime } from '../format';
import { t } from '../i18n';
import { buildSchemaForm, type ConnectorKind, type SchemaForm } from '../schema-form';

export interface Connector {
  id: string;
  platform: string;
  name: string;
  operator_managed: boolean;
  enabled: boolean;
  schedule_minutes: number | null;
  last_sync_at: string | null;
}

export interface SyncRun {
  id: string;
  connector_id: string;
  status: string;
  trigger: string;
  started_at: string | null;
  finished_at: string | null;
  fetched: number;
  upserted: number;
  failed: number;
  deleted: number;
  errors: unknown[] | number;
  documents?: number;
  chunks?: number;
  chunks_per_second?: number | null;
  eta_seconds?: number | null;
}

/** How often a running sync is polled. */
export const POLL_MS = 1000;
const ACTIVE = new Set(['queued', 'running']);

export function errorCount(run: SyncRun): number {
  return Array.isArray(run.errors) ? run.errors.length : Number(run.errors ?? 0);
}

/** The live figures of a run, as the progress panel shows them. */
export function progressFigures(run: SyncRun): [string, string][] {
  return [
    [t('sync.status'), t(`sync.state.${run.status}`)],
    [t('sync.documents'), formatNumber(run.documents ?? run.upserted ?? 0)],
    [t('sync.chunks'), run.chunks === undefined ? '—' : formatNumber(run.chunks)],
    [t('sync.rate'), run.chunks_per_second === undefined || run.chunks_per_second === null ? '—' : formatNumber(run.chunks_per_second, 1)],
    [t('sync.eta'), ACTIVE.has(run.status) ? formatDuration(run.eta_seconds) : '—'],
    [t('sync.errors'), formatNumber(errorCount(run))],
  ];
}

function figuresList(run: SyncRun): HTMLElement {
  return h(
    'dl',
    { class: 'figures', 'data-run-status': run.status },
    progressFigures(run).map(([name, value]) => h('div', {}, h('dt', {}, name), h('dd', {}, value))),
  );
}

export async function connectorsPage(ctx: Context): Promise<HTMLElement> {
  const { api } = ctx;
  const kinds = listOf<ConnectorKind>(await api.get<unknown>('/v1/connectors/kinds'), 'kinds');
  const list = h('div', {});
  const progress = h('section', { class: 'card', 'aria-labelledby': 'progress-title', hidden: true });
  const history = h('section', { class: 'card', 'aria-labelledby': 'history-title', hidden: true });
  const listStatus = statusLine();
  let timer: number | undefined;
  ctx.onLeave(() => window.clearTimeout(timer));

  const follow = (connector: Connector, runId: string) => {
    window.clearTimeout(timer);
    progress.hidden = false;
    const poll = async () => {
      try {
        const run = await api.get<SyncRun>(`/v1/sync-runs/${runId}`);
        progress.replaceChildren(
          h('h2', { id: 'progress-title' }, t('sync.progressOf', { name: connector.name })),
          figuresList(run),
        );
        if (ACTIVE.has(run.status)) timer = window.setTimeout(poll, POLL_MS);
        else await drawList();
      } catch (error) {
        progress.append(h('p', { class: 'status', 'data-kind': 'error' }, describeError(error)));
      }
    };
    void poll();
  };

  const showHistory = async (connector: Connector) => {
    const runs = listOf<SyncRun>(await api.get<unknown>(`/v1/connectors/${connector.id}/sync-runs?limit=20`), 'runs');
    history.hidden = false;
    history.replaceChildren(
      h('h2', { id: 'history-title' }, t('sync.historyOf', { name: connector.name })),
      runs.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              {},
              h('thead', {}, h('tr', {}, [t('sync.started'), t('sync.status'), t('sync.fetched'), t('sync.upserted'), t('sync.failed'), t('sync.errors')].map((name) => h('th', { scope: 'col' }, name)))),
              h(
                'tbody',
                {},
                runs.map((run) =>
                  h('tr', {}, h('td', {}, formatTime(run.started_at ?? run.finished_at)), h('td', {}, t(`sync.state.${run.status}`)), h('td', {}, formatNumber(run.fetched)), h('td', {}, formatNumber(run.upserted)), h('td', {}, formatNumber(run.failed)), h('td', {}, formatNumber(errorCount(run)))),
                ),
              ),
            ),
          )
        : h('p', {}, t('sync.noRuns')),
    );
    history.querySelector('h2')?.setAttribute('tabindex', '-1');
    (history.querySelector('h2') as HTMLElement | null)?.focus();
  };

  const act = async (work: () => Promise<unknown>, done?: string) => {
    try {
      await work();
      if (done) listStatus.say(done, 'ok');
    } catch (error) {
      listStatus.say(error instanceof ApiError && error.code === 'already_syncing' ? t('sync.already') : describeError(error), 'error');
    }
  };

  const row = (connector: Connector) =>
    h(
      'li',
      { class: 'connector', 'data-connector': connector.name },
      h('div', {}, h('strong', {}, connector.name), ' ', h('span', { class: 'tag' }, connector.platform), ' ', connector.enabled ? null : h('span', { class: 'tag warn' }, t('connectors.paused'))),
      h('small', {}, t('connectors.lastSync', { when: formatTime(connector.last_sync_at) })),
      connector.operator_managed
        ? h('small', {}, t('connectors.operatorManaged'))
        : h(
            'div',
            { class: 'row' },
            h('button', {
              type: 'button',
              onclick: () => act(async () => follow(connector, (await api.post<SyncRun>(`/v1/connectors/${connector.id}/sync`)).id)),
            }, t('connectors.syncNow')),
            h('button', { type: 'button', onclick: () => act(() => showHistory(connector)) }, t('connectors.history')),
            h('button', {
              type: 'button',
              onclick: () => act(async () => {
                await api.patch(`/v1/connectors/${connector.id}`, { enabled: !connector.enabled });
                await drawList();
              }),
            }, connector.enabled ? t('connectors.pause') : t('connectors.resume')),
            h('button', {
              type: 'button',
              class: 'danger',
              onclick: () => act(async () => {
                if (!window.confirm(t('connectors.confirmDelete', { name: connector.name }))) return;
                await api.delete(`/v1/connectors/${connector.id}`);
                await drawList();
              }),
            }, t('connectors.delete')),
          ),
    );
  const drawList = async () => {
    const connectors = listOf<Connector>(await api.get<unknown>('/v1/connectors'), 'connectors');
    list.replaceChildren(connectors.length ? h('ul', { class: 'plain' }, connectors.map(row)) : h('p', {}, t('connectors.none')));
  };
  await drawList();

  return h(
    'div',
    { class: 'page' },
    h('h1', {}, t('nav.connectors')),
    h('section', { class: 'card', 'aria-labelledby': 'connected-title' },
      h('h2', { id: 'connected-title' }, t('connectors.connected')),
      list,
      listStatus,
    ),
    progress,
    history,
    connectForm(ctx, kinds, follow, drawList),
  );
}

function connectForm(
  ctx: Context,
  kinds: ConnectorKind[],
  follow: (c: Connector, runId: string) => void,
  drawList: () => Promise<void>,
): HTMLElement {
  const { api } = ctx;
  // The operator sets file imports up; the console offers the platforms a company connects.
  const usable = kinds.filter((kind) => !kind.operator_managed);
  const choose = h(
    'select',
    { name: 'kind' },
    h('option', { value: '' }, t('connectors.choose')),
    usable.map((kind) => h('option', { value: kind.kind }, kind.title)),
  );
  const name = h('input', { type: 'text', name: 'name', maxlength: 100, required: true });
  const schedule = h('input', { type: 'number', name: 'schedule_minutes', min: 5, max: 10080, step: 1 });
  const fields = h('div', {});
  const status = statusLine();
  let form: SchemaForm | null = null;
  let kind: ConnectorKind | undefined;
  choose.addEventListener('change', () => {
    kind = usable.find((k) => k.kind === choose.value);
    form = kind ? buildSchemaForm(kind) : null;
    fields.replaceChildren(...(form ? [form.element] : []));
    if (kind && !name.value) name.value = kind.title;
    status.say('');
  });

  const payload = () => {
    if (!kind || !form) throw new Error(t('connectors.choose'));
    const missing = form.missing();
    if (missing.length) throw new Error(t('connectors.missing', { fields: missing.join(', ') }));
    return { kind, ...form.values() };
  };
  const test = async () => {
    try {
      const { kind: chosen, settings, credentials } = payload();
      status.say(t('app.working'));
      const result = await api.post<{ ok: boolean; detail: string }>('/v1/connectors/test', {
        kind: chosen.kind,
        settings: { ...settings, ...credentials },
      });
      status.say(result.ok ? t('connectors.testOk', { detail: result.detail }) : t('connectors.testFailed', { detail: result.detail }), result.ok ? 'ok' : 'error');
    } catch (error) {
      status.say(describeError(error), 'error');
    }
  };
  const save = async (syncAfter: boolean) => {
    try {
      const { kind: chosen, settings, credentials } = payload();
      const created = await api.post<Connector>('/v1/connectors', {
        platform: chosen.kind,
        name: name.value.trim() || chosen.title,
        settings,
        credentials,
        schedule_minutes: schedule.value ? Number(schedule.value) : null,
      });
      status.say(t('connectors.saved', { name: created.name }), 'ok');
      await drawList();
      if (syncAfter) follow(created, (await api.post<SyncRun>(`/v1/connectors/${created.id}/sync`)).id);
    } catch (error) {
      status.say(describeError(error), 'error');
    }
  };

  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'connect-title' },
    h('h2', { id: 'connect-title' }, t('connectors.connect')),
    h(
      'form',
      { onsubmit: (event: Event) => { event.preventDefault(); void save(true); } },
      field(t('connectors.platform'), choose),
      field(t('connectors.name'), name),
      fields,
      field(t('connectors.schedule'), schedule, t('connectors.scheduleHint')),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', onclick: () => void test() }, t('connectors.test')),
        h('button', { type: 'button', onclick: () => void save(false) }, t('connectors.save')),
        h('button', { type: 'submit', class: 'primary' }, t('connectors.saveAndSync')),
      ),
      status,
    ),
  );
}
