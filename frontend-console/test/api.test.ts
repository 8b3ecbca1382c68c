import { describe, expect, it } from 'vitest';
import { Api, ApiError, describeError, listOf } from '../src/api';

interface Seen { url: string; init: RequestInit }

function fakeFetch(responses: Response[]): { fetch: (url: string, init?: RequestInit) => Promise<Response>; seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    fetch: async (url, init = {}) => {
      seen.push({ url, init });
      return responses.shift()!;
    },
  };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
const session = { user: { id: 'u1', email: 'a@b.example', name: 'A', role: 'owner', company_id: 'acme' }, csrf_token: 'csrf-1' };

describe('Api', () => {
  it('sends the session CSRF token on unsafe methods only, with the cookie', async () => {
    const { fetch, seen } = fakeFetch([json(200, session), json(200, []), json(201, { id: 'c1' })]);
    const api = new Api(fetch);
    await api.signIn('a@b.example', 'secret');
    await api.get('/v1/connectors');
    await api.post('/v1/connectors', { platform: 'freshdesk' });
    const headers = seen.map((s) => s.init.headers as Record<string, string>);
    expect(headers[1]['X-CSRF-Token']).toBeUndefined();
    expect(headers[2]['X-CSRF-Token']).toBe('csrf-1');
    expect(seen.every((s) => s.init.credentials === 'same-origin')).toBe(true);
    expect(JSON.parse(seen[0].init.body as string)).toEqual({ email: 'a@b.example', password: 'secret' });
  });

  it('turns error bodies into ApiError with code and detail', async () => {
    const { fetch } = fakeFetch([json(403, { error: 'csrf_failed', detail: 'missing token' })]);
    const error = await new Api(fetch).delete('/v1/connectors/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('csrf_failed');
    expect(describeError(error)).toBe('csrf_failed: missing token');
  });

  it('reports no session on 401 and forgets the token on sign out', async () => {
    const { fetch, seen } = fakeFetch([json(401, { error: 'not_signed_in' }), json(200, session), new Response(null, { status: 204 }), json(200, {})]);
    const api = new Api(fetch);
    expect(await api.currentSession()).toBeNull();
    await api.currentSession();
    await api.signOut(true);
    expect(seen[2].url).toBe('/console/api/session/revoke-all');
    await api.post('/v1/anything');
    expect((seen[3].init.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined();
  });

  it('reads bare and wrapped lists', () => {
    expect(listOf([1, 2], 'users')).toEqual([1, 2]);
    expect(listOf({ users: [3] }, 'users')).toEqual([3]);
    expect(listOf({ other: [3] }, 'users')).toEqual([]);
  });
});
