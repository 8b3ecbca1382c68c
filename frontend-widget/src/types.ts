// Shapes of the Helpdesk Assistant v1 API as the widget sees them.

export type AuthorRole = 'customer' | 'agent';

export interface ConversationEntry {
  author_role: AuthorRole;
  text: string;
  internal?: boolean;
  created_at?: string;
}

export interface Ticket {
  id?: string;
  source?: string;
  subject: string;
  description: string;
  status?: string;
  language?: string;
  requester?: string;
  conversation?: ConversationEntry[];
}

export interface Citation {
  index: number;
  document_id: string;
  title: string;
  url: string | null;
  kind: string;
  source: string;
  /** From a private note or work note: may guide the agent, never be quoted to a customer. */
  internal: boolean;
  snippet: string;
}

/** The `done` event of a streamed answer or draft. */
export interface GeneratedAnswer {
  answer: string;
  citations: Citation[];
  interaction_id: string;
  provider: string;
  model: string;
  cached: boolean;
  language: string;
}

export interface SimilarTicket {
  document_id: string;
  external_id: string;
  title: string;
  url: string | null;
  status: string | null;
  score: number;
  snippet: string;
  resolved: boolean;
}

export interface Summary {
  summary: string;
  citations: Citation[];
  interaction_id: string;
  provider: string;
  model: string;
}

export type Rating = 'up' | 'down';

export const FEEDBACK_REASONS = [
  'incorrect',
  'incomplete',
  'outdated',
  'inappropriate',
  'other',
] as const;
export type FeedbackReason = (typeof FEEDBACK_REASONS)[number];

export interface Feedback {
  interaction_id: string;
  /** Absent when only recording an insert. */
  rating?: Rating;
  reason?: FeedbackReason;
  comment?: string;
  inserted?: boolean;
  /** What became of a draft: inserted as is, inserted then edited, or discarded. */
  outcome?: DraftOutcome;
}

export type DraftOutcome = 'inserted' | 'edited' | 'discarded';

/** Detail of the `helpdesk:insert` event the host page handles. */
export interface InsertDetail {
  text: string;
  interactionId: string;
}

/** One triage field's suggestion: `value` null means "no suggestion". */
export interface TriageSuggestion {
  value: string | null;
  values: string[];
  confidence: number;
}

export type TriageField = 'category' | 'tags' | 'group' | 'priority' | 'sentiment' | 'language';

export interface TriageResult {
  ticket_id: string | null;
  suggestions: Partial<Record<TriageField, TriageSuggestion>>;
}

export interface TriageVerdict {
  ticket_id?: string;
  field: TriageField;
  suggested: string;
  accepted: boolean;
}
