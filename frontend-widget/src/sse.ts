// Server-Sent Events over fetch: EventSource can neither POST a body nor send the
// Authorization header, so the widget reads the response stream and parses it here,
// following the WHATWG event-stream rules (any line ending, multi-line data, comments).

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser: feed decoded text in arbitrary pieces, get complete events back. */
export class SseParser {
  private buffer = '';
  private dataLines: string[] = [];
  private eventType = '';
  private lastId: string | undefined;
  private started = false;
  /** The previous piece ended in CR: a LF opening the next piece belongs to that line end. */
  private pendingCr = false;

  feed(piece: string): SseMessage[] {
    let text = piece;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    if (text.length > 0) this.pendingCr = false;
    this.buffer += text;

    const messages: SseMessage[] = [];
    let lineStart = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const char = this.buffer[i];
      if (char !== '\n' && char !== '\r') continue;
      const line = this.buffer.slice(lineStart, i);
      if (char === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++;
        } else {
          this.pendingCr = true;
        }
      }
      this.processLine(line, messages);
      lineStart = i + 1;
    }
    this.buffer = this.buffer.slice(lineStart);
    return messages;
  }

  private processLine(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.dataLines.length > 0) {
        const message: SseMessage = {
          event: this.eventType || 'message',
          data: this.dataLines.join('\n'),
        };
        if (this.lastId !== undefined) message.id = this.lastId;
        out.push(message);
      }
      this.dataLines = [];
      this.eventType = '';
      return;
    }
    if (line.startsWith(':')) return; // a comment: servers send these as keep-alives
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.dataLines.push(value);
    else if (field === 'event') this.eventType = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    // "retry" and unknown fields are ignored: the widget does not reconnect on its own.
  }
}

/** Events of a response body, decoded as UTF-8 across chunk boundaries. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.feed(decoder.decode(value, { stream: true }));
    }
    finished = true;
    // An event not closed by a blank line at the end of the stream is dropped, as the spec says.
    yield* parser.feed(decoder.decode());
  } finally {
    // The consumer stopped early (or reading failed): tell the server we are gone.
    if (!finished) reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
