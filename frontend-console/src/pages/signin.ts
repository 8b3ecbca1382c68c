import { type Api, ApiError, describeError, type Session } from '../api';
import { field, h, statusLine } from '../dom';
import { t } from '../i18n';

function errorText(error: unknown): string {
  if (error instanceof ApiError && error.code === 'invalid_credentials') return t('signin.invalid');
  if (error instanceof ApiError && error.code === 'rate_limited') return t('signin.rateLimited');
  return describeError(error);
}

export function signInPage(api: Api, done: (session: Session) => void, language: HTMLElement): HTMLElement {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const status = statusLine();
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'signin-title' },
    h('div', { class: 'row spread' }, h('h1', { id: 'signin-title' }, t('signin.title')), language),
    field(t('signin.email'), email),
    field(t('signin.password'), password),
    h('button', { type: 'submit', class: 'primary' }, t('signin.submit')),
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.say(t('app.working'));
    try {
      done(await api.signIn(email.value.trim(), password.value));
    } catch (error) {
      status.say(errorText(error), 'error');
      password.focus();
    }
  });
  queueMicrotask(() => email.focus());
  return h('main', { id: 'main', class: 'center' }, form);
}

export function acceptPage(
  api: Api,
  token: string,
  done: (session: Session) => void,
  language: HTMLElement,
): HTMLElement {
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'name', required: true });
  const password = h('input', {
    type: 'password',
    name: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: 10,
  });
  const status = statusLine();
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'accept-title' },
    h('div', { class: 'row spread' }, h('h1', { id: 'accept-title' }, t('accept.title')), language),
    field(t('accept.name'), name),
    field(t('accept.password'), password, t('accept.passwordHint')),
    h('button', { type: 'submit', class: 'primary' }, t('accept.submit')),
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      done(await api.acceptInvitation(token, name.value.trim(), password.value));
    } catch (error) {
      status.say(errorText(error), 'error');
    }
  });
  return h('main', { id: 'main', class: 'center' }, form);
}
