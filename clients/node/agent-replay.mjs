// agent-replay — the Node client an agent uses to talk to agent-replay.
//
// One code path for production and replay (SPEC §8): an agent calls readInput,
// startRun, callTool, recordEvent, recordArtifact and closeRun the same way everywhere
// (or wraps its work in `await withRun(envelope, options, async (run) => ...)`), and a
// *backend* decides where the calls go.
//
// * Under the harness (AGENT_REPLAY_SOCKET is set) they go to the gateway over a Unix
//   socket as newline-delimited JSON-RPC 2.0 (SPEC §2). The cassette answers tool calls:
//   the `impl` given to callTool is ignored, startRun is a no-op (the harness opened the
//   run) and the harness owns the run's close path.
// * In production (no socket) the ProductionBackend runs the tool implementations and
//   writes, in the same formats as the Python client (SPEC §7, §8, §10 rule 18):
//   - run records to a JSON Lines ledger: RUNNING at startRun, terminal at closeRun,
//     every §7 field present (null when unknown). Path: options.ledger, else
//     $AGENT_REPLAY_LEDGER, else .agent-replay/ledger.jsonl in the directory of the
//     nearest agent-replay.toml above the working directory (else the working directory);
//   - the trace, <traces>/<run_id>.jsonl (options.traces, else $AGENT_REPLAY_TRACES, else
//     .agent-replay/traces next to the default ledger), mode 0600: it holds tool
//     arguments and results unredacted (`agent-replay generate` redacts).
//
// LIMITATION: Node has no flock(2). Each line is appended with one write(2) on a
// descriptor opened O_APPEND, which on Linux local filesystems does not interleave with
// other appenders' lines in practice (the offset update and the write are atomic for a
// regular file), but it is not guaranteed by POSIX, not on NFS, and the torn-last-line
// repair (a newline added when the file does not end with one) can race with another
// writer. Processes that share a ledger with heavy concurrency should prefer the Python
// client or the Rust harness, which lock — and which, holding the lock, cut a torn last
// line off before they append: a line this client is still writing when one of them
// appends could be cut with it.
//
// Tool implementations are called as `impl(arguments)` (one object; may return a
// Promise). A return value that is already an MCP CallToolResult (an object with a
// `content` array) is kept verbatim; an object becomes structuredContent plus its JSON
// as text, a string a text block, null/undefined an empty result. An implementation
// that throws is recorded with isError: true and the error is re-thrown (under the
// harness the same recording comes back as a result with isError: true).
//
// The close path runs on every exit in production: withRun closes `failed`
// (failure_class "unknown", the error text) when its callback throws, a process 'exit'
// hook closes any run still open (after an uncaught exception too), and a SIGTERM
// handler (installed only when nobody else listens for SIGTERM) closes it `aborted`
// before the process dies of the signal. SIGKILL escapes: `agent-replay watchdog`.
//
// No dependencies; Node 20+; POSIX.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const SOCKET_ENV = 'AGENT_REPLAY_SOCKET';
export const INPUT_ENV = 'AGENT_REPLAY_INPUT';
export const RUN_ID_ENV = 'AGENT_REPLAY_RUN_ID';
export const LEDGER_ENV = 'AGENT_REPLAY_LEDGER';
export const TRACES_ENV = 'AGENT_REPLAY_TRACES';
export const CODE_VERSION_ENV = 'AGENT_REPLAY_CODE_VERSION';

export const CONFIG_FILE = 'agent-replay.toml';

const isDatabaseUrl = (v) => /^postgres(ql)?:\/\//.test(String(v));
export const DEFAULT_LEDGER = path.join('.agent-replay', 'ledger.jsonl');
export const DEFAULT_TRACES = path.join('.agent-replay', 'traces');
export const DEFAULT_TIMEOUT_SECONDS = 60;

export const REFUSED = -32000;
export const UNRECORDED_CALL = -32001;
export const NOT_ALLOWED = -32002;
export const INVALID_PARAMS = -32602;

/** What an agent may claim with closeRun in production, and the ledger status it gives. */
export const LEDGER_STATUS = Object.freeze({
  succeeded: 'SUCCEEDED',
  failed: 'FAILED',
  timed_out: 'TIMED_OUT',
  aborted: 'ABORTED',
});

const START_OPTIONS = new Set([
  'agent', 'taskId', 'attempt', 'model', 'promptVersion', 'codeVersion', 'ledger', 'traces',
  'snapshot', 'workspace',
]);

// ---------------------------------------------------------------------------- errors

/** A JSON-RPC error answer from the gateway (or the same refusal in production). */
export class GatewayError extends Error {
  constructor(code, message, data = null) {
    super(`[${code}] ${message}`);
    this.name = 'GatewayError';
    this.code = code;
    this.rpcMessage = message;
    this.data = data;
  }

  /** data.reason when one was given (unrecorded, not_allowed, ...). */
  get reason() {
    return this.data && typeof this.data === 'object' ? (this.data.reason ?? null) : null;
  }
}

/** A tools/call that was refused: unrecorded, not allowed, invalid params. */
export class ToolError extends GatewayError {
  constructor(code, message, data = null) {
    super(code, message, data);
    this.name = 'ToolError';
  }

  /** The nearest recorded interaction (data.closest), to explain a miss. */
  get closest() {
    return this.data && typeof this.data === 'object' ? (this.data.closest ?? null) : null;
  }
}

// --------------------------------------------------------------------------- helpers

/**
 * The exact bytes a run's input_sha256 covers and its trace's `input` holds: compact
 * JSON.stringify of the envelope (key order as JavaScript keeps it: integer-like keys
 * first), UTF-8, no trailing newline.
 */
export function envelopeBytes(envelope) {
  return Buffer.from(JSON.stringify(envelope), 'utf8');
}

export function sha256Hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** RFC 3339 UTC with milliseconds and Z. */
export function nowRfc3339() {
  return new Date().toISOString();
}

function dumps(value) {
  try {
    const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    return text === undefined ? 'null' : text;
  } catch {
    return JSON.stringify(String(value));
  }
}

/**
 * Append one JSON line to a JSON Lines file shared with other writers: one write(2) on an
 * O_APPEND descriptor (see the LIMITATION note at the top: no flock in Node). A torn last
 * line is terminated first; `sync` fsyncs.
 */
export function appendLine(file, line, { sync = false, mode = 0o644 } = {}) {
  let data = Buffer.isBuffer(line) ? line : Buffer.from(line, 'utf8');
  if (data.length === 0 || data[data.length - 1] !== 0x0a) data = Buffer.concat([data, Buffer.from('\n')]);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a+', mode);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) data = Buffer.concat([Buffer.from('\n'), data]);
    }
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    if (sync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function findProjectDir(start) {
  let current = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(current, CONFIG_FILE))) return current;
    const parent = path.dirname(current);
    if (parent === current) return path.resolve(start);
    current = parent;
  }
}

/** A tool implementation's return value as an MCP CallToolResult. */
export function callToolResult(value) {
  if (value && typeof value === 'object' && !Array.isArray(value) && Array.isArray(value.content)) return value;
  if (value === null || value === undefined) return { content: [], isError: false };
  if (typeof value === 'string') return { content: [{ type: 'text', text: value }], isError: false };
  const result = { content: [{ type: 'text', text: dumps(value) }] };
  if (typeof value === 'object' && !Array.isArray(value)) result.structuredContent = value;
  result.isError = false;
  return result;
}

function errorText(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** [rel, real] for a path inside the workspace, else null (absolute, `..`, symlink out). */
function workspacePath(workspace, p) {
  if (typeof p !== 'string') return null;
  let rel = p;
  while (rel.startsWith('./')) rel = rel.slice(2);
  if (!rel || path.isAbsolute(rel) || rel.split('/').includes('..')) return null;
  let real = path.join(workspace, rel);
  try {
    real = fs.realpathSync(real);
  } catch {
    // A missing file: check its existing parent instead.
    try {
      real = path.join(fs.realpathSync(path.dirname(real)), path.basename(real));
    } catch {
      /* parent missing too: lexical path is inside */
    }
  }
  if (real !== workspace && !real.startsWith(workspace + path.sep)) return null;
  return [rel, real];
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

// -------------------------------------------------------------------------- gateway

/**
 * JSON-RPC 2.0, one object per line, over the harness's Unix socket. One connection,
 * opened on first use; responses come back in request order, so each request waits for
 * the next line. The socket is unref'd while idle, so it never keeps the process alive.
 */
export class GatewayBackend {
  constructor(socketPath) {
    this.socketPath = socketPath;
    this._socket = null;
    this._connecting = null;
    this._buffer = '';
    this._waiters = [];
    this._nextId = 1;
  }

  _connect() {
    if (this._socket) return Promise.resolve(this._socket);
    if (this._connecting) return this._connecting;
    this._connecting = new Promise((resolve, reject) => {
      const sock = net.createConnection(this.socketPath);
      sock.setEncoding('utf8');
      sock.once('connect', () => {
        this._socket = sock;
        this._connecting = null;
        resolve(sock);
      });
      sock.on('data', (chunk) => this._onData(chunk));
      sock.on('error', (err) => {
        if (!this._socket) {
          this._connecting = null;
          reject(new Error(`agent-replay: cannot connect to the gateway at ${JSON.stringify(this.socketPath)}: ${err.message}`));
        }
        this._failAll(err);
      });
      sock.on('close', () => {
        this._socket = null;
        this._failAll(new Error('agent-replay: the gateway closed the connection'));
      });
    });
    return this._connecting;
  }

  _failAll(err) {
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) w.reject(new Error(`${err.message} (during ${w.method})`));
  }

  _onData(chunk) {
    this._buffer += chunk;
    let nl;
    while ((nl = this._buffer.indexOf('\n')) >= 0) {
      const line = this._buffer.slice(0, nl);
      this._buffer = this._buffer.slice(nl + 1);
      const waiter = this._waiters.shift();
      if (!waiter) continue;
      if (this._waiters.length === 0 && this._socket) this._socket.unref();
      waiter.settle(line);
    }
  }

  /** Send one request and resolve with its result; reject with GatewayError on error. */
  async request(method, params) {
    const sock = await this._connect();
    const id = this._nextId++;
    const line = JSON.stringify({ jsonrpc: '2.0', id, method, params });
    return new Promise((resolve, reject) => {
      const settle = (raw) => {
        let response;
        try {
          response = JSON.parse(raw);
        } catch {
          reject(new Error(`agent-replay: unreadable gateway response to ${method}: ${raw.slice(0, 200)}`));
          return;
        }
        if (!response || typeof response !== 'object' || Array.isArray(response)) {
          reject(new Error(`agent-replay: gateway response to ${method} is not an object`));
          return;
        }
        if (response.id !== id) {
          reject(new Error(`agent-replay: gateway answered id ${JSON.stringify(response.id)} to request ${id} (${method})`));
          return;
        }
        const error = response.error;
        if (error !== undefined && error !== null) {
          const Cls = method === 'tools/call' ? ToolError : GatewayError;
          if (typeof error !== 'object') reject(new Cls(-32603, String(error), null));
          else reject(new Cls(Number(error.code ?? -32603), String(error.message ?? ''), error.data ?? null));
          return;
        }
        resolve(response.result);
      };
      this._waiters.push({ method, settle, reject });
      sock.ref();
      sock.write(line + '\n');
    });
  }

  async startRun() {
    // The harness opened the run before starting the agent: nothing to send.
    return { run_id: process.env[RUN_ID_ENV] ?? null };
  }

  async listTools() {
    const result = await this.request('tools/list', {});
    return Array.from((result && result.tools) || []);
  }

  async callTool(name, args) {
    // impl and effect are production-only: the cassette answers here.
    return this.request('tools/call', { name, arguments: args });
  }

  async recordEvent(name, data) {
    await this.request('run/event', { name, data });
  }

  async recordArtifact(p) {
    return this.request('run/artifact', { path: p });
  }

  async closeRun(status, output, failureClass, failureReason) {
    await this.request('run/close', {
      status,
      output,
      failure_class: failureClass,
      failure_reason: failureReason,
    });
  }

  close() {
    if (this._socket) this._socket.destroy();
    this._socket = null;
  }
}

// ----------------------------------------------------------------------- production

const liveBackends = new Set();
let hooksInstalled = false;
let lastUncaught = null;

function closeAbandoned(status, reason) {
  for (const backend of Array.from(liveBackends)) {
    try {
      backend.abandon(status, 'unknown', reason);
    } catch (err) {
      process.stderr.write(`agent-replay: could not close run: ${errorText(err)}\n`);
    }
  }
}

function installExitHooks(handleSignals) {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('uncaughtExceptionMonitor', (err, origin) => {
    lastUncaught = `${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'} ${errorText(err)}`;
  });
  process.on('exit', (code) => {
    let reason = `the process exited (code ${code}) without closing the run`;
    if (lastUncaught) reason += ` after an ${lastUncaught}`;
    closeAbandoned('failed', reason);
  });
  if (handleSignals && process.listenerCount('SIGTERM') === 0) {
    const onSigterm = () => {
      closeAbandoned('aborted', 'terminated by SIGTERM before closing the run');
      process.removeListener('SIGTERM', onSigterm);
      process.kill(process.pid, 'SIGTERM'); // no listener left: the default action kills us
    };
    process.on('SIGTERM', onSigterm);
  }
}

/**
 * Runs tools itself and writes the ledger record and the trace (SPEC §7, §8). One run at
 * a time; every file operation is synchronous, so the exit hook can close a run. Calls
 * after closeRun still work and are still traced, as the gateway keeps answering.
 */
export class ProductionBackend {
  constructor({ ledger = null, traces = null, handleSignals = true } = {}) {
    this.ledger = ledger;
    this.traces = traces;
    this.handleSignals = handleSignals;
    this.current = null;
  }

  isOpen() {
    return this.current !== null && !this.current.closed;
  }

  _needRun() {
    if (!this.current) throw new Error('agent-replay: no run started: call startRun() first');
    return this.current;
  }

  _trace(run, obj, sync = false) {
    appendLine(run.trace, dumps(obj), { sync, mode: 0o600 });
  }

  startRunSync(envelope, raw, options = {}) {
    if (this.isOpen()) {
      throw new Error(`agent-replay: run ${this.current.record.run_id} is still open; close it before starting another (or use one Client per concurrent run)`);
    }
    const root = fs.realpathSync(path.resolve(options.workspace ?? process.cwd()));
    const base = findProjectDir(root);
    const explicit = options.ledger ?? this.ledger;
    if (explicit !== undefined && explicit !== null && isDatabaseUrl(explicit)) {
      throw new Error(`agent-replay: the ledger option is a database URL: the client writes a local JSONL file; give it a file and ship it with \`agent-replay ledger push FILE --to postgres://...\``);
    }
    // A database URL there is the tools' ledger; this client writes the local file that
    // `agent-replay ledger push` ships into it.
    const envLedger = isDatabaseUrl(process.env[LEDGER_ENV] ?? '') ? undefined : process.env[LEDGER_ENV];
    const ledger = path.resolve(explicit ?? envLedger ?? path.join(base, DEFAULT_LEDGER));
    const traces = path.resolve(options.traces ?? this.traces ?? process.env[TRACES_ENV] ?? path.join(base, DEFAULT_TRACES));
    const text = (v) => (v === undefined || v === null ? null : String(v));
    const strings = (v) => (Array.isArray(v) ? v.map(String) : null);
    const envAttempt = envelope.attempt ?? 1;
    const envTimeout = envelope.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS;
    const runId = crypto.randomUUID();
    const record = {
      run_id: runId,
      run_type: 'production',
      fixture_id: null,
      task_id: text(options.taskId ?? envelope.task_id),
      attempt: options.attempt ?? (Number.isInteger(envAttempt) ? envAttempt : null),
      agent_name: text(options.agent ?? envelope.agent),
      started_at: nowRfc3339(),
      closed_at: null,
      code_version: text(options.codeVersion ?? process.env[CODE_VERSION_ENV]),
      model: text(options.model ?? envelope.model),
      prompt_version: text(options.promptVersion ?? envelope.prompt_version),
      tool_allowlist: strings(envelope.tool_allowlist),
      timeout_seconds: typeof envTimeout === 'number' ? envTimeout : null,
      input_sha256: sha256Hex(raw),
      state_refs: strings(envelope.state_refs) ?? [],
      artifact_refs: [],
      status: 'RUNNING',
      failure_class: null,
      failure_reason: null,
      verdict: null,
      reasons: null,
      mode: null,
      duration_ms: null,
      tool_calls: 0,
    };
    const { files, skipped } = snapshot(root, [...record.state_refs, ...(options.snapshot ?? []).map(String)]);
    const run = {
      record,
      ledger,
      trace: path.join(traces, `${runId}.jsonl`),
      workspace: root,
      started: performance.now(),
      seq: 0,
      toolCalls: 0,
      artifactRefs: [],
      closed: false,
    };
    appendLine(ledger, dumps(record)); // from here on the run exists and must be closed
    this.current = run;
    liveBackends.add(this);
    installExitHooks(this.handleSignals);
    const start = `{"type":"start","run":${dumps(record)},"input":${raw.toString('utf8')},"workspace":${dumps(files)}}`;
    appendLine(run.trace, start, { mode: 0o600 });
    for (const [p, why] of skipped) {
      this._trace(run, { type: 'event', name: 'snapshot_skipped', data: { path: p, why }, at: nowRfc3339() });
    }
    return { ...record };
  }

  async startRun(envelope, raw, options) {
    return this.startRunSync(envelope, raw, options);
  }

  async callTool(name, args, impl, effect) {
    const run = this._needRun();
    if (typeof name !== 'string' || !args || typeof args !== 'object' || Array.isArray(args)) {
      throw new ToolError(INVALID_PARAMS, 'invalid params: `name` must be a string and `arguments` an object', { tool: name, reason: 'invalid_params' });
    }
    effect = effect ?? 'write';
    if (effect !== 'read' && effect !== 'write') throw new TypeError(`agent-replay: effect must be 'read' or 'write', not ${JSON.stringify(effect)}`);
    const allowlist = run.record.tool_allowlist;
    if (allowlist !== null && !allowlist.includes(name)) {
      run.toolCalls += 1;
      this._trace(run, { type: 'event', name: 'tool_refused', data: { tool: name, reason: 'not_allowed' }, at: nowRfc3339() });
      throw new ToolError(NOT_ALLOWED, `tool \`${name}\` is not in the tool_allowlist ${JSON.stringify(allowlist)}`, { tool: name, reason: 'not_allowed' });
    }
    if (typeof impl !== 'function') {
      throw new Error(`agent-replay: no implementation for tool ${JSON.stringify(name)} in production: pass { impl } to callTool or registerTool() it`);
    }
    const recordedArgs = JSON.parse(dumps(args)); // as sent, before impl can mutate them
    run.seq += 1;
    run.toolCalls += 1;
    const seq = run.seq;
    const at = nowRfc3339();
    const began = performance.now();
    const line = (result) => ({
      type: 'tool_call', seq, tool: name, arguments: recordedArgs, result, effect, at,
      duration_ms: Math.floor(performance.now() - began),
    });
    let result;
    try {
      result = callToolResult(await impl(args));
    } catch (err) {
      this._trace(run, line({ content: [{ type: 'text', text: errorText(err) }], isError: true }));
      throw err;
    }
    this._trace(run, line(result));
    return result;
  }

  async recordEvent(name, data) {
    const run = this._needRun();
    if (typeof name !== 'string') throw new GatewayError(INVALID_PARAMS, 'invalid params: `name` must be a string', { reason: 'invalid_params' });
    this._trace(run, { type: 'event', name, data, at: nowRfc3339() });
  }

  async recordArtifact(p) {
    const run = this._needRun();
    const inside = workspacePath(run.workspace, p);
    if (!inside) {
      throw new GatewayError(INVALID_PARAMS, `invalid params: artifact path \`${p}\` is outside the workspace (absolute, \`..\` or through a symlink); report paths relative to the working directory`, { reason: 'invalid_params' });
    }
    const [rel, real] = inside;
    let sha256 = null;
    let bytes = 0;
    if (isFile(real)) {
      const data = fs.readFileSync(real);
      sha256 = sha256Hex(data);
      bytes = data.length;
    }
    if (!run.artifactRefs.includes(rel)) run.artifactRefs.push(rel);
    this._trace(run, { type: 'artifact', path: rel, sha256, bytes });
    return { sha256, bytes };
  }

  closeRunSync(status, output, failureClass, failureReason) {
    const run = this._needRun();
    const claimed = String(status).toLowerCase();
    if (!Object.hasOwn(LEDGER_STATUS, claimed)) {
      throw new TypeError(`agent-replay: unknown run status ${JSON.stringify(status)}; use one of ${Object.keys(LEDGER_STATUS).join(', ')}`);
    }
    if (run.closed) {
      this._trace(run, { type: 'event', name: 'duplicate_close', data: { status, output, failure_class: failureClass, failure_reason: failureReason }, at: nowRfc3339() });
      throw new GatewayError(REFUSED, 'the run is already closed: closeRun may be called once', { reason: 'already_closed' });
    }
    const at = nowRfc3339();
    this._trace(run, { type: 'close', status: claimed, output: output ?? null, failure_class: failureClass ?? null, failure_reason: failureReason ?? null, at }, true);
    const refs = [...run.artifactRefs];
    if (output && typeof output === 'object' && Array.isArray(output.artifact_refs)) {
      for (const r of output.artifact_refs) if (typeof r === 'string' && !refs.includes(r)) refs.push(r);
    }
    Object.assign(run.record, {
      closed_at: at,
      artifact_refs: refs,
      status: LEDGER_STATUS[claimed],
      failure_class: failureClass ?? null,
      failure_reason: failureReason ?? null,
      duration_ms: Math.floor(performance.now() - run.started),
      tool_calls: run.toolCalls,
    });
    appendLine(run.ledger, dumps(run.record), { sync: true });
    run.closed = true;
    liveBackends.delete(this);
  }

  async closeRun(status, output, failureClass, failureReason) {
    this.closeRunSync(status, output, failureClass, failureReason);
  }

  /** Close the run if it is still open (the exit path); true when it closed it. */
  abandon(status, failureClass, failureReason) {
    if (!this.isOpen()) return false;
    this.closeRunSync(status, null, failureClass, failureReason);
    return true;
  }
}

function snapshot(root, paths) {
  const files = {};
  const skipped = [];
  const add = (rel, real) => {
    const data = fs.readFileSync(real);
    files[rel] = { sha256: sha256Hex(data), content_b64: data.toString('base64') };
  };
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) add(path.relative(root, full).split(path.sep).join('/'), full);
    }
  };
  for (const p of paths) {
    const inside = workspacePath(root, p);
    if (!inside) {
      skipped.push([p, 'outside the workspace']);
      continue;
    }
    const [rel, real] = inside;
    if (isFile(real)) add(rel, real);
    else if (isDir(real)) walk(real);
    else skipped.push([p, 'missing']);
  }
  const sorted = {};
  for (const k of Object.keys(files).sort()) sorted[k] = files[k];
  return { files: sorted, skipped };
}

function defaultBackend({ ledger = null, traces = null } = {}) {
  const socketPath = process.env[SOCKET_ENV];
  if (socketPath) return new GatewayBackend(socketPath);
  return new ProductionBackend({ ledger, traces });
}

// --------------------------------------------------------------------------- client

/** The agent's handle on the run: input, tools, events, artifacts, close. */
export class Client {
  constructor({ backend = null, ledger = null, traces = null } = {}) {
    this._backend = backend;
    this._ledger = ledger;
    this._traces = traces;
    this._input = null;
    this._tools = new Map();
    this._started = false;
    this._closed = false;
  }

  get backend() {
    if (!this._backend) this._backend = defaultBackend({ ledger: this._ledger, traces: this._traces });
    return this._backend;
  }

  /** True when calls are executed and recorded here rather than by the gateway. */
  get production() {
    return this.backend instanceof ProductionBackend;
  }

  /** Whether this client's current run was closed (by the agent or the exit path). */
  get closed() {
    const b = this.backend;
    if (b instanceof ProductionBackend && b.current) return b.current.closed;
    return this._closed;
  }

  /**
   * The task envelope, parsed once and cached: stdin (the harness pipes input.json's
   * exact bytes), else the file AGENT_REPLAY_INPUT names. Synchronous.
   */
  readInput() {
    if (this._input === null) {
      let raw = '';
      if (!process.stdin.isTTY) {
        try {
          raw = fs.readFileSync(0, 'utf8');
        } catch {
          raw = '';
        }
      }
      if (!raw.trim()) {
        const p = process.env[INPUT_ENV];
        if (!p) throw new Error(`agent-replay: no task envelope on stdin and ${INPUT_ENV} is unset`);
        raw = fs.readFileSync(p, 'utf8');
      }
      const envelope = JSON.parse(raw);
      if (!envelope || typeof envelope !== 'object' || Array.isArray(envelope)) {
        throw new TypeError('agent-replay: the task envelope is not a JSON object');
      }
      this._input = envelope;
    }
    return this._input;
  }

  /** Give a tool its production implementation (ignored under the harness). */
  registerTool(name, impl, effect = 'write') {
    if (effect !== 'read' && effect !== 'write') throw new TypeError(`agent-replay: effect must be 'read' or 'write', not ${JSON.stringify(effect)}`);
    this._tools.set(name, { impl, effect });
  }

  /**
   * Open the run; resolves with its record (run_id, ...). A no-op under the gateway.
   * envelope defaults to readInput(). Options (production only): agent, taskId, attempt,
   * model, promptVersion, codeVersion, ledger, traces, snapshot (extra workspace paths
   * for the start snapshot), workspace. An unknown option throws.
   */
  async startRun(envelope = null, options = {}) {
    const unknown = Object.keys(options).filter((k) => !START_OPTIONS.has(k));
    if (unknown.length) throw new TypeError(`agent-replay: startRun() got unknown options ${JSON.stringify(unknown)}; known: ${JSON.stringify([...START_OPTIONS])}`);
    const env = envelope ?? this.readInput();
    if (!env || typeof env !== 'object' || Array.isArray(env)) throw new TypeError('agent-replay: the task envelope is not a JSON object');
    this._input = env;
    const record = await this.backend.startRun(env, envelopeBytes(env), options);
    this._started = true;
    this._closed = false;
    return record;
  }

  async _ensureStarted() {
    if (!this._started && this.backend instanceof ProductionBackend && !this.backend.current) await this.startRun();
  }

  /** The tools this run may call (the allowlist; in production without one, the registered tools). */
  async listTools() {
    const b = this.backend;
    if (b instanceof ProductionBackend) {
      await this._ensureStarted();
      const allow = b.current ? b.current.record.tool_allowlist : null;
      return (allow ?? [...this._tools.keys()].sort()).map((name) => ({ name }));
    }
    return b.listTools();
  }

  /**
   * Call a tool; resolves with its MCP CallToolResult (check isError yourself). In
   * production `impl(args)` runs (default: the registered one) and the call is traced
   * with `effect` (default: the registered one, else 'write'); under the harness the
   * gateway answers and impl is ignored. Rejects with ToolError when the call is refused.
   */
  async callTool(name, args = {}, { impl = null, effect = null } = {}) {
    if (!impl && this._tools.has(name)) {
      const reg = this._tools.get(name);
      impl = reg.impl;
      effect = effect ?? reg.effect;
    }
    await this._ensureStarted();
    return this.backend.callTool(name, args ?? {}, impl, effect);
  }

  /** Record a named event (checkpoint, warning) in the run's trace. */
  async recordEvent(name, data = {}) {
    await this._ensureStarted();
    await this.backend.recordEvent(name, data ?? {});
  }

  /** Declare a workspace file as a deliverable; resolves with {sha256, bytes}. */
  async recordArtifact(p) {
    await this._ensureStarted();
    return this.backend.recordArtifact(p);
  }

  /**
   * Close the run with the status the agent claims. In production: succeeded, failed,
   * timed_out or aborted (ledger SUCCEEDED, FAILED, TIMED_OUT, ABORTED); a second close
   * rejects with GatewayError (already_closed), as the gateway answers.
   */
  async closeRun(status, output = null, failureClass = null, failureReason = null) {
    await this._ensureStarted();
    await this.backend.closeRun(status, output, failureClass, failureReason);
    this._closed = true;
  }

  /**
   * A run that always closes: starts it, awaits fn(run), and when fn throws (or returns)
   * without having closed the run, closes it failed with failure_class "unknown" and the
   * error text, then re-throws. Resolves with fn's value.
   */
  async withRun(envelope, options, fn) {
    const record = await this.startRun(envelope, options ?? {});
    const handle = new Run(this, record);
    let value;
    try {
      value = await fn(handle);
    } catch (err) {
      if (!this.closed) {
        try {
          await this.closeRun('failed', null, 'unknown', errorText(err));
        } catch {
          /* never hide the agent's own error behind a failed close */
        }
      }
      throw err;
    }
    if (!this.closed) await this.closeRun('failed', null, 'unknown', 'the run ended without closeRun');
    return value;
  }
}

/** The handle withRun passes to its callback. */
export class Run {
  constructor(client, record) {
    this.client = client;
    this.record = record;
  }

  get runId() {
    return this.record ? (this.record.run_id ?? null) : null;
  }

  get envelope() {
    return this.client.readInput();
  }

  callTool(name, args, opts) {
    return this.client.callTool(name, args, opts);
  }

  listTools() {
    return this.client.listTools();
  }

  recordEvent(name, data) {
    return this.client.recordEvent(name, data);
  }

  recordArtifact(p) {
    return this.client.recordArtifact(p);
  }

  closeRun(status, output, failureClass, failureReason) {
    return this.client.closeRun(status, output, failureClass, failureReason);
  }

  close(status, output, failureClass, failureReason) {
    return this.closeRun(status, output, failureClass, failureReason);
  }
}

// ------------------------------------------------------------------ module-level API

let defaultInstance = null;

/** The process-wide client behind the module-level functions. */
export function defaultClient() {
  if (!defaultInstance) defaultInstance = new Client();
  return defaultInstance;
}

export const readInput = () => defaultClient().readInput();
export const startRun = (envelope = null, options = {}) => defaultClient().startRun(envelope, options);
export const registerTool = (name, impl, effect = 'write') => defaultClient().registerTool(name, impl, effect);
export const listTools = () => defaultClient().listTools();
export const callTool = (name, args = {}, opts = {}) => defaultClient().callTool(name, args, opts);
export const recordEvent = (name, data = {}) => defaultClient().recordEvent(name, data);
export const recordArtifact = (p) => defaultClient().recordArtifact(p);
export const closeRun = (status, output = null, failureClass = null, failureReason = null) =>
  defaultClient().closeRun(status, output, failureClass, failureReason);
export const withRun = (envelope, options, fn) => defaultClient().withRun(envelope, options, fn);
