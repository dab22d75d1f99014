// Loading the .proto files at run time.
//
// The agenthost protocol (agenthost/plugin/v1/*.proto) and go-plugin's
// internal services (plugin/*.proto) come from the repository's sdk/proto,
// found relative to this package (examples/typescript-plugin -> ../../sdk/proto)
// or from $AGENTHOST_PROTO_DIR when the plugin is installed elsewhere. The
// health service's proto ships in this package's own proto/ folder.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The package root: the folder that holds package.json, dist/ and proto/. */
export const packageRoot = path.resolve(__dirname, '..');

const protocolFiles = [
  'agenthost/plugin/v1/plugin.proto',
  'agenthost/plugin/v1/runtime.proto',
  'plugin/grpc_controller.proto',
  'plugin/grpc_stdio.proto',
  'plugin/grpc_broker.proto',
];
const localFiles = ['grpc/health/v1/health.proto'];

export function protoDir(): string {
  const fromEnv = process.env.AGENTHOST_PROTO_DIR;
  if (fromEnv) return path.resolve(fromEnv);
  return path.resolve(packageRoot, '..', '..', 'sdk', 'proto');
}

export interface Protos {
  /** agenthost.plugin.v1 */
  agenthost: grpc.GrpcObject;
  /** go-plugin's internal services, package "plugin" */
  goplugin: grpc.GrpcObject;
  /** grpc.health.v1 */
  health: grpc.GrpcObject;
}

function lookup(root: grpc.GrpcObject, dotted: string): grpc.GrpcObject {
  let cur: unknown = root;
  for (const part of dotted.split('.')) {
    cur = (cur as Record<string, unknown> | undefined)?.[part];
  }
  if (!cur) throw new Error(`package ${dotted} not found in the loaded .proto files`);
  return cur as grpc.GrpcObject;
}

export function loadProtos(): Protos {
  const dir = protoDir();
  const localDir = path.join(packageRoot, 'proto');
  for (const f of protocolFiles) {
    if (!fs.existsSync(path.join(dir, f))) {
      throw new Error(
        `cannot find ${f} under ${dir}: set AGENTHOST_PROTO_DIR to the sdk/proto folder of agenthost`,
      );
    }
  }
  const def = protoLoader.loadSync([...protocolFiles, ...localFiles], {
    includeDirs: [dir, localDir],
    // Field names stay as written in the .proto files (agent_id, run_id).
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    arrays: true,
    oneofs: true,
  });
  const root = grpc.loadPackageDefinition(def);
  return {
    agenthost: lookup(root, 'agenthost.plugin.v1'),
    goplugin: lookup(root, 'plugin'),
    health: lookup(root, 'grpc.health.v1'),
  };
}

/** The service definition of a service constructor from loadPackageDefinition. */
export function serviceOf(pkg: grpc.GrpcObject, name: string): grpc.ServiceDefinition {
  const ctor = pkg[name] as grpc.ServiceClientConstructor | undefined;
  if (!ctor || !('service' in ctor)) throw new Error(`service ${name} not found`);
  return ctor.service;
}

/** The client constructor of a service. */
export function clientOf(pkg: grpc.GrpcObject, name: string): grpc.ServiceClientConstructor {
  const ctor = pkg[name] as grpc.ServiceClientConstructor | undefined;
  if (!ctor || !('service' in ctor)) throw new Error(`service ${name} not found`);
  return ctor;
}
