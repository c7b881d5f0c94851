// Package sandbox is the inside of a process runtime's sandbox: what this binary does when the worker
// re-executes it as a sandbox's first process (argv[0] Arg0, the Spec in the environment variable
// Env). Its init function builds the sandbox and executes the runtime process in its place, before
// main; runtimes/process, which imports it, is the worker's side.
//
// It imports only standard library packages that the Go runtime initializes before any of the
// binary's others (fmt and encoding/json and what they need, syscall), so that its init runs first:
// a sandbox does not wait for the inits of the gateway, the bus and the rest of the binary.
package sandbox

// Spec is what the worker tells the sandbox's first process to build before it becomes the runtime
// process. It travels as JSON in the environment of that first process only.
type Spec struct {
	// Probe builds the whole sandbox, then exits 0 instead of running anything: the check that the
	// node can sandbox at all.
	Probe bool `json:"probe,omitempty"`
	// Exe, Args and Env are what runs in the sandbox, with paths as the sandbox sees them.
	Exe  string   `json:"exe"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// Root is an empty directory of the worker's that the sandbox's root filesystem is mounted on
	// (in the sandbox's own mount namespace: nothing of it shows outside).
	Root string `json:"root"`
	// Task and Runtime are the host directories mounted read-only at TaskRoot and RuntimeDir;
	// Runtime may be empty.
	Task    string `json:"task"`
	Runtime string `json:"runtime,omitempty"`
	// Binds are host directories mounted read-only at their own paths: an interpreter installed
	// outside /usr.
	Binds []string `json:"binds,omitempty"`
	// Listen are the loopback addresses ("127.0.0.1:9001") to open listeners on, inside the
	// sandbox's network namespace, and hand to the worker in this order.
	Listen []string `json:"listen"`
	// TmpBytes is the size of the sandbox's /tmp.
	TmpBytes int64 `json:"tmpBytes"`
	// UID and GID are who the process runs as when the sandbox is made by root (it never runs as
	// root); ignored with UserNS.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// UserNS says the sandbox has a user namespace (the worker is not root): the process stays the
	// worker's user, root inside its namespace with no capabilities.
	UserNS bool `json:"userns,omitempty"`
}

const (
	// Arg0 is the argv[0] that tells this binary, re-executed, to build a sandbox.
	Arg0 = "gatehouse-sandbox"
	// Env is the environment variable that holds the Spec.
	Env = "GATEHOUSE_SANDBOX"
	// FD is the first process's end of the socket pair to the worker.
	FD = 3
	// Nobody is the user a sandboxed process runs as when root makes the sandbox.
	Nobody = 65534

	// TaskRoot, RuntimeDir and Tmp are where a sandboxed process sees its package, the runtime
	// interface client and its /tmp: Lambda's paths.
	TaskRoot   = "/var/task"
	RuntimeDir = "/var/runtime"
	Tmp        = "/tmp"
)

// The first process's messages to the worker, each the first byte of a write: L carries the
// listeners (SCM_RIGHTS), E an error's text, P a probe's success. The worker answers L with Go once
// the process is in its cgroups. Exec closes the socket: the worker reads end of file.
const (
	MsgListeners = 'L'
	MsgError     = 'E'
	MsgProbed    = 'P'
	MsgGo        = 'G'
)
