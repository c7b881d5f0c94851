"""Gatehouse runtime interface client for Python Lambda handlers.

The worker starts this file with the interpreter of a python3.x function:

    python3 bootstrap.py

and gives it the standard Lambda environment (AWS_LAMBDA_RUNTIME_API, _HANDLER,
LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, ...). It imports the handler from the
task root, then takes invocations from the Lambda Runtime API one at a time for
as long as the process lives, as AWS's own client (awslambdaric) does:

  * GET  /2018-06-01/runtime/invocation/next           (never times out)
  * POST /2018-06-01/runtime/invocation/{id}/response  (the JSON-encoded result)
  * POST /2018-06-01/runtime/invocation/{id}/error     (an uncaught exception)
  * POST /2018-06-01/runtime/init/error                (then exit 1)

Standard library only, so nothing is installed at run time.
"""

import decimal
import importlib
import io
import json
import os
import re
import socket
import sys
import time
import traceback

API_PREFIX = "/2018-06-01/runtime"
_BOOTSTRAP_FILE = os.path.abspath(__file__)


def _unbuffer_std_streams():
    # What `python -u` does: no buffer under the text layer and every write
    # passed straight through, so print() reaches the log immediately.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        raw = io.FileIO(fd, "wb", closefd=False)
        setattr(
            sys,
            name,
            io.TextIOWrapper(
                raw,
                encoding=stream.encoding,
                errors=stream.errors,
                write_through=True,
            ),
        )


class FaultException(Exception):
    """An error of the runtime itself (Runtime.*), not of the user's code."""

    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, error_type, msg, trace=None):
        super().__init__(msg)
        self.error_type = error_type
        self.msg = msg
        self.trace = trace or []


_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e]")


class _Headers(dict):
    """A response's headers by lower-case name; get() takes any case."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class _Response:
    __slots__ = ("status", "headers")

    def __init__(self, status, headers):
        self.status = status
        self.headers = headers


class _Unanswered(ConnectionResetError):
    """The connection ended before a byte of the response came: the request may
    be sent again on a new one."""


class RuntimeAPI:
    """A keep-alive HTTP/1.1 connection to the Runtime API.

    The requests are written and the answers read here over a socket rather than
    through http.client: each invocation is two requests, and http.client's
    response and header objects cost the Python process about three times the CPU
    per invocation (ric/README.md). Only
    what the Runtime API's server sends is read: a status line, headers, and a
    body by Content-Length or chunked, or up to the connection's end.
    """

    def __init__(self, address):
        self.address = address
        host, _, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.host, self.port = host, int(port)
        self.sock = self.rfile = None

    def _connect(self):
        sock = socket.create_connection((self.host, self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.rfile = sock, sock.makefile("rb")

    def _close(self):
        if self.sock is not None:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = self.rfile = None

    def _request(self, method, path, body=None, headers=None):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.address)
        for name, value in (headers or {}).items():
            # Free text (an error's type) may hold what a header cannot.
            head += "%s: %s\r\n" % (name, _HEADER_UNSAFE.sub("?", str(value)))
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        data = head.encode("latin-1") + b"\r\n" + (body or b"")
        # One retry on a fresh connection when a kept-alive one was closed by
        # the server while idle; a request that was never answered at all is
        # safe to resend.
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self._connect()
            try:
                try:
                    self.sock.sendall(data)
                except (BrokenPipeError, ConnectionResetError) as e:
                    raise _Unanswered(str(e)) from e
                return self._response()
            except _Unanswered:
                self._close()
                if attempt == 1 or not reused:
                    raise
            except BaseException:
                self._close()
                raise

    def _line(self):
        line = self.rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise ConnectionResetError("the Runtime API closed the connection mid-response")
        return line

    def _exactly(self, n):
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionResetError("the Runtime API closed the connection mid-response")
        return data

    def _response(self):
        try:
            line = self.rfile.readline(65537)
        except ConnectionResetError as e:
            raise _Unanswered(str(e)) from e
        if not line:
            raise _Unanswered("the Runtime API closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise RuntimeError("the Runtime API answered something other than HTTP: %r" % line[:80])
        status = int(parts[1])
        headers = _Headers()
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = self._line().split(b";", 1)[0].strip()
                try:
                    n = int(size, 16)
                except ValueError:
                    raise RuntimeError("the Runtime API sent a malformed chunk") from None
                if n == 0:
                    while self._line() not in (b"\r\n", b"\n"):  # trailers
                        pass
                    break
                chunks.append(self._exactly(n))
                self._exactly(2)
            body = b"".join(chunks)
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise RuntimeError("the Runtime API sent a malformed Content-Length") from None
            body = self._exactly(n)
        else:
            body = self.rfile.read()  # delimited by the connection's end
            headers["connection"] = "close"
        if "close" in headers.get("connection", "").lower():
            self._close()
        return _Response(status, headers), body

    def next(self):
        resp, body = self._request("GET", API_PREFIX + "/invocation/next")
        if resp.status != 200:
            raise RuntimeError(
                "invocation/next answered %d: %s" % (resp.status, body[:512].decode("utf-8", "replace"))
            )
        return resp.headers, body

    def post(self, path, body, headers):
        resp, data = self._request("POST", API_PREFIX + path, body=body, headers=headers)
        if resp.status >= 300:
            sys.stderr.write(
                "gatehouse ric: POST %s answered %d: %s\n"
                % (path, resp.status, data[:512].decode("utf-8", "replace"))
            )
        return resp.status

    def post_response(self, request_id, body, content_type="application/json"):
        return self.post("/invocation/%s/response" % request_id, body,
                         {"Content-Type": content_type})

    def post_error(self, request_id, error):
        return self.post("/invocation/%s/error" % request_id, to_json(error).encode("utf-8"),
                         {"Content-Type": "application/json",
                          "Lambda-Runtime-Function-Error-Type": error["errorType"]})

    def post_init_error(self, error):
        return self.post("/init/error", to_json(error).encode("utf-8"),
                         {"Content-Type": "application/json",
                          "Lambda-Runtime-Function-Error-Type": error["errorType"]})


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            if o == o.to_integral_value():
                return int(o)
            return float(o)
        return super().default(o)


def to_json(obj):
    return json.dumps(obj, cls=_Encoder)


def marshal_response(result):
    """The response body and its content type, as awslambdaric sends them."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), "application/unknown"
    try:
        return to_json(result).encode("utf-8"), "application/json"
    except Exception as e:  # TypeError, ValueError (circular, NaN is allowed)
        raise FaultException(FaultException.MARSHAL_ERROR,
                             "Unable to marshal response: %s" % e)


# --- handler loading -------------------------------------------------------

def load_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME,
                             "Bad handler '%s': %s" % (handler, e))
    if not modname or not fname:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME,
                             "Bad handler '%s': module and function must both be named" % handler)
    dotted = modname.replace("/", ".")
    if dotted.split(".")[0] in sys.builtin_module_names:
        raise FaultException(FaultException.BUILT_IN_MODULE_CONFLICT,
                             "Cannot use built-in module %s as a handler module" % modname)
    try:
        module = importlib.import_module(dotted)
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR,
                             "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, (e.text or "").strip("\n"))]
        raise FaultException(FaultException.USER_CODE_SYNTAX_ERROR,
                             "Syntax error in module '%s': %s" % (modname, e), trace)
    try:
        fn = getattr(module, fname)
    except AttributeError:
        raise FaultException(FaultException.HANDLER_NOT_FOUND,
                             "Handler '%s' missing on module '%s'" % (fname, modname))
    if not callable(fn):
        raise FaultException(FaultException.HANDLER_NOT_FOUND,
                             "Handler '%s' on module '%s' is not callable" % (fname, modname))
    return fn


def user_frames(tb):
    """The formatted traceback frames, without those of this file."""
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != _BOOTSTRAP_FILE:
            frames = frames[i:]
            break
    else:
        frames = []
    return traceback.format_list(frames)


def error_of(exc_info, request_id=None, msg=None):
    etype, value, tb = exc_info
    if isinstance(value, FaultException):
        err = {"errorMessage": value.msg, "errorType": value.error_type,
               "stackTrace": value.trace}
    else:
        err = {"errorMessage": msg if msg else str(value), "errorType": etype.__name__,
               "stackTrace": user_frames(tb)}
    if request_id is not None:
        err["requestId"] = request_id
    return err


def log_error(err):
    """The error to stderr: one headline, then the frames, as Lambda's log shows it."""
    line = "[ERROR] " + err["errorType"]
    if err["errorMessage"]:
        line += ": " + err["errorMessage"]
    lines = [line]
    if err["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        for frame in err["stackTrace"]:
            lines.extend(frame.rstrip("\n").split("\n"))
    sys.stderr.write("\n".join(lines) + "\n")


# --- context ----------------------------------------------------------------

class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, d):
        d = d or {}
        self.cognito_identity_id = d.get("cognitoIdentityId")
        self.cognito_identity_pool_id = d.get("cognitoIdentityPoolId")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id, self.cognito_identity_pool_id)


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name",
                 "app_version_code", "app_package_name")

    def __init__(self, d):
        d = d or {}
        for k in self.__slots__:
            setattr(self, k, d.get(k))


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __init__(self, d):
        self.custom = d.get("custom")
        self.env = d.get("env")
        self.client = Client(d.get("client")) if d.get("client") is not None else None


class LambdaContext:
    """The context argument, with the attributes awslambdaric gives it.

    memory_limit_in_mb is a string, as on Lambda (the variable's text)."""

    def __init__(self, request_id, deadline_ms, invoked_function_arn,
                 client_context=None, cognito_identity=None, tenant_id=None):
        env = os.environ
        self.aws_request_id = request_id
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = CognitoIdentity(cognito_identity)
        self.client_context = ClientContext(client_context) if client_context is not None else None
        self.tenant_id = tenant_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        left = self._deadline_ms - int(time.time() * 1000)
        return left if left > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return ("LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
                "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
                "invoked_function_arn=%s,client_context=%s,identity=%s])" % (
                    self.aws_request_id, self.log_group_name, self.log_stream_name,
                    self.function_name, self.memory_limit_in_mb, self.function_version,
                    self.invoked_function_arn, self.client_context, self.identity))


def _json_header(headers, name, what):
    raw = headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except Exception as e:
        raise FaultException(FaultException.CONTEXT_UNMARSHAL_ERROR,
                             "Unable to parse %s JSON: %s" % (what, e))


# --- the loop -----------------------------------------------------------------

def handle(api, handler, headers, body):
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
    trace_id = headers.get("Lambda-Runtime-Trace-Id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        try:
            deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        except ValueError:
            deadline_ms = 0
        context = LambdaContext(
            request_id, deadline_ms,
            headers.get("Lambda-Runtime-Invoked-Function-Arn"),
            _json_header(headers, "Lambda-Runtime-Client-Context", "Client Context"),
            _json_header(headers, "Lambda-Runtime-Cognito-Identity", "Cognito Identity"),
            headers.get("Lambda-Runtime-Aws-Tenant-Id"),
        )
        try:
            event = json.loads(body) if body else None
        except ValueError as e:
            raise FaultException(FaultException.UNMARSHAL_ERROR,
                                 "Unable to unmarshal input: %s" % e)
        result = handler(event, context)
        payload, content_type = marshal_response(result)
    except Exception:
        err = error_of(sys.exc_info(), request_id)
        log_error(err)
        api.post_error(request_id, err)
        return
    api.post_response(request_id, payload, content_type)


def main():
    _unbuffer_std_streams()
    # The package is the user's: leave no __pycache__ in it (Lambda's task root
    # is read-only, so none is written there either).
    sys.dont_write_bytecode = True
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("gatehouse ric: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 1
    api = RuntimeAPI(address)

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # Our own directory is not the user's: import from the task root only.
    here = os.path.dirname(_BOOTSTRAP_FILE)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, task_root)

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Exception:
        err = error_of(sys.exc_info())
        log_error(err)
        try:
            api.post_init_error(err)
        except OSError as e:
            sys.stderr.write("gatehouse ric: posting the init error: %s\n" % e)
        return 1

    while True:
        try:
            headers, body = api.next()
            handle(api, handler, headers, body)
        except (OSError, RuntimeError) as e:
            # The Runtime API is gone or refuses us: nothing more to do.
            sys.stderr.write("gatehouse ric: %s\n" % e)
            return 1


if __name__ == "__main__":
    sys.exit(main())
