// The go-plugin side of a plugin process, for Node.
//
// Everything here is what hashicorp/go-plugin's Go server does for a Go
// plugin, redone in TypeScript (see sdk/proto/README.md for the contract):
// check the magic cookie, pick the protocol version, listen on a unix socket,
// serve the health, controller, stdio and broker services next to the
// plugin's own, do AutoMTLS when asked, print the one handshake line on
// stdout, keep stdout clean afterwards, and never outlive the host.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Logger, redirectStdout } from './log';
import { Protos, loadProtos, serviceOf } from './protos';

// These repeat sdk/handshake.go; they must match it.
export const CORE_PROTOCOL_VERSION = 1;
export const MAGIC_COOKIE_KEY = 'AGENTHOST_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd7c1e0a4f2b94f1f8a3c6e5b0a9d2c71';
/** The app protocol versions this plugin speaks (go-plugin's ProtocolVersion). */
export const PROTOCOL_VERSIONS = [1];
/** Bounds every message, both ways: sdk.MaxMessageSize. */
export const MAX_MESSAGE_SIZE = 64 << 20;

export const grpcSizeOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_SIZE,
  'grpc.max_send_message_length': MAX_MESSAGE_SIZE,
};

export interface ServeContext {
  server: grpc.Server;
  protos: Protos;
  log: Logger;
  /** Registers work to do when the process stops (close clients, ...). */
  onStop(fn: () => void): void;
}

export interface ServeOptions {
  /** The plugin's name, used as the log module. */
  name: string;
  /** Adds the plugin's own services to the server. */
  register(ctx: ServeContext): void;
}

// negotiateVersion picks the highest version both sides speak. With no
// overlap it answers our lowest, as the Go server does, so that the host
// reports a clear "incompatible API version" error naming both sides.
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

function cookieOK(): boolean {
  return process.env[MAGIC_COOKIE_KEY] === MAGIC_COOKIE_VALUE;
}

function bindAsync(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const lines = fs.readFileSync('/etc/group', 'utf8').split('\n');
  for (const line of lines) {
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
  const socketPath = path.join(dir, `plugin-ts-${process.pid}-${randomBytes(6).toString('hex')}`);
  await bindAsync(server, `unix://${socketPath}`, creds);
  const group = process.env.PLUGIN_UNIX_SOCKET_GROUP;
  if (group) {
    fs.chownSync(socketPath, -1, groupId(group));
    fs.chmodSync(socketPath, 0o660);
  }
  return { network: 'unix', address: socketPath, socketPath };
}

export async function serve(opts: ServeOptions): Promise<void> {
  const log = new Logger(opts.name);

  // 1. The magic cookie. Without it someone ran the binary by hand.
  if (!cookieOK()) {
    process.stderr.write(
      'This binary is a plugin for agenthost. It is not meant to be run directly:\n' +
        'put it in a plugin folder of the agenthost daemon, which starts it.\n',
    );
    process.exit(1);
  }

  // 2. The app protocol version.
  const version = negotiateVersion(process.env.PLUGIN_PROTOCOL_VERSIONS);

  // 3. Never outlive the host. The host's pid is our parent's until the host
  // dies; then we are re-parented. (stdin is no help: go-plugin hands the
  // plugin the host's own stdin, which may be /dev/null from the start.)
  const hostPid = process.ppid;

  const protos = loadProtos();

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
  const stopHooks: Array<() => void> = [];
  const openStreams = new Set<grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>>();
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

  // stop ends the process: on the controller's Shutdown, on SIGTERM and when
  // the host is gone. Open streams are ended so the server can drain; if it
  // does not within a second, it is stopped hard.
  const stop = (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info('plugin stopping', { reason });
    for (const fn of stopHooks) {
      try {
        fn();
      } catch (err) {
        log.warn('stop hook failed', { error: err });
      }
    }
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

  const hold = (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => {
    openStreams.add(call);
    const drop = () => openStreams.delete(call);
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
  };

  // 5. go-plugin's services.
  const healthy = new Set(['', 'plugin']);
  server.addService(serviceOf(protos.health, 'Health'), {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (healthy.has(call.request.service)) {
        cb(null, { status: stopping ? 'NOT_SERVING' : 'SERVING' });
      } else {
        cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` });
      }
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      if (!healthy.has(call.request.service)) {
        call.write({ status: 'SERVICE_UNKNOWN' });
      } else {
        call.write({ status: 'SERVING' });
      }
      hold(call); // kept open; ended when the plugin stops
    },
  });
  server.addService(serviceOf(protos.goplugin, 'GRPCController'), {
    Shutdown: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, {});
      setImmediate(() => stop('controller shutdown'));
    },
  });
  server.addService(serviceOf(protos.goplugin, 'GRPCStdio'), {
    // Our stdout is kept clean and our stderr goes straight to the host's
    // pipe, so there is nothing to stream: the call is only held open, which
    // is what the host expects of a plugin that supports it.
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => hold(call),
  });
  server.addService(serviceOf(protos.goplugin, 'GRPCBroker'), {
    // agenthost hands over the Runtime address in Init instead of using the
    // broker; offers that arrive here are logged and ignored.
    StartStream: (call: grpc.ServerDuplexStream<{ service_id: number; network: string; address: string }, unknown>) => {
      hold(call);
      call.on('data', (info) =>
        log.debug('ignoring a broker connection offer', {
          service_id: info.service_id,
          network: info.network,
          address: info.address,
        }),
      );
      call.on('end', () => {
        openStreams.delete(call);
        call.end();
      });
    },
  });

  // 6. The plugin's own services.
  opts.register({ server, protos, log, onStop: (fn) => stopHooks.push(fn) });

  // 7. Listen and announce.
  const where = await listen(server, creds);
  socketPath = where.socketPath;
  let line = `${CORE_PROTOCOL_VERSION}|${version}|${where.network}|${where.address}|grpc|${certField}`;
  if (process.env.PLUGIN_MULTIPLEX_GRPC) {
    // The host asked whether brokered connections may share our socket. They
    // may not: this plugin does not implement go-plugin's multiplexer.
    line += '|false';
  }
  fs.writeSync(1, `${line}\n`);

  // 8. From here on stdout belongs to nobody.
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
    }, 1000).unref();
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
