package functions

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Registry errors. Every error the registry returns for one of these reasons wraps the sentinel, with
// a prefix saying what was being done.
var (
	// ErrNotFound means the function, version, alias or module does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a concurrent change won: an alias's revision moved on, or a publish or delete
	// lost the race too many times in a row. Trying again may succeed.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the request itself is wrong: a bad name, qualifier or weight, a version that
	// does not exist for an alias, secrets without a secret key.
	ErrInvalid = errors.New("invalid")
	// ErrCorrupt means stored data failed a check: a module whose bytes do not match its SHA-256, a
	// record that does not decode or contradicts its key, sealed secrets that do not open.
	ErrCorrupt = errors.New("corrupt")
)

// Registry defaults and limits.
const (
	// DefaultStack is RegistryConfig.Stack's default.
	DefaultStack = "default"
	// RegistryHistory is how many revisions of each record the Key-Value bucket keeps.
	RegistryHistory = 5
	// MinCollectAge is the least age of an unreferenced module that [Registry.Collect] deletes. It is
	// far longer than any publish takes between finding a module stored and writing the version
	// that refers to it.
	MinCollectAge = time.Hour

	// moduleTouchAge: a publish that finds its module stored for longer than this refreshes the
	// object's modification time, so that Collect (which needs MinCollectAge) cannot delete it while
	// the publish writes its version record.
	moduleTouchAge = 10 * time.Minute
	// maxRecordBytes bounds a record in the Key-Value bucket. The largest is a version record with a
	// 4 KB environment, sealed or not, far below this.
	maxRecordBytes = 64 << 10
	// maxAttempts bounds the optimistic retries of a publish or delete that keeps losing races.
	maxAttempts = 100
	// maxBatch bounds the changes Run applies before it replaces the snapshot.
	maxBatch = 1024
)

// FunctionsBucket returns the name of the stack's Key-Value bucket of registry records.
func FunctionsBucket(stack string) string { return "gh_" + stack + "_functions" }

// ModulesBucket returns the name of the stack's Object Store of modules.
func ModulesBucket(stack string) string { return "gh_" + stack + "_modules" }

// RegistryConfig configures a [Registry]. The zero value is valid: stack "default", one replica, no
// secret key (publishing a bundle with secrets then fails), logs discarded.
type RegistryConfig struct {
	// Stack names the stack; it prefixes the buckets' names ([FunctionsBucket], [ModulesBucket]).
	// 1 to 128 letters, digits, - and _; default DefaultStack.
	Stack string
	// Replicas is the number of replicas of each bucket in a clustered JetStream, 1 to 5; default 1.
	// It applies when the registry creates the buckets; existing buckets keep theirs.
	Replicas int
	// SecretKey is the AES-256 key (SecretKeySize bytes) that seals secret environment values. It is
	// required to publish a bundle whose manifest has secrets, and to open them.
	SecretKey []byte
	// Logger receives warnings: records that cannot be read, cleanup that failed. Default discards.
	Logger *slog.Logger
}

// Validate reports whether the configuration can be used; zero fields are valid (their defaults).
func (c RegistryConfig) Validate() error {
	if c.Stack != "" && !validName(c.Stack, 128) {
		return fmt.Errorf("functions: registry: stack %s: want 1 to 128 letters, digits, - and _: %w", yamlnode.QuoteShort(c.Stack), ErrInvalid)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("functions: registry: %d replicas: want 1 to 5: %w", c.Replicas, ErrInvalid)
	}
	if c.SecretKey != nil && len(c.SecretKey) != SecretKeySize {
		return fmt.Errorf("functions: registry: the secret key is %d bytes; want %d: %w", len(c.SecretKey), SecretKeySize, ErrInvalid)
	}
	return nil
}

// Registry stores functions, their immutable numbered versions and their aliases in JetStream:
// modules in an Object Store named by their SHA-256, records in a Key-Value bucket (see
// docs/registry.md). Every node that opens the registry of a stack sees the same functions.
//
// The methods that take a context read and write the store directly; [Registry.Run] keeps an
// immutable [Snapshot] of everything up to date for readers on the hot path, which take no lock. A
// Registry is safe for concurrent use.
type Registry struct {
	cfg  RegistryConfig
	log  *slog.Logger
	kv   jetstream.KeyValue
	obs  jetstream.ObjectStore
	keys *secretKeys // nil without a secret key

	now func() time.Time
	// beforeCommit, when set (by tests), runs in Publish between writing a version record and
	// committing it, to stage races.
	beforeCommit func(VersionRecord)

	snap    atomic.Pointer[Snapshot]
	synced  chan struct{}
	running atomic.Bool
}

// OpenRegistry binds to the stack's buckets through js, creating them when they do not exist (so
// opening is idempotent, and a client allowed only to use existing buckets can open them). It starts
// nothing: call [Registry.Run] to keep the snapshot.
func OpenRegistry(ctx context.Context, js jetstream.JetStream, cfg RegistryConfig) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Stack == "" {
		cfg.Stack = DefaultStack
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, now: time.Now, synced: make(chan struct{})}
	if cfg.SecretKey != nil {
		keys, err := newSecretKeys(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("functions: registry: secret key: %w", err)
		}
		r.keys = keys
	}

	kvName := FunctionsBucket(cfg.Stack)
	kv, err := js.KeyValue(ctx, kvName)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:       kvName,
			Description:  "Gatehouse functions, versions and aliases of stack " + cfg.Stack,
			History:      RegistryHistory,
			MaxValueSize: maxRecordBytes,
			Storage:      jetstream.FileStorage,
			Replicas:     cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another node created it first
			kv, err = js.KeyValue(ctx, kvName)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("functions: registry: opening bucket %s: %w", kvName, err)
	}

	obsName := ModulesBucket(cfg.Stack)
	obs, err := js.ObjectStore(ctx, obsName)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      obsName,
			Description: "Gatehouse function modules of stack " + cfg.Stack + ", named by SHA-256",
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			// S2, on sealed blocks: six 5.7 MB Go modules took 15 MB on disk instead of 34 MB;
			// reading one back took 159 ms instead of 68 ms, once per version per worker.
			Compression: true,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = js.ObjectStore(ctx, obsName)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("functions: registry: opening object store %s: %w", obsName, err)
	}
	r.kv, r.obs = kv, obs
	r.snap.Store(newSnapshot(0, map[string]*snapFunction{}))
	return r, nil
}

// ---------------------------------------------------------------------------------------------
// Keys.

func fnKey(name string) string           { return "fn." + name }
func verKey(name string, n int) string   { return "ver." + name + "." + strconv.Itoa(n) }
func aliasKey(name, alias string) string { return "alias." + name + "." + alias }
func versionsFilter(name string) string  { return "ver." + name + ".*" }
func aliasesFilter(name string) string   { return "alias." + name + ".*" }
func validFunctionName(name string) bool { return validName(name, MaxNameLength) }

func badFunctionName(name string) error {
	return fmt.Errorf("function name %s: want 1 to %d letters, digits, - and _: %w", yamlnode.QuoteShort(name), MaxNameLength, ErrInvalid)
}

// ValidAliasName reports whether s can name an alias: 1 to MaxAliasNameLength letters, digits, -
// and _, and not all digits (which would read as a version), as in Lambda.
func ValidAliasName(s string) bool {
	return validName(s, MaxAliasNameLength) && strings.Trim(s, "0123456789") != ""
}

// ---------------------------------------------------------------------------------------------
// Reading records.

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// decode reads a record's JSON, checking its schema version.
func decode(key string, data []byte, v any, schema func() int) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("record %s does not decode: %v: %w", key, err, ErrCorrupt)
	}
	if s := schema(); s != RecordSchemaVersion {
		return fmt.Errorf("record %s has schemaVersion %d; this Gatehouse reads %d: %w", key, s, RecordSchemaVersion, ErrCorrupt)
	}
	return nil
}

func decodeFunction(key string, data []byte, rev uint64) (FunctionRecord, error) {
	var f FunctionRecord
	if err := decode(key, data, &f, func() int { return f.SchemaVersion }); err != nil {
		return f, err
	}
	if fnKey(f.Name) != key || f.ID == "" || f.LatestVersion < 0 {
		return f, fmt.Errorf("record %s contradicts its key (function %s, id %q, latest %d): %w", key, yamlnode.QuoteShort(f.Name), f.ID, f.LatestVersion, ErrCorrupt)
	}
	f.Revision = rev
	return f, nil
}

func decodeVersion(key string, data []byte, rev uint64) (VersionRecord, error) {
	var v VersionRecord
	if err := decode(key, data, &v, func() int { return v.SchemaVersion }); err != nil {
		return v, err
	}
	if v.Version < 1 || verKey(v.Function, v.Version) != key || v.FunctionID == "" {
		return v, fmt.Errorf("record %s contradicts its key (function %s, version %d): %w", key, yamlnode.QuoteShort(v.Function), v.Version, ErrCorrupt)
	}
	v.Revision = rev
	return v, nil
}

func decodeAlias(key string, data []byte, rev uint64) (AliasRecord, error) {
	var a AliasRecord
	if err := decode(key, data, &a, func() int { return a.SchemaVersion }); err != nil {
		return a, err
	}
	if aliasKey(a.Function, a.Name) != key || a.FunctionID == "" {
		return a, fmt.Errorf("record %s contradicts its key (function %s, alias %s): %w", key, yamlnode.QuoteShort(a.Function), yamlnode.QuoteShort(a.Name), ErrCorrupt)
	}
	a.Revision = rev
	return a, nil
}

// loadFunction reads the function record as stored, reserved or not; ErrNotFound when absent.
func (r *Registry) loadFunction(ctx context.Context, name string) (FunctionRecord, error) {
	e, err := r.kv.Get(ctx, fnKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return FunctionRecord{}, fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return FunctionRecord{}, err
	}
	return decodeFunction(e.Key(), e.Value(), e.Revision())
}

// liveFunction reads a function that has at least one version.
func (r *Registry) liveFunction(ctx context.Context, name string) (FunctionRecord, error) {
	if !validFunctionName(name) {
		return FunctionRecord{}, badFunctionName(name)
	}
	f, err := r.loadFunction(ctx, name)
	if err == nil && f.LatestVersion == 0 {
		err = fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	return f, err
}

// loadVersion reads a version record as stored, whatever function it belongs to; ErrNotFound when
// absent.
func (r *Registry) loadVersion(ctx context.Context, name string, n int) (VersionRecord, error) {
	e, err := r.kv.Get(ctx, verKey(name, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return VersionRecord{}, fmt.Errorf("function %s version %d: %w", name, n, ErrNotFound)
	}
	if err != nil {
		return VersionRecord{}, err
	}
	return decodeVersion(e.Key(), e.Value(), e.Revision())
}

// committedVersion reads version n of f, which must be committed (n ≤ f.LatestVersion) and belong to f.
func (r *Registry) committedVersion(ctx context.Context, f FunctionRecord, n int) (VersionRecord, error) {
	if n < 1 || n > f.LatestVersion {
		return VersionRecord{}, fmt.Errorf("function %s version %d: %w", f.Name, n, ErrNotFound)
	}
	v, err := r.loadVersion(ctx, f.Name, n)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// A committed version is never deleted while its function lives.
			return v, fmt.Errorf("function %s version %d is committed but its record is missing: %w", f.Name, n, ErrCorrupt)
		}
		return v, err
	}
	if v.FunctionID != f.ID {
		return v, fmt.Errorf("function %s version %d belongs to another function id (%s, not %s): %w", f.Name, n, v.FunctionID, f.ID, ErrCorrupt)
	}
	return v, nil
}

// scan returns the current entries of the keys matching filter, deleted ones left out.
func (r *Registry) scan(ctx context.Context, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := r.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer stopWatcher(w)
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("the watch closed")
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stopWatcher stops w and drains its channel until it closes: the watcher's callback blocks on a
// full channel, and only closes it once it has returned.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Reads.

// Get returns the function's record. A function exists once its first version is published.
func (r *Registry) Get(ctx context.Context, name string) (FunctionRecord, error) {
	f, err := r.liveFunction(ctx, name)
	if err != nil {
		return FunctionRecord{}, fmt.Errorf("functions: getting function: %w", err)
	}
	return f, nil
}

// List returns every function, sorted by name.
func (r *Registry) List(ctx context.Context) ([]FunctionRecord, error) {
	entries, err := r.scan(ctx, "fn.*")
	if err != nil {
		return nil, fmt.Errorf("functions: listing functions: %w", err)
	}
	out := []FunctionRecord{}
	for _, e := range entries {
		f, err := decodeFunction(e.Key(), e.Value(), e.Revision())
		if err != nil {
			r.log.Warn("skipping a registry record", "key", e.Key(), "err", err)
			continue
		}
		if f.LatestVersion > 0 {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b FunctionRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Versions returns the function's versions, oldest first.
func (r *Registry) Versions(ctx context.Context, name string) ([]VersionRecord, error) {
	f, err := r.liveFunction(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("functions: listing versions: %w", err)
	}
	entries, err := r.scan(ctx, versionsFilter(name))
	if err != nil {
		return nil, fmt.Errorf("functions: listing versions of %s: %w", name, err)
	}
	out := make([]VersionRecord, 0, f.LatestVersion)
	for _, e := range entries {
		v, err := decodeVersion(e.Key(), e.Value(), e.Revision())
		if err != nil {
			r.log.Warn("skipping a registry record", "key", e.Key(), "err", err)
			continue
		}
		if v.FunctionID == f.ID && v.Version <= f.LatestVersion {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b VersionRecord) int { return a.Version - b.Version })
	return out, nil
}

// Version returns version n of the function.
func (r *Registry) Version(ctx context.Context, name string, n int) (VersionRecord, error) {
	f, err := r.liveFunction(ctx, name)
	if err != nil {
		return VersionRecord{}, fmt.Errorf("functions: getting version: %w", err)
	}
	v, err := r.committedVersion(ctx, f, n)
	if err != nil {
		return VersionRecord{}, fmt.Errorf("functions: getting version: %w", err)
	}
	return v, nil
}

// Alias returns the function's alias.
func (r *Registry) Alias(ctx context.Context, function, alias string) (AliasRecord, error) {
	a, err := r.loadAlias(ctx, function, alias)
	if err != nil {
		return AliasRecord{}, fmt.Errorf("functions: getting alias: %w", err)
	}
	return a, nil
}

// loadAlias reads an alias of a live function, ignoring one left behind by a deleted function.
func (r *Registry) loadAlias(ctx context.Context, function, alias string) (AliasRecord, error) {
	f, err := r.liveFunction(ctx, function)
	if err != nil {
		return AliasRecord{}, err
	}
	if !ValidAliasName(alias) {
		return AliasRecord{}, badAliasName(alias)
	}
	e, err := r.kv.Get(ctx, aliasKey(function, alias))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return AliasRecord{}, fmt.Errorf("alias %s of %s: %w", alias, function, ErrNotFound)
	}
	if err != nil {
		return AliasRecord{}, fmt.Errorf("alias %s of %s: %w", alias, function, err)
	}
	a, err := decodeAlias(e.Key(), e.Value(), e.Revision())
	if err != nil {
		return AliasRecord{}, err
	}
	if a.FunctionID != f.ID { // left behind by a deleted function of the same name
		return AliasRecord{}, fmt.Errorf("alias %s of %s: %w", alias, function, ErrNotFound)
	}
	return a, nil
}

// Aliases returns the function's aliases, sorted by name.
func (r *Registry) Aliases(ctx context.Context, function string) ([]AliasRecord, error) {
	f, err := r.liveFunction(ctx, function)
	if err != nil {
		return nil, fmt.Errorf("functions: listing aliases: %w", err)
	}
	entries, err := r.scan(ctx, aliasesFilter(function))
	if err != nil {
		return nil, fmt.Errorf("functions: listing aliases of %s: %w", function, err)
	}
	out := []AliasRecord{}
	for _, e := range entries {
		a, err := decodeAlias(e.Key(), e.Value(), e.Revision())
		if err != nil {
			r.log.Warn("skipping a registry record", "key", e.Key(), "err", err)
			continue
		}
		if a.FunctionID == f.ID {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b AliasRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Module returns the module stored under its lower-case hex SHA-256, after checking that the bytes
// read have that SHA-256 (else an error wrapping ErrCorrupt).
func (r *Registry) Module(ctx context.Context, sha string) ([]byte, error) {
	if !validSHA256(sha) {
		return nil, fmt.Errorf("functions: reading module: %s is not a lower-case hex SHA-256: %w", yamlnode.QuoteShort(sha), ErrInvalid)
	}
	data, err := r.obs.GetBytes(ctx, sha)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return nil, fmt.Errorf("functions: reading module %s: %w", sha, ErrNotFound)
	case errors.Is(err, jetstream.ErrDigestMismatch):
		return nil, fmt.Errorf("functions: reading module %s: %v: %w", sha, err, ErrCorrupt)
	case err != nil:
		return nil, fmt.Errorf("functions: reading module %s: %w", sha, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("functions: reading module %s: the stored bytes have SHA-256 %x: %w", sha, sum, ErrCorrupt)
	}
	return data, nil
}

func validSHA256(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// OpenSecrets decrypts the values of v's secrets (nil when it has none). It is the only way to read
// them: workers call it when they load a version, and pass the result to v.Manifest.Manifest.
func (r *Registry) OpenSecrets(v VersionRecord) (map[string]string, error) {
	if v.SealedSecrets == nil {
		if len(v.Manifest.Secrets) > 0 {
			return nil, fmt.Errorf("functions: opening secrets of %s version %d: the record lists secrets but holds no sealed values: %w", v.Function, v.Version, ErrCorrupt)
		}
		return nil, nil
	}
	if r.keys == nil {
		return nil, fmt.Errorf("functions: opening secrets of %s version %d: the registry has no secret key: %w", v.Function, v.Version, ErrInvalid)
	}
	secrets, err := r.keys.open(v.SealedSecrets, v.Function, v.FunctionID, v.Version)
	if err != nil {
		return nil, fmt.Errorf("functions: opening secrets of %s version %d: %w", v.Function, v.Version, err)
	}
	for _, s := range v.Manifest.Secrets {
		if _, ok := secrets[s]; !ok {
			return nil, fmt.Errorf("functions: opening secrets of %s version %d: no value for %s: %w", v.Function, v.Version, s, ErrCorrupt)
		}
	}
	return secrets, nil
}

// ---------------------------------------------------------------------------------------------
// Publishing.

// PublishOptions are the options of [Registry.Publish].
type PublishOptions struct {
	// Description is stored with a new version, at most MaxDescriptionLength bytes. It is not part
	// of a version's identity: publishing the newest version's bundle again with another
	// description returns that version unchanged.
	Description string
	// By and From say who publishes (an admin token's name) and from where (an IP address); they are
	// kept in a new version's record, from which the audit log can be completed.
	By, From string
}

// publishing is a bundle prepared for publishing.
type publishing struct {
	name        string
	module      []byte
	sha         string
	manifest    ManifestRecord
	secrets     map[string]string
	manifestSHA string
	description string
	by, from    string
}

func (r *Registry) prepare(b *Bundle, opts PublishOptions) (*publishing, error) {
	if b == nil {
		return nil, fmt.Errorf("no bundle: %w", ErrInvalid)
	}
	if err := b.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if msg := checkModuleHeader(b.Module); msg != "" {
		return nil, fmt.Errorf("the module %s: %w", msg, ErrInvalid)
	}
	sum := sha256.Sum256(b.Module)
	sha := hex.EncodeToString(sum[:])
	if b.SHA256 != sha {
		return nil, fmt.Errorf("the bundle says its module's SHA-256 is %s, but it is %s: %w", yamlnode.QuoteShort(b.SHA256), sha, ErrInvalid)
	}
	if len(opts.Description) > MaxDescriptionLength || !utf8.ValidString(opts.Description) {
		return nil, fmt.Errorf("the description must be UTF-8 of at most %d bytes: %w", MaxDescriptionLength, ErrInvalid)
	}
	rec, secrets := NewManifestRecord(&b.Manifest)
	digest := ""
	if len(secrets) > 0 {
		if r.keys == nil {
			return nil, fmt.Errorf("the manifest has secrets (%s) but the registry has no secret key to seal them: %w",
				strings.Join(rec.Secrets, ", "), ErrInvalid)
		}
		digest = r.keys.secretsDigest(secrets)
	}
	manifestSHA, err := manifestDigest(rec, digest)
	if err != nil {
		return nil, err
	}
	return &publishing{name: b.Manifest.Name, module: b.Module, sha: sha, manifest: rec, secrets: secrets,
		manifestSHA: manifestSHA, description: opts.Description, by: opts.By, from: opts.From}, nil
}

// versionRecord makes the record of p as version n of f, sealing its secrets for that version.
func (r *Registry) versionRecord(p *publishing, f FunctionRecord, n int) (VersionRecord, error) {
	v := VersionRecord{
		SchemaVersion:  RecordSchemaVersion,
		Function:       p.name,
		FunctionID:     f.ID,
		Version:        n,
		ModuleSHA256:   p.sha,
		ModuleSize:     int64(len(p.module)),
		Manifest:       p.manifest.clone(),
		ManifestSHA256: p.manifestSHA,
		Description:    p.description,
		CreatedAt:      r.timestamp(),
		DeployedBy:     p.by,
		DeployedFrom:   p.from,
	}
	if len(p.secrets) > 0 {
		sealed, err := r.keys.seal(p.secrets, p.name, f.ID, n)
		if err != nil {
			return v, fmt.Errorf("sealing secrets: %w", err)
		}
		v.SealedSecrets = sealed
	}
	return v, nil
}

func (r *Registry) timestamp() time.Time { return r.now().UTC().Truncate(time.Millisecond) }

// Publish stores the bundle's module, unless it is stored already, and makes it the function's next
// version. Publishing the bundle of the function's newest version again (the same module, and a
// manifest with the same ManifestSHA256) returns that version with created false: the same bytes give
// the same version.
//
// # Steps and crash safety
//
// A publish writes in this order, and a crash between any two steps leaves a consistent registry:
//
//  1. the module object (content-addressed; until a version refers to it, Collect may remove it);
//  2. when the function does not exist, its record with LatestVersion 0 and a new random ID (readers
//     treat such a function as absent);
//  3. the version record at LatestVersion+1, with a create, which fails if the number is taken;
//  4. the function record's LatestVersion, with a compare-and-set on the revision read in step 2:
//     this commits the version.
//
// Readers only trust versions up to LatestVersion whose FunctionID is the function's ID. A version
// record written at LatestVersion+1 but not committed (a publish that crashed, or that is still
// running) is adopted by the next publish of the function, which commits it before anything else:
// the crashed publish's version takes its number, and a retried publish of the same bundle then
// returns it. Records of a deleted function with the same name are told apart by their ID and
// removed when met.
//
// # Errors
//
// ErrInvalid for a bundle that fails validation, a module whose SHA-256 is not the bundle's, or
// secrets without a secret key; ErrConflict if the publish lost a race maxAttempts times in a row;
// errors from JetStream as they are.
func (r *Registry) Publish(ctx context.Context, b *Bundle, opts PublishOptions) (VersionRecord, bool, error) {
	p, err := r.prepare(b, opts)
	if err != nil {
		return VersionRecord{}, false, fmt.Errorf("functions: publishing: %w", err)
	}
	if err := r.storeModule(ctx, p.sha, p.module); err != nil {
		return VersionRecord{}, false, fmt.Errorf("functions: publishing %s: storing module %s: %w", p.name, p.sha, err)
	}
	v, created, err := r.publishRecords(ctx, p)
	if err != nil {
		return VersionRecord{}, false, fmt.Errorf("functions: publishing %s: %w", p.name, err)
	}
	return v, created, nil
}

// publishRecords runs steps 2–4 of a publish, helping any uncommitted version along first.
func (r *Registry) publishRecords(ctx context.Context, p *publishing) (VersionRecord, bool, error) {
	var mine VersionRecord // the version this call created, once it has
	for range maxAttempts {
		if err := ctx.Err(); err != nil {
			return VersionRecord{}, false, err
		}
		f, err := r.reserve(ctx, p.name)
		if err != nil {
			return VersionRecord{}, false, err
		}
		n := f.LatestVersion
		if mine.Version != 0 && mine.FunctionID == f.ID && n >= mine.Version {
			return mine, true, nil // committed, by this call or by one that helped it
		}
		pending, err := r.loadVersion(ctx, p.name, n+1)
		switch {
		case err == nil && pending.FunctionID == f.ID:
			// Written but not committed: crashed or still running. Commit it for its publisher
			// (who sees it committed and returns), then look again.
			if _, err := r.commit(ctx, f, n+1); err != nil && !errors.Is(err, ErrConflict) {
				return VersionRecord{}, false, err
			}
			continue
		case err == nil:
			// Left behind by a deleted function of the same name: remove it.
			if err := r.kv.Purge(ctx, verKey(p.name, n+1), jetstream.LastRevision(pending.Revision)); err != nil && !isConflict(err) {
				return VersionRecord{}, false, fmt.Errorf("removing a stale version record: %w", err)
			}
			continue
		case !errors.Is(err, ErrNotFound):
			return VersionRecord{}, false, err
		}
		if n > 0 {
			latest, err := r.committedVersion(ctx, f, n)
			if err != nil {
				return VersionRecord{}, false, err
			}
			if latest.ModuleSHA256 == p.sha && latest.ManifestSHA256 == p.manifestSHA {
				return latest, false, nil
			}
		}
		v, err := r.versionRecord(p, f, n+1)
		if err != nil {
			return VersionRecord{}, false, err
		}
		if err := r.createVersion(ctx, &v); errors.Is(err, ErrConflict) {
			continue // another publish took the number
		} else if err != nil {
			return VersionRecord{}, false, err
		}
		mine = v
		if r.beforeCommit != nil {
			r.beforeCommit(v)
		}
		if _, err := r.commit(ctx, f, v.Version); err == nil {
			return v, true, nil
		} else if !errors.Is(err, ErrConflict) {
			return VersionRecord{}, false, err
		}
		// The function record moved: another publish committed this version for us, or the
		// function was deleted. The next round tells which.
	}
	return VersionRecord{}, false, fmt.Errorf("gave up after %d attempts: %w", maxAttempts, ErrConflict)
}

// storeModule is step 1: it stores the module under its SHA-256 unless an object with that content is
// there already (the object store's own digest is SHA-256 too). An object with other content under
// that name, which can only be damage, is replaced.
func (r *Registry) storeModule(ctx context.Context, sha string, module []byte) error {
	sum := sha256.Sum256(module)
	digest := "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:])
	info, err := r.obs.GetInfo(ctx, sha)
	switch {
	case err == nil && info.Digest == digest && info.Size == uint64(len(module)):
		if r.now().Sub(info.ModTime) > moduleTouchAge {
			// Refresh its time, so that Collect does not remove it while this publish refers to it.
			if err := r.obs.UpdateMeta(ctx, sha, info.ObjectMeta); err != nil {
				return fmt.Errorf("refreshing: %w", err)
			}
		}
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return err
	case err == nil:
		r.log.Warn("replacing a damaged module", "sha256", sha, "digest", info.Digest, "size", info.Size)
	}
	_, err = r.obs.Put(ctx, jetstream.ObjectMeta{Name: sha}, bytes.NewReader(module))
	return err
}

// reserve is step 2: it returns the function's record, creating it with LatestVersion 0 and a new ID
// when there is none.
func (r *Registry) reserve(ctx context.Context, name string) (FunctionRecord, error) {
	f, err := r.loadFunction(ctx, name)
	if !errors.Is(err, ErrNotFound) {
		return f, err
	}
	now := r.timestamp()
	f = FunctionRecord{SchemaVersion: RecordSchemaVersion, Name: name, ID: newID(), CreatedAt: now, UpdatedAt: now}
	data, err := json.Marshal(f)
	if err != nil {
		return f, err
	}
	rev, err := r.kv.Create(ctx, fnKey(name), data)
	if isConflict(err) {
		return r.loadFunction(ctx, name) // another publish reserved it first
	}
	if err != nil {
		return f, err
	}
	f.Revision = rev
	return f, nil
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// createVersion is step 3: it writes v, failing with ErrConflict when its number is taken.
func (r *Registry) createVersion(ctx context.Context, v *VersionRecord) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	rev, err := r.kv.Create(ctx, verKey(v.Function, v.Version), data)
	if isConflict(err) {
		return fmt.Errorf("version %d exists: %w", v.Version, ErrConflict)
	}
	if err != nil {
		return err
	}
	v.Revision = rev
	return nil
}

// commit is step 4: it sets f's LatestVersion to n, if f's record is still at f.Revision (else
// ErrConflict).
func (r *Registry) commit(ctx context.Context, f FunctionRecord, n int) (FunctionRecord, error) {
	f.LatestVersion = n
	f.UpdatedAt = r.timestamp()
	data, err := json.Marshal(f)
	if err != nil {
		return f, err
	}
	rev, err := r.kv.Update(ctx, fnKey(f.Name), data, f.Revision)
	if isConflict(err) {
		return f, fmt.Errorf("function %s changed: %w", f.Name, ErrConflict)
	}
	if err != nil {
		return f, err
	}
	f.Revision = rev
	return f, nil
}

// ---------------------------------------------------------------------------------------------
// Deleting.

// Delete deletes the function: its record first, which removes it, its versions and its aliases
// for every reader at once, then its version and alias records. Modules stay for [Registry.Collect]:
// other functions may use them, and a publish may be about to.
//
// A crash, or a failure, after the first step leaves records that belong to no function; they are
// invisible, and removed by the next publish that meets them, or by Collect. Delete returns nil once
// the function is deleted, even if removing those records failed (that is logged).
func (r *Registry) Delete(ctx context.Context, name string) error {
	for range maxAttempts {
		f, err := r.liveFunction(ctx, name)
		if err != nil {
			return fmt.Errorf("functions: deleting function: %w", err)
		}
		err = r.kv.Delete(ctx, fnKey(name), jetstream.LastRevision(f.Revision))
		if isConflict(err) {
			continue // a publish committed meanwhile: delete that too
		}
		if err != nil {
			return fmt.Errorf("functions: deleting function %s: %w", name, err)
		}
		if n, err := r.sweep(ctx, name, f.ID); err != nil {
			r.log.Warn("removing the records of a deleted function", "function", name, "removed", n, "err", err)
		}
		return nil
	}
	return fmt.Errorf("functions: deleting function %s: gave up after %d attempts: %w", name, maxAttempts, ErrConflict)
}

// sweep purges the version and alias records of the function name whose ID is id.
func (r *Registry) sweep(ctx context.Context, name, id string) (int, error) {
	removed := 0
	for _, filter := range []string{versionsFilter(name), aliasesFilter(name)} {
		entries, err := r.scan(ctx, filter)
		if err != nil {
			return removed, err
		}
		for _, e := range entries {
			var rec struct {
				FunctionID string `json:"functionId"`
			}
			if json.Unmarshal(e.Value(), &rec) != nil || rec.FunctionID != id {
				continue
			}
			if err := r.kv.Purge(ctx, e.Key(), jetstream.LastRevision(e.Revision())); err != nil && !isConflict(err) {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// CollectStats counts what [Registry.Collect] removed.
type CollectStats struct {
	// Versions and Aliases count records that belonged to no function.
	Versions, Aliases int
	// Modules counts module objects no version referred to.
	Modules int
}

// Collect removes what no function uses: version and alias records left behind by deleted functions
// (a delete that crashed part way, or a publish that raced a delete), and modules that no version
// record refers to and that were stored at least minAge ago (at least MinCollectAge: a publish stores
// its module before it writes the version that refers to it). Run it now and then, on one node; it is
// safe alongside publishes and deletes.
func (r *Registry) Collect(ctx context.Context, minAge time.Duration) (CollectStats, error) {
	var st CollectStats
	minAge = max(minAge, MinCollectAge)
	start := r.now()
	entries, err := r.scan(ctx, ">")
	if err != nil {
		return st, fmt.Errorf("functions: collecting: %w", err)
	}
	live := map[string]FunctionRecord{}
	for _, e := range entries {
		if strings.HasPrefix(e.Key(), "fn.") {
			if f, err := decodeFunction(e.Key(), e.Value(), e.Revision()); err == nil {
				live[f.Name] = f
			}
		}
	}
	// belongs reports whether a record of function name with id belongs to a function, asking the
	// store again before saying no: the scan is not atomic. An ID that is not the function's now
	// never will be (IDs are random and never reused).
	belongs := func(name, id string) (bool, error) {
		if f, ok := live[name]; ok && f.ID == id {
			return true, nil
		}
		f, err := r.loadFunction(ctx, name)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return err == nil && f.ID == id, err
	}
	referenced := map[string]bool{}
	for _, e := range entries {
		key := e.Key()
		var name, id, module string
		var count *int
		switch {
		case strings.HasPrefix(key, "ver."):
			v, err := decodeVersion(key, e.Value(), e.Revision())
			if err != nil {
				r.log.Warn("skipping a registry record", "key", key, "err", err)
				continue
			}
			name, id, module, count = v.Function, v.FunctionID, v.ModuleSHA256, &st.Versions
		case strings.HasPrefix(key, "alias."):
			a, err := decodeAlias(key, e.Value(), e.Revision())
			if err != nil {
				r.log.Warn("skipping a registry record", "key", key, "err", err)
				continue
			}
			name, id, count = a.Function, a.FunctionID, &st.Aliases
		default:
			continue
		}
		ok, err := belongs(name, id)
		if err != nil {
			return st, fmt.Errorf("functions: collecting: %w", err)
		}
		if ok {
			if module != "" {
				referenced[module] = true
			}
			continue
		}
		if err := r.kv.Purge(ctx, key, jetstream.LastRevision(e.Revision())); err != nil && !isConflict(err) {
			return st, fmt.Errorf("functions: collecting %s: %w", key, err)
		}
		*count++
	}

	objects, err := r.obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return st, fmt.Errorf("functions: collecting: listing modules: %w", err)
	}
	for _, o := range objects {
		if o.Deleted || referenced[o.Name] || r.now().Sub(o.ModTime) < minAge {
			continue
		}
		if r.now().Sub(start) > moduleTouchAge {
			// The scan is too old to trust against a module stored but not yet referred to.
			return st, fmt.Errorf("functions: collecting: stopped after %s, before removing every module: %w", r.now().Sub(start), context.DeadlineExceeded)
		}
		if err := r.obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return st, fmt.Errorf("functions: collecting module %s: %w", o.Name, err)
		}
		st.Modules++
	}
	return st, nil
}

// ---------------------------------------------------------------------------------------------
// Aliases.

func badAliasName(alias string) error {
	return fmt.Errorf("alias name %s: want 1 to %d letters, digits, - and _, not all digits: %w", yamlnode.QuoteShort(alias), MaxAliasNameLength, ErrInvalid)
}

// checkAlias checks a against the function's record.
func checkAlias(a AliasRecord, f FunctionRecord) error {
	switch {
	case !ValidAliasName(a.Name):
		return badAliasName(a.Name)
	case a.Version < 0 || a.Version > f.LatestVersion:
		return fmt.Errorf("version %d of %s does not exist (its versions are 1 to %d): %w", a.Version, f.Name, f.LatestVersion, ErrInvalid)
	case len(a.Description) > MaxDescriptionLength || !utf8.ValidString(a.Description):
		return fmt.Errorf("the description must be UTF-8 of at most %d bytes: %w", MaxDescriptionLength, ErrInvalid)
	case math.IsNaN(a.AdditionalWeight) || a.AdditionalWeight < 0 || a.AdditionalWeight > 1:
		return fmt.Errorf("additional weight %v: want 0 to 1: %w", a.AdditionalWeight, ErrInvalid)
	case a.AdditionalVersion == 0 && a.AdditionalWeight != 0:
		return fmt.Errorf("an additional weight needs an additional version: %w", ErrInvalid)
	case a.AdditionalVersion == 0:
		return nil
	case a.Version == 0:
		return fmt.Errorf("an alias of %s cannot route between versions: name the primary version: %w", LatestQualifier, ErrInvalid)
	case a.AdditionalVersion < 1 || a.AdditionalVersion > f.LatestVersion:
		return fmt.Errorf("additional version %d of %s does not exist (its versions are 1 to %d): %w", a.AdditionalVersion, f.Name, f.LatestVersion, ErrInvalid)
	case a.AdditionalVersion == a.Version:
		return fmt.Errorf("the additional version must differ from the primary version %d: %w", a.Version, ErrInvalid)
	}
	return nil
}

// SetAlias creates or moves an alias of a.Function to a.Version (0 for $LATEST), optionally sending
// a.AdditionalWeight of the traffic to a.AdditionalVersion. When a.Revision is not 0, the alias is
// replaced only if it is still at that revision (else ErrConflict). It returns the alias as stored.
//
// # Errors
//
// ErrNotFound when the function does not exist; ErrInvalid for an invalid name (see
// [ValidAliasName]), a version that does not exist, a weight outside 0..1, an additional version
// equal to the primary one or without a weight's version, or a weighted alias of $LATEST.
func (r *Registry) SetAlias(ctx context.Context, a AliasRecord) (AliasRecord, error) {
	f, err := r.liveFunction(ctx, a.Function)
	if err != nil {
		return AliasRecord{}, fmt.Errorf("functions: setting alias: %w", err)
	}
	if err := checkAlias(a, f); err != nil {
		return AliasRecord{}, fmt.Errorf("functions: setting alias %s of %s: %w", a.Name, a.Function, err)
	}
	a.SchemaVersion = RecordSchemaVersion
	a.FunctionID = f.ID
	a.UpdatedAt = r.timestamp()
	data, err := json.Marshal(a)
	if err != nil {
		return AliasRecord{}, err
	}
	key := aliasKey(a.Function, a.Name)
	var rev uint64
	if a.Revision != 0 {
		rev, err = r.kv.Update(ctx, key, data, a.Revision)
	} else {
		rev, err = r.kv.Put(ctx, key, data)
	}
	if isConflict(err) {
		return AliasRecord{}, fmt.Errorf("functions: setting alias %s of %s: it changed since revision %d: %w", a.Name, a.Function, a.Revision, ErrConflict)
	}
	if err != nil {
		return AliasRecord{}, fmt.Errorf("functions: setting alias %s of %s: %w", a.Name, a.Function, err)
	}
	a.Revision = rev
	return a, nil
}

// DeleteAlias deletes the function's alias.
func (r *Registry) DeleteAlias(ctx context.Context, function, alias string) error {
	a, err := r.loadAlias(ctx, function, alias)
	if err != nil {
		return fmt.Errorf("functions: deleting alias: %w", err)
	}
	err = r.kv.Delete(ctx, aliasKey(function, alias), jetstream.LastRevision(a.Revision))
	if isConflict(err) {
		return fmt.Errorf("functions: deleting alias %s of %s: it changed meanwhile: %w", alias, function, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("functions: deleting alias %s of %s: %w", alias, function, err)
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// The snapshot.

// Snapshot is an immutable view of every function of the registry, with its committed versions and
// its aliases, as of one revision of the Key-Value bucket. Records that are not committed, or that
// belong to a deleted function, are not in it. Its methods are safe for concurrent use and take no
// lock.
type Snapshot struct {
	revision  uint64
	functions map[string]*snapFunction
	replaced  chan struct{}
}

type snapFunction struct {
	fn       FunctionRecord
	versions map[int]VersionRecord
	aliases  map[string]AliasRecord
}

func newSnapshot(rev uint64, fns map[string]*snapFunction) *Snapshot {
	return &Snapshot{revision: rev, functions: fns, replaced: make(chan struct{})}
}

// Revision is the revision of the Key-Value bucket the snapshot reflects (0 before the first load).
func (s *Snapshot) Revision() uint64 { return s.revision }

// Replaced returns a channel that is closed when a newer snapshot replaces this one.
func (s *Snapshot) Replaced() <-chan struct{} { return s.replaced }

// Function returns the function's record.
func (s *Snapshot) Function(name string) (FunctionRecord, bool) {
	f := s.functions[name]
	if f == nil {
		return FunctionRecord{}, false
	}
	return f.fn, true
}

// Functions returns every function's record, sorted by name.
func (s *Snapshot) Functions() []FunctionRecord {
	out := make([]FunctionRecord, 0, len(s.functions))
	for _, f := range s.functions {
		out = append(out, f.fn)
	}
	slices.SortFunc(out, func(a, b FunctionRecord) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Version returns version n of the function (a copy: changing it does not change the snapshot).
func (s *Snapshot) Version(name string, n int) (VersionRecord, bool) {
	f := s.functions[name]
	if f == nil {
		return VersionRecord{}, false
	}
	v, ok := f.versions[n]
	return v.clone(), ok
}

// Versions returns the function's versions, oldest first.
func (s *Snapshot) Versions(name string) []VersionRecord {
	f := s.functions[name]
	if f == nil {
		return nil
	}
	out := make([]VersionRecord, 0, len(f.versions))
	for _, v := range f.versions {
		out = append(out, v.clone())
	}
	slices.SortFunc(out, func(a, b VersionRecord) int { return a.Version - b.Version })
	return out
}

// Alias returns the function's alias.
func (s *Snapshot) Alias(function, alias string) (AliasRecord, bool) {
	f := s.functions[function]
	if f == nil {
		return AliasRecord{}, false
	}
	a, ok := f.aliases[alias]
	return a, ok
}

// Aliases returns the function's aliases, sorted by name.
func (s *Snapshot) Aliases(function string) []AliasRecord {
	f := s.functions[function]
	if f == nil {
		return nil
	}
	return slices.SortedFunc(maps.Values(f.aliases), func(a, b AliasRecord) int { return strings.Compare(a.Name, b.Name) })
}

// Resolve returns the version a call of function with qualifier runs, as Lambda resolves a qualified
// function name: "" or "$LATEST" is the newest version, a number is that version, and anything else
// names an alias. pick, in [0, 1), chooses between a weighted alias's versions: the additional
// version when pick < AdditionalWeight, else the primary version; a uniformly random pick sends each
// its share. It does not allocate unless it fails.
//
// # Errors
//
// ErrNotFound for an unknown function, version or alias; ErrInvalid for a qualifier that is neither
// (a number with a leading zero, characters an alias cannot have) or a pick outside [0, 1).
func (s *Snapshot) Resolve(function, qualifier string, pick float64) (int, error) {
	if !(pick >= 0 && pick < 1) {
		return 0, fmt.Errorf("functions: resolving %s: pick %v is not in [0, 1): %w", function, pick, ErrInvalid)
	}
	f := s.functions[function]
	if f == nil {
		return 0, fmt.Errorf("functions: resolving function %s: %w", function, ErrNotFound)
	}
	switch {
	case qualifier == "" || qualifier == LatestQualifier:
		return f.fn.LatestVersion, nil
	case strings.Trim(qualifier, "0123456789") == "":
		n, err := strconv.Atoi(qualifier)
		if err != nil || qualifier[0] == '0' {
			return 0, fmt.Errorf("functions: resolving %s:%s: not a version number: %w", function, qualifier, ErrInvalid)
		}
		if _, ok := f.versions[n]; !ok {
			return 0, fmt.Errorf("functions: resolving %s:%s: %w", function, qualifier, ErrNotFound)
		}
		return n, nil
	}
	a, ok := f.aliases[qualifier]
	if !ok {
		if !ValidAliasName(qualifier) {
			return 0, fmt.Errorf("functions: resolving %s:%s: %w", function, qualifier, badAliasName(qualifier))
		}
		return 0, fmt.Errorf("functions: resolving %s:%s: alias %w", function, qualifier, ErrNotFound)
	}
	if a.AdditionalVersion != 0 && pick < a.AdditionalWeight {
		return a.AdditionalVersion, nil
	}
	if a.Version == 0 {
		return f.fn.LatestVersion, nil
	}
	return a.Version, nil
}

// Target is what a call of a qualified function name runs: one version, and the settings of that
// version a caller needs before it reaches a worker.
type Target struct {
	Function   string
	FunctionID string
	Version    int
	// Timeout is the version's time limit.
	Timeout time.Duration
	// MaxConcurrency bounds the function's invocations running at once; 0 means no bound.
	MaxConcurrency int
}

// Target resolves function and qualifier as [Snapshot.Resolve] does and returns the version with its
// settings. It does not allocate unless it fails.
func (s *Snapshot) Target(function, qualifier string, pick float64) (Target, error) {
	n, err := s.Resolve(function, qualifier, pick)
	if err != nil {
		return Target{}, err
	}
	f := s.functions[function]
	v, ok := f.versions[n]
	if !ok {
		// A $LATEST alias or the function's latest version whose record is missing.
		return Target{}, fmt.Errorf("functions: resolving %s: version %d: %w", function, n, ErrNotFound)
	}
	timeout, err := time.ParseDuration(v.Manifest.Timeout)
	if err != nil {
		return Target{}, fmt.Errorf("functions: %s version %d: timeout %q: %w", function, n, v.Manifest.Timeout, ErrCorrupt)
	}
	return Target{Function: function, FunctionID: f.fn.ID, Version: n, Timeout: timeout, MaxConcurrency: v.Manifest.MaxConcurrency}, nil
}

// Live returns the versions that can take traffic without naming their number: each function's
// newest version and the versions its aliases point at. They are sorted by function name, then
// version. Workers load these ahead of any call; a version named by number is loaded when called.
func (s *Snapshot) Live() []VersionRecord {
	var out []VersionRecord
	for _, fr := range s.Functions() {
		f := s.functions[fr.Name]
		nums := map[int]bool{f.fn.LatestVersion: true}
		for _, a := range f.aliases {
			if a.Version != 0 {
				nums[a.Version] = true
			}
			if a.AdditionalVersion != 0 {
				nums[a.AdditionalVersion] = true
			}
		}
		for _, n := range slices.Sorted(maps.Keys(nums)) {
			if v, ok := f.versions[n]; ok {
				out = append(out, v.clone())
			}
		}
	}
	return out
}

// Snapshot returns the current snapshot. Before [Registry.Run] has loaded the registry, it is empty;
// [Registry.Synced] says when it has.
func (r *Registry) Snapshot() *Snapshot { return r.snap.Load() }

// Resolve resolves a qualified function name on the current snapshot: see [Snapshot.Resolve].
func (r *Registry) Resolve(function, qualifier string, pick float64) (int, error) {
	return r.snap.Load().Resolve(function, qualifier, pick)
}

// Synced returns a channel that is closed once Run has loaded the whole registry into the snapshot.
func (r *Registry) Synced() <-chan struct{} { return r.synced }

// WaitFor waits until the current snapshot satisfies cond, and returns it; it needs Run to be
// running. Use it to read a change of one's own back from the snapshot.
func (r *Registry) WaitFor(ctx context.Context, cond func(*Snapshot) bool) (*Snapshot, error) {
	for {
		s := r.snap.Load()
		if cond(s) {
			return s, nil
		}
		select {
		case <-s.replaced:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Run keeps the snapshot up to date until ctx is done, watching every record of the bucket. It loads
// the whole registry first (then Synced is closed), then applies changes as they arrive, replacing
// the snapshot after each batch. A record that cannot be read is logged and skipped. Run returns nil
// when ctx is done, or an error if the watch cannot start or stops (the connection closed). It may be
// called once.
func (r *Registry) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("functions: Registry.Run called twice")
	}
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("functions: watching the registry: %w", err)
	}
	defer stopWatcher(w)
	st := &watchState{
		fns:      map[string]FunctionRecord{},
		versions: map[string]map[int]VersionRecord{},
		aliases:  map[string]map[string]AliasRecord{},
		touched:  map[string]bool{},
		log:      r.log,
	}
	synced := false
	var rev uint64
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-w.Updates():
		}
		// Apply this entry and whatever else has arrived (up to a bound), then publish once.
		for batch := 1; ; batch++ {
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("functions: the registry watch stopped")
			}
			if e == nil {
				if !synced {
					synced = true
					r.publish(st, rev, true)
					close(r.synced)
				}
			} else {
				st.apply(e)
				rev = e.Revision()
			}
			if batch < maxBatch {
				select {
				case e, ok = <-w.Updates():
					continue
				default:
				}
			}
			break
		}
		if synced && len(st.touched) > 0 {
			r.publish(st, rev, false)
		}
	}
}

// publish replaces the snapshot with one that has the functions st touched rebuilt.
func (r *Registry) publish(st *watchState, rev uint64, all bool) {
	old := r.snap.Load()
	fns := make(map[string]*snapFunction, len(old.functions)+len(st.touched))
	if !all {
		maps.Copy(fns, old.functions)
	}
	names := st.touched
	if all {
		names = map[string]bool{}
		for _, m := range []map[string]bool{st.touched, keysOf(st.fns), keysOf(st.versions), keysOf(st.aliases)} {
			maps.Copy(names, m)
		}
	}
	for name := range names {
		if sf := st.view(name); sf != nil {
			fns[name] = sf
		} else {
			delete(fns, name)
		}
	}
	clear(st.touched)
	r.snap.Store(newSnapshot(rev, fns))
	close(old.replaced)
}

func keysOf[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// watchState is every record Run has seen, committed or not, by function name. Only Run uses it.
type watchState struct {
	fns      map[string]FunctionRecord
	versions map[string]map[int]VersionRecord
	aliases  map[string]map[string]AliasRecord
	touched  map[string]bool
	log      *slog.Logger
}

func (st *watchState) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	kind, rest, _ := strings.Cut(key, ".")
	switch kind {
	case "fn":
		name := rest
		st.touched[name] = true
		if deleted {
			delete(st.fns, name)
			return
		}
		f, err := decodeFunction(key, e.Value(), e.Revision())
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", err)
			delete(st.fns, name)
			return
		}
		st.fns[name] = f
	case "ver":
		name, num, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", "not a version number")
			return
		}
		st.touched[name] = true
		if deleted {
			delete(st.versions[name], n)
			return
		}
		v, err := decodeVersion(key, e.Value(), e.Revision())
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", err)
			delete(st.versions[name], n)
			return
		}
		if st.versions[name] == nil {
			st.versions[name] = map[int]VersionRecord{}
		}
		st.versions[name][n] = v
	case "alias":
		name, alias, _ := strings.Cut(rest, ".")
		st.touched[name] = true
		if deleted {
			delete(st.aliases[name], alias)
			return
		}
		a, err := decodeAlias(key, e.Value(), e.Revision())
		if err != nil {
			st.log.Warn("skipping a registry record", "key", key, "err", err)
			delete(st.aliases[name], alias)
			return
		}
		if st.aliases[name] == nil {
			st.aliases[name] = map[string]AliasRecord{}
		}
		st.aliases[name][alias] = a
	default:
		// Not a registry record (a later release may add kinds): ignore it.
	}
}

// view builds the immutable view of the function name: its committed versions and its aliases; nil
// when the function does not exist for readers.
func (st *watchState) view(name string) *snapFunction {
	if len(st.versions[name]) == 0 {
		delete(st.versions, name)
	}
	if len(st.aliases[name]) == 0 {
		delete(st.aliases, name)
	}
	f, ok := st.fns[name]
	if !ok || f.LatestVersion == 0 {
		return nil
	}
	sf := &snapFunction{fn: f, versions: map[int]VersionRecord{}, aliases: map[string]AliasRecord{}}
	for n, v := range st.versions[name] {
		if v.FunctionID == f.ID && n <= f.LatestVersion {
			sf.versions[n] = v.clone()
		}
	}
	for alias, a := range st.aliases[name] {
		if a.FunctionID == f.ID {
			sf.aliases[alias] = a
		}
	}
	return sf
}
