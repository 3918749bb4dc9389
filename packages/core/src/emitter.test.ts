import { describe, expect, it } from 'vitest';
import { Emitter } from './emitter.js';

type Events = {
  connected: () => void;
  error: (error: Error) => void;
  data: (a: number, b: string) => void;
};

/** Exposes the protected emit for tests. */
class TestEmitter extends Emitter<Events> {
  fire<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): boolean {
    return this.emit(event, ...args);
  }
}

describe('Emitter', () => {
  it('calls listeners with the arguments, in the order they were added', () => {
    const emitter = new TestEmitter();
    const calls: string[] = [];
    emitter.on('data', (a, b) => calls.push(`first ${a} ${b}`));
    emitter.on('data', (a, b) => calls.push(`second ${a} ${b}`));
    expect(emitter.fire('data', 1, 'x')).toBe(true);
    expect(calls).toEqual(['first 1 x', 'second 1 x']);
  });

  it('returns false when nobody listens, and does not throw for an unheard error event', () => {
    const emitter = new TestEmitter();
    expect(emitter.fire('connected')).toBe(false);
    expect(emitter.fire('error', new Error('x'))).toBe(false);
  });

  it('keeps events apart', () => {
    const emitter = new TestEmitter();
    let connected = 0;
    let errors = 0;
    emitter.on('connected', () => connected++).on('error', () => errors++);
    emitter.fire('connected');
    emitter.fire('connected');
    expect(connected).toBe(2);
    expect(errors).toBe(0);
  });

  it('off removes only that listener, and returns false once none are left', () => {
    const emitter = new TestEmitter();
    const calls: string[] = [];
    const a = (): void => void calls.push('a');
    const b = (): void => void calls.push('b');
    expect(emitter.on('connected', a).on('connected', b)).toBe(emitter);
    expect(emitter.off('connected', a)).toBe(emitter);
    emitter.fire('connected');
    expect(calls).toEqual(['b']);
    emitter.off('connected', b);
    expect(emitter.fire('connected')).toBe(false);
    expect(calls).toEqual(['b']);
  });

  it('off of an unknown listener or event is harmless', () => {
    const emitter = new TestEmitter();
    expect(() => emitter.off('connected', () => undefined)).not.toThrow();
    emitter.on('connected', () => undefined);
    expect(() => emitter.off('connected', () => undefined)).not.toThrow();
    expect(emitter.fire('connected')).toBe(true);
  });

  it('adds the same listener once', () => {
    const emitter = new TestEmitter();
    let count = 0;
    const listener = (): void => void count++;
    emitter.on('connected', listener).on('connected', listener);
    emitter.fire('connected');
    expect(count).toBe(1);
  });

  it('a throwing listener neither stops the others nor reaches the caller', () => {
    const emitter = new TestEmitter();
    const seen: string[] = [];
    emitter.on('error', () => {
      throw new Error('listener bug');
    });
    emitter.on('error', (error) => seen.push(error.message));
    emitter.on('error', () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- listeners may throw anything
      throw 'not even an Error';
    });
    emitter.on('error', (error) => seen.push(`again ${error.message}`));
    expect(() => emitter.fire('error', new Error('boom'))).not.toThrow();
    expect(emitter.fire('error', new Error('twice'))).toBe(true);
    expect(seen).toEqual(['boom', 'again boom', 'twice', 'again twice']);
  });

  it('a listener removed while emitting still gets the current event, not the next', () => {
    const emitter = new TestEmitter();
    const calls: string[] = [];
    const second = (): void => void calls.push('second');
    emitter.on('connected', () => {
      calls.push('first');
      emitter.off('connected', second);
    });
    emitter.on('connected', second);
    emitter.fire('connected');
    emitter.fire('connected');
    expect(calls).toEqual(['first', 'second', 'first']);
  });

  it('a listener added while emitting runs from the next event on', () => {
    const emitter = new TestEmitter();
    const calls: string[] = [];
    emitter.on('connected', () => {
      calls.push('outer');
      if (calls.length === 1) emitter.on('connected', () => calls.push('late'));
    });
    emitter.fire('connected');
    expect(calls).toEqual(['outer']);
    emitter.fire('connected');
    expect(calls).toEqual(['outer', 'outer', 'late']);
  });
});
