// The go-plugin side of a plugin process.
//
// What hashicorp/go-plugin's Go server does for a Go plugin, for Node (the
// contract is sdk/proto/README.md): check the magic cookie, pick the
// protocol version, listen on a unix socket with 64 MiB limits, serve the
// health, controller and stdio services next to the plugin's own, do
// AutoMTLS, print the one handshake line on stdout, keep stdout clean
// afterwards, and never outlive the host.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { GRPCControllerService } from './gen/plugin/grpc_controller';
import { GRPCStdioService } from './gen/plugin/grpc_stdio';
import { HealthCheckResponse_ServingStatus, HealthService } from './gen/grpc/health/v1/health';
import { PluginService } from './gen/agenthost/plugin/v1/plugin';
import { Logger, hclogTimestamp, redirectStdout } from './log';
import { PluginShim, grpcSizeOptions } from './server';
import type { Plugin } from './types';

// These repeat sdk/handshake.go; they must match it.
export const CORE_PROTOCOL_VERSION = 1;
export const MAGIC_COOKIE_KEY = 'AGENTHOST_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd7c1e0a4f2b94f1f8a3c6e5b0a9d2c71';
/** The app protocol versions this SDK speaks (go-plugin's ProtocolVersion). */
export const PROTOCOL_VERSIONS = [1];

/**
 * negotiateVersion picks the highest version both sides speak. With no
 * overlap it answers our lowest, as go-plugin's server does, so that the
 * host reports an "incompatible API version" error naming both sides.
 */
export function negotiateVersion(hostList: string | undefined, ours: number[] = PROTOCOL_VERSIONS): number {
  const host = new Set(
    (hostList ?? '')
      .split(',')
      .map((s) => Number.parseInt(s.trim(), 10))
      .filter((n) => Number.isFinite(n)),
  );
  const sorted = [...ours].sort((a, b) => b - a);
  for (const v of sorted) if (host.has(v)) return v;
  return sorted[sorted.length - 1];
}

function bindAsync(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new Error(`PLUGIN_UNIX_SOCKET_GROUP: unknown group ${group}`);
}

interface Listening {
  network: 'unix' | 'tcp';
  address: string;
  socketPath?: string;
}

async function listen(server: grpc.Server, creds: grpc.ServerCredentials): Promise<Listening> {
  if (process.platform === 'win32') {
    // go-plugin uses TCP on loopback on Windows, within the host's port range.
    const min = Number(process.env.PLUGIN_MIN_PORT || 10000);
    const max = Number(process.env.PLUGIN_MAX_PORT || 25000);
    for (let port = min; port <= max; port++) {
      try {
        await bindAsync(server, `127.0.0.1:${port}`, creds);
        return { network: 'tcp', address: `127.0.0.1:${port}` };
      } catch {
        // taken; try the next one
      }
    }
    throw new Error(`no free port in ${min}-${max}`);
  }
  const dir = process.env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir();
  const socketPath = path.join(dir, `plugin-${process.pid}-${randomBytes(6).toString('hex')}`);
  await bindAsync(server, `unix://${socketPath}`, creds);
  const group = process.env.PLUGIN_UNIX_SOCKET_GROUP;
  if (group) {
    fs.chownSync(socketPath, -1, groupId(group));
    fs.chmodSync(socketPath, 0o660);
  }
  return { network: 'unix', address: socketPath, socketPath };
}

/** Says on stderr, in the host's log format, why the plugin could not start. */
function startFailed(name: string, err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(
    `${JSON.stringify({
      '@level': 'error',
      '@message': `plugin failed to start: ${message}`,
      '@timestamp': hclogTimestamp(),
      '@module': name || 'plugin',
    })}\n`,
  );
  process.exit(1);
}

/**
 * serve runs the plugin as an agenthost plugin process: the one call of a
 * plugin's entry point. It returns once the plugin serves; the process then
 * lives until the host stops it. Run by hand (without the host's magic
 * cookie) it explains itself on stderr and exits with status 1, and a
 * definition mistake exits with status 1 before the handshake, naming it.
 */
export function serve(plugin: Plugin): Promise<void> {
  return start(plugin).catch((err: unknown) => startFailed(plugin?.name, err));
}

async function start(plugin: Plugin): Promise<void> {
  // 1. The magic cookie. Without it someone ran the program by hand.
  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      'This program is a plugin for agenthost. It is not meant to be run directly:\n' +
        'put it in a plugin folder of the agenthost daemon, which starts it.\n',
    );
    process.exit(1);
  }
  const log = new Logger(plugin?.name || 'plugin');
  const shim = new PluginShim(plugin, log);

  // 2. The app protocol version.
  const version = negotiateVersion(process.env.PLUGIN_PROTOCOL_VERSIONS);

  // 3. The host's pid is our parent's until the host dies; then we are
  // re-parented. (stdin is no help: go-plugin hands the plugin the host's
  // own stdin, which may be /dev/null from the start.)
  const hostPid = process.ppid;

  // 4. Transport security: AutoMTLS when the host sent its certificate.
  let creds = grpc.ServerCredentials.createInsecure();
  let certField = '';
  const clientCert = process.env.PLUGIN_CLIENT_CERT;
  if (clientCert) {
    // Loaded only when needed: the X.509 code adds startup time.
    const mtls = require('./mtls') as typeof import('./mtls');
    const host = mtls.checkClientCertificate(clientCert);
    const mine = await mtls.makeServerCertificate();
    creds = grpc.ServerCredentials.createSsl(
      Buffer.from(clientCert, 'utf8'),
      [{ private_key: Buffer.from(mine.keyPem), cert_chain: Buffer.from(mine.certPem) }],
      true, // require a client certificate and verify it against the host's
    );
    certField = mine.handshakeField;
    log.debug('configured automatic mTLS', { host_cert_subject: host.subject });
  }

  const server = new grpc.Server({ ...grpcSizeOptions });
  const openStreams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  let socketPath: string | undefined;
  let stopping = false;

  const removeSocket = () => {
    if (!socketPath) return;
    try {
      fs.unlinkSync(socketPath);
    } catch {
      // already gone
    }
    socketPath = undefined;
  };
  process.on('exit', removeSocket);

  // stop ends the process: on the controller's Shutdown, on SIGTERM and
  // when the host is gone. Calls in flight are cancelled and open streams
  // ended so that the server drains; if it does not within a second, it is
  // stopped hard.
  const stop = (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info('plugin stopping', { reason });
    shim.stop.abort();
    shim.close();
    for (const s of openStreams) {
      try {
        s.end();
      } catch {
        // the stream was already closed
      }
    }
    openStreams.clear();
    const exit = () => {
      removeSocket();
      process.exit(code);
    };
    const hard = setTimeout(() => {
      server.forceShutdown();
      exit();
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(hard);
      exit();
    });
  };

  const hold = (call: grpc.ServerWritableStream<unknown, unknown>) => {
    openStreams.add(call);
    const drop = () => openStreams.delete(call);
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
  };

  // 5. go-plugin's services, then the plugin's own.
  const known = new Set(['', 'plugin']);
  server.addService(HealthService, {
    check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (!known.has(call.request.service)) {
        cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` });
        return;
      }
      cb(null, { status: stopping ? HealthCheckResponse_ServingStatus.NOT_SERVING : HealthCheckResponse_ServingStatus.SERVING });
    },
    watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      call.write({
        status: known.has(call.request.service)
          ? HealthCheckResponse_ServingStatus.SERVING
          : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
      });
      hold(call); // kept open; ended when the plugin stops
    },
  });
  server.addService(GRPCControllerService, {
    shutdown: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, {});
      setImmediate(() => stop('the host asked the plugin to shut down'));
    },
  });
  server.addService(GRPCStdioService, {
    // stdout is kept clean and stderr goes straight to the host's pipe, so
    // there is nothing to stream: the call is only held open, which is what
    // the host expects of a plugin that offers it.
    streamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => hold(call),
  });
  server.addService(PluginService, shim.service());

  // 6. Listen and announce.
  const where = await listen(server, creds);
  socketPath = where.socketPath;
  let line = `${CORE_PROTOCOL_VERSION}|${version}|${where.network}|${where.address}|grpc|${certField}`;
  if (process.env.PLUGIN_MULTIPLEX_GRPC) {
    // The host asked whether brokered connections may share our socket.
    // They may not: this SDK does not implement go-plugin's multiplexer.
    line += '|false';
  }
  fs.writeSync(1, `${line}\n`);

  // 7. From here on stdout belongs to nobody.
  redirectStdout(log);

  process.on('SIGINT', () => {
    // Ctrl-C in a terminal reaches the whole process group; the host decides
    // when its plugins stop, as go-plugin's Go server does.
    log.debug('ignoring SIGINT; the host will stop this plugin');
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.stderr.on('error', () => stop('stderr closed', 1));
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception', { error: err });
    stop('uncaught exception', 1);
  });
  process.on('unhandledRejection', (err) => log.error('unhandled promise rejection', { error: err }));

  if (hostPid > 1) {
    setInterval(() => {
      if (process.ppid !== hostPid) stop('the host process is gone', 1);
    }, 500).unref();
  } else {
    log.debug('started by init; cannot watch for the host going away');
  }

  log.info('plugin serving', {
    network: where.network,
    address: where.address,
    protocol_version: version,
    mtls: certField !== '',
    node: process.version,
  });
}
