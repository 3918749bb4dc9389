import { describe, expect, it } from 'vitest';
import { ConnectionError, ErrorCode, FerryError } from './errors.js';
import { REDACTED, Redactor } from './redact.js';

const ENCODED = 's3cr%40t!pw';
const DECODED = 's3cr@t!pw';
const TOKEN = 'tok-8f3a9c';
const API_KEY = 'k3y-99z';
const URL = `amqp://alice:${ENCODED}@rabbit.internal:5672/prod?heartbeat=5&token=${TOKEN}&api_key=${API_KEY}`;

/** Every form of every secret in URL: none may appear in redacted output. */
const SECRETS = [ENCODED, DECODED, 's3cr', 't!pw', TOKEN, API_KEY];

function expectClean(text: string | undefined): void {
  expect(text).toBeDefined();
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

describe('Redactor.text', () => {
  const redactor = new Redactor(URL);

  it('removes the password in its encoded and decoded forms and keeps the rest', () => {
    const out = redactor.text(`could not log in with ${ENCODED} (that is ${DECODED}) as alice`);
    expectClean(out);
    expect(out).toBe(`could not log in with ${REDACTED} (that is ${REDACTED}) as alice`);
  });

  it('redacts the full URL inside a message, keeping user, host and harmless parameters', () => {
    const out = redactor.text(`connect ECONNREFUSED ${URL}`);
    expectClean(out);
    expect(out).toContain('amqp://alice:***@rabbit.internal:5672/prod');
    expect(out).toContain('heartbeat=5');
  });

  it('redacts the URL written with the raw, unencoded password', () => {
    const out = redactor.text(`dialing amqp://alice:${DECODED}@rabbit.internal:5672`);
    expectClean(out);
    expect(out).toBe('dialing amqp://alice:***@rabbit.internal:5672');
  });

  it('redacts secret query parameter values wherever they appear', () => {
    expectClean(redactor.text(`token ${TOKEN} and key ${API_KEY} leaked`));
  });

  it('redacts scheme://user:pass@host of any URL, even one it was not told about', () => {
    const plain = new Redactor();
    expect(plain.text('tried mqtt://bob:hunter2@broker:1883 and stomp://carol:pa55@mq')).toBe(
      'tried mqtt://bob:***@broker:1883 and stomp://carol:***@mq',
    );
    expect(plain.text('REDIS=redis://default:xyz123@cache:6379/0')).toBe('REDIS=redis://default:***@cache:6379/0');
    expect(plain.text('amqps://u:p@h')).toBe('amqps://u:***@h');
  });

  it('leaves no tail of an unknown password that holds a raw @', () => {
    const out = new Redactor().text('failed amqp://bob:p@ss@w0rd@host/vh');
    expect(out).toBe('failed amqp://bob:***@host/vh');
  });

  it('keeps text without credentials unchanged', () => {
    const plain = new Redactor();
    for (const text of [
      'http://example.com:8080/path?a=b',
      'mail me at bob@example.com',
      'amqp://guest@localhost',
      'time 12:30, ratio 1:2',
    ]) {
      expect(plain.text(text)).toBe(text);
    }
  });

  it('ignores secrets shorter than 3 characters instead of mangling text', () => {
    const redactor = new Redactor('amqp://u:ab@host');
    expect(redactor.text('about a cab')).toBe('about a cab');
    expect(redactor.text('amqp://u:ab@host')).toBe('amqp://u:***@host');
  });

  it('replaces the longest secret whole when one secret contains another', () => {
    const redactor = new Redactor('amqp://u:abc@host?token=abcdef');
    expect(redactor.text('see abcdef')).toBe(`see ${REDACTED}`);
  });

  it('stays linear on long text (no regular-expression backtracking blow-up)', () => {
    const plain = new Redactor();
    const start = performance.now();
    for (const text of [
      'a'.repeat(100_000) + '://',
      'a1'.repeat(50_000) + '://',
      'x://u:@' + 'a'.repeat(100_000),
      'x://' + ':'.repeat(100_000),
    ]) {
      expect(plain.text(text).length).toBeGreaterThan(0);
    }
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it('survives an unparsable URL', () => {
    const redactor = new Redactor('not a url at all');
    expect(redactor.text('amqp://bob:hunter2@h')).toBe('amqp://bob:***@h');
  });
});

describe('Redactor.url', () => {
  const redactor = new Redactor(URL);

  it('redacts the password and secret parameters, keeping the username', () => {
    const out = redactor.url(URL);
    expectClean(out);
    expect(out).toBe(
      `amqp://alice:${REDACTED}@rabbit.internal:5672/prod?heartbeat=5&token=${REDACTED}&api_key=${REDACTED}`,
    );
  });

  it.each([
    'password',
    'passwd',
    'secret',
    'token',
    'access_token',
    'key',
    'apiKey',
    'auth',
    'credential',
    'signature',
  ])('redacts the %s query parameter', (name) => {
    const out = new Redactor().url(`mqtt://broker:1883/?${name}=sensitive-value&clientId=c1`);
    expect(out).not.toContain('sensitive-value');
    expect(out).toContain(`${name}=${REDACTED}`);
    expect(out).toContain('clientId=c1');
  });

  it('leaves a URL without secrets alone', () => {
    expect(new Redactor().url('amqp://guest@localhost:5672/vh?heartbeat=10')).toBe(
      'amqp://guest@localhost:5672/vh?heartbeat=10',
    );
  });

  it('redacts a URL it cannot parse with the generic pattern', () => {
    expect(new Redactor().url('amqp://bob:hunter2@[bad')).not.toContain('hunter2');
  });

  it('redacts another URL carrying the same password', () => {
    expectClean(redactor.url(`stomp://alice:${ENCODED}@other:61613`));
  });
});

describe('Redactor.error', () => {
  const redactor = new Redactor(URL);

  it('replaces a foreign Error by a clean copy: message, stack, name and code', () => {
    const foreign = Object.assign(new TypeError(`connect ECONNREFUSED ${URL} (${DECODED})`), {
      code: 'ECONNREFUSED',
    });
    const clean = redactor.error(foreign);
    expect(clean).not.toBe(foreign);
    expect(clean).toBeInstanceOf(Error);
    expectClean(clean.message);
    expectClean(clean.stack);
    expect(clean.message).toContain('ECONNREFUSED amqp://alice:***@rabbit.internal');
    expect(clean.name).toBe('TypeError');
    expect((clean as Error & { code?: string }).code).toBe('ECONNREFUSED');
    expect(clean.cause).toBeUndefined();
  });

  it('cleans a FerryError in place: message, stack and its cause', () => {
    const cause = new Error(`socket closed by ${URL}`);
    const error = new ConnectionError(`Cannot reach ${URL}: check the broker runs`, { cause });
    expect(error.stack).toContain(TOKEN);
    const clean = redactor.error(error);
    expect(clean).toBe(error);
    expect(clean).toBeInstanceOf(ConnectionError);
    expect((clean as FerryError).code).toBe(ErrorCode.CONNECTION);
    expectClean(clean.message);
    expectClean(clean.stack);
    expect(clean.cause).toBeInstanceOf(Error);
    expect(clean.cause).not.toBe(cause);
    expectClean((clean.cause as Error).message);
    expectClean((clean.cause as Error).stack);
    expectClean(JSON.stringify(clean));
  });

  it('cleans a FerryError whose cause is not an Error', () => {
    const error = new FerryError(ErrorCode.CONNECTION, 'failed', { cause: `raw ${DECODED}` });
    const clean = redactor.error(error);
    expect(clean.cause).toBeInstanceOf(Error);
    expectClean((clean.cause as Error).message);
  });

  it('turns a thrown string or object into a clean Error', () => {
    const fromString = redactor.error(`failed with ${URL}`);
    expect(fromString).toBeInstanceOf(Error);
    expectClean((fromString as Error).message);
    const fromObject = redactor.error({ url: URL });
    expect(fromObject).toBeInstanceOf(Error);
    expectClean(JSON.stringify(fromObject));
  });

  it('redacts URL credentials in a thrown string even without a known secret', () => {
    const out = new Redactor().error('failed amqp://u:hunter2@h');
    expect(out).toBeInstanceOf(Error);
    expect((out as Error).message).toBe('failed amqp://u:***@h');
  });

  it('returns a harmless non-Error value as is when nothing is known', () => {
    expect(new Redactor().error('plain failure')).toBe('plain failure');
    expect(new Redactor().error(42)).toBe(42);
  });

  it('cleans an Error without a URL of its own through the generic pattern', () => {
    const out = new Redactor().error(new Error('dial mqtt://bob:hunter2@broker failed'));
    expect(out.message).toBe('dial mqtt://bob:***@broker failed');
    expect(out.stack).not.toContain('hunter2');
  });
});
