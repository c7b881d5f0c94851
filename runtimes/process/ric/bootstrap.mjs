// Gatehouse runtime interface client for Node.js Lambda handlers.
//
// The worker starts this file with the node binary of a nodejs function:
//
//     node bootstrap.mjs
//
// and gives it the standard Lambda environment (AWS_LAMBDA_RUNTIME_API, _HANDLER,
// LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, ...). It loads the handler from the
// task root (CommonJS or ES module, as Lambda does), then takes invocations from
// the Lambda Runtime API one at a time for as long as the process lives.
//
// Completion follows AWS's client (aws-lambda-nodejs-runtime-interface-client):
//
//   * a handler that returns a promise answers with what it resolves to, or an
//     error with what it rejects with;
//   * callback(err, result): an error is sent at once; a result is sent once the
//     event loop is empty (the process's 'beforeExit'), or at once when
//     context.callbackWaitsForEmptyEventLoop is false;
//   * context.succeed/fail/done answer at once;
//   * a handler that is not async and neither calls back nor returns a promise
//     answers null once the event loop is empty (its return value is ignored,
//     as on Lambda); an async handler whose promise is still pending when the
//     event loop empties fails with Runtime.NodeJsExit;
//   * only the first completion of an invocation counts;
//   * an uncaught exception or unhandled rejection fails the invocation and
//     ends the process (exit 129 / 128).
//
// Built-in modules only, so nothing is installed at run time.

import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const API_PREFIX = '/2018-06-01/runtime';

// ---- Runtime API client -----------------------------------------------------

const address = process.env.AWS_LAMBDA_RUNTIME_API;
if (!address) {
  process.stderr.write('gatehouse ric: AWS_LAMBDA_RUNTIME_API is not set\n');
  process.exit(1);
}
const [apiHost, apiPort] = splitHostPort(address);

function splitHostPort(hostport) {
  const i = hostport.lastIndexOf(':');
  if (i < 0) return [hostport, 80];
  let host = hostport.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, Number(hostport.slice(i + 1))];
}

// The Runtime API client speaks HTTP/1.1 over kept-alive sockets itself rather than through
// node:http: each invocation is two requests (invocation/next and the answer), and node:http's
// requests, responses and streams cost the Node process about twice the CPU per invocation
// (ric/README.md). Only what the Runtime API's server sends is read: a status line, headers, and a
// body by Content-Length or chunked, or up to the connection's end.
//
// A socket waiting in the idle list is unref'd, so that a connection kept for the next call does
// not hold the event loop open while a handler runs (the callback semantics depend on the loop
// emptying). There is no bound on sockets: an uncaught error's report must not queue behind a
// pending invocation/next.
const idle = [];

class Conn {
  constructor(socket) {
    this.socket = socket;
    this.chunks = [];
    this.size = 0;
    this.wake = null;
    this.failure = null;
    this.received = false; // a byte of the current response came
    socket.on('data', (d) => {
      this.chunks.push(d);
      this.size += d.length;
      this.received = true;
      this.notify();
    });
    socket.on('error', (err) => {
      this.failure = err;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      if (!this.failure) {
        const err = new Error('the Runtime API closed the connection');
        err.code = 'ECONNRESET';
        this.failure = err;
      }
      const i = idle.indexOf(this);
      if (i >= 0) idle.splice(i, 1);
      this.notify();
    });
  }

  notify() {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  // bytes returns the buffered bytes as one buffer.
  bytes() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks.length ? this.chunks[0] : Buffer.alloc(0);
  }

  // take removes and returns the first n buffered bytes.
  take(n) {
    const b = this.bytes();
    const rest = b.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return b.subarray(0, n);
  }

  // more waits for bytes, failing once the connection cannot give any.
  more() {
    if (this.failure) return Promise.reject(this.failure);
    const had = this.size;
    return new Promise((resolve, reject) => {
      this.wake = () => (this.failure && this.size === had ? reject(this.failure) : resolve());
    });
  }

  // until returns the index of sep in the buffered bytes, waiting for more until it comes.
  async until(sep) {
    for (;;) {
      const i = this.bytes().indexOf(sep);
      if (i >= 0) return i;
      await this.more();
    }
  }

  async need(n) {
    while (this.size < n) await this.more();
  }

  async readResponse() {
    const end = await this.until('\r\n\r\n');
    const head = this.take(end + 4).toString('latin1', 0, end);
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`the Runtime API answered something other than HTTP: ${JSON.stringify(lines[0].slice(0, 80))}`);
    const status = Number(m[1]);
    const headers = {};
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].indexOf(':');
      if (c <= 0) continue;
      const name = lines[i].slice(0, c).trim().toLowerCase();
      const value = lines[i].slice(c + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    let body;
    if (status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/\bchunked\b/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      for (;;) {
        const eol = await this.until('\r\n');
        const n = parseInt(this.take(eol + 2).toString('latin1', 0, eol), 16);
        if (!(n >= 0)) throw new Error('the Runtime API sent a malformed chunk');
        if (n === 0) {
          // Trailers, if any, up to the empty line.
          for (;;) {
            const t = await this.until('\r\n');
            this.take(t + 2);
            if (t === 0) break;
          }
          break;
        }
        await this.need(n + 2);
        parts.push(this.take(n + 2).subarray(0, n));
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      await this.need(n);
      body = this.take(n);
    } else {
      // Delimited by the connection's end.
      while (!this.closed) await this.more().catch(() => {});
      body = this.take(this.size);
      headers.connection = 'close';
    }
    return { status, headers, body };
  }
}

function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: apiHost, port: apiPort, noDelay: true });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(new Conn(socket));
    });
    socket.once('error', reject);
  });
}

async function request(method, urlPath, body, headers, retried) {
  let conn = idle.pop();
  const reused = conn !== undefined;
  if (!conn) conn = await connect();
  conn.socket.ref();
  conn.received = false;
  let head = `${method} ${API_PREFIX}${urlPath} HTTP/1.1\r\nHost: ${address}\r\n`;
  for (const [k, v] of Object.entries(headers || {})) head += `${k}: ${v}\r\n`;
  if (body !== undefined && !(headers && 'Content-Length' in headers)) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  head += '\r\n';
  let res;
  try {
    if (body === undefined) conn.socket.write(head);
    else if (typeof body === 'string') conn.socket.write(head + body);
    else conn.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    res = await conn.readResponse();
  } catch (err) {
    conn.socket.destroy();
    // A kept-alive connection the server closed while idle: once more on a new one.
    if (!retried && reused && !conn.received) return request(method, urlPath, body, headers, true);
    throw err;
  }
  if (/\bclose\b/i.test(res.headers.connection || '') || conn.closed) {
    conn.socket.destroy();
  } else {
    conn.socket.unref();
    idle.push(conn);
  }
  return res;
}

function fatal(err) {
  process.stderr.write(`gatehouse ric: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

async function nextInvocation() {
  const res = await request('GET', '/invocation/next');
  if (res.status !== 200) {
    throw new Error(`invocation/next answered ${res.status}: ${res.body.toString('utf8', 0, 512)}`);
  }
  return res;
}

async function post(urlPath, body, headers) {
  const res = await request('POST', urlPath, body, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  if (res.status >= 300) {
    process.stderr.write(`gatehouse ric: POST ${urlPath} answered ${res.status}: ${res.body.toString('utf8', 0, 512)}\n`);
  }
}

// ---- errors ------------------------------------------------------------------

class RuntimeError extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = `Runtime.${type}`;
    if (cause && typeof cause.stack === 'string') {
      // The frames of the user's error are the useful ones.
      const frames = cause.stack.split('\n').filter((l) => /^\s+at /.test(l));
      this.stack = [`${this.name}: ${message}`, ...frames].join('\n');
    }
  }
}

// The body Lambda's Node.js runtime sends: errorType, errorMessage, trace.
function toRapidError(err) {
  try {
    if (err instanceof Error || (err && typeof err === 'object' && 'message' in err && 'name' in err)) {
      return {
        errorType: String(err.name),
        errorMessage: String(err.message),
        trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
      };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

function logError(what, body) {
  process.stderr.write(`${what}\t${JSON.stringify(body)}\n`);
  if (body.trace && body.trace.length) process.stderr.write(body.trace.join('\n') + '\n');
}

function errorHeaders(body) {
  // The header is free text; non-ASCII would not be a valid header value.
  return { 'Lambda-Runtime-Function-Error-Type': String(body.errorType).replace(/[^\x20-\x7e]/g, '?') };
}

async function postInvocationError(id, err) {
  const body = toRapidError(err);
  logError('Invoke Error', body);
  await post(`/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(body), errorHeaders(body));
}

async function postInitError(err) {
  const body = toRapidError(err);
  logError('Init Error', body);
  await post('/init/error', JSON.stringify(body), errorHeaders(body));
}

async function postInvocationResponse(id, result) {
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch (err) {
    await postInvocationError(id, new RuntimeError('MarshalError', `Unable to stringify response body as json: ${err.message}`, err));
    return;
  }
  if (body === undefined) body = 'null'; // a function or a symbol
  await post(`/invocation/${encodeURIComponent(id)}/response`, body);
}

// ---- loading the handler -------------------------------------------------------

function hasTypeModule(folder) {
  // The nearest package.json decides; node_modules stops the search.
  for (;;) {
    if (folder.endsWith(`${path.sep}node_modules`)) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (err) {
        process.stderr.write(`${pj} cannot be read, it is ignored for ES module detection: ${err.message}\n`);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

const exists = (p) => fs.existsSync(p);

async function loadModule(taskRoot, moduleRoot, name) {
  const base = path.resolve(taskRoot, moduleRoot, name);
  const require = createRequire(path.join(taskRoot, 'noop.js'));
  const importFile = (f) => import(pathToFileURL(f).href);

  if (exists(base)) return require(base);
  const typeModule = hasTypeModule(path.dirname(base));
  if (exists(base + '.js')) return typeModule ? importFile(base + '.js') : require(base + '.js');
  if (exists(base + '.mjs')) return importFile(base + '.mjs');
  if (exists(base + '.cjs')) return require(base + '.cjs');
  // Last, as Lambda does: a package by that name (node_modules under the task root).
  return require(require.resolve(name, { paths: [taskRoot, path.resolve(taskRoot, moduleRoot)] }));
}

async function loadHandler(taskRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new RuntimeError('MalformedHandlerName', `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const handlerBase = path.basename(fullHandler);
  const moduleRoot = fullHandler.slice(0, fullHandler.length - handlerBase.length);
  const m = /^([^.]*)\.(.*)$/.exec(handlerBase);
  if (!m || !m[1] || !m[2]) throw new RuntimeError('MalformedHandlerName', 'Bad handler');
  const [, moduleName, handlerPath] = m;

  let app;
  try {
    app = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new RuntimeError('UserCodeSyntaxError', `${err.name}: ${err.message}`, err);
    }
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new RuntimeError('ImportModuleError', `${err.name}: ${err.message}`, err);
    }
    throw err;
  }
  const fn = handlerPath.split('.').reduce((o, key) => o && o[key], app);
  if (!fn) throw new RuntimeError('HandlerNotFound', `${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw new RuntimeError('HandlerNotFound', `${fullHandler} is not a function`);
  return fn;
}

// ---- one invocation at a time -----------------------------------------------------

// 'beforeExit' fires when the event loop has nothing left to do. One listener,
// replaced per invocation: that is how "wait for the empty event loop" is done.
let onEmptyLoop = () => {};
process.on('beforeExit', () => onEmptyLoop());

// Set per invocation; before the first, uncaught errors are init errors.
let uncaught = (err, code) => {
  postInitError(err).finally(() => process.exit(code));
};
process.on('uncaughtException', (err) => uncaught(err, 129));
process.on('unhandledRejection', (reason) => uncaught(reason, 128));

function scheduleNext(handler, isAsync) {
  setImmediate(() => invokeOnce(handler, isAsync).catch(fatal));
}

function setTraceId(traceId) {
  if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
  else delete process.env._X_AMZN_TRACE_ID;
}

function parseJSONHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

async function invokeOnce(handler, isAsync) {
  const res = await nextInvocation();
  const h = res.headers;
  const id = h['lambda-runtime-aws-request-id'] || '';
  const deadline = Number(h['lambda-runtime-deadline-ms']) || 0;
  setTraceId(h['lambda-runtime-trace-id']);

  let finished = false; // one completion per invocation
  let waitForEmptyLoop = true;
  const next = () => scheduleNext(handler, isAsync);
  const fail = (err) => postInvocationError(id, err).then(next, fatal);
  const complete = (result) => postInvocationResponse(id, result).then(next, fatal);
  const once = (fn) => (...args) => {
    if (finished) return;
    finished = true;
    fn(...args);
  };

  const done = once((err, result) => {
    onEmptyLoop = () => {};
    if (err !== undefined && err !== null) fail(err);
    else complete(result);
  });
  const callback = once((err, result) => {
    onEmptyLoop = () => {};
    if (err !== undefined && err !== null) fail(err);
    else if (!waitForEmptyLoop) complete(result);
    else {
      onEmptyLoop = () => {
        onEmptyLoop = () => {};
        setImmediate(() => complete(result));
      };
    }
  });

  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyLoop = value;
    },
    succeed: (result) => done(null, result),
    fail: (err) => done(err === undefined || err === null ? 'handled' : err, null),
    done: (err, result) => done(err, result),
    awsRequestId: id,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    clientContext: parseJSONHeader(h['lambda-runtime-client-context']),
    identity: parseJSONHeader(h['lambda-runtime-cognito-identity']),
    tenantId: h['lambda-runtime-aws-tenant-id'],
  };

  // Nothing completed it by the time the event loop is empty.
  onEmptyLoop = () => {
    onEmptyLoop = () => {};
    if (finished) return;
    finished = true;
    if (isAsync) {
      fail(new RuntimeError('NodeJsExit', 'RequestId: ' + id + ' Error: Runtime exited without providing a reason'));
    } else {
      complete(null);
    }
  };
  uncaught = (err, code) => {
    onEmptyLoop = () => {};
    finished = true;
    postInvocationError(id, err).finally(() => process.exit(code));
  };

  let event;
  try {
    event = JSON.parse(res.body.toString('utf8'));
  } catch (err) {
    callback(new RuntimeError('UnmarshalError', `Unable to parse the event: ${err.message}`, err));
    return;
  }
  try {
    const result = handler(event, context, callback);
    if (result && typeof result.then === 'function') {
      result.then(context.succeed, context.fail);
    } else if (result !== undefined && !finished) {
      process.stderr.write('gatehouse ric: the handler is not async and returned a value without calling back; as on Lambda, the value is ignored (return a Promise or call the callback)\n');
    }
  } catch (err) {
    callback(err);
  }
}

// ---- start -------------------------------------------------------------------------

async function main() {
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let handler;
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  } catch (err) {
    try {
      await postInitError(err);
    } finally {
      process.exit(129);
    }
  }
  const isAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
  scheduleNext(handler, isAsync);
}

main().catch(fatal);
