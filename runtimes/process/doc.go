// Package process runs one function's runtime process — a provided.* bootstrap, or an interpreter
// running a runtime interface client (runtimes/process/ric) — and serves it the AWS Lambda Runtime API.
//
// [Start] opens a Runtime API listener on 127.0.0.1 for that process alone and starts the process with
// only the variables Lambda defines (AWS_LAMBDA_RUNTIME_API, _HANDLER, LAMBDA_TASK_ROOT, ...) and the
// function's configured ones, never the worker's; in its own process group, killed with SIGKILL if
// the worker dies (Linux). Start returns once the process's init phase is over: its first
// GET /2018-06-01/runtime/invocation/next. A POST to /runtime/init/error, an exit or the init timeout
// first fail it with an [*InitError].
//
// [Process.Invoke] answers the pending /next with the event and the Lambda-Runtime-* headers and waits
// for /invocation/{id}/response (the result) or /invocation/{id}/error (an [*FunctionError]). A
// process serves one invocation at a time and stays warm between them. Past the deadline its process
// group is killed ([ErrTimeout]); a process that ends by itself is an [*ExitError] ([ErrExited]),
// reported as out of memory when its memory cgroup counted a kill, or, with no cgroup, when a
// SIGKILL that Gatehouse did not send ended it.
//
// With [Config.Isolate] the process runs in a sandbox of Linux namespaces (mount, PID, network, IPC,
// UTS, and user when the worker is not root) built by this binary re-executed as its first process
// (sandbox_linux.go): a read-only root of system directories with the package at /var/task, a
// size-capped /tmp, its Runtime API inside its own network namespace, an unprivileged user. Every
// process, sandboxed or not, gets memory and pids cgroups where the node allows them; the memory
// cgroup's out-of-memory kills are what report a process out of memory. This package knows nothing
// of the scheduler.
package process
