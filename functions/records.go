package functions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// RecordSchemaVersion is the schemaVersion of every registry record this package writes, and the only
// one it reads. A record with another schemaVersion is refused when read and skipped by [Registry.Run].
const RecordSchemaVersion = 1

// LatestQualifier is the qualifier that names a function's newest version, as in Lambda. An alias
// whose Version is 0 points at it.
const LatestQualifier = "$LATEST"

// Limits of registry records.
const (
	// MaxAliasNameLength bounds an alias name, as in Lambda.
	MaxAliasNameLength = 128
	// MaxDescriptionLength bounds the description of a version or an alias, in bytes (Lambda's is
	// 256 characters).
	MaxDescriptionLength = 256
	// SecretKeySize is the size of RegistryConfig.SecretKey: an AES-256 key.
	SecretKeySize = 32
)

// FunctionRecord is a function in the registry, stored under "fn.<name>". It is the commit point of
// a publish: only versions 1..LatestVersion whose FunctionID equals ID exist for readers.
type FunctionRecord struct {
	SchemaVersion int `json:"schemaVersion"`
	// Name is the function's name, [A-Za-z0-9_-]{1,64}.
	Name string `json:"name"`
	// ID is random and fixed for the life of the function: deleting a function and publishing one
	// with the same name makes a new ID, so records left behind by the old one are recognised (and
	// ignored) whatever their numbers.
	ID string `json:"id"`
	// LatestVersion is the newest published version: what $LATEST resolves to. 0 means a publish
	// reserved the name but has not committed a version yet; readers treat such a function as absent.
	LatestVersion int       `json:"latestVersion"`
	CreatedAt     time.Time `json:"createdAt"`
	// UpdatedAt is when LatestVersion last changed.
	UpdatedAt time.Time `json:"updatedAt"`
	// Revision is the record's revision in the Key-Value bucket; it is not stored in the record.
	Revision uint64 `json:"-"`
}

// VersionRecord is an immutable, numbered version of a function, stored under
// "ver.<name>.<version>". It is written once (a create, never an update) and deleted only with its
// function.
type VersionRecord struct {
	SchemaVersion int `json:"schemaVersion"`
	// Function is the function's name.
	Function string `json:"function"`
	// FunctionID is the ID of the function this version was published to (FunctionRecord.ID).
	FunctionID string `json:"functionId"`
	// Version is the version's number, from 1.
	Version int `json:"version"`
	// ModuleSHA256 is the lower-case hex SHA-256 of the module: its name in the module store.
	ModuleSHA256 string `json:"moduleSha256"`
	// ModuleSize is the module's size in bytes.
	ModuleSize int64 `json:"moduleSize"`
	// Manifest is the bundle's manifest, without the values of its secrets (see SealedSecrets).
	Manifest ManifestRecord `json:"manifest"`
	// ManifestSHA256 identifies the manifest, secrets included: the SHA-256 of Manifest's JSON and
	// of a keyed MAC of the secret values (never a plain hash of a secret). Two publishes with the
	// same module and ManifestSHA256 are the same version.
	ManifestSHA256 string `json:"manifestSha256"`
	// SealedSecrets holds the values of Manifest.Secrets, encrypted; nil when there are none.
	// [Registry.OpenSecrets] decrypts them.
	SealedSecrets *SealedSecrets `json:"sealedSecrets,omitempty"`
	// Description is free text given when publishing, at most MaxDescriptionLength bytes.
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	// DeployedBy and DeployedFrom say who deployed the version through the admin API (a token's
	// name) and from which address; empty for versions deployed by `up` from the stack file.
	DeployedBy   string `json:"deployedBy,omitempty"`
	DeployedFrom string `json:"deployedFrom,omitempty"`
	// Revision is the record's revision in the Key-Value bucket; it is not stored in the record.
	Revision uint64 `json:"-"`
}

// AliasRecord is a named pointer to a version, stored under "alias.<function>.<name>", optionally
// sending a share of the traffic to one additional version (Lambda's RoutingConfig).
type AliasRecord struct {
	SchemaVersion int `json:"schemaVersion"`
	// Function is the function's name.
	Function string `json:"function"`
	// FunctionID is the ID of the function the alias was set on; SetAlias fills it in.
	FunctionID string `json:"functionId"`
	// Name is the alias's name: 1 to MaxAliasNameLength letters, digits, - and _, not all digits.
	Name string `json:"name"`
	// Version is the primary version; 0 means $LATEST.
	Version int `json:"version"`
	// AdditionalVersion, when not 0, receives AdditionalWeight of the traffic and Version the rest.
	// It must differ from Version, and Version must not be $LATEST.
	AdditionalVersion int `json:"additionalVersion,omitempty"`
	// AdditionalWeight is the share of traffic for AdditionalVersion, 0 to 1; 0 without one.
	AdditionalWeight float64 `json:"additionalWeight,omitempty"`
	// Description is free text, at most MaxDescriptionLength bytes.
	Description string    `json:"description,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
	// Revision is the record's revision in the Key-Value bucket; it is not stored in the record.
	// When not 0 in the record given to SetAlias, the alias is replaced only if it still has this
	// revision (else ErrConflict).
	Revision uint64 `json:"-"`
}

// ManifestRecord is a [Manifest] as stored in a version record: the same keys as function.yaml,
// durations written as Go durations ("3s"), and no secret values: Environment holds only the
// variables that are not listed in Secrets.
type ManifestRecord struct {
	Version        int               `json:"version"`
	Name           string            `json:"name"`
	Runtime        string            `json:"runtime,omitempty"` // "" for spec.RuntimeWasm
	ABI            string            `json:"abi,omitempty"`
	Module         string            `json:"module"`
	MemoryMB       int               `json:"memory"`
	Timeout        string            `json:"timeout"`
	Environment    map[string]string `json:"environment,omitempty"`
	Secrets        []string          `json:"secrets,omitempty"`
	MaxConcurrency int               `json:"maxConcurrency"`
	MinWarm        int               `json:"minWarm"`
	IdleTimeout    string            `json:"idleTimeout"`
	// SnapStart is left out when false, as records written before functions had it.
	SnapStart bool `json:"snapStart,omitempty"`
	// AllowedOutboundHosts is left out when empty.
	AllowedOutboundHosts []string `json:"allowedOutboundHosts,omitempty"`
	Handler              string   `json:"handler,omitempty"`
	Isolation            string   `json:"isolation,omitempty"`
	// Async is left out for a function with the default async settings.
	Async *spec.AsyncSettings `json:"async,omitempty"`
	// AllowedPublishSubjects is left out when empty.
	AllowedPublishSubjects []string `json:"allowedPublishSubjects,omitempty"`
}

// NewManifestRecord splits m into the record that is stored in plain text and the values of its
// secrets, which are not (nil when m has none).
func NewManifestRecord(m *Manifest) (ManifestRecord, map[string]string) {
	rec := ManifestRecord{
		Version:                m.Version,
		Name:                   m.Name,
		Runtime:                runtimeOrEmpty(m.Runtime),
		ABI:                    m.ABI,
		Module:                 m.Module,
		MemoryMB:               m.MemoryMB,
		Timeout:                spec.FormatDuration(m.Timeout.D()),
		Secrets:                slices.Clone(m.Secrets),
		MaxConcurrency:         m.MaxConcurrency,
		MinWarm:                m.MinWarm,
		IdleTimeout:            spec.FormatDuration(m.IdleTimeout.D()),
		SnapStart:              m.SnapStart,
		AllowedOutboundHosts:   slices.Clone(m.AllowedOutboundHosts),
		Handler:                m.Handler,
		Isolation:              m.Isolation,
		Async:                  cloneAsync(m.Async),
		AllowedPublishSubjects: slices.Clone(m.AllowedPublishSubjects),
	}
	var secrets map[string]string
	for k, v := range m.Environment {
		if slices.Contains(m.Secrets, k) {
			if secrets == nil {
				secrets = map[string]string{}
			}
			secrets[k] = v
			continue
		}
		if rec.Environment == nil {
			rec.Environment = map[string]string{}
		}
		rec.Environment[k] = v
	}
	return rec, secrets
}

// Manifest rebuilds the full manifest from the record and the values of its secrets (from
// [Registry.OpenSecrets]; nil when the record has none), and validates it.
func (r ManifestRecord) Manifest(secrets map[string]string) (*Manifest, error) {
	timeout, err := time.ParseDuration(r.Timeout)
	if err != nil {
		return nil, fmt.Errorf("functions: manifest record: timeout: %w", err)
	}
	idle, err := time.ParseDuration(r.IdleTimeout)
	if err != nil {
		return nil, fmt.Errorf("functions: manifest record: idleTimeout: %w", err)
	}
	m := &Manifest{
		Version: r.Version,
		Name:    r.Name,
		ABI:     r.ABI,
		Module:  r.Module,
		FunctionSettings: spec.FunctionSettings{
			Runtime:                r.Runtime,
			MemoryMB:               r.MemoryMB,
			Timeout:                spec.Duration(timeout),
			Environment:            make(map[string]string, len(r.Environment)+len(r.Secrets)),
			MaxConcurrency:         r.MaxConcurrency,
			MinWarm:                r.MinWarm,
			IdleTimeout:            spec.Duration(idle),
			SnapStart:              r.SnapStart,
			AllowedOutboundHosts:   slices.Clone(r.AllowedOutboundHosts),
			Handler:                r.Handler,
			Isolation:              r.Isolation,
			Async:                  cloneAsync(r.Async),
			AllowedPublishSubjects: slices.Clone(r.AllowedPublishSubjects),
		},
		Secrets: slices.Clone(r.Secrets),
	}
	maps.Copy(m.Environment, r.Environment)
	for _, s := range r.Secrets {
		v, ok := secrets[s]
		if !ok {
			return nil, fmt.Errorf("functions: manifest record: the value of secret %s is missing", s)
		}
		m.Environment[s] = v
	}
	if len(secrets) != len(r.Secrets) {
		return nil, fmt.Errorf("functions: manifest record: %d secret values for %d secrets", len(secrets), len(r.Secrets))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func (r ManifestRecord) clone() ManifestRecord {
	r.Environment = maps.Clone(r.Environment)
	r.Secrets = slices.Clone(r.Secrets)
	r.Async = cloneAsync(r.Async)
	r.AllowedPublishSubjects = slices.Clone(r.AllowedPublishSubjects)
	return r
}

func cloneAsync(a *spec.AsyncSettings) *spec.AsyncSettings {
	if a == nil {
		return nil
	}
	c := *a
	return &c
}

func (v VersionRecord) clone() VersionRecord {
	v.Manifest = v.Manifest.clone()
	if v.SealedSecrets != nil {
		s := *v.SealedSecrets
		s.Nonce, s.Ciphertext = slices.Clone(s.Nonce), slices.Clone(s.Ciphertext)
		v.SealedSecrets = &s
	}
	return v
}

// SealedSecrets are the values of a version's secrets, encrypted with AES-256-GCM. The plaintext is
// the JSON object of names to values; the additional data binds it to the function, its ID and the
// version, so a sealed value copied into another record does not open.
type SealedSecrets struct {
	// Algorithm is "A256GCM".
	Algorithm string `json:"alg"`
	// KeyID names the key (derived from it; it reveals nothing about it), so a wrong key is reported
	// as such.
	KeyID      string `json:"kid"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

const sealAlgorithm = "A256GCM"

// secretKeys holds the keys derived from RegistryConfig.SecretKey, one per use.
type secretKeys struct {
	aead  cipher.AEAD
	mac   []byte
	keyID string
}

func newSecretKeys(key []byte) (*secretKeys, error) {
	derive := func(info string, n int) ([]byte, error) {
		return hkdf.Key(sha256.New, key, nil, "gatehouse registry "+info+" v1", n)
	}
	enc, err := derive("secrets encryption", 32)
	if err != nil {
		return nil, err
	}
	mac, err := derive("secrets digest", 32)
	if err != nil {
		return nil, err
	}
	id, err := derive("key id", 8)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &secretKeys{aead: aead, mac: mac, keyID: hex.EncodeToString(id)}, nil
}

func sealAAD(function, functionID string, version int) []byte {
	return []byte("gatehouse/secrets/v1\x00" + function + "\x00" + functionID + "\x00" + strconv.Itoa(version))
}

func (k *secretKeys) seal(secrets map[string]string, function, functionID string, version int) (*SealedSecrets, error) {
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &SealedSecrets{
		Algorithm:  sealAlgorithm,
		KeyID:      k.keyID,
		Nonce:      nonce,
		Ciphertext: k.aead.Seal(nil, nonce, plain, sealAAD(function, functionID, version)),
	}, nil
}

func (k *secretKeys) open(s *SealedSecrets, function, functionID string, version int) (map[string]string, error) {
	switch {
	case s.Algorithm != sealAlgorithm:
		return nil, fmt.Errorf("sealed with %q; this Gatehouse opens %s", s.Algorithm, sealAlgorithm)
	case s.KeyID != k.keyID:
		return nil, fmt.Errorf("sealed with key %s, not with this registry's key %s", s.KeyID, k.keyID)
	case len(s.Nonce) != k.aead.NonceSize():
		return nil, fmt.Errorf("%w: the nonce is %d bytes", ErrCorrupt, len(s.Nonce))
	}
	plain, err := k.aead.Open(nil, s.Nonce, s.Ciphertext, sealAAD(function, functionID, version))
	if err != nil {
		return nil, fmt.Errorf("%w: the sealed secrets do not open: %v", ErrCorrupt, err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("%w: the sealed secrets are not a JSON object: %v", ErrCorrupt, err)
	}
	return secrets, nil
}

// secretsDigest is a keyed MAC of the secret values, so that ManifestSHA256 changes when a secret's
// value does without publishing a hash that could be searched for a guessable password.
func (k *secretKeys) secretsDigest(secrets map[string]string) string {
	plain, _ := json.Marshal(secrets) // map[string]string always marshals, keys sorted
	h := hmac.New(sha256.New, k.mac)
	h.Write(plain)
	return hex.EncodeToString(h.Sum(nil))
}

// manifestDigest computes ManifestSHA256: the SHA-256 of a fixed prefix, the record's JSON (keys in
// a fixed order, environment sorted) and secretsDigest ("" without secrets).
func manifestDigest(rec ManifestRecord, secretsDigest string) (string, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte("gatehouse manifest v1\n"))
	h.Write(data)
	h.Write([]byte("\n" + secretsDigest))
	return hex.EncodeToString(h.Sum(nil)), nil
}
