// Connector forms generated from each connector kind's JSON Schema (GET /v1/connectors/kinds),
// so a new connector needs no console change. Secret fields go to `credentials`, the rest to
// `settings`, as POST /v1/connectors wants them.
import { field, h } from './dom';

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  format?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
}

export interface ConnectorKind {
  kind: string;
  title: string;
  settings_schema: JsonSchema;
  secret_fields: string[];
  operator_managed?: boolean;
}

export interface SchemaForm {
  element: HTMLElement;
  /** The entered values split as the API wants them; empty optional fields are left out. */
  values(): { settings: Record<string, unknown>; credentials: Record<string, unknown> };
  /** Names of required fields left empty (the form marks them invalid). */
  missing(): string[];
}

/** The simple type of a property, seeing through `anyOf: [{type: X}, {type: "null"}]`. */
export function simpleType(schema: JsonSchema): string {
  if (schema.enum) return 'enum';
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const nonNull = types.filter((type) => type !== 'null');
  if (nonNull.length) return nonNull[0];
  for (const option of schema.anyOf ?? []) {
    const type = simpleType(option);
    if (type !== 'null' && type !== 'unknown') return type;
  }
  return types.includes('null') ? 'null' : 'unknown';
}

function itemsOf(schema: JsonSchema): JsonSchema | undefined {
  return schema.items ?? schema.anyOf?.find((option) => option.items)?.items;
}

function humanize(name: string): string {
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function buildSchemaForm(kind: ConnectorKind, idPrefix = kind.kind): SchemaForm {
  const schema = kind.settings_schema;
  const required = new Set(schema.required ?? []);
  const secrets = new Set(kind.secret_fields);
  const readers: { name: string; read(): unknown; control: HTMLElement }[] = [];
  const fields: HTMLElement[] = [];

  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const type = simpleType(property);
    // Nested models (attachment limits, ...) keep their defaults: they are advanced settings
    // an API client can still set.
    if (type === 'unknown' || (type === 'object' && !required.has(name))) continue;
    const label = `${property.title ?? humanize(name)}${required.has(name) ? ' *' : ''}`;
    const id = `${idPrefix}-${name}`;
    let control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    let read: () => unknown;
    if (type === 'boolean') {
      const box = h('input', { type: 'checkbox', id, name, checked: property.default === true });
      control = box;
      read = () => box.checked;
    } else if (type === 'enum') {
      const select = h(
        'select',
        { id, name },
        (property.enum ?? []).map((option) =>
          h('option', { value: String(option), selected: option === property.default }, String(option)),
        ),
      );
      control = select;
      read = () => select.value;
    } else if (type === 'array') {
      // Lists of plain values: one per line.
      const area = h('textarea', { id, name, rows: 3 });
      area.value = Array.isArray(property.default) ? property.default.join('\n') : '';
      control = area;
      const itemType = itemsOf(property) ? simpleType(itemsOf(property)!) : 'string';
      read = () => {
        const lines = area.value.split('\n').map((line) => line.trim()).filter(Boolean);
        if (!lines.length) return undefined;
        return itemType === 'integer' || itemType === 'number' ? lines.map(Number) : lines;
      };
    } else if (type === 'object') {
      // Free-form mappings (rare): JSON text.
      const area = h('textarea', { id, name, rows: 3, spellcheck: 'false' });
      area.value = property.default ? JSON.stringify(property.default) : '';
      control = area;
      read = () => (area.value.trim() ? JSON.parse(area.value) : undefined);
    } else {
      const numeric = type === 'integer' || type === 'number';
      const input = h('input', {
        id,
        name,
        type: secrets.has(name) ? 'password' : numeric ? 'number' : property.format === 'uri' ? 'url' : 'text',
        autocomplete: secrets.has(name) ? 'new-password' : 'off',
        min: property.minimum,
        max: property.maximum,
        maxlength: property.maxLength,
        step: type === 'integer' ? 1 : undefined,
      });
      if (property.default !== undefined && property.default !== null) input.value = String(property.default);
      control = input;
      read = () => {
        const raw = input.value.trim();
        if (!raw) return undefined;
        return numeric ? Number(raw) : raw;
      };
    }
    if (required.has(name)) control.setAttribute('aria-required', 'true');
    readers.push({ name, read, control });
    fields.push(field(label, control, property.description));
  }

  return {
    element: h('div', { class: 'schema-form' }, fields),
    values() {
      const settings: Record<string, unknown> = {};
      const credentials: Record<string, unknown> = {};
      for (const reader of readers) {
        const value = reader.read();
        if (value === undefined) continue;
        (secrets.has(reader.name) ? credentials : settings)[reader.name] = value;
      }
      return { settings, credentials };
    },
    missing() {
      const empty: string[] = [];
      for (const reader of readers) {
        const isMissing = required.has(reader.name) && reader.read() === undefined;
        reader.control.setAttribute('aria-invalid', String(isMissing));
        if (isMissing) empty.push(reader.name);
      }
      return empty;
    },
  };
}
