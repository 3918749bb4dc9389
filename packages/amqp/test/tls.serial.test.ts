import { ConnectionError, queue } from '@ferry/core';
import { makeCertificates, waitFor } from '@ferry/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAmqp } from './broker.js';
import { type PrivateNode, startPrivateNode } from './private-node.js';

/** amqps:// against a private node with a TLS listener and a CA made for the test. */
describe('amqp over TLS (amqps://) on a private node', () => {
  let node: PrivateNode & { readonly extraPorts: readonly number[] };
  let ca: string;
  let otherCa: string;
  beforeAll(async () => {
    const certs = await makeCertificates();
    ca = certs.ca;
    otherCa = certs.otherCa;
    node = await startPrivateNode({
      extraPorts: 1,
      files: { 'ca.pem': certs.ca, 'server.pem': certs.cert, 'server.key': certs.key },
      config: [
        'listeners.ssl.default = 127.0.0.1:{port0}',
        'ssl_options.cacertfile = {dir}/ca.pem',
        'ssl_options.certfile = {dir}/server.pem',
        'ssl_options.keyfile = {dir}/server.key',
        'ssl_options.verify = verify_none',
        'ssl_options.fail_if_no_peer_cert = false',
      ],
    });
  }, 180_000);
  afterAll(async () => {
    await node?.stop();
  }, 120_000);

  it('connects with the CA in amqp.tls, publishes and consumes', async () => {
    const url = `amqps://guest:guest@localhost:${node.extraPorts[0]}`;
    const broker = await connectAmqp({ amqp: { tls: { ca: [ca] } } }, url);
    try {
      const got: string[] = [];
      const q = queue('tls-queue');
      await broker.consumer().subscribe<string>(q, (m) => void got.push(m.data));
      await broker.producer().publish(q, { type: 'tls', data: 'over TLS' });
      await waitFor(() => got.length === 1, 10_000, 'the message over TLS');
      expect(got).toEqual(['over TLS']);
      // The password never shows; here the user name equals it, so it is hidden too.
      expect(broker.health().url).toMatch(/^amqps:\/\/\*\*\*:\*\*\*@localhost:/);
    } finally {
      await broker.close();
    }
  });

  it('refuses a server whose certificate another CA signed, with a typed error that names the cause and no secret', async () => {
    const url = `amqps://guest:s3cret-tls@localhost:${node.extraPorts[0]}`;
    const error = await connectAmqp({ amqp: { tls: { ca: [otherCa] }, connectTimeoutMs: 5_000 } }, url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect(String((error as Error).message)).toMatch(/certificate/i);
    expect(JSON.stringify(error) + String(error) + (error as Error).stack).not.toContain('s3cret-tls');
  });
});
