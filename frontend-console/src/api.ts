// The console's only way to the API: same-origin fetch with the HttpOnly session cookie,
// and the session's CSRF token on every unsafe method (the API refuses them without it).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: unknown,
  ) {
    super(`${status} ${code}`);
  }
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: 'owner' | 'admin' | 'agent';
  company_id: string;
}

export interface Session {
  user: User;
  csrf_token: string;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Api {
  private csrfToken: string | null = null;

  constructor(
    private readonly fetchImpl: Fetch = (input, init) => fetch(input, init),
    private readonly base = '',
  ) {}

  /** Remembers the CSRF token of a session answer (sign in, accept invite, who am I). */
  adopt(session: Session): Session {
    this.csrfToken = session.csrf_token;
    return session;
  }

  forget(): void {
    this.csrfToken = null;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (UNSAFE.has(method) && this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken;
    const response = await this.fetchImpl(this.base + path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const error = (parsed ?? {}) as { error?: string; detail?: unknown };
      throw new ApiError(response.status, error.error ?? `http_${response.status}`, error.detail ?? null);
    }
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async signIn(email: string, password: string): Promise<Session> {
    return this.adopt(await this.post<Session>('/console/api/session', { email, password }));
  }
  async currentSession(): Promise<Session | null> {
    try {
      return this.adopt(await this.get<Session>('/console/api/session'));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return null;
      throw error;
    }
  }
  async acceptInvitation(token: string, name: string, password: string): Promise<Session> {
    return this.adopt(
      await this.post<Session>('/console/api/invitations/accept', { token, name, password }),
    );
  }
  async signOut(everywhere = false): Promise<void> {
    await this.request<void>(
      everywhere ? 'POST' : 'DELETE',
      everywhere ? '/console/api/session/revoke-all' : '/console/api/session',
    );
    this.forget();
  }
}

/** Lists come bare or wrapped (`{"users": [...]}`); the console takes either. */
export function listOf<T>(value: unknown, key: string): T[] {
  if (Array.isArray(value)) return value as T[];
  if (value && typeof value === 'object' && Array.isArray((value as Record<string, unknown>)[key])) {
    return (value as Record<string, T[]>)[key];
  }
  return [];
}

/** Short, human text for an API error (the code, and the detail when it is text). */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const detail = typeof error.detail === 'string' ? error.detail : error.detail ? JSON.stringify(error.detail) : '';
    return detail ? `${error.code}: ${detail}` : error.code;
  }
  return error instanceof Error ? error.message : String(error);
}
