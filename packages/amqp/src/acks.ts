import type { Channel, Message } from 'amqplib';

/** Past this many settled tags at the front of the list, the list is compacted. */
const COMPACT_AFTER = 1024;

/**
 * The acknowledgements of one subscription's channel, batched: handlers that finish within the same turn
 * of the event loop are acknowledged together, with one `basic.ack` with `multiple` set for the longest
 * run of settled deliveries from the oldest unsettled one. That is a frame for many messages instead of
 * one each, for the broker to parse and for the socket to carry (AMQP 0-9-1 §1.8.3.13).
 *
 * A settled delivery behind an unsettled (slow) one is acknowledged on its own at the same flush, so a
 * slow handler never holds the prefetch window of the others. A `multiple` ack never covers a delivery
 * that is still being handled: it covers only tags every one of which has settled. Rejections
 * (`nack`) go out at once and count as settled. The channel is this subscription's alone, so no
 * other consumer's deliveries share its tags.
 */
export class ChannelAcks {
  readonly #channel: Channel;
  /** Delivery tags in the order they arrived, from `#head` on still unsettled or not yet sent. */
  #order: number[] = [];
  #head = 0;
  /** Tags whose handler settled with an ack that has not been sent yet. */
  readonly #pending = new Set<number>();
  /** Tags already settled on the wire (nacked, or acked on their own) but not yet passed by `#head`. */
  readonly #sent = new Set<number>();
  #scheduled: NodeJS.Immediate | undefined;

  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Records a delivery as it arrives (before its handler runs). */
  received(message: Message): void {
    this.#order.push(message.fields.deliveryTag);
  }

  /** Acknowledges `message` with the next flush (this turn of the event loop). */
  ack(message: Message): void {
    this.#pending.add(message.fields.deliveryTag);
    this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Rejects `message` now (requeued when `requeue`), after the acks waiting before it. */
  nack(message: Message, requeue: boolean): void {
    this.flush();
    this.#channel.nack(message, false, requeue);
    this.#sent.add(message.fields.deliveryTag);
  }

  /** Sends the waiting acknowledgements now. */
  flush(): void {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    if (this.#pending.size === 0) return;
    try {
      this.#send();
    } catch {
      // amqplib refuses to write on a closing channel: the broker requeues what it did not get an ack for.
      this.discard();
    }
  }

  #send(): void {
    let upTo = -1;
    while (this.#head < this.#order.length) {
      const tag = this.#order[this.#head] as number;
      if (this.#pending.delete(tag)) upTo = tag;
      else if (!this.#sent.delete(tag)) break;
      this.#head++;
    }
    if (upTo >= 0) this.#channel.ack(tagged(upTo), true);
    // Settled behind a delivery still in its handler: acknowledged on their own, now.
    for (const tag of this.#pending) {
      this.#channel.ack(tagged(tag), false);
      this.#sent.add(tag);
    }
    this.#pending.clear();
    if (this.#head > COMPACT_AFTER) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Stops: the channel is gone or going, and the broker requeues whatever it did not get an ack for. */
  discard(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    this.#pending.clear();
  }
}

/** The least amqplib's `ack` reads of a message: its delivery tag. */
function tagged(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as Message;
}
