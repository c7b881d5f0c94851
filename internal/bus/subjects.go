package bus

import (
	"fmt"
	"strings"
)

// Subjects names the subjects of one stack.
type Subjects struct {
	prefix string
}

// NewSubjects returns the subjects of the named stack. The name must be a valid subject token.
func NewSubjects(stack string) (Subjects, error) {
	if err := ValidToken(stack); err != nil {
		return Subjects{}, fmt.Errorf("stack name: %w", err)
	}
	return Subjects{prefix: "gh." + stack + "."}, nil
}

// All matches every subject of the stack.
func (s Subjects) All() string { return s.prefix + ">" }

// WorkerInvoke is the subject on which worker runs the named function.
func (s Subjects) WorkerInvoke(worker, function string) string {
	return s.prefix + "w." + worker + ".invoke." + function
}

// WorkerInvokeAll matches every invocation addressed to worker.
func (s Subjects) WorkerInvokeAll(worker string) string {
	return s.prefix + "w." + worker + ".invoke.*"
}

// AnyWorkerInvoke matches every invocation addressed to any worker.
func (s Subjects) AnyWorkerInvoke() string { return s.prefix + "w.*.invoke.*" }

// FunctionOf returns the function named by an invocation subject.
func (s Subjects) FunctionOf(subject string) (string, bool) {
	i := strings.LastIndex(subject, ".invoke.")
	if i < 0 || !strings.HasPrefix(subject, s.prefix) {
		return "", false
	}
	return subject[i+len(".invoke."):], true
}

// WorkerHeartbeat is where workers publish their heartbeats.
func (s Subjects) WorkerHeartbeat() string { return s.prefix + "worker.heartbeat" }

// WorkerReady is where a worker announces it is ready.
func (s Subjects) WorkerReady() string { return s.prefix + "worker.ready" }

// WorkerGone is where the supervisor reports a worker process that exited or was killed.
func (s Subjects) WorkerGone() string { return s.prefix + "worker.gone" }

// NodeStatus is where every node of the stack publishes its status, twice a second.
func (s Subjects) NodeStatus() string { return s.prefix + "node.status" }

// Connection is the subject on which node performs op ("post", "get" or "delete") on one of the
// WebSocket connections it holds.
func (s Subjects) Connection(node, op string) string { return s.prefix + "conn." + node + "." + op }

// NodeConnections matches the connection operations addressed to node.
func (s Subjects) NodeConnections(node string) string { return s.prefix + "conn." + node + ".*" }

// AnyConnection matches the connection operations addressed to any node.
func (s Subjects) AnyConnection() string { return s.prefix + "conn.*.*" }

// ValidToken reports whether s can be used as one subject token: 1 to 128 characters of letters, digits,
// '-' and '_'.
func ValidToken(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%q must be 1 to 128 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q may contain only letters, digits, '-' and '_'", s)
		}
	}
	return nil
}
