// Users (invite, change role, remove) and API keys (create with scopes, revoke). The invite
// link and a new key are shown once, as the API returns them only once.
import { describeError, listOf, type User } from '../api';
import type { Context } from '../context';
import { field, h, statusLine } from '../dom';
import { formatTime } from '../format';
import { t } from '../i18n';

interface ApiKey { id: string; name: string; prefix: string; scopes?: string[]; created_at: string; revoked_at?: string | null; last_used_at?: string | null }

export const ROLES = ['owner', 'admin', 'agent'] as const;
export const SCOPES = ['assistant', 'ingest', 'admin', 'widget-mint'] as const;

/** Roles this user may hand out: an owner any, an admin everything but owner. */
export function assignableRoles(role: User['role']): string[] {
  if (role === 'owner') return [...ROLES];
  if (role === 'admin') return ['admin', 'agent'];
  return [];
}

export async function teamPage(ctx: Context): Promise<HTMLElement> {
  return h('div', { class: 'page' }, h('h1', {}, t('nav.team')), await usersPanel(ctx), ctx.session.user.role === 'owner' || ctx.session.user.role === 'admin' ? await keysPanel(ctx) : null);
}

async function usersPanel(ctx: Context): Promise<HTMLElement> {
  const { api, session } = ctx;
  const roles = assignableRoles(session.user.role);
  const list = h('div', { class: 'table-wrap' });
  const status = statusLine();
  const draw = async () => {
    const users = listOf<User>(await api.get<unknown>('/console/api/users'), 'users');
    list.replaceChildren(h('table', { 'aria-label': t('team.users') },
      h('thead', {}, h('tr', {}, [t('team.name'), t('team.email'), t('team.role'), ''].map((name) => h('th', { scope: 'col' }, name)))),
      h('tbody', {}, users.map((user) => {
        const editable = user.id !== session.user.id && roles.includes(user.role);
        const role = h('select', { 'aria-label': t('team.roleOf', { name: user.email }), disabled: !editable }, ROLES.map((r) => h('option', { value: r, selected: r === user.role, disabled: !roles.includes(r) }, t(`role.${r}`))));
        role.addEventListener('change', async () => {
          try {
            await api.patch(`/console/api/users/${user.id}`, { role: role.value });
            status.say(t('team.roleChanged'), 'ok');
          } catch (error) {
            status.say(describeError(error), 'error');
            role.value = user.role;
          }
        });
        return h('tr', {}, h('td', {}, user.name), h('td', {}, user.email), h('td', {}, role), h('td', {}, editable
          ? h('button', { type: 'button', class: 'danger', onclick: async () => {
              if (!window.confirm(t('team.confirmRemove', { name: user.email }))) return;
              try { await api.delete(`/console/api/users/${user.id}`); await draw(); } catch (error) { status.say(describeError(error), 'error'); }
            } }, t('team.remove'))
          : null));
      })),
    ));
  };
  await draw();

  const email = h('input', { type: 'email', name: 'email', required: true, maxlength: 320 });
  const name = h('input', { type: 'text', name: 'name', maxlength: 200 });
  const role = h('select', { name: 'role' }, roles.map((r) => h('option', { value: r, selected: r === 'agent' }, t(`role.${r}`))));
  const invited = h('div', { 'aria-live': 'polite' });
  const invite = h('form', { class: 'inline-form' }, field(t('team.email'), email), field(t('team.name'), name), field(t('team.role'), role), h('button', { type: 'submit', class: 'primary' }, t('team.invite')));
  invite.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const result = await api.post<{ invite_url: string }>('/console/api/users', { email: email.value.trim(), name: name.value.trim(), role: role.value });
      const url = new URL(result.invite_url, location.href).toString();
      invited.replaceChildren(h('p', {}, t('team.inviteOnce')), h('input', { type: 'text', readonly: true, value: url, 'aria-label': t('team.inviteLink'), class: 'secret' }));
      email.value = '';
      name.value = '';
      await draw();
    } catch (error) {
      status.say(describeError(error), 'error');
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'users-title' }, h('h2', { id: 'users-title' }, t('team.users')), list, h('h3', {}, t('team.inviteTitle')), invite, invited, status);
}

async function keysPanel(ctx: Context): Promise<HTMLElement> {
  const { api } = ctx;
  const list = h('div', { class: 'table-wrap' });
  const status = statusLine();
  const draw = async () => {
    const keys = listOf<ApiKey>(await api.get<unknown>('/v1/company/api-keys'), 'keys');
    list.replaceChildren(h('table', { 'aria-label': t('keys.title') },
      h('thead', {}, h('tr', {}, [t('keys.name'), t('keys.prefix'), t('keys.scopes'), t('keys.created'), ''].map((n) => h('th', { scope: 'col' }, n)))),
      h('tbody', {}, keys.map((key) => h('tr', {},
        h('td', {}, key.name), h('td', {}, h('code', {}, key.prefix)), h('td', {}, (key.scopes ?? [...SCOPES]).join(', ')), h('td', {}, formatTime(key.created_at)),
        h('td', {}, key.revoked_at ? t('keys.revoked') : h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!window.confirm(t('keys.confirmRevoke', { name: key.name }))) return;
          try { await api.delete(`/v1/company/api-keys/${key.id}`); await draw(); } catch (error) { status.say(describeError(error), 'error'); }
        } }, t('keys.revoke'))),
      ))),
    ));
  };
  await draw();
  const name = h('input', { type: 'text', name: 'key_name', required: true, maxlength: 100 });
  const boxes = SCOPES.map((scope) => h('input', { type: 'checkbox', name: 'scope', value: scope, checked: scope === 'assistant' }));
  const created = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'inline-form' }, field(t('keys.name'), name),
    h('fieldset', {}, h('legend', {}, t('keys.scopes')), boxes.map((box) => h('label', { class: 'check' }, box, ' ', t(`scope.${box.value}`)))),
    h('button', { type: 'submit', class: 'primary' }, t('keys.create')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const scopes = boxes.filter((box) => box.checked).map((box) => box.value);
      const result = await api.post<{ key?: string; plaintext?: string }>('/v1/company/api-keys', { name: name.value.trim(), scopes });
      created.replaceChildren(h('p', {}, t('keys.once')), h('input', { type: 'text', readonly: true, value: result.key ?? result.plaintext ?? '', 'aria-label': t('keys.newKey'), class: 'secret' }));
      name.value = '';
      await draw();
    } catch (error) {
      status.say(describeError(error), 'error');
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'keys-title' }, h('h2', { id: 'keys-title' }, t('keys.title')), list, h('h3', {}, t('keys.createTitle')), form, created, status);
}
