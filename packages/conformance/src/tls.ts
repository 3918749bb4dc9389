import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM texts for TLS tests. */
export interface TestCertificates {
  /** The CA that signed `cert`. */
  readonly ca: string;
  /** A server certificate for `localhost` and 127.0.0.1, valid one day. */
  readonly cert: string;
  /** The private key of `cert`. */
  readonly key: string;
  /** Another CA, which did not sign `cert`: a client trusting only it must refuse the server. */
  readonly otherCa: string;
}

/** A CA, a server certificate it signed for `localhost` and 127.0.0.1, and another CA: made with openssl at test time. */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-tls-'));
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 30_000 });
  try {
    for (const name of ['ca', 'other']) {
      await ssl(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=Ferry test ${name}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
      );
    }
    await ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    );
    await run('sh', ['-c', 'printf "subjectAltName=DNS:localhost,IP:127.0.0.1" > ext.cnf'], { cwd: dir });
    await ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
      '-out',
      'server.pem',
    );
    const read = (file: string) => readFile(join(dir, file), 'utf8');
    return {
      ca: await read('ca.pem'),
      cert: await read('server.pem'),
      key: await read('server.key'),
      otherCa: await read('other.pem'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
