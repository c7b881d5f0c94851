package bus

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Role is a kind of bus user with its own permissions.
type Role string

// Roles.
const (
	RoleControl Role = "control"
	RoleGateway Role = "gateway"
	RoleWorker  Role = "worker"
)

// Credentials are a user name and password for the bus, or a NATS credentials file (a user JWT and
// its NKey seed) for an external NATS server.
type Credentials struct {
	User     string
	Password string
	// File is a .creds file; when set, User and Password are not used.
	File string
}

// ServerConfig configures the embedded NATS server. The zero value listens on a random loopback port.
type ServerConfig struct {
	// Host is the listen address; default "127.0.0.1".
	Host string
	// Port is the listen port; 0 picks a free one.
	Port int
	// Stack names the stack whose subjects the roles are limited to; default "default".
	Stack string
	// ReadyTimeout bounds how long Start waits for the server to accept connections; default 1 minute.
	ReadyTimeout time.Duration
	// StoreDir, when set, enables JetStream with its store in this directory: the control plane's
	// durable state (tokens, later functions and versions) lives there.
	StoreDir string
	// WorkerReads names JetStream streams that workers may read (stream info, consumers, direct
	// gets) but not write: the function registry's buckets.
	WorkerReads []string
	// WorkerPublishes adds subjects workers may publish to (the function log stream's).
	WorkerPublishes []string
	// NodeName names this server; default "gatehouse-<stack>". Required with Cluster, and unique per
	// node: clustered JetStream identifies its peers by it.
	NodeName string
	// Cluster, when set, makes this server a node of a NATS cluster with clustered JetStream (see
	// ClusterConfig); StoreDir is then required. The client listener stays loopback.
	Cluster *ClusterConfig
}

// WorkerInboxPrefix is the inbox prefix of worker connections: their replies and JetStream
// deliveries arrive under it, apart from the gateways' _INBOX, which workers cannot read.
const WorkerInboxPrefix = "_GH_WORKER_INBOX"

// Server is the embedded NATS server.
type Server struct {
	cfg   ServerConfig
	subj  Subjects
	creds map[Role]Credentials
	ns    *server.Server
}

// NewServer validates cfg and generates credentials. It starts nothing.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Stack == "" {
		cfg.Stack = "default"
	}
	if cfg.ReadyTimeout == 0 {
		// Generous: a server recovering its JetStream store on a loaded machine (measured: more
		// than 10 s while a test suite ran beside it) is slow, not broken.
		cfg.ReadyTimeout = time.Minute
	}
	if ip := net.ParseIP(cfg.Host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("bus: embedded server must listen on a loopback address, not %q", cfg.Host)
	}
	subj, err := NewSubjects(cfg.Stack)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if cfg.Cluster != nil {
		if err := cfg.Cluster.validate(cfg.NodeName, cfg.StoreDir); err != nil {
			return nil, err
		}
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "gatehouse-" + cfg.Stack
	}
	s := &Server{cfg: cfg, subj: subj, creds: map[Role]Credentials{}}
	for _, r := range []Role{RoleControl, RoleGateway, RoleWorker} {
		pw, err := randomSecret()
		if err != nil {
			return nil, fmt.Errorf("bus: generating credentials: %w", err)
		}
		s.creds[r] = Credentials{User: string(r), Password: pw}
	}
	return s, nil
}

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Credentials returns the credentials generated for role.
func (s *Server) Credentials(role Role) Credentials { return s.creds[role] }

func (s *Server) users() []*server.User {
	perms := rolePermissions(s.subj, s.cfg.WorkerReads, s.cfg.WorkerPublishes)
	var users []*server.User
	for _, r := range []Role{RoleControl, RoleGateway, RoleWorker} {
		users = append(users, &server.User{Username: s.creds[r].User, Password: s.creds[r].Password, Permissions: perms[r]})
	}
	return users
}

// Permissions returns what each role may do on the bus of stack, for an external NATS whose accounts
// the operator configures (`gatehouse cluster nats-permissions`): the embedded server gives its users
// exactly these. workerReads and workerPublishes are as in ServerConfig.
func Permissions(stack string, workerReads, workerPublishes []string) (map[Role]*server.Permissions, error) {
	subj, err := NewSubjects(stack)
	if err != nil {
		return nil, err
	}
	return rolePermissions(subj, workerReads, workerPublishes), nil
}

func rolePermissions(subj Subjects, workerReads, workerPublishes []string) map[Role]*server.Permissions {
	all := subj.All()
	// The control process also uses JetStream: its API, key-value and object store subjects.
	control := []string{all, "_INBOX.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>"}
	return map[Role]*server.Permissions{
		RoleControl: {
			Publish:   &server.SubjectPermission{Allow: control},
			Subscribe: &server.SubjectPermission{Allow: control},
		},
		// Gateways invoke functions, and perform and answer operations on WebSocket connections.
		RoleGateway: {
			Publish:   &server.SubjectPermission{Allow: []string{subj.AnyWorkerInvoke(), subj.AnyConnection()}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", subj.WorkerGone(), subj.WorkerHeartbeat(), subj.AnyConnection()}},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
		},
		RoleWorker: {
			Publish:   &server.SubjectPermission{Allow: workerPublishAllow(subj, workerReads, workerPublishes)},
			Subscribe: &server.SubjectPermission{Allow: []string{subj.AnyWorkerInvoke(), WorkerInboxPrefix + ".>"}},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: 15 * time.Minute},
		},
	}
}

// workerPublishAllow is what a worker may publish: readiness, heartbeats, connection operations, the
// configured subjects, and the JetStream requests that read the streams in workerReads.
func workerPublishAllow(subj Subjects, workerReads, workerPublishes []string) []string {
	allow := []string{subj.WorkerReady(), subj.WorkerHeartbeat(), subj.AnyConnection()}
	allow = append(allow, workerPublishes...)
	for _, stream := range workerReads {
		allow = append(allow,
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.STREAM.MSG.GET."+stream,
			"$JS.API.DIRECT.GET."+stream, "$JS.API.DIRECT.GET."+stream+".>",
			"$JS.API.CONSUMER.CREATE."+stream, "$JS.API.CONSUMER.CREATE."+stream+".>",
			"$JS.API.CONSUMER.INFO."+stream+".*",
			"$JS.API.CONSUMER.DELETE."+stream+".*",
			"$JS.FC."+stream+".>",
		)
	}
	return allow
}

// Start starts the server and waits until it accepts connections.
func (s *Server) Start() error {
	port := s.cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: s.cfg.NodeName,
		Host:       s.cfg.Host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: MaxPayload,
		// Pending bytes per client must hold several maximal messages.
		MaxPending: 8 * MaxPayload,
		Users:      s.users(),
	}
	if s.cfg.StoreDir != "" {
		opts.JetStream = true
		opts.StoreDir = s.cfg.StoreDir
		opts.JetStreamMaxMemory = 64 << 20
	}
	if s.cfg.Cluster != nil {
		if err := checkClusterStore(s.cfg.StoreDir, s.cfg.Cluster.Name); err != nil {
			return err
		}
		applyCluster(opts, s.cfg)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bus: creating server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(s.cfg.ReadyTimeout) {
		ns.Shutdown()
		return errors.New("bus: server did not become ready")
	}
	// With NoLog, nats-server's fatal start-up errors (e.g. JetStream refusing its store) are silent
	// and the server runs on without JetStream.
	if opts.JetStream && !ns.JetStreamEnabled() {
		ns.Shutdown()
		return errors.New("bus: JetStream did not start")
	}
	s.ns = ns
	return nil
}

// ClientURL returns the URL clients connect to.
func (s *Server) ClientURL() string {
	if s.ns == nil {
		return ""
	}
	addr := s.ns.Addr().(*net.TCPAddr)
	return "nats://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(addr.Port))
}

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
