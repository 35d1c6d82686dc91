// NDJSON framing: lines out of a byte or text stream, one at a time, with 1-based line numbers; never a whole file in memory.

export interface NdjsonLine {
  /** 1-based line number in the file. */
  line: number;
  /** The line without its terminator; absent when the line exceeded the length limit. */
  text?: string;
  /** True when the line was longer than `maxLineChars` and was dropped unread. */
  tooLong?: boolean;
}

export interface NdjsonOptions {
  /** Longest line kept (default 64 Mi characters); longer ones come out as `tooLong`. */
  maxLineChars?: number;
}

/** Splits a stream into lines (LF or CRLF). Blank lines are skipped but still counted. */
export async function* ndjsonLines(chunks: AsyncIterable<Uint8Array | string>, options: NdjsonOptions = {}): AsyncGenerator<NdjsonLine> {
  const max = options.maxLineChars ?? 64 * 1024 * 1024;
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let dropping = false;
  let line = 0;
  const emit = (text: string): NdjsonLine | undefined => {
    line++;
    if (dropping) {
      dropping = false;
      return { line, tooLong: true };
    }
    const trimmed = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (trimmed.trim() === '') return undefined;
    return { line, text: trimmed };
  };
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      const piece = pending ? pending + text.slice(start, nl) : text.slice(start, nl);
      pending = '';
      const out = emit(piece);
      if (out) yield out;
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) {
      if (dropping) continue;
      pending += text.slice(start);
      if (pending.length > max) {
        pending = '';
        dropping = true;
      }
    }
  }
  const rest = pending + decoder.decode();
  if (rest || dropping) {
    const out = emit(rest);
    if (out) yield out;
  }
}
