package functions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/jsopen"
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
	kv, err := jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:       kvName,
		Description:  "Gatehouse functions, versions and aliases of stack " + cfg.Stack,
		History:      RegistryHistory,
		MaxValueSize: maxRecordBytes,
		Storage:      jetstream.FileStorage,
		Replicas:     cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("functions: registry: %w", err)
	}

	obsName := ModulesBucket(cfg.Stack)
	obs, err := jsopen.ObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      obsName,
		Description: "Gatehouse function modules of stack " + cfg.Stack + ", named by SHA-256",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		// S2, on sealed blocks: six 5.7 MB Go modules took 15 MB on disk instead of 34 MB;
		// reading one back took 159 ms instead of 68 ms, once per version per worker.
		Compression: true,
	})
	if err != nil {
		return nil, fmt.Errorf("functions: registry: %w", err)
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
			// PruneVersions removes old versions of a live function (never its newest one).
			return v, fmt.Errorf("function %s version %d was removed (old versions are pruned): %w", f.Name, n, ErrNotFound)
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
