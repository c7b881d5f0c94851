package functions

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Bundle limits: the defaults of [BundleLimits].
const (
	// DefaultMaxBundleBytes bounds the size of a bundle as uploaded, compressed (50 MiB, Lambda's
	// limit for a direct upload).
	DefaultMaxBundleBytes = 50 << 20
	// DefaultMaxModuleBytes bounds the uncompressed size of every entry, and so of the module
	// (100 MiB; the Go sample hello is 5.7 MB).
	DefaultMaxModuleBytes = 100 << 20
	// DefaultMaxEntries bounds the entries of a bundle, directories included.
	DefaultMaxEntries = 16
)

// BundleLimits bounds what [ReadBundle] accepts. A zero (or negative) field means its default.
type BundleLimits struct {
	// MaxBundleBytes bounds the bundle's size, compressed; default DefaultMaxBundleBytes.
	MaxBundleBytes int64
	// MaxModuleBytes bounds every entry's uncompressed size, as written in the archive and as
	// actually decompressed; default DefaultMaxModuleBytes.
	MaxModuleBytes int64
	// MaxEntries bounds the number of entries, directories included; default DefaultMaxEntries.
	MaxEntries int64
}

func (l BundleLimits) withDefaults() BundleLimits {
	if l.MaxBundleBytes <= 0 {
		l.MaxBundleBytes = DefaultMaxBundleBytes
	}
	if l.MaxModuleBytes <= 0 {
		l.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// directoryBudget is how many bytes zip.NewReader may read from a bundle: the end-of-directory search
// (up to 66 KiB) and a little more, plus a generous 4 KiB per allowed entry. The zip reader keeps
// parsing directory records until it finds a bad one, whatever count the archive declares, so without
// this a 50 MiB bundle of empty entries would make it allocate a million records before the entry
// limit could be checked.
func (l BundleLimits) directoryBudget() int64 { return 256<<10 + l.MaxEntries*4<<10 }

// Bundle is a function bundle read by [ReadBundle]: a validated manifest and its module.
type Bundle struct {
	// Manifest is the parsed and validated function.yaml.
	Manifest Manifest
	// Module is the WebAssembly module (the entry named by Manifest.Module). Only its 8-byte
	// header has been checked; runtimes validates the rest when it compiles it.
	Module []byte
	// SHA256 is the lower-case hex SHA-256 of Module.
	SHA256 string
	// Extra names the other files in the bundle, sorted; they are allowed and ignored (a README,
	// the function's source). Directories are not listed.
	Extra []string
}

// Sentinel errors. Every error ReadBundle returns for bad input wraps ErrBadBundle; those about
// size limits wrap ErrBundleTooLarge too (which itself wraps ErrBadBundle). A [*ManifestError] is
// wrapped as is, so errors.As finds it and errors.Is(err, ErrBadManifest) holds.
var (
	// ErrBadBundle means the bundle cannot be used; the message says why and what to do.
	ErrBadBundle = errors.New("invalid bundle")
	// ErrBundleTooLarge means the bundle, or an entry once decompressed, is over a size limit.
	ErrBundleTooLarge = fmt.Errorf("%w: too large", ErrBadBundle)
)

var (
	errDirectoryTooLarge = errors.New("zip directory over budget")
	errOutsideBundle     = errors.New("an offset points outside the bundle")
)

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadBundle}, args...)...)
}

func tooLargef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBundleTooLarge}, args...)...)
}

// budgetReader counts what the zip reader reads while it reads the directory, and remembers the first
// error of the underlying reader (an I/O error, not a bad bundle). Reads outside the bundle, which
// offsets in a corrupt archive ask for, fail without reaching the underlying reader.
type budgetReader struct {
	r       io.ReaderAt
	size    int64
	limited bool
	budget  int64
	over    bool
	ioErr   error
}

func (b *budgetReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.size {
		return 0, errOutsideBundle
	}
	if b.limited {
		if int64(len(p)) > b.budget {
			b.over = true
			return 0, errDirectoryTooLarge
		}
		b.budget -= int64(len(p))
	}
	n, err := b.r.ReadAt(p, off)
	if err != nil && err != io.EOF && b.ioErr == nil {
		b.ioErr = err
	}
	return n, err
}

// ReadBundle reads and checks a bundle: a zip archive of size bytes holding function.yaml and the
// module it names. Zero fields of limits take their defaults.
//
// # Errors
//
// Every problem with the bundle is an error wrapping [ErrBadBundle], whose message names the entry
// and says what to do: not a zip archive; over limits.MaxBundleBytes or limits.MaxEntries; an entry
// whose name is empty, absolute, has a backslash, a "." or ".." element, control characters or
// invalid UTF-8; a symbolic link or other non-regular file; two entries with one name; an encrypted
// entry or one compressed other than with deflate or store; an entry larger than
// limits.MaxModuleBytes, by its header or once decompressed (bytes are counted as they are
// decompressed, so a zip bomb costs at most the limit); a corrupt entry; no function.yaml at the top;
// an invalid manifest (the [*ManifestError] is wrapped); no module at the manifest's `module:` path;
// a module that does not start with the WebAssembly magic "\0asm" and version 1. An error reading
// from r is returned as is, without ErrBadBundle.
func ReadBundle(r io.ReaderAt, size int64, limits BundleLimits) (*Bundle, error) {
	limits = limits.withDefaults()
	if size < 0 {
		return nil, badf("negative size %d", size)
	}
	if size > limits.MaxBundleBytes {
		return nil, tooLargef("the bundle is %s; the limit is %s", FormatBytes(size), FormatBytes(limits.MaxBundleBytes))
	}
	br := &budgetReader{r: r, size: size, limited: true, budget: limits.directoryBudget()}
	zr, err := zip.NewReader(br, size)
	br.limited = false
	switch {
	case br.ioErr != nil:
		return nil, fmt.Errorf("functions: reading bundle: %w", br.ioErr)
	case br.over:
		return nil, badf("the zip directory is larger than %s: too many entries (the limit is %d) or very long names",
			FormatBytes(limits.directoryBudget()), limits.MaxEntries)
	case err != nil && !errors.Is(err, zip.ErrInsecurePath):
		// ErrInsecurePath (with GODEBUG zipinsecurepath=0) comes with a usable reader; the names are
		// checked below.
		return nil, badf("not a zip archive (%v); make a bundle with: zip bundle.zip %s %s", err, ManifestFile, DefaultModuleFile)
	}
	if n := int64(len(zr.File)); n > limits.MaxEntries {
		return nil, badf("the bundle has %d entries; the limit is %d: bundle the manifest and the module, and little else", n, limits.MaxEntries)
	}

	files := make(map[string]*zip.File, len(zr.File))
	var names []string
	for _, f := range zr.File {
		if msg := checkEntryName(f.Name); msg != "" {
			return nil, badf("entry %s %s", yamlnode.QuoteShort(f.Name), msg)
		}
		if strings.HasSuffix(f.Name, "/") {
			continue // a directory: nothing to read
		}
		if files[f.Name] != nil {
			return nil, badf("two entries are named %s", yamlnode.QuoteShort(f.Name))
		}
		switch mode := f.Mode(); {
		case mode&fs.ModeSymlink != 0:
			return nil, badf("entry %s is a symbolic link; put the file itself in the bundle", yamlnode.QuoteShort(f.Name))
		case !mode.IsRegular():
			return nil, badf("entry %s is not a regular file (its mode is %s)", yamlnode.QuoteShort(f.Name), mode)
		}
		if f.Flags&0x1 != 0 {
			return nil, badf("entry %s is encrypted; bundles are not encrypted (leave out zip's -e)", yamlnode.QuoteShort(f.Name))
		}
		if f.UncompressedSize64 > uint64(limits.MaxModuleBytes) {
			return nil, tooLargef("entry %s expands to %s; the limit is %s", yamlnode.QuoteShort(f.Name),
				FormatBytes(int64(min(f.UncompressedSize64, 1<<62))), FormatBytes(limits.MaxModuleBytes))
		}
		files[f.Name] = f
		names = append(names, f.Name)
	}

	mf := files[ManifestFile]
	if mf == nil {
		return nil, missingManifest(names)
	}
	data, err := readEntry(br, mf, MaxManifestBytes)
	if err != nil {
		if errors.Is(err, ErrBundleTooLarge) {
			return nil, badf("%w", manifestTooLarge())
		}
		return nil, err
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, badf("%w", err)
	}
	modf := files[m.Module]
	if modf == nil {
		return nil, missingModule(m.Module, names)
	}
	module, err := readEntry(br, modf, limits.MaxModuleBytes)
	if err != nil {
		return nil, err
	}
	if msg := checkModuleContent(module, m.Runtime); msg != "" {
		return nil, badf("%s %s", m.Module, msg)
	}
	sum := sha256.Sum256(module)
	b := &Bundle{Manifest: *m, Module: module, SHA256: hex.EncodeToString(sum[:])}
	for _, n := range names {
		if n != ManifestFile && n != m.Module {
			b.Extra = append(b.Extra, n)
		}
	}
	slices.Sort(b.Extra)
	return b, nil
}

// maxDeflateRatio is the most deflate can expand: 258 bytes from each 2 bits, about 1032 to 1.
const maxDeflateRatio = 1032

// readEntry decompresses f, reading at most limit bytes: the zip reader already refuses data beyond
// the size in the entry's header (which ReadBundle has checked against the limit), and the
// LimitReader makes sure of it.
func readEntry(br *budgetReader, f *zip.File, limit int64) ([]byte, error) {
	name := yamlnode.QuoteShort(f.Name)
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return nil, badf("entry %s is compressed with method %d; use deflate or store (what zip does by default)", name, f.Method)
	}
	if f.UncompressedSize64 > uint64(limit) {
		return nil, tooLargef("entry %s expands to %s; the limit is %s", name, FormatBytes(int64(min(f.UncompressedSize64, 1<<62))), FormatBytes(limit))
	}
	rc, err := f.Open()
	if err != nil {
		if br.ioErr != nil {
			return nil, fmt.Errorf("functions: reading bundle: %w", br.ioErr)
		}
		return nil, badf("entry %s cannot be read: %v", name, err)
	}
	defer rc.Close()
	// Room for the declared size and the read that finds EOF, so the buffer need not grow; but no
	// more than the compressed data can expand to, so a header that lies costs no memory.
	size := f.UncompressedSize64
	if f.Method == zip.Store {
		size = min(size, f.CompressedSize64)
	} else if f.CompressedSize64 < size/maxDeflateRatio {
		size = f.CompressedSize64 * maxDeflateRatio
	}
	buf := bytes.NewBuffer(make([]byte, 0, int(size)+bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(rc, limit+1))
	switch {
	case br.ioErr != nil:
		return nil, fmt.Errorf("functions: reading bundle: %w", br.ioErr)
	case n > limit:
		return nil, tooLargef("entry %s expands past the limit of %s", name, FormatBytes(limit))
	case errors.Is(err, zip.ErrChecksum):
		return nil, badf("entry %s is corrupt (its checksum does not match)", name)
	case errors.Is(err, zip.ErrFormat):
		return nil, badf("entry %s is corrupt (it holds more data than its header says)", name)
	case err != nil:
		return nil, badf("entry %s is corrupt: %v", name, err)
	}
	return buf.Bytes(), nil
}

// checkEntryName checks a name in the archive (the manifest's `module:` too); it returns "" when the
// name is fine, else what is wrong, to follow the name in a message. A trailing "/" marks a directory.
func checkEntryName(name string) string {
	p := strings.TrimSuffix(name, "/")
	switch {
	case p == "":
		return "has an empty name"
	case !utf8.ValidString(name):
		return "has a name that is not UTF-8"
	case strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "has control characters in its name"
	case strings.Contains(name, `\`):
		return `has a backslash: zip paths use /, and \ is refused so the path means the same everywhere`
	case strings.HasPrefix(name, "/") || len(p) >= 2 && p[1] == ':' && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z'):
		return "is an absolute path: paths in a bundle are relative to its top"
	}
	for _, elem := range strings.Split(p, "/") {
		switch elem {
		case "..":
			return "has a .. element, which would escape the bundle"
		case ".", "":
			return "has an empty or . element; write the path plainly, e.g. dir/file"
		}
	}
	return ""
}

func missingManifest(names []string) error {
	for _, n := range names {
		base := path.Base(n)
		switch {
		case n != base && base == ManifestFile:
			dir := path.Dir(n)
			return badf("%s must be at the top of the bundle, not in %s/: zip the directory's contents, not the directory (cd %s && zip -r ../bundle.zip .)",
				ManifestFile, dir, dir)
		case strings.EqualFold(base, ManifestFile) || strings.EqualFold(base, "function.yml"):
			return badf("no %s at the top of the bundle (found %s: the manifest must be named %s exactly)", ManifestFile, yamlnode.QuoteShort(n), ManifestFile)
		}
	}
	return badf("no %s at the top of the bundle: every bundle has a manifest naming the function (see docs/bundles.md)%s", ManifestFile, listEntries(names))
}

func missingModule(module string, names []string) error {
	hint := ""
	var wasm []string
	for _, n := range names {
		if strings.HasSuffix(n, ".wasm") {
			wasm = append(wasm, n)
		}
	}
	if len(wasm) == 1 {
		hint = fmt.Sprintf("; to use %s, set \"module: %s\" in %s", wasm[0], wasm[0], ManifestFile)
	}
	return badf("no %s in the bundle: %s names it as the module (module:, default %s)%s%s",
		yamlnode.QuoteShort(module), ManifestFile, DefaultModuleFile, hint, listEntries(names))
}

func listEntries(names []string) string {
	if len(names) == 0 {
		return "; the bundle holds no files"
	}
	shown := make([]string, 0, min(len(names), 8))
	for _, n := range names[:min(len(names), 8)] {
		shown = append(shown, yamlnode.QuoteShort(n))
	}
	if len(names) > 8 {
		shown = append(shown, "…")
	}
	return "; the bundle holds " + strings.Join(shown, ", ")
}

// checkModuleContent checks a module of a function of runtime: a WebAssembly module's header, or
// for a process runtime a zip's; "" when it is fine.
func checkModuleContent(b []byte, runtime string) string {
	if !spec.IsProcessRuntime(runtime) {
		return checkModuleHeader(b)
	}
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06")) {
		return ""
	}
	return "is not a zip package (a " + runtime + " function's package is a zip of its code)"
}

// wasmHeader is the start of every core WebAssembly binary module: the magic "\0asm" and version 1.
var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// checkModuleHeader checks the first 8 bytes of a module; it returns "" when they are a core
// WebAssembly module's, else what is wrong, to follow the module's name in a message.
func checkModuleHeader(b []byte) string {
	if bytes.HasPrefix(b, wasmHeader) {
		return ""
	}
	if bytes.HasPrefix(b, wasmHeader[:4]) && len(b) >= 8 {
		if b[4] == 0x0d && b[5] == 0 && b[6] == 1 && b[7] == 0 {
			return "is a WebAssembly component; Gatehouse runs core modules (build for wasm32-wasip1, not wasip2)"
		}
		return fmt.Sprintf("has WebAssembly version %d; Gatehouse reads version 1", uint32(b[4])|uint32(b[5])<<8|uint32(b[6])<<16|uint32(b[7])<<24)
	}
	text := bytes.TrimLeft(b[:min(len(b), 4096)], " \t\r\n")
	for bytes.HasPrefix(text, []byte(";;")) {
		_, rest, _ := bytes.Cut(text, []byte("\n"))
		text = bytes.TrimLeft(rest, " \t\r\n")
	}
	if bytes.HasPrefix(text, []byte("(module")) {
		return "is WebAssembly text, not a binary module: compile it first (wat2wasm file.wat -o " + DefaultModuleFile + ")"
	}
	if len(b) < len(wasmHeader) {
		return fmt.Sprintf("is not a WebAssembly module: it is %d bytes, shorter than the 8-byte header", len(b))
	}
	return fmt.Sprintf("is not a WebAssembly module: it does not start with the magic bytes \\0asm (it starts with %q)", b[:4])
}

// FormatBytes writes n in binary units: exactly when n is a whole number of them ("50 MiB"), else to
// one decimal ("81.9 MiB"); below 1 KiB, in bytes.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		switch {
		case n >= u.size && n%u.size == 0:
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		case n >= u.size:
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.size), u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// bundleTime is the modification time of every entry WriteBundle writes, so that the same inputs give
// the same bytes: the earliest time a zip's MS-DOS timestamp can hold.
var bundleTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteBundle writes a bundle of m and module to w: function.yaml (as [Manifest.Marshal] writes it)
// then the module at m.Module, both deflated, with fixed timestamps and modes, so the same inputs give
// the same bytes (with the same Go compressor). It refuses an invalid manifest (a [*ManifestError]),
// a module without the WebAssembly header (ErrBadBundle) and a module over DefaultMaxModuleBytes
// (ErrBundleTooLarge), so ReadBundle with the default limits accepts what it writes, as long as the
// result is within DefaultMaxBundleBytes (a module compresses to a third of its size or less).
func WriteBundle(w io.Writer, m Manifest, module []byte) error {
	manifest, err := m.Marshal()
	if err != nil {
		return err
	}
	if msg := checkModuleContent(module, m.Runtime); msg != "" {
		return badf("%s %s", m.Module, msg)
	}
	if int64(len(module)) > DefaultMaxModuleBytes {
		return tooLargef("the module is %s; the limit is %s", FormatBytes(int64(len(module))), FormatBytes(DefaultMaxModuleBytes))
	}
	zw := zip.NewWriter(w)
	for _, e := range []struct {
		name string
		data []byte
	}{{ManifestFile, manifest}, {m.Module, module}} {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: bundleTime}
		h.SetMode(0o644)
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("functions: writing bundle: %w", err)
		}
		if _, err := fw.Write(e.data); err != nil {
			return fmt.Errorf("functions: writing bundle: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("functions: writing bundle: %w", err)
	}
	return nil
}
