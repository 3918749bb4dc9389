import { FrameImpl, type IRawFrameType, type StompHeaders } from '@stomp/stompjs';

/**
 * stompjs 7.5 reads incoming headers with two bugs against STOMP 1.2: it trims header values
 * (`"  padded  "` arrives as `"padded"`), and it unescapes with chained replaces, so an escaped
 * backslash followed by `n` (`\\n`, a literal backslash-n) becomes a newline. Ferry replaces the
 * reader with one that follows the spec: values kept as sent, one left-to-right pass over the escapes.
 * Installed once, for every stompjs client in the process (the fix only makes them more correct).
 */
const ESCAPES: Readonly<Record<string, string>> = { r: '\r', n: '\n', c: ':', '\\': '\\' };

export function unescapeHeaderValue(value: string): string {
  // Most values hold no backslash at all: a native search instead of a regular-expression replace.
  if (!value.includes('\\')) return value;
  return value.replace(/\\(.)/g, (match, char: string) => ESCAPES[char] ?? match);
}

let installed = false;

/** Installs the spec-following header reader. Idempotent. */
export function installFrameReader(): void {
  if (installed) return;
  installed = true;
  FrameImpl.fromRawFrame = (rawFrame: IRawFrameType, escapeHeaderValues: boolean): FrameImpl => {
    const headers: StompHeaders = {};
    const escaped = escapeHeaderValues && rawFrame.command !== 'CONNECT' && rawFrame.command !== 'CONNECTED';
    // Repeated headers: the first one wins (STOMP 1.2), so read them last to first.
    const raw = rawFrame.headers;
    for (let i = raw.length - 1; i >= 0; i--) {
      const [key, value] = raw[i] as [string, string];
      headers[escaped ? unescapeHeaderValue(key) : key] = escaped ? unescapeHeaderValue(value) : value;
    }
    return new FrameImpl({
      command: rawFrame.command ?? '',
      headers,
      binaryBody: rawFrame.binaryBody,
      escapeHeaderValues,
    });
  };
}
