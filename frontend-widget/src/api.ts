// The v1 API client: JSON calls and streamed (SSE) generations, errors as ApiError.

import { readSse } from './sse';
import type {
  Feedback,
  GeneratedAnswer,
  SimilarTicket,
  Summary,
  Ticket,
  TriageResult,
  TriageVerdict,
} from './types';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiConfig {
  apiBase: string;
  companyId: string;
  token: string;
  fetch?: FetchLike;
}

/** Error codes that mean "come back later", whatever the transport said. */
const QUOTA_CODES = new Set(['quota_exceeded', 'rate_limited']);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: unknown = null,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(typeof detail === 'string' && detail ? detail : code);
    this.name = 'ApiError';
  }

  /** A spent budget or a rate limit (HTTP 429, or the same codes inside an SSE error event). */
  get isQuota(): boolean {
    return this.status === 429 || QUOTA_CODES.has(this.code);
  }

  /** The token was refused (expired, revoked). A 403 is not this: a new token would not help
   * (e.g. `ticket_out_of_scope`), and re-minting on it would loop. */
  get isAuth(): boolean {
    return this.status === 401;
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException
    ? error.name === 'AbortError'
    : (error as { name?: string } | null)?.name === 'AbortError';
}

function retryAfter(response: Response): number | null {
  const header = response.headers.get('Retry-After');
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(header); // Retry-After may also be an HTTP date
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let detail: unknown = null;
  try {
    const body = (await response.json()) as { error?: unknown; detail?: unknown };
    if (typeof body.error === 'string') code = body.error;
    detail = body.detail ?? null;
  } catch {
    // Not our JSON (a proxy's HTML error page, an empty 502): the status code says enough.
  }
  if (response.status === 429 && !QUOTA_CODES.has(code)) code = 'rate_limited';
  return new ApiError(response.status, code, detail, retryAfter(response));
}

export interface StreamHandlers {
  onToken(text: string): void;
}

export class HelpdeskApi {
  private readonly base: string;
  private readonly fetchImpl: FetchLike;

  constructor(private readonly config: ApiConfig) {
    this.base = config.apiBase.replace(/\/+$/, '');
    // Bound: window.fetch called as a method of another object throws "Illegal invocation".
    this.fetchImpl = config.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  private headers(accept: string, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = {
      Accept: accept,
      Authorization: `Bearer ${this.config.token}`,
      'X-Company-ID': this.config.companyId,
    };
    if (hasBody) headers['Content-Type'] = 'application/json';
    return headers;
  }

  private async request(
    method: string,
    path: string,
    body: unknown,
    accept: string,
    signal?: AbortSignal,
  ): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}${path}`, {
        method,
        headers: this.headers(accept, body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        credentials: 'omit',
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw new ApiError(0, 'network_error', String(error));
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal) {
    const response = await this.request(method, path, body, 'application/json', signal);
    return (await response.json()) as T;
  }

  /** POST a generation request and stream it; resolves with the `done` event's payload. */
  async stream(
    path: string,
    body: unknown,
    handlers: StreamHandlers,
    signal?: AbortSignal,
  ): Promise<GeneratedAnswer> {
    const response = await this.request('POST', path, body, 'text/event-stream', signal);
    if (!response.body) throw new ApiError(response.status, 'empty_stream');
    for await (const message of readSse(response.body)) {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(message.data) as Record<string, unknown>;
      } catch {
        throw new ApiError(response.status, 'invalid_stream', message.data);
      }
      if (message.event === 'token') {
        if (typeof data.text === 'string') handlers.onToken(data.text);
      } else if (message.event === 'done') {
        return data as unknown as GeneratedAnswer;
      } else if (message.event === 'error') {
        const code = typeof data.error === 'string' ? data.error : 'stream_error';
        throw new ApiError(QUOTA_CODES.has(code) ? 429 : 500, code, data.detail ?? null);
      }
    }
    throw new ApiError(response.status, 'stream_interrupted');
  }

  draftReply(ticket: Ticket, regenerate: boolean, handlers: StreamHandlers, signal?: AbortSignal) {
    const body = regenerate ? { ticket, regenerate: true } : { ticket };
    return this.stream('/v1/draft-reply/stream', body, handlers, signal);
  }

  answer(question: string, ticket: Ticket | null, handlers: StreamHandlers, signal?: AbortSignal) {
    const body = ticket ? { question, ticket } : { question };
    return this.stream('/v1/answer/stream', body, handlers, signal);
  }

  async similarTickets(ticket: Ticket, limit: number, signal?: AbortSignal) {
    const result = await this.json<{ tickets: SimilarTicket[] }>(
      'POST',
      '/v1/similar-tickets',
      { ticket, limit },
      signal,
    );
    return result.tickets ?? [];
  }

  /** Triage suggestions for the ticket's subject and description, voted by the company's
   * own solved tickets (agents only). */
  triage(ticket: Ticket, signal?: AbortSignal) {
    const text = `${ticket.subject}\n\n${ticket.description}`.trim();
    return this.json<TriageResult>('POST', '/v1/triage', { text }, signal);
  }

  /** The agent accepted a suggestion: recorded as triage feedback. */
  triageFeedback(verdict: TriageVerdict) {
    return this.json<{ id: string }>('POST', '/v1/triage/feedback', verdict);
  }

  summarize(ticket: Ticket, signal?: AbortSignal) {
    return this.json<Summary>('POST', '/v1/summarize', { ticket }, signal);
  }

  sendFeedback(feedback: Feedback) {
    return this.json<{ id: string }>('POST', '/v1/feedback', feedback);
  }

  getTicket(ticketId: string, source: string | null, signal?: AbortSignal) {
    const query = source ? `?source=${encodeURIComponent(source)}` : '';
    return this.json<Ticket>(
      'GET',
      `/v1/tickets/${encodeURIComponent(ticketId)}${query}`,
      undefined,
      signal,
    );
  }
}
