import { FerryError } from './errors.js';

const SECRET_PARAM = /pass|secret|token|key|auth|credential|signature/i;
// `scheme://user:password@`: the password runs to the authority's last `@` (as URL parsers read it),
// so a raw `@` inside a password cannot leave its tail behind. Anchored on `://`, not on the scheme:
// a scheme pattern is retried at every letter of a long word, which is quadratic on long text.
const URL_CREDENTIALS = /(:\/\/[^\s/?#:]*:)[^\s/?#]*@/g;

/** The replacement text for a secret. */
export const REDACTED = '***';

/**
 * Removes credentials from text: the password of `url` and the values of secret-looking query
 * parameters (`password`, `token`, `key`...), in raw and URL-encoded forms, plus any `scheme://user:pass@`
 * it finds. Used on every error message, log line, event and `health()` a broker produces.
 */
export class Redactor {
  readonly #secrets: readonly string[];

  constructor(url?: string) {
    const secrets = new Set<string>();
    if (url !== undefined) {
      try {
        const parsed = new URL(url);
        addSecret(secrets, parsed.password);
        for (const [name, value] of parsed.searchParams) if (SECRET_PARAM.test(name)) addSecret(secrets, value);
      } catch {
        // An unparsable URL is reported by connect(); the generic pattern below still applies.
      }
    }
    // Longest first, so a secret that contains another is replaced whole.
    this.#secrets = [...secrets].sort((a, b) => b.length - a.length);
  }

  /** The text with every known secret replaced by `***`. */
  text(text: string): string {
    // Known secrets first: the generic pattern could otherwise cut a known secret in two and leave part of it.
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join(REDACTED);
    return out.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
  }

  /** The URL with its password and secret query parameters replaced by `***`. */
  url(url: string): string {
    try {
      const parsed = new URL(url);
      if (parsed.password !== '') parsed.password = REDACTED;
      for (const [name] of parsed.searchParams) {
        if (SECRET_PARAM.test(name)) parsed.searchParams.set(name, REDACTED);
      }
      return this.text(parsed.toString().replaceAll(encodeURIComponent(REDACTED), REDACTED));
    } catch {
      return this.text(url);
    }
  }

  /**
   * The error with its message (and its cause chain's messages) redacted, in place for Ferry errors;
   * anything else is returned as a new `Error` so no foreign object carrying a secret escapes.
   */
  error<E>(error: E): E | Error {
    if (!(error instanceof Error)) {
      const text = String(error);
      const clean = this.text(text);
      return this.#secrets.length === 0 && clean === text ? error : new Error(clean);
    }
    const clean = this.text(error.message);
    if (error instanceof FerryError) {
      if (clean !== error.message) error.message = clean;
      if (error.cause !== undefined) {
        Object.defineProperty(error, 'cause', { value: this.#cause(error.cause), configurable: true, writable: true });
      }
      if (error.stack !== undefined) error.stack = this.text(error.stack);
      return error;
    }
    return this.#cause(error);
  }

  #cause(cause: unknown): Error {
    if (!(cause instanceof Error)) return new Error(this.text(String(cause)));
    const copy = new Error(this.text(cause.message));
    copy.name = cause.name;
    copy.stack = this.text(cause.stack ?? '');
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code });
    return copy;
  }
}

function addSecret(secrets: Set<string>, value: string): void {
  if (value.length < 3) return; // too short to redact without mangling ordinary text
  secrets.add(value);
  try {
    secrets.add(decodeURIComponent(value));
  } catch {
    // not URL-encoded
  }
  secrets.add(encodeURIComponent(value));
}
