"""The go-plugin side of a plugin process.

What hashicorp/go-plugin's Go server does for a Go plugin, for Python (the
contract is sdk/proto/README.md): check the magic cookie, pick the protocol
version, listen on a unix socket with 64 MiB limits, serve the health,
controller and stdio services next to the plugin's own, do AutoMTLS, print
the one handshake line on stdout, keep stdout clean afterwards, and never
outlive the host.
"""

import grp
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from ._log import Logger, hclog_timestamp, route_logging
from ._proto.grpc.health.v1 import health_pb2, health_pb2_grpc
from ._proto.plugin import grpc_controller_pb2, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc
from ._proto.agenthost.plugin.v1 import plugin_pb2_grpc
from ._server import GRPC_SIZE_OPTIONS, PluginServicer

# These repeat sdk/handshake.go; they must match it.
CORE_PROTOCOL_VERSION = 1
MAGIC_COOKIE_KEY = "AGENTHOST_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d7c1e0a4f2b94f1f8a3c6e5b0a9d2c71"
#: The app protocol versions this SDK speaks (go-plugin's ProtocolVersion).
PROTOCOL_VERSIONS = (1,)
#: Handlers run on this many threads at most; a call beyond waits for one.
MAX_CONCURRENT_CALLS = 64


def negotiate_version(host_list, ours=PROTOCOL_VERSIONS):
    """The highest version both sides speak. With no overlap our lowest, as
    go-plugin's server does, so that the host reports an "incompatible API
    version" error naming both sides."""
    host = set()
    for part in (host_list or "").split(","):
        try:
            host.add(int(part.strip()))
        except ValueError:
            pass
    for v in sorted(ours, reverse=True):
        if v in host:
            return v
    return min(ours)


class _Health(health_pb2_grpc.HealthServicer):
    _KNOWN = ("", "plugin")

    def __init__(self, stopping):
        self._stopping = stopping

    def Check(self, request, context):
        if request.service not in self._KNOWN:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {json.dumps(request.service)}")
        status = health_pb2.HealthCheckResponse.NOT_SERVING if self._stopping.is_set() else health_pb2.HealthCheckResponse.SERVING
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context):
        known = request.service in self._KNOWN
        yield health_pb2.HealthCheckResponse(
            status=health_pb2.HealthCheckResponse.SERVING if known else health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        _hold(context, self._stopping)


def _hold(context, stopping):
    """Keeps a stream open until the plugin stops or the host goes."""
    ended = threading.Event()
    context.add_callback(ended.set)
    while not ended.is_set() and not stopping.wait(1):
        pass


class _Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stop):
        self._stop = stop

    def Shutdown(self, request, context):
        # Answer first; the process stops on the main thread.
        threading.Timer(0.05, self._stop, args=("the host asked the plugin to shut down",)).start()
        return grpc_controller_pb2.Empty()


class _Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
    """stdout is kept clean and stderr goes straight to the host's pipe, so
    there is nothing to stream: the call is only held open, which is what the
    host expects of a plugin that offers it."""

    def __init__(self, stopping):
        self._stopping = stopping

    def StreamStdio(self, request, context):
        _hold(context, self._stopping)
        return iter(())


def _start_failed(name, err):
    """Says on stderr, in the host's log format, why the plugin could not start."""
    sys.stderr.write(json.dumps({"@level": "error", "@message": f"plugin failed to start: {err}",
                                 "@timestamp": hclog_timestamp(), "@module": name or "plugin"}) + "\n")
    sys.stderr.flush()
    os._exit(1)


def _group_id(group):
    return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid


def serve(plugin):
    """Runs the plugin as an agenthost plugin process: the one call of a
    plugin's main. It returns only to exit. Run by hand (without the host's
    magic cookie) it explains itself on stderr and exits with status 1; a
    definition mistake exits with status 1 before the handshake, naming it."""
    # 1. The magic cookie. Without it someone ran the program by hand.
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This program is a plugin for agenthost. It is not meant to be run directly:\n"
                         "put it in a plugin folder of the agenthost daemon, which starts it.\n")
        sys.exit(1)
    name = getattr(plugin, "name", "") or "plugin"
    log = Logger(name)
    try:
        code = _serve(plugin, log)
    except Exception as err:  # noqa: BLE001 - anything before the handshake
        _start_failed(name, err)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _serve(plugin, log):
    servicer = PluginServicer(plugin, log)
    route_logging(log)

    # 2. The app protocol version.
    version = negotiate_version(os.environ.get("PLUGIN_PROTOCOL_VERSIONS"))

    # 3. The host's pid is our parent's until the host dies; then we are
    # re-parented. (stdin is no help: go-plugin hands the plugin the host's
    # own stdin, which may be /dev/null from the start.)
    host_pid = os.getppid()

    # 4. Transport security: AutoMTLS when the host sent its certificate.
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
    cert_field = ""
    creds = None
    if client_cert:
        from . import _mtls  # only when needed: it costs start-up time

        subject = _mtls.check_client_certificate(client_cert)
        key_pem, cert_pem, cert_field = _mtls.server_certificate()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(),
                                            require_client_auth=True)
        log.debug("configured automatic mTLS", host_cert_subject=subject)

    stopping = threading.Event()
    exit_code = [0]
    reason = [""]

    def stop(why, code=0):
        if stopping.is_set():
            return
        reason[0], exit_code[0] = why, code
        stopping.set()

    server = grpc.server(ThreadPoolExecutor(max_workers=MAX_CONCURRENT_CALLS, thread_name_prefix="call"),
                         options=GRPC_SIZE_OPTIONS)
    # 5. go-plugin's services, then the plugin's own.
    health_pb2_grpc.add_HealthServicer_to_server(_Health(stopping), server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(_Controller(stop), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(_Stdio(stopping), server)
    plugin_pb2_grpc.add_PluginServicer_to_server(servicer, server)

    # 6. Listen and announce.
    folder = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
    socket_path = os.path.join(folder, f"plugin-{os.getpid()}-{secrets.token_hex(6)}")
    address = "unix:" + socket_path
    port = server.add_secure_port(address, creds) if creds is not None else server.add_insecure_port(address)
    if not port:
        raise OSError(f"cannot listen on {socket_path}")
    group = os.environ.get("PLUGIN_UNIX_SOCKET_GROUP")
    server.start()
    try:
        if group:
            os.chown(socket_path, -1, _group_id(group))
            os.chmod(socket_path, 0o660)
        line = f"{CORE_PROTOCOL_VERSION}|{version}|unix|{socket_path}|grpc|{cert_field}"
        if os.environ.get("PLUGIN_MULTIPLEX_GRPC"):
            # The host asked whether brokered connections may share our
            # socket. They may not: this SDK has no go-plugin multiplexer.
            line += "|false"
        sys.stdout.flush()
        os.write(1, (line + "\n").encode())

        # 7. From here on stdout belongs to nobody: what is printed goes to
        # stderr, where the host logs it as it is.
        os.dup2(2, 1)

        # Ctrl-C in a terminal reaches the whole process group; the host
        # decides when its plugins stop, as go-plugin's Go server does.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
        threading.excepthook = lambda a: log.error("uncaught exception in a thread", thread=a.thread.name if a.thread else "",
                                                   error=a.exc_value)
        log.info("plugin serving", network="unix", address=socket_path, protocol_version=version,
                 mtls=cert_field != "", python=sys.version.split()[0])

        # 8. Never outlive the host.
        while not stopping.wait(0.5):
            if host_pid > 1 and os.getppid() != host_pid:
                stop("the host process is gone", 1)
        log.info("plugin stopping", reason=reason[0])
        servicer.stop()
        servicer.close()
        server.stop(grace=1).wait(2)
    finally:
        try:
            os.unlink(socket_path)
        except OSError:
            pass
    return exit_code[0]
