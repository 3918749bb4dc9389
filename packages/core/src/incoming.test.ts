import { describe, expect, it } from 'vitest';
import { queue } from './destination.js';
import { IncomingMessage, LazyAbort } from './incoming.js';

describe('IncomingMessage and LazyAbort', () => {
  it('creates the signal on first read; an abort before the read is visible on it', () => {
    const abort = new LazyAbort();
    abort.abort('first');
    abort.abort('second');
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe('first');
    const live = new LazyAbort();
    const signal = live.signal;
    expect(signal.aborted).toBe(false);
    live.abort('now');
    expect(signal.aborted).toBe(true);
    expect(live.signal).toBe(signal);
  });

  it('is a frozen value; subject and key exist only when present', () => {
    const fields = {
      id: 'i',
      type: 't',
      source: 's',
      time: '2026-01-01T00:00:00.000Z',
      datacontenttype: 'application/json',
      subject: undefined,
      key: undefined,
      data: { a: 1 },
      headers: {},
      attempt: 1,
      redelivered: false,
      destination: queue('q'),
    };
    const plain = new IncomingMessage(fields, new LazyAbort());
    expect(Object.isFrozen(plain)).toBe(true);
    expect('subject' in plain).toBe(false);
    expect('key' in plain).toBe(false);
    expect(plain.specversion).toBe('1.0');
    const full = new IncomingMessage({ ...fields, subject: 'sub', key: 'k' }, new LazyAbort());
    expect(full).toMatchObject({ subject: 'sub', key: 'k', data: { a: 1 } });
  });
});
