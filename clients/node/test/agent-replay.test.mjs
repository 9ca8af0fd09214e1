// Tests of the Node client: the production backend (ledger + trace), its close path on
// crashes, and the gateway backend against a fake Unix-socket gateway.
//
//   node --test clients/node/test/

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, describe, beforeEach, afterEach } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as ar from '../agent-replay.mjs';

const CLIENT = fileURLToPath(new URL('../agent-replay.mjs', import.meta.url));
const RFC3339_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const SHA256 = /^[0-9a-f]{64}$/;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RECORD_FIELDS = [
  'run_id', 'run_type', 'fixture_id', 'task_id', 'attempt', 'agent_name', 'started_at', 'closed_at',
  'code_version', 'model', 'prompt_version', 'tool_allowlist', 'timeout_seconds', 'input_sha256',
  'state_refs', 'artifact_refs', 'status', 'failure_class', 'failure_reason', 'verdict', 'reasons', 'mode',
  'duration_ms', 'tool_calls',
];
const ENVELOPE = {
  format: 'agent-replay/input@1',
  task_id: 'T-1042',
  attempt: 2,
  agent: 'research',
  model: 'provider/model-name',
  prompt_version: 'research-v12',
  tool_allowlist: ['search', 'fetch_page'],
  timeout_seconds: 30,
  state_refs: ['state/tasks.json'],
  task: { question: "Qu'est-ce que WAL ? ✓", n: 1.5 },
};
const TASKS = { 'T-1042': { status: 'in_progress' } };

const readJsonl = (file) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const sha = (data) => crypto.createHash('sha256').update(data).digest('hex');

function assertRecord(record) {
  assert.deepEqual(Object.keys(record), RECORD_FIELDS, 'every §7 field, in order, nothing else');
  assert.match(record.run_id, UUID4);
  assert.equal(record.run_type, 'production');
  assert.equal(record.fixture_id, null);
  assert.match(record.started_at, RFC3339_Z);
  assert.match(record.input_sha256, SHA256);
  for (const key of ['verdict', 'reasons', 'mode']) assert.equal(record[key], null);
}

function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AGENT_REPLAY_')) env[k] = v;
  return { ...env, ...extra };
}

/** Run `node -e`-like script text as an ES module in dir; resolves {code, signal, stdout, stderr}. */
function runChild(dir, body, { env = {}, input = JSON.stringify(ENVELOPE) } = {}) {
  const script = path.join(dir, `agent-${crypto.randomUUID()}.mjs`);
  fs.writeFileSync(script, `import * as ar from ${JSON.stringify(CLIENT)};\n${body}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd: dir, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

let dir;
let ledger;
let traces;

function makeWorkspace() {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ar-node-')));
  fs.mkdirSync(path.join(dir, 'state'));
  fs.writeFileSync(path.join(dir, 'state', 'tasks.json'), JSON.stringify(TASKS));
  ledger = path.join(dir, 'led', 'ledger.jsonl');
  traces = path.join(dir, 'tr');
}

const client = () => new ar.Client({ backend: new ar.ProductionBackend({ ledger, traces, handleSignals: false }) });
const traceOf = (runId) => readJsonl(path.join(traces, `${runId}.jsonl`));

describe('production backend', () => {
  beforeEach(makeWorkspace);
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function happyPath() {
    const c = client();
    const record = await c.startRun(ENVELOPE, { workspace: dir });
    const result = await c.callTool('search', { query: 'wal', headers: { Authorization: 'Bearer sk-x' } }, {
      impl: async (args) => ({ hits: [args.query] }),
      effect: 'read',
    });
    assert.deepEqual(result.structuredContent, { hits: ['wal'] });
    assert.equal(result.isError, false);
    await c.recordEvent('checkpoint', { step: 'fetch' });
    fs.mkdirSync(path.join(dir, 'out'));
    fs.writeFileSync(path.join(dir, 'out', 'report.md'), '# Report\n');
    assert.deepEqual(await c.recordArtifact('out/report.md'), { sha256: sha('# Report\n'), bytes: 9 });
    await c.closeRun('succeeded', { summary: 'ok', artifact_refs: ['out/report.md', 'out/extra.md'] });
    return record.run_id;
  }

  test('ledger: RUNNING then terminal, every field', async () => {
    const runId = await happyPath();
    const lines = readJsonl(ledger);
    assert.deepEqual(lines.map((r) => r.status), ['RUNNING', 'SUCCEEDED']);
    for (const r of lines) {
      assertRecord(r);
      assert.equal(r.run_id, runId);
    }
    const [running, done] = lines;
    assert.equal(running.task_id, 'T-1042');
    assert.equal(running.attempt, 2);
    assert.equal(running.agent_name, 'research');
    assert.equal(running.model, 'provider/model-name');
    assert.equal(running.prompt_version, 'research-v12');
    assert.deepEqual(running.tool_allowlist, ['search', 'fetch_page']);
    assert.equal(running.timeout_seconds, 30);
    assert.deepEqual(running.state_refs, ['state/tasks.json']);
    assert.deepEqual(running.artifact_refs, []);
    assert.equal(running.closed_at, null);
    assert.equal(running.duration_ms, null);
    assert.equal(running.tool_calls, 0);
    assert.equal(running.input_sha256, sha(ar.envelopeBytes(ENVELOPE)));
    assert.match(done.closed_at, RFC3339_Z);
    assert.ok(Number.isInteger(done.duration_ms));
    assert.equal(done.tool_calls, 1);
    assert.deepEqual(done.artifact_refs, ['out/report.md', 'out/extra.md']);
    assert.equal(done.failure_class, null);
    assert.equal(done.failure_reason, null);
  });

  test('trace: start, tool_call, event, artifact, close', async () => {
    const runId = await happyPath();
    const file = path.join(traces, `${runId}.jsonl`);
    const raw = fs.readFileSync(file, 'utf8');
    const [start, call, event, artifact, close] = raw.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(raw.split('\n')[0].includes(`,"input":${ar.envelopeBytes(ENVELOPE).toString('utf8')},"workspace":`));
    assert.deepEqual(Object.keys(start), ['type', 'run', 'input', 'workspace']);
    assert.equal(start.type, 'start');
    assert.deepEqual(start.input, ENVELOPE);
    assertRecord(start.run);
    assert.equal(start.run.status, 'RUNNING');
    const snap = start.workspace['state/tasks.json'];
    const content = Buffer.from(snap.content_b64, 'base64');
    assert.deepEqual(JSON.parse(content), TASKS);
    assert.equal(snap.sha256, sha(content));

    assert.deepEqual(Object.keys(call).sort(), ['arguments', 'at', 'duration_ms', 'effect', 'result', 'seq', 'tool', 'type']);
    assert.deepEqual([call.type, call.seq, call.tool, call.effect], ['tool_call', 1, 'search', 'read']);
    assert.deepEqual(call.arguments.headers, { Authorization: 'Bearer sk-x' });
    assert.match(call.at, RFC3339_Z);
    assert.ok(Number.isInteger(call.duration_ms));
    assert.deepEqual(event, { type: 'event', name: 'checkpoint', data: { step: 'fetch' }, at: event.at });
    assert.deepEqual(artifact, { type: 'artifact', path: 'out/report.md', sha256: sha('# Report\n'), bytes: 9 });
    assert.deepEqual(Object.keys(close), ['type', 'status', 'output', 'failure_class', 'failure_reason', 'at']);
    assert.equal(close.status, 'succeeded');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  test('status vocabulary', async () => {
    for (const [claimed, stored] of [['succeeded', 'SUCCEEDED'], ['failed', 'FAILED'], ['timed_out', 'TIMED_OUT'], ['aborted', 'ABORTED']]) {
      const c = client();
      const { run_id: runId } = await c.startRun(ENVELOPE, { workspace: dir });
      await c.closeRun(claimed, null, stored === 'SUCCEEDED' ? null : 'rate_limited', 'why');
      const rec = readJsonl(ledger).filter((r) => r.run_id === runId).at(-1);
      assert.equal(rec.status, stored);
      assert.equal(traceOf(runId).at(-1).status, claimed);
    }
    const c = client();
    await c.startRun(ENVELOPE, { workspace: dir });
    await assert.rejects(c.closeRun('done'), TypeError);
    await c.closeRun('succeeded');
    await assert.rejects(c.closeRun('failed'), (err) => err instanceof ar.GatewayError && err.reason === 'already_closed');
  });

  test('a throwing tool is recorded isError and re-thrown', async () => {
    const c = client();
    const { run_id: runId } = await c.startRun(ENVELOPE, { workspace: dir });
    await assert.rejects(
      c.callTool('fetch_page', { url: 'https://x' }, { impl: () => { throw new Error('upstream 503'); }, effect: 'read' }),
      /upstream 503/,
    );
    await c.closeRun('failed', null, 'host_network', 'upstream 503');
    const call = traceOf(runId)[1];
    assert.equal(call.result.isError, true);
    assert.match(call.result.content[0].text, /Error: upstream 503/);
  });

  test('allowlist refusal mirrors the gateway; registered tools default to write', async () => {
    const c = client();
    const called = [];
    c.registerTool('fetch_page', (args) => ({ url: args.url }));
    const { run_id: runId } = await c.startRun(ENVELOPE, { workspace: dir });
    await assert.rejects(c.callTool('send_email', {}, { impl: (a) => called.push(a) }),
      (err) => err instanceof ar.ToolError && err.code === ar.NOT_ALLOWED && err.reason === 'not_allowed');
    assert.deepEqual(called, []);
    await c.callTool('fetch_page', { url: 'u' });
    await c.closeRun('succeeded');
    const trace = traceOf(runId);
    assert.equal(trace[1].name, 'tool_refused');
    assert.equal(trace[2].effect, 'write');
    assert.equal(readJsonl(ledger).at(-1).tool_calls, 2);
  });

  test('artifacts outside the workspace are refused, missing ones recorded', async () => {
    const c = client();
    await c.startRun(ENVELOPE, { workspace: dir });
    for (const bad of ['/etc/passwd', '../x', 'out/../../x']) {
      await assert.rejects(c.recordArtifact(bad), ar.GatewayError);
    }
    fs.symlinkSync('/etc', path.join(dir, 'escape'));
    await assert.rejects(c.recordArtifact('escape/passwd'), ar.GatewayError);
    assert.deepEqual(await c.recordArtifact('./out/missing.md'), { sha256: null, bytes: 0 });
    await c.closeRun('succeeded');
    assert.deepEqual(readJsonl(ledger).at(-1).artifact_refs, ['out/missing.md']);
  });

  test('unknown startRun option throws', async () => {
    await assert.rejects(client().startRun(ENVELOPE, { agnet: 'typo' }), TypeError);
  });

  test('withRun closes failed when its callback throws', async () => {
    const c = client();
    await assert.rejects(c.withRun(ENVELOPE, { workspace: dir, agent: 'research' }, async (run) => {
      assert.match(run.runId, UUID4);
      await run.callTool('search', { q: 1 }, { impl: () => ({}), effect: 'read' });
      throw new RangeError('no hits');
    }), RangeError);
    const rec = readJsonl(ledger).at(-1);
    assertRecord(rec);
    assert.deepEqual([rec.status, rec.failure_class, rec.failure_reason], ['FAILED', 'unknown', 'RangeError: no hits']);
    assert.equal(rec.tool_calls, 1);
  });

  test('withRun leaves a closed run alone and closes an unclosed one', async () => {
    const c = client();
    assert.equal(await c.withRun(ENVELOPE, { workspace: dir }, async (run) => { await run.close('succeeded'); return 7; }), 7);
    await client().withRun(ENVELOPE, { workspace: dir }, async () => {});
    const statuses = readJsonl(ledger).map((r) => [r.status, r.failure_reason]);
    assert.deepEqual(statuses.map((s) => s[0]), ['RUNNING', 'SUCCEEDED', 'RUNNING', 'FAILED']);
    assert.match(statuses[3][1], /without closeRun/);
  });

  test('an uncaught error closes the run at exit (default paths under cwd)', async () => {
    const res = await runChild(dir, `
      await ar.startRun(null, { agent: 'research' });
      await ar.callTool('search', { q: 1 }, { impl: () => ({}), effect: 'read' });
      throw new Error('agent blew up');
    `);
    assert.equal(res.code, 1, res.stderr);
    const lines = readJsonl(path.join(dir, '.agent-replay', 'ledger.jsonl'));
    assert.deepEqual(lines.map((r) => r.status), ['RUNNING', 'FAILED']);
    const rec = lines[1];
    assertRecord(rec);
    assert.equal(rec.failure_class, 'unknown');
    assert.match(rec.failure_reason, /agent blew up/);
    assert.equal(rec.input_sha256, sha(ar.envelopeBytes(ENVELOPE)));
    const trace = readJsonl(path.join(dir, '.agent-replay', 'traces', `${rec.run_id}.jsonl`));
    assert.deepEqual(trace.map((l) => l.type), ['start', 'tool_call', 'close']);
  });

  test('process.exit without close closes the run', async () => {
    const res = await runChild(dir, `ar.readInput(); await ar.recordEvent('checkpoint'); process.exit(3);`);
    assert.equal(res.code, 3, res.stderr);
    const rec = readJsonl(path.join(dir, '.agent-replay', 'ledger.jsonl')).at(-1);
    assert.deepEqual([rec.status, rec.failure_class], ['FAILED', 'unknown']);
  });

  test('SIGTERM closes aborted and the process dies of the signal', async () => {
    const res = await runChild(dir, `await ar.startRun(); process.kill(process.pid, 'SIGTERM'); await new Promise((r) => setTimeout(r, 5000));`);
    assert.equal(res.signal, 'SIGTERM', res.stderr);
    const rec = readJsonl(path.join(dir, '.agent-replay', 'ledger.jsonl')).at(-1);
    assert.deepEqual([rec.status, rec.failure_class], ['ABORTED', 'unknown']);
  });

  test('env paths and the config directory', async () => {
    fs.writeFileSync(path.join(dir, 'agent-replay.toml'), '[agents.x]\ncommand = ["true"]\n');
    const sub = path.join(dir, 'deep', 'er');
    fs.mkdirSync(sub, { recursive: true });
    fs.cpSync(path.join(dir, 'state'), path.join(sub, 'state'), { recursive: true });
    const body = `await ar.startRun(); await ar.closeRun('succeeded');`;
    assert.equal((await runChild(sub, body)).code, 0);
    assert.equal(readJsonl(path.join(dir, '.agent-replay', 'ledger.jsonl')).length, 2);
    const res = await runChild(sub, body, { env: { AGENT_REPLAY_LEDGER: path.join(dir, 'l.jsonl'), AGENT_REPLAY_TRACES: path.join(dir, 't') } });
    assert.equal(res.code, 0, res.stderr);
    const rec = readJsonl(path.join(dir, 'l.jsonl')).at(-1);
    assert.ok(fs.existsSync(path.join(dir, 't', `${rec.run_id}.jsonl`)));
    // A database URL in the environment is the tools' ledger: the local file is written.
    const db = await runChild(sub, body, { env: { AGENT_REPLAY_LEDGER: 'postgres://ops:pw@db/fleet' } });
    assert.equal(db.code, 0, db.stderr);
    assert.equal(readJsonl(path.join(dir, '.agent-replay', 'ledger.jsonl')).length, 4);
    const explicit = await runChild(sub, `await ar.startRun({}, { ledger: 'postgres://ops:pw@db/fleet' });`);
    assert.notEqual(explicit.code, 0);
    assert.match(explicit.stderr, /is a database URL: the client writes a local JSONL file/);
    assert.doesNotMatch(explicit.stderr, /ops:pw/);
  });

  test('concurrent writers: every line stays whole', async () => {
    const body = `
      for (let i = 0; i < 20; i++) {
        const c = new ar.Client();
        await c.startRun({ task_id: 'T', task: { pad: 'x'.repeat(2000) } });
        await c.closeRun('failed', null, 'unknown', 'y'.repeat(2000));
      }`;
    const results = await Promise.all(Array.from({ length: 6 }, () => runChild(dir, body)));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal(readJsonl(path.join(dir, '.agent-replay', 'ledger.jsonl')).length, 6 * 20 * 2);
  });

  test('a torn last line is terminated first', async () => {
    fs.mkdirSync(path.dirname(ledger), { recursive: true });
    fs.writeFileSync(ledger, '{"run_id": "torn", "sta');
    const c = client();
    await c.startRun(ENVELOPE, { workspace: dir });
    await c.closeRun('succeeded');
    const lines = fs.readFileSync(ledger, 'utf8').split('\n').filter(Boolean);
    assert.equal(lines[0], '{"run_id": "torn", "sta');
    assert.deepEqual(lines.slice(1).map((l) => JSON.parse(l).status), ['RUNNING', 'SUCCEEDED']);
  });
});

// ------------------------------------------------------------------------- gateway

function fakeGateway(socketPath) {
  const requests = [];
  const answer = (req) => {
    const params = req.params || {};
    switch (req.method) {
      case 'tools/list':
        return { result: { tools: [{ name: 'search' }, { name: 'fetch_page' }] } };
      case 'tools/call':
        if (params.name === 'send_email') {
          return { error: { code: -32001, message: 'unrecorded call to `send_email`', data: { tool: 'send_email', reason: 'unrecorded', closest: { id: 'c1', pointer: '/to' } } } };
        }
        return { result: { content: [{ type: 'text', text: 'recorded ✓' }], isError: false } };
      case 'run/artifact':
        return { result: { sha256: '0'.repeat(64), bytes: 3 } };
      case 'run/event':
      case 'run/close':
        return { result: {} };
      default:
        return { error: { code: -32601, message: 'method not found' } };
    }
  };
  const server = net.createServer((conn) => {
    let buf = '';
    let chain = Promise.resolve();
    conn.setEncoding('utf8');
    conn.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        requests.push(req);
        // Answer in two writes, splitting a multi-byte character, to exercise buffering.
        const bytes = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: req.id, ...answer(req) }) + '\n');
        // Responses stay in order (a chain per connection), as the gateway's are.
        const cut = Math.max(1, bytes.indexOf(Buffer.from('✓')) + 1);
        chain = chain.then(() => new Promise((done) => {
          conn.write(bytes.subarray(0, cut));
          setTimeout(() => conn.write(bytes.subarray(cut), done), 2);
        }));
      }
    });
  });
  return new Promise((resolve) => server.listen(socketPath, () => resolve({ server, requests })));
}

describe('gateway backend', () => {
  let gw;
  let sock;
  let tmp;
  const saved = {};

  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ar-gw-'));
    sock = path.join(tmp, 'gw.sock');
    gw = await fakeGateway(sock);
    for (const k of [ar.SOCKET_ENV, ar.RUN_ID_ENV]) saved[k] = process.env[k];
    process.env[ar.SOCKET_ENV] = sock;
    process.env[ar.RUN_ID_ENV] = 'run-under-test';
  });

  afterEach(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await new Promise((r) => gw.server.close(r));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the same API goes to the gateway', async () => {
    const c = new ar.Client();
    assert.ok(c.backend instanceof ar.GatewayBackend);
    assert.equal(c.production, false);
    assert.deepEqual(await c.startRun(ENVELOPE, { agent: 'research' }), { run_id: 'run-under-test' });
    const called = [];
    const result = await c.callTool('search', { query: 'q' }, { impl: (a) => called.push(a), effect: 'read' });
    assert.equal(result.content[0].text, 'recorded ✓');
    assert.deepEqual(called, [], 'impl is production-only');
    // Several requests in flight at once are answered in order.
    const [tools] = await Promise.all([c.listTools(), c.recordEvent('checkpoint', { step: 1 })]);
    assert.deepEqual(tools, [{ name: 'search' }, { name: 'fetch_page' }]);
    assert.deepEqual(await c.recordArtifact('out/r.md'), { sha256: '0'.repeat(64), bytes: 3 });
    await c.closeRun('succeeded', { ok: true });
    assert.deepEqual(gw.requests.map((r) => [r.method, r.params]), [
      ['tools/call', { name: 'search', arguments: { query: 'q' } }],
      ['tools/list', {}],
      ['run/event', { name: 'checkpoint', data: { step: 1 } }],
      ['run/artifact', { path: 'out/r.md' }],
      ['run/close', { status: 'succeeded', output: { ok: true }, failure_class: null, failure_reason: null }],
    ]);
    assert.deepEqual(gw.requests.map((r) => r.jsonrpc), Array(5).fill('2.0'));
    assert.deepEqual(gw.requests.map((r) => r.id), [1, 2, 3, 4, 5]);
    c.backend.close();
  });

  test('a refused call rejects with ToolError', async () => {
    const c = new ar.Client();
    await assert.rejects(c.callTool('send_email', { to: 'x' }), (err) => {
      assert.ok(err instanceof ar.ToolError);
      assert.equal(err.code, ar.UNRECORDED_CALL);
      assert.equal(err.reason, 'unrecorded');
      assert.deepEqual(err.closest, { id: 'c1', pointer: '/to' });
      return true;
    });
    c.backend.close();
  });

  test('withRun closes failed through the gateway', async () => {
    const c = new ar.Client();
    await assert.rejects(c.withRun(ENVELOPE, {}, async (run) => {
      assert.equal(run.runId, 'run-under-test');
      throw new Error('bad page');
    }), /bad page/);
    assert.deepEqual(gw.requests.at(-1).params, { status: 'failed', output: null, failure_class: 'unknown', failure_reason: 'Error: bad page' });
    c.backend.close();
  });

  test('an agent process exits on its own once idle (the socket never holds it)', async () => {
    const res = await runChild(tmp, `
      const r = await ar.callTool('search', { q: 1 });
      console.log(r.content[0].text);
    `, { env: { AGENT_REPLAY_SOCKET: sock } });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), 'recorded ✓');
    assert.equal(fs.existsSync(path.join(tmp, '.agent-replay')), false, 'nothing written under the harness');
  });
});
