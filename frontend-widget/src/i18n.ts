// UI strings. English is the reference; every other language must define every key.

const en = {
  title: 'Helpdesk Assistant',
  notConfigured: 'The assistant is not configured (api-base, company-id and token are required).',
  noTicket: 'Open a ticket to see suggestions.',
  loadingTicket: 'Loading the ticket…',
  ticketError: 'The ticket could not be loaded.',
  draftHeading: 'Suggested reply',
  summaryHeading: 'Summary',
  similarHeading: 'Similar solved tickets',
  triageHeading: 'Suggested fields',
  triageAccept: 'Accept',
  triageAccepted: 'Accepted',
  field_category: 'Category',
  field_tags: 'Tags',
  field_group: 'Group',
  field_priority: 'Priority',
  field_sentiment: 'Sentiment',
  field_language: 'Language',
  askHeading: 'Ask the knowledge base',
  drafting: 'Drafting a reply…',
  summarizing: 'Summarizing the conversation…',
  searching: 'Looking for similar tickets…',
  answering: 'Looking for an answer…',
  draftEmpty: 'Nothing in your knowledge base covers this ticket yet.',
  answerEmpty: 'No answer was found in your knowledge base.',
  summaryEmpty: 'There is nothing to summarize yet.',
  similarEmpty: 'No similar solved tickets found.',
  error: 'Something went wrong.',
  networkError: 'The assistant cannot be reached. Check your connection.',
  authError: 'Your assistant session has expired. Reload the ticket to continue.',
  quotaExceeded: "Your team's assistant quota is used up for now.",
  rateLimited: 'Too many requests right now.',
  retryIn: 'Try again in {seconds} s.',
  retry: 'Try again',
  stop: 'Stop',
  stopped: 'Stopped.',
  copy: 'Copy',
  copied: 'Copied to the clipboard.',
  copyFailed: 'Could not copy; select the text instead.',
  insert: 'Insert into reply',
  inserted: 'Inserted into the reply.',
  regenerate: 'Regenerate',
  sources: 'Sources',
  internal: 'Internal',
  internalHint: 'From a private note: for you, never quote it to the customer.',
  opensInNewTab: '(opens in a new tab)',
  cached: 'from cache',
  resolved: 'Solved',
  helpfulQuestion: 'Was this helpful?',
  helpful: 'Helpful',
  notHelpful: 'Not helpful',
  reasonLabel: 'What was wrong?',
  reason_incorrect: 'Incorrect',
  reason_incomplete: 'Incomplete',
  reason_outdated: 'Outdated',
  reason_inappropriate: 'Inappropriate',
  reason_other: 'Other',
  commentLabel: 'Comment (optional)',
  sendFeedback: 'Send feedback',
  cancel: 'Cancel',
  feedbackThanks: 'Thanks for the feedback.',
  feedbackFailed: 'The feedback could not be sent.',
  askPlaceholder: 'Ask a question… (Enter to send, Shift+Enter for a new line)',
  askLabel: 'Your question',
  send: 'Send',
  draftReady: 'The suggested reply is ready.',
  answerReady: 'The answer is ready.',
  citationLabel: 'Source {index}: {title}',
};

export type MessageKey = keyof typeof en;
export type Messages = Record<MessageKey, string>;

const ko: Messages = {
  title: '헬프데스크 어시스턴트',
  notConfigured: '어시스턴트가 설정되지 않았습니다 (api-base, company-id, token 필요).',
  noTicket: '티켓을 열면 제안이 표시됩니다.',
  loadingTicket: '티켓을 불러오는 중…',
  ticketError: '티켓을 불러오지 못했습니다.',
  draftHeading: '추천 답변',
  summaryHeading: '요약',
  similarHeading: '비슷한 해결 티켓',
  triageHeading: '추천 분류',
  triageAccept: '적용',
  triageAccepted: '적용됨',
  field_category: '유형',
  field_tags: '태그',
  field_group: '그룹',
  field_priority: '우선순위',
  field_sentiment: '감정',
  field_language: '언어',
  askHeading: '지식 베이스에 질문하기',
  drafting: '답변 초안을 작성하는 중…',
  summarizing: '대화를 요약하는 중…',
  searching: '비슷한 티켓을 찾는 중…',
  answering: '답을 찾는 중…',
  draftEmpty: '이 티켓에 해당하는 내용이 지식 베이스에 아직 없습니다.',
  answerEmpty: '지식 베이스에서 답을 찾지 못했습니다.',
  summaryEmpty: '아직 요약할 내용이 없습니다.',
  similarEmpty: '비슷한 해결 티켓이 없습니다.',
  error: '문제가 발생했습니다.',
  networkError: '어시스턴트에 연결할 수 없습니다. 네트워크를 확인하세요.',
  authError: '어시스턴트 세션이 만료되었습니다. 티켓을 다시 열어 주세요.',
  quotaExceeded: '팀의 어시스턴트 사용 한도에 도달했습니다.',
  rateLimited: '지금은 요청이 너무 많습니다.',
  retryIn: '{seconds}초 후에 다시 시도하세요.',
  retry: '다시 시도',
  stop: '중지',
  stopped: '중지되었습니다.',
  copy: '복사',
  copied: '클립보드에 복사했습니다.',
  copyFailed: '복사하지 못했습니다. 텍스트를 직접 선택하세요.',
  insert: '답변에 넣기',
  inserted: '답변에 넣었습니다.',
  regenerate: '다시 생성',
  sources: '출처',
  internal: '내부용',
  internalHint: '비공개 메모에서 가져온 내용입니다. 고객에게 그대로 전달하지 마세요.',
  opensInNewTab: '(새 탭에서 열림)',
  cached: '캐시됨',
  resolved: '해결됨',
  helpfulQuestion: '도움이 되었나요?',
  helpful: '도움이 됨',
  notHelpful: '도움이 안 됨',
  reasonLabel: '어떤 점이 문제였나요?',
  reason_incorrect: '틀림',
  reason_incomplete: '불완전함',
  reason_outdated: '오래된 정보',
  reason_inappropriate: '부적절함',
  reason_other: '기타',
  commentLabel: '의견 (선택)',
  sendFeedback: '피드백 보내기',
  cancel: '취소',
  feedbackThanks: '피드백을 보내 주셔서 감사합니다.',
  feedbackFailed: '피드백을 보내지 못했습니다.',
  askPlaceholder: '질문을 입력하세요… (Enter: 보내기, Shift+Enter: 줄바꿈)',
  askLabel: '질문',
  send: '보내기',
  draftReady: '추천 답변이 준비되었습니다.',
  answerReady: '답변이 준비되었습니다.',
  citationLabel: '출처 {index}: {title}',
};

export const CATALOGS: Record<string, Messages> = { en, ko };
export const SUPPORTED_LANGUAGES = Object.keys(CATALOGS);

/** The catalog language for a BCP 47 tag ("ko-KR" → "ko"); English when unsupported. */
export function resolveLanguage(...candidates: (string | null | undefined)[]): string {
  for (const candidate of candidates) {
    const primary = candidate?.trim().toLowerCase().split(/[-_]/)[0];
    if (primary && primary in CATALOGS) return primary;
  }
  return 'en';
}

export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

export function translator(language: string): Translate {
  const catalog = CATALOGS[language] ?? en;
  return (key, params) => {
    const template = catalog[key] ?? en[key];
    if (!params) return template;
    return template.replace(/\{(\w+)\}/g, (match, name: string) =>
      name in params ? String(params[name]) : match,
    );
  };
}
