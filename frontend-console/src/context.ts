import type { Api, Session } from './api';

/** What every page gets: the API client, the signed-in session, and the app's navigation. */
export interface Context {
  api: Api;
  session: Session;
  /** Re-renders the current page (after a language switch, a save, ...). */
  refresh(): void;
  /** Registers a cleanup (a polling timer) to run when the page is left. */
  onLeave(cleanup: () => void): void;
}

export type Page = (ctx: Context) => Promise<HTMLElement> | HTMLElement;

export function canManage(session: Session): boolean {
  return session.user.role === 'owner' || session.user.role === 'admin';
}
