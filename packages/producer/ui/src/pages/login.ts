/** The login page: an API token in, a session cookie back (POST /api/session). */
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { field, formError, input, Invalid, onSubmit } from '../forms.js';
import type { Page } from '../view.js';

export const loginPage: Page = async ({ main }) => {
  const token = input({ type: 'password', autocomplete: 'current-password', placeholder: 'API token' });
  const form = h(
    'form',
    { class: 'login-form', 'aria-label': 'Log in' },
    field('API token', 'token', token, 'One of the tokens in the server’s API_TOKENS.'),
    formError(),
    h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in'),
  );
  onSubmit(form, async (data) => {
    const entry = data.get('token');
    const value = typeof entry === 'string' ? entry : '';
    if (value.trim() === '') throw new Invalid({ token: ["can't be blank"] });
    await api('POST', '/api/session', { token: value });
    window.dispatchEvent(new Event('po:login'));
  });
  replace(
    main,
    h(
      'div',
      { class: 'login' },
      h(
        'div',
        { class: 'card login-card' },
        h(
          'div',
          { class: 'login-brand' },
          h('img', { src: '/ui/favicon.svg', alt: '', width: 32, height: 32 }),
          'Postoffice',
        ),
        h('h1', null, 'Log in'),
        h('p', { class: 'subtitle' }, 'This Postoffice asks for an API token.'),
        form,
      ),
    ),
  );
  token.focus();
};
