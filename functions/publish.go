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
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

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
	if msg := checkModuleContent(b.Module, b.Manifest.Runtime); msg != "" {
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

// PruneVersions removes the version records of function name beyond its newest keep (at least 1),
// except those an alias points at (or sends a share of its traffic to) and those in pinned (versions
// routes name). Their modules stay for [Registry.Collect]. A version being pruned may still finish
// invocations that workers already hold; new ones resolve to the versions kept. It returns the
// versions removed.
func (r *Registry) PruneVersions(ctx context.Context, name string, keep int, pinned []int) ([]int, error) {
	keep = max(keep, 1)
	versions, err := r.Versions(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("functions: pruning versions: %w", err)
	}
	aliases, err := r.Aliases(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("functions: pruning versions: %w", err)
	}
	protected := map[int]bool{}
	for _, v := range pinned {
		protected[v] = true
	}
	for _, a := range aliases {
		protected[a.Version], protected[a.AdditionalVersion] = true, true
	}
	slices.SortFunc(versions, func(a, b VersionRecord) int { return b.Version - a.Version })
	var removed []int
	for i, v := range versions {
		if i < keep || protected[v.Version] {
			continue
		}
		if err := r.kv.Purge(ctx, verKey(name, v.Version), jetstream.LastRevision(v.Revision)); err != nil && !isConflict(err) {
			return removed, fmt.Errorf("functions: pruning version %d of %s: %w", v.Version, name, err)
		}
		removed = append(removed, v.Version)
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
