// Entry of the bundle: registers <helpdesk-assistant> once, however many times it is loaded.

import { HelpdeskAssistantElement } from './element';

export { ApiError, HelpdeskApi } from './api';
export { AUTH_ERROR_EVENT, HelpdeskAssistantElement, INSERT_EVENT } from './element';
export { SseParser, readSse } from './sse';
export type * from './types';

export const TAG_NAME = 'helpdesk-assistant';

if (typeof customElements !== 'undefined' && !customElements.get(TAG_NAME)) {
  customElements.define(TAG_NAME, HelpdeskAssistantElement);
}

declare global {
  interface HTMLElementTagNameMap {
    'helpdesk-assistant': HelpdeskAssistantElement;
  }
}
