// A stand-in for the Helpdesk Assistant v1 API at the protocol level: it answers the widget's
// fetch calls with Responses shaped like the real ones (JSON bodies, `{"error", "detail"}`
// errors, text/event-stream bodies with token/done/error events, Retry-After on 429).

import type { FetchLike } from '../src/api';
import type { Citation, GeneratedAnswer } from '../src/types';

export interface RecordedRequest {
  method: string;
  path: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal | undefined;
}

export type Handler = (request: RecordedRequest) => Response | Promise<Response>;

export class FakeApi {
  readonly requests: RecordedRequest[] = [];
  private readonly routes = new Map<string, Handler[]>();

  /** Answer `METHOD /path` with these handlers in turn (replacing earlier ones); the last
   * keeps answering. */
  on(route: string, ...handlers: Handler[]): this {
    this.routes.set(route, [...handlers]);
    return this;
  }

  calls(route: string): RecordedRequest[] {
    const [method, path] = route.split(' ');
    return this.requests.filter((request) => request.method === method && request.path === path);
  }

  readonly fetch: FetchLike = async (input, init = {}) => {
    const url = new URL(input);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => {
      headers[key.toLowerCase()] = value; // happy-dom keeps the sent case
    });
    const request: RecordedRequest = {
      method: init.method ?? 'GET',
      path: url.pathname,
      url: input,
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
      signal: init.signal ?? undefined,
    };
    this.requests.push(request);
    if (request.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const queue = this.routes.get(`${request.method} ${request.path}`);
    if (!queue || queue.length === 0) {
      return json(404, { error: 'not_found', detail: `no route ${request.path}` });
    }
    const handler = queue.length > 1 ? queue.shift()! : queue[0];
    return handler(request);
  };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

export function sseText(events: [string, unknown][]): string {
  return events.map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join('');
}

/** A finished event stream, sent in pieces of `chunkSize` bytes (cutting through characters). */
export function sse(events: [string, unknown][], chunkSize = 7): Response {
  const bytes = new TextEncoder().encode(sseText(events));
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += chunkSize) {
          controller.enqueue(bytes.slice(i, i + chunkSize));
        }
        controller.close();
      },
    }),
    { status: 200, headers: { 'Content-Type': 'text/event-stream' } },
  );
}

/** An event stream the test writes to, event by event; it errors when the request aborts. */
export class LiveStream {
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  aborted = false;
  readonly response: Response;

  constructor(signal?: AbortSignal) {
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      cancel: () => {
        this.aborted = true;
      },
    });
    signal?.addEventListener('abort', () => {
      this.aborted = true;
      try {
        this.controller.error(new DOMException('aborted', 'AbortError'));
      } catch {
        // already closed
      }
    });
    this.response = new Response(stream, {
      status: 200,
      headers: { 'Content-Type': 'text/event-stream' },
    });
  }

  send(event: string, data: unknown): void {
    this.controller.enqueue(new TextEncoder().encode(sseText([[event, data]])));
  }

  close(): void {
    this.controller.close();
  }
}

export const CITATIONS: Citation[] = [
  {
    index: 1,
    document_id: 'doc-kb-reset',
    title: 'Resetting the Lumen Hub',
    url: 'https://help.lumen.example/articles/hub-reset',
    kind: 'article',
    source: 'article_folder',
    internal: false,
    snippet: 'Hold the button for 10 seconds.',
  },
  {
    index: 2,
    document_id: 'doc-ticket-1042',
    title: 'Hub offline after router change',
    url: 'javascript:alert(1)',
    kind: 'ticket',
    source: 'file_export',
    internal: true,
    snippet: 'Engineering note: firmware 3.2 bug.',
  },
];

export function generated(answer: string, overrides: Partial<GeneratedAnswer> = {}) {
  return {
    answer,
    citations: CITATIONS,
    interaction_id: 'int-draft-1',
    provider: 'extractive',
    model: 'extractive',
    cached: false,
    language: 'en',
    ...overrides,
  } satisfies GeneratedAnswer;
}

export async function waitFor<T>(
  probe: () => T | null | undefined | false,
  what = 'condition',
  timeoutMs = 2000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
