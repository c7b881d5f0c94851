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

import http from 'node:http';
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
// Free sockets of a keep-alive agent are unref'd, so a connection kept for the
// next call does not hold the event loop open while a handler runs.
// No socket limit: an uncaught error's report must not queue behind a pending
// invocation/next.
const agent = new http.Agent({ keepAlive: true });

function splitHostPort(hostport) {
  const i = hostport.lastIndexOf(':');
  if (i < 0) return [hostport, 80];
  let host = hostport.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, Number(hostport.slice(i + 1))];
}

function request(method, urlPath, body, headers, retried) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: apiHost, port: apiPort, method, path: API_PREFIX + urlPath, agent, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      // A kept-alive connection the server closed while idle: once more on a new one.
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET') {
        request(method, urlPath, body, headers, true).then(resolve, reject);
      } else {
        reject(err);
      }
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
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
