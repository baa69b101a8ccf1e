/**
 * Form fields with a place for their error, and the mapping from the API's
 * error body (fields named as in the request: `target`, `rate_limit`, …)
 * to those places. A field the form does not show gets its error in the
 * form's own error box, so no message is ever lost.
 */
import { ApiError, plainMessage, type FieldErrors } from './api.js';
import { h, replace, type Child } from './dom.js';

/** A labelled field; `idPrefix` keeps ids unique when two forms on a page share a field name. */
export function field(label: string, name: string, control: HTMLElement, hint?: Child, idPrefix = 'f-'): HTMLElement {
  const id = `${idPrefix}${name}`;
  control.id = id;
  control.setAttribute('name', name);
  control.setAttribute('aria-describedby', `${id}-error`);
  return h(
    'div',
    { class: 'field', 'data-field': name },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint' }, hint) : null,
    h('p', { class: 'field-error', id: `${id}-error`, 'data-error-for': name, role: 'alert' }),
  );
}

export function checkbox(label: string, name: string, checked: boolean, hint?: Child, disabled = false): HTMLElement {
  const id = `f-${name}`;
  return h(
    'div',
    { class: 'field field-check', 'data-field': name },
    h('label', { for: id }, h('input', { type: 'checkbox', id, name, checked, disabled }), h('span', null, label)),
    hint ? h('p', { class: 'hint' }, hint) : null,
    h('p', { class: 'field-error', 'data-error-for': name, role: 'alert' }),
  );
}

export function input(attrs: Record<string, unknown> = {}): HTMLInputElement {
  return h('input', { type: 'text', autocomplete: 'off', ...attrs });
}

export function select(
  options: [value: string, label: string][],
  value?: string,
  attrs: Record<string, unknown> = {},
): HTMLSelectElement {
  const el = h(
    'select',
    attrs,
    options.map(([v, l]) => h('option', { value: v }, l)),
  );
  if (value !== undefined) el.value = value;
  return el;
}

export function formError(): HTMLElement {
  return h('div', { class: 'form-error', 'data-error-for': '_form', role: 'alert', hidden: true });
}

export function clearErrors(form: HTMLElement): void {
  for (const el of form.querySelectorAll<HTMLElement>('[data-error-for]')) {
    replace(el);
    if (el.classList.contains('form-error')) el.hidden = true;
  }
  for (const el of form.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
}

/** Shows each field's messages next to it; the rest in the form's error box. */
export function showErrors(form: HTMLElement, fields: FieldErrors): void {
  clearErrors(form);
  const rest: string[] = [];
  for (const [name, messages] of Object.entries(fields)) {
    if (name === '_form') {
      rest.push(messages.join('; '));
      continue;
    }
    const base = name.split('.')[0] ?? name;
    const slot =
      form.querySelector<HTMLElement>(`.field-error[data-error-for="${CSS.escape(name)}"]`) ??
      form.querySelector<HTMLElement>(`.field-error[data-error-for="${CSS.escape(base)}"]`);
    if (slot) {
      replace(slot, messages.join('; '));
      slot.closest('.field')?.classList.add('invalid');
    } else rest.push(plainMessage(400, { [name]: messages }));
  }
  const box = form.querySelector<HTMLElement>('.form-error');
  if (box && rest.length > 0) {
    replace(
      box,
      rest.map((r) => h('div', null, r)),
    );
    box.hidden = false;
  } else if (rest.length > 0) throw new ApiError(400, fields);
}

/** Runs a submit: clears old errors, shows the API's on failure, disables the button meanwhile. */
export function onSubmit(form: HTMLFormElement, run: (data: FormData) => Promise<void>): void {
  form.noValidate = true;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const button = form.querySelector<HTMLButtonElement>('button[type=submit]');
    clearErrors(form);
    if (button) button.disabled = true;
    run(new FormData(form))
      .catch((err: unknown) => {
        if (err instanceof ApiError) showErrors(form, err.fields);
        else showErrors(form, { _form: [err instanceof Error ? err.message : String(err)] });
      })
      .finally(() => {
        if (button) button.disabled = false;
      });
  });
}

export class Invalid extends ApiError {
  constructor(fields: FieldErrors) {
    super(400, fields);
  }
}

/** Reads a number field: undefined when empty, an error when not a number. */
export function numberOf(data: FormData, name: string, errors: FieldErrors): number | undefined {
  const raw = textOf(data, name);
  if (raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) errors[name] = ['must be a number'];
  return n;
}

/** A text field's value, trimmed ('' when absent). */
export function textOf(data: FormData, name: string): string {
  const value = data.get(name);
  return typeof value === 'string' ? value.trim() : '';
}
