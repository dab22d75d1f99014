"""Logging for a plugin process.

The host reads the plugin's stderr line by line. A line that is a JSON
object with the string keys @level, @message and @timestamp (hclog's JSON
shape) is re-logged on the host's logger at that level, with every other
key as a field; any other line is logged as it is.
"""

import datetime
import json
import logging
import os
import sys
import threading
import traceback

_RANK = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4}
# The host's stderr reader splits lines at 64 KiB; stay well below.
_MAX_MESSAGE = 16 * 1024


def level_from_env():
    """The level AGENTHOST_LOG_LEVEL names (the host passes its own on), else info."""
    level = os.environ.get("AGENTHOST_LOG_LEVEL", "").strip().lower()
    if level == "warning":
        level = "warn"
    return level if level in _RANK else "info"


def hclog_timestamp(t=None):
    """Go's 2006-01-02T15:04:05.000000Z07:00 in UTC, the only layout the host accepts."""
    t = t or datetime.datetime.now(datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field(v):
    if isinstance(v, BaseException):
        return "".join(traceback.format_exception(type(v), v, v.__traceback__)).rstrip()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


_write_lock = threading.Lock()


def _stderr(line):
    with _write_lock:
        sys.stderr.write(line)
        sys.stderr.flush()


class Logger:
    """JSON log lines on stderr, which the host re-logs under the plugin's name.

    ``bind(**fields)`` makes a logger that adds fields to every line (an
    agent's logger carries agent_id, agent_name and run_id).
    """

    def __init__(self, module, level=None, write=None, fields=None):
        self.module = module
        self.level = level or level_from_env()
        self._write = write or _stderr
        self._fields = dict(fields or {})

    def bind(self, **fields):
        """A logger that adds fields to every line."""
        return Logger(self.module, self.level, self._write, {**self._fields, **fields})

    def enabled(self, level):
        return _RANK[level] >= _RANK[self.level]

    def log(self, level, message, **fields):
        if not self.enabled(level):
            return
        msg = str(message)
        if len(msg) > _MAX_MESSAGE:
            msg = msg[:_MAX_MESSAGE] + "…(truncated)"
        entry = {}
        for k, v in {**self._fields, **fields}.items():
            if not k.startswith("@"):  # reserved keys are ours alone
                entry[k] = _field(v)
        entry.update({"@level": level, "@message": msg, "@timestamp": hclog_timestamp(), "@module": self.module})
        try:
            line = json.dumps(entry, default=str)
        except (TypeError, ValueError):
            # A field that does not serialise must not lose the line.
            line = json.dumps({k: entry[k] for k in ("@level", "@message", "@timestamp", "@module")})
        self._write(line + "\n")

    def trace(self, message, **fields):
        self.log("trace", message, **fields)

    def debug(self, message, **fields):
        self.log("debug", message, **fields)

    def info(self, message, **fields):
        self.log("info", message, **fields)

    def warn(self, message, **fields):
        self.log("warn", message, **fields)

    warning = warn

    def error(self, message, **fields):
        self.log("error", message, **fields)


class _Handler(logging.Handler):
    """Sends the logging module's records through a Logger."""

    _LEVELS = ((logging.ERROR, "error"), (logging.WARNING, "warn"), (logging.INFO, "info"), (logging.DEBUG, "debug"))

    def __init__(self, logger):
        super().__init__()
        self._logger = logger

    def emit(self, record):
        level = next((name for n, name in self._LEVELS if record.levelno >= n), "trace")
        fields = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = record.exc_info[1]
        self._logger.log(level, record.getMessage(), **fields)


def route_logging(logger):
    """Makes the logging module write through logger, at its level."""
    root = logging.getLogger()
    root.handlers[:] = [_Handler(logger)]
    root.setLevel({"trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}.get(logger.level, logging.ERROR))
