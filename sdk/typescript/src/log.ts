// Logging for a plugin process.
//
// The host reads the plugin's stderr line by line. A line that is a JSON
// object with the string keys @level, @message and @timestamp (hclog's JSON
// shape) is re-logged on the host's logger at that level, with every other
// key as a field. So this logger writes exactly that, one object per line,
// and makes sure those three keys are always strings: the host cannot cope
// with anything else in them.

import { format } from 'node:util';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const rank: Record<Level, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

export type Fields = Record<string, unknown>;

// The host's own stderr reader splits lines at 64 KiB; stay well below.
const maxMessageLength = 16 * 1024;

function isLevel(s: string): s is Level {
  return Object.prototype.hasOwnProperty.call(rank, s);
}

// hclogTimestamp formats like Go's "2006-01-02T15:04:05.000000Z07:00" in UTC,
// the only layout the host accepts (exactly six fraction digits).
export function hclogTimestamp(d: Date = new Date()): string {
  const iso = d.toISOString(); // 2024-01-02T03:04:05.678Z
  return `${iso.slice(0, 23)}000Z`;
}

function fieldValue(v: unknown): unknown {
  if (v instanceof Error) return v.stack ?? v.message;
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return v;
}

/** The level AGENTHOST_LOG_LEVEL names (the host passes its own on), else info. */
export function levelFromEnv(): Level {
  let fromEnv = (process.env.AGENTHOST_LOG_LEVEL ?? '').trim().toLowerCase();
  if (fromEnv === 'warning') fromEnv = 'warn';
  return isLevel(fromEnv) ? fromEnv : 'info';
}

/**
 * Logger writes hclog-shaped JSON lines on stderr, which the host re-logs
 * under the plugin's name. `with` makes a logger that adds fields to every
 * line (an agent's logger carries agent_id, agent_name and run_id).
 */
export class Logger {
  readonly module: string;
  level: Level;
  private readonly write: (line: string) => void;
  private readonly fields: Fields;

  constructor(module: string, level?: Level, write?: (line: string) => void, fields: Fields = {}) {
    this.module = module;
    this.level = level ?? levelFromEnv();
    this.write = write ?? ((line) => void process.stderr.write(line));
    this.fields = fields;
  }

  /** A logger that adds fields to every line. */
  with(fields: Fields): Logger {
    return new Logger(this.module, this.level, this.write, { ...this.fields, ...fields });
  }

  enabled(level: Level): boolean {
    return rank[level] >= rank[this.level];
  }

  log(level: Level, message: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    let msg = String(message);
    if (msg.length > maxMessageLength) msg = `${msg.slice(0, maxMessageLength)}…(truncated)`;
    const entry: Record<string, unknown> = {};
    for (const [k, v] of Object.entries({ ...this.fields, ...fields })) {
      if (k.startsWith('@')) continue; // reserved keys are ours alone
      entry[k] = fieldValue(v);
    }
    entry['@level'] = level;
    entry['@message'] = msg;
    entry['@timestamp'] = hclogTimestamp();
    entry['@module'] = this.module;
    let line: string;
    try {
      line = JSON.stringify(entry);
    } catch {
      // A field that does not serialise (a cycle, say) must not lose the line.
      line = JSON.stringify({
        '@level': level,
        '@message': msg,
        '@timestamp': entry['@timestamp'],
        '@module': this.module,
        fields_error: 'fields could not be encoded as JSON',
      });
    }
    this.write(`${line}\n`);
  }

  trace(message: string, fields?: Fields): void {
    this.log('trace', message, fields);
  }
  debug(message: string, fields?: Fields): void {
    this.log('debug', message, fields);
  }
  info(message: string, fields?: Fields): void {
    this.log('info', message, fields);
  }
  warn(message: string, fields?: Fields): void {
    this.log('warn', message, fields);
  }
  error(message: string, fields?: Fields): void {
    this.log('error', message, fields);
  }
}

// redirectStdout is called right after the handshake line: from then on,
// nothing may reach stdout. The host drains and drops it, so anything printed
// there would vanish. console.* becomes JSON log lines and direct writes to
// process.stdout go to stderr.
export function redirectStdout(log: Logger): void {
  const toStderr = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  process.stdout.write = toStderr;
  console.log = (...args: unknown[]) => log.info(format(...args));
  console.info = (...args: unknown[]) => log.info(format(...args));
  console.debug = (...args: unknown[]) => log.debug(format(...args));
  console.trace = (...args: unknown[]) => log.trace(format(...args), { stack: new Error().stack });
  console.warn = (...args: unknown[]) => log.warn(format(...args));
  console.error = (...args: unknown[]) => log.error(format(...args));
}
