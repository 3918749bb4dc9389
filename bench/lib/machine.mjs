// What the figures were measured on: cores, memory, Node, and the brokers' own versions as they report them.
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function output(command, args, pick) {
  try {
    const { stdout, stderr } = await run(command, args, { timeout: 15_000 });
    return pick(`${stdout}\n${stderr}`) ?? 'unknown';
  } catch (error) {
    const text = `${error.stdout ?? ''}\n${error.stderr ?? ''}`;
    return pick(text) ?? 'unknown';
  }
}

export async function machineInfo() {
  const cpus = os.cpus();
  const [rabbitmq, mosquitto, redis] = await Promise.all([
    output('rabbitmqctl', ['version'], (t) => t.match(/\d+\.\d+\.\d+/)?.[0]),
    output('mosquitto', ['-h'], (t) => t.match(/mosquitto version (\S+)/)?.[1]),
    output('redis-server', ['--version'], (t) => t.match(/v=(\S+)/)?.[1]),
  ]);
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.versions.node,
    v8: process.versions.v8,
    rabbitmq,
    mosquitto,
    redis,
  };
}
