// Package bus owns the message bus between Gatehouse's gateway and its scheduler workers: the embedded
// NATS server, client connections, subject names, the invocation envelope, and the error codes that cross
// the wire.
//
// # Subjects
//
// Every subject starts with "gh.<stack>." so several stacks can share one NATS cluster:
//
//	gh.<stack>.w.<worker>.invoke.<function>  an invocation, addressed to one worker
//	gh.<stack>.worker.heartbeat             each worker, every 100 ms: id, process instance, capacity ([Heartbeat])
//	gh.<stack>.worker.ready                 a worker announces that it is subscribed and ready (payload: its id)
//	gh.<stack>.worker.gone                  the supervisor reports a worker that exited, with the invocations
//	                                        it had entered, those overdue and its kept answers ([WorkerGone], JSON)
//
// # Dispatch
//
// Gateways do not use a queue group: a worker frozen by a runaway guest would keep receiving work. A
// [Dispatcher] instead tracks workers by their heartbeats and sends each invocation to a live worker
// with room (fewest in flight first). It sends nothing to a worker that stopped beating, is leaving, or
// has an invocation past its function's timeout (it may be frozen). When a worker's supervisor reports
// it gone, the overdue invocation fails at once (ErrFunctionTimeout); every other invocation on that
// worker gets the answer the worker had kept for it, or runs again on another worker — safe because a
// guest cannot act outside its sandbox. Per-function concurrency
// limits are enforced here, per dispatcher (that is, per gateway node): the excess waits briefly, then
// fails with ErrThrottled.
//
// # Roles and permissions
//
// The embedded server requires credentials. [Server] generates one random password per role on every
// start and hands them out through [Server.Credentials]:
//
//   - RoleGateway may publish invocations to workers, and subscribe to reply inboxes (_INBOX.>),
//     heartbeats and worker reports.
//   - RoleWorker may subscribe to invocations addressed to workers, publish heartbeats and readiness,
//     and reply to the requests it received (one reply each); it can neither invoke functions, read
//     replies nor report workers gone.
//   - RoleControl (the process that supervises workers) may do everything within the stack's subjects.
//
// The server listens for clients on loopback only. With a [ClusterConfig] it is one node of a NATS
// cluster with clustered JetStream: only its route listener, which requires route credentials, may bind
// another address. It refuses a store directory that has held single-node JetStream
// ([ErrSingleNodeStore]). Callers creating streams size them with [Replicas]([Server.ClusterSize]).
//
// # Envelope (schema version 1)
//
// An invocation is a NATS request whose body is the event exactly as the function receives it (for HTTP
// APIs the payload format 2.0 JSON). Metadata travels in NATS headers, so the body is never re-encoded:
//
//	Gh-Envelope     "1", the envelope schema version; a worker refuses a version it does not know
//	Gh-Request-Id   the gateway's request id (also the apigw-requestid response header)
//	Gh-Deadline     the invocation deadline, Unix milliseconds
//	traceparent     W3C trace context, passed through when the client sent one
//
// The reply's body is the function's response. A failed invocation carries no body and two headers:
//
//	Gh-Error        an error code (see [Code]), converted back to a sentinel error on arrival
//	Gh-Error-Detail a short human-readable detail, never containing request data
//
// Invocations may carry bodies up to [MaxPayload] bytes (10 MB HTTP bodies grow by a third in base64).
package bus
