import { describe, expect, it } from 'vitest';
import { SseParser, readSse, type SseMessage } from '../src/sse';

const STREAM =
  ': keep-alive\n' +
  'event: token\ndata: {"text": "Hello"}\n\n' +
  'event: token\r\ndata: {"text": " 안녕하세요"}\r\n\r\n' +
  'event: token\rdata: {"text": "!"}\r\r' +
  'id: 7\nevent: done\ndata: {"answer": "Hello 안녕하세요!",\ndata:  "citations": []}\n\n';

const EXPECTED: SseMessage[] = [
  { event: 'token', data: '{"text": "Hello"}' },
  { event: 'token', data: '{"text": " 안녕하세요"}' },
  { event: 'token', data: '{"text": "!"}' },
  { event: 'done', data: '{"answer": "Hello 안녕하세요!",\n "citations": []}', id: '7' },
];

function parseInPieces(text: string, cuts: number[]): SseMessage[] {
  const parser = new SseParser();
  const out: SseMessage[] = [];
  let start = 0;
  for (const cut of [...cuts, text.length]) {
    out.push(...parser.feed(text.slice(start, cut)));
    start = cut;
  }
  return out;
}

function byteStream(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(start, cut));
    start = cut;
  }
  return new ReadableStream({
    start(controller) {
      pieces.forEach((piece) => controller.enqueue(piece));
      controller.close();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const message of readSse(stream)) out.push(message);
  return out;
}

describe('SseParser', () => {
  it('parses every line ending, comments, ids and multi-line data', () => {
    expect(new SseParser().feed(STREAM)).toEqual(EXPECTED);
  });

  it('gives the same events whatever the text is cut into', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      expect(parseInPieces(STREAM, [cut])).toEqual(EXPECTED);
    }
    // And one character at a time, CR and LF arriving in different pieces.
    expect(parseInPieces(STREAM, Array.from({ length: STREAM.length }, (_, i) => i))).toEqual(
      EXPECTED,
    );
  });

  it('counts CR then LF across two pieces as one line end, not an empty line', () => {
    const parser = new SseParser();
    expect(parser.feed('data: a\r')).toEqual([]);
    expect(parser.feed('\ndata: b\r\n')).toEqual([]);
    expect(parser.feed('\r\n')).toEqual([{ event: 'message', data: 'a\nb' }]);
  });

  it('drops a byte-order mark, blank events and an unterminated last event', () => {
    const parser = new SseParser();
    expect(parser.feed('\ufeffevent: token\n\n')).toEqual([]); // no data: nothing dispatched
    expect(parser.feed('data: kept\n\ndata: cut off')).toEqual([
      { event: 'message', data: 'kept' },
    ]);
  });

  it('keeps only the first space after the colon and accepts a field without a colon', () => {
    expect(new SseParser().feed('data:  two\ndata\n\n')).toEqual([
      { event: 'message', data: ' two\n' },
    ]);
  });
});

describe('readSse', () => {
  it('decodes UTF-8 split inside a character at every byte boundary', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      expect(await collect(byteStream(bytes, [cut, cut + 1]))).toEqual(EXPECTED);
    }
  });

  it('cancels the body when the reader stops early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('data: one\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const message of readSse(stream)) {
      expect(message.data).toBe('one');
      break;
    }
    expect(cancelled).toBe(true);
  });
});
