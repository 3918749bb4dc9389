import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describeConformance } from '@ferry/conformance';
import { AMQP_CAPABILITIES } from '../src/index.js';
import { conformanceOptions } from './broker.js';

const run = promisify(execFile);

/** rabbitmqctl on the shared node: this file runs alone (the `serial` vitest project), never beside other tests. */
export async function rabbitmqctl(...args: string[]): Promise<void> {
  await run('rabbitmqctl', args, { timeout: 120_000 });
}

describeConformance({
  name: 'amqp (RabbitMQ 3.10) faults',
  capabilities: AMQP_CAPABILITIES,
  ...conformanceOptions(),
  faults: {
    ...conformanceOptions().faults,
    dropConnections: () => rabbitmqctl('close_all_connections', 'ferry conformance: dropConnections'),
    stopBroker: () => rabbitmqctl('stop_app'),
    startBroker: async () => {
      await rabbitmqctl('start_app');
      await rabbitmqctl('await_startup');
    },
  },
  only: 'exclusive',
});
