// Package logstream owns function output in JetStream: the [Record] of one line a function instance
// printed (or a platform message about an invocation), the bounded stream of a stack that keeps them
// ([StreamName], [Ensure]), the [Publisher] workers send records with, and the [Reader] the control
// plane reads them with, so that `gatehouse logs FN -f` works from any node.
//
// Records of function F of stack S go to subject gh.S.logs.F, one subject per function, in the stream
// gh_S_logs. The stream is bounded by bytes and by age and discards its oldest records first: logs
// are a recent window, not an archive.
//
// Publishing is fire-and-forget (a core NATS publish, no acknowledgement) so that logging never slows
// an invocation; a record the stream never stores is lost, not retried.
package logstream
