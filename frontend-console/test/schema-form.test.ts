import { describe, expect, it } from 'vitest';
import { buildSchemaForm, simpleType, type ConnectorKind } from '../src/schema-form';

// Shaped like pydantic's model_json_schema() of FreshdeskSettings + its credentials.
const freshdesk: ConnectorKind = {
  kind: 'freshdesk',
  title: 'Freshdesk',
  secret_fields: ['api_key'],
  settings_schema: {
    type: 'object',
    required: ['domain', 'api_key'],
    properties: {
      domain: { type: 'string', title: 'Domain', description: 'acme.freshdesk.com' },
      api_key: { type: 'string', title: 'Api Key' },
      page_size: { anyOf: [{ type: 'integer', minimum: 1, maximum: 100 }, { type: 'null' }], default: null, title: 'Page Size' },
      include_private_notes: { type: 'boolean', default: true },
      languages: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }], default: null },
      order: { enum: ['asc', 'desc'], default: 'asc' },
    },
  },
};

describe('buildSchemaForm', () => {
  it('reads optional types through anyOf', () => {
    expect(simpleType(freshdesk.settings_schema.properties!.page_size)).toBe('integer');
    expect(simpleType(freshdesk.settings_schema.properties!.languages)).toBe('array');
    expect(simpleType(freshdesk.settings_schema.properties!.order)).toBe('enum');
  });

  it('renders labelled controls, secrets as password fields', () => {
    const form = buildSchemaForm(freshdesk);
    document.body.replaceChildren(form.element);
    const key = document.getElementById('freshdesk-api_key') as HTMLInputElement;
    expect(key.type).toBe('password');
    expect(document.querySelector('label[for="freshdesk-api_key"]')!.textContent).toBe('Api Key *');
    expect((document.getElementById('freshdesk-page_size') as HTMLInputElement).type).toBe('number');
    expect((document.getElementById('freshdesk-include_private_notes') as HTMLInputElement).checked).toBe(true);
    expect(document.getElementById('freshdesk-domain')!.getAttribute('aria-describedby')).toBe('freshdesk-domain-hint');
  });

  it('splits secrets into credentials and leaves empty optionals out', () => {
    const form = buildSchemaForm(freshdesk);
    document.body.replaceChildren(form.element);
    expect(form.missing()).toEqual(['domain', 'api_key']);
    expect(document.getElementById('freshdesk-domain')!.getAttribute('aria-invalid')).toBe('true');
    (document.getElementById('freshdesk-domain') as HTMLInputElement).value = ' acme.freshdesk.com ';
    (document.getElementById('freshdesk-api_key') as HTMLInputElement).value = 'k-123';
    (document.getElementById('freshdesk-languages') as HTMLTextAreaElement).value = 'en\n ko \n';
    expect(form.missing()).toEqual([]);
    expect(form.values()).toEqual({
      settings: { domain: 'acme.freshdesk.com', include_private_notes: true, languages: ['en', 'ko'], order: 'asc' },
      credentials: { api_key: 'k-123' },
    });
  });
});
