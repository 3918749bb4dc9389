import type { IPublishPacket, MqttClient, Packet } from 'mqtt';

/** The mqtt.js internals the PUBACK hook replaces (pinned to mqtt ~5.16; covered by this package's tests). */
interface HookableClient {
  handleMessage(packet: Packet, callback: (error?: Error) => void): void;
  _sendPacket(packet: Packet, cb?: (error?: Error) => void, ...rest: unknown[]): void;
}

/**
 * Takes an mqtt.js client's incoming PUBLISHes over: `onPublish` gets each one and mqtt.js reads on at
 * once, but the PUBACK mqtt.js would then send is dropped — the caller sends it (with `sendPuback`) when
 * it is time, or never. Install before the client connects.
 */
export function takeOverAcks(mqttClient: MqttClient, onPublish: (packet: IPublishPacket) => void): void {
  const client = mqttClient as unknown as HookableClient;
  const send = client._sendPacket.bind(client);
  client._sendPacket = (packet: Packet, cb?: (error?: Error) => void, ...rest: unknown[]) => {
    if (packet.cmd === 'puback') {
      cb?.();
      return;
    }
    send(packet, cb, ...rest);
  };
  client.handleMessage = (packet: Packet, callback: (error?: Error) => void) => {
    if (packet.cmd === 'publish') onPublish(packet);
    callback();
  };
}

/** A QoS 1 message whose PUBACK waits for its settlement. */
export interface Held {
  readonly client: MqttClient;
  readonly messageId: number;
}

/** Writes the PUBACK of a held message, bypassing the hook (which drops mqtt.js's own PUBACKs). */
export function writePuback(held: Held): void {
  const client = held.client as unknown as { _writePacket(packet: Packet, cb?: () => void): void };
  client._writePacket({ cmd: 'puback', messageId: held.messageId });
}
