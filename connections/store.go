package connections

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// SchemaVersion is the schemaVersion of the records this package writes, and the only one it reads.
const SchemaVersion = 1

// DefaultFlushInterval is how often a [Store] writes the activity recorded by [Store.Touch], by default.
const DefaultFlushInterval = 5 * time.Second

const (
	// keyPrefix starts the key of every connection record; the connection id follows.
	keyPrefix = "conn/"
	// maxIDLen bounds the id of a record: far above [IDLen], low enough to keep keys small.
	maxIDLen = 256
	// maxRecordBytes bounds an encoded record, so that every record stays in the LSM tree (below
	// valueThreshold) and the value log never needs garbage collection.
	maxRecordBytes = 64 << 10
	// valueThreshold is Badger's ValueThreshold: values up to this size are stored in the LSM tree.
	valueThreshold = maxRecordBytes + 1<<10
	// flushTxnBytes bounds the bytes one flush transaction writes, below Badger's batch limit (15% of
	// the memtable size, ~150 KiB); a transaction that reaches the limit sooner is committed there.
	flushTxnBytes = 64 << 10
	// maxAttempts bounds the retries of a transaction that keeps losing races to other writers.
	maxAttempts = 100
)

var (
	// ErrNotFound means no record has the connection id.
	ErrNotFound = errors.New("connection not found")
	// ErrUnreadable means a stored record does not decode, or has another schema version.
	ErrUnreadable = errors.New("unreadable connection record")
	// ErrInvalid means a record or an argument cannot be stored or used.
	ErrInvalid = errors.New("invalid connection record")
)

// Record is one connection's state.
type Record struct {
	ID           string          `json:"id"`
	API          string          `json:"api"`
	Stage        string          `json:"stage"`
	ConnectedAt  time.Time       `json:"connectedAt"`
	LastActiveAt time.Time       `json:"lastActiveAt"`
	SourceIP     string          `json:"sourceIp"`
	UserAgent    string          `json:"userAgent"`
	Authorizer   json.RawMessage `json:"authorizer,omitempty"` // the authorizer context, when one ran on $connect
}

// stored is a record as it is stored: JSON with its schema version.
type stored struct {
	SchemaVersion int `json:"schemaVersion"`
	Record
}

// Config configures a [Store]. Dir is required; the other fields have defaults.
type Config struct {
	Dir    string       // the Badger directory (e.g. <data>/connections)
	Logger *slog.Logger // default discards; Badger's own logging goes here at warn level or is silenced
	// FlushInterval is how often LastActiveAt updates are written (Touch is in memory; default 5s).
	FlushInterval time.Duration
}

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("connections: no directory: %w", ErrInvalid)
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("connections: flush interval %v: want 0 (the default) or more: %w", c.FlushInterval, ErrInvalid)
	}
	return nil
}

// Store holds the state of the WebSocket connections of this node in Badger. It is safe for concurrent use.
//
// Activity ([Store.Touch]) is kept in memory and written every flush interval, so a busy connection costs
// no write per message; [Store.Get] and [Store.List] include the activity not yet written.
type Store struct {
	db       *badger.DB
	log      *slog.Logger
	interval time.Duration

	mu       sync.Mutex
	touched  map[string]time.Time // activity not yet taken by a flush
	flushing map[string]time.Time // activity a flush is writing; read-only while set

	flushMu sync.Mutex // one flush at a time

	// puts are the records waiting to be written, putting tells whether a put is writing a batch
	// (see write).
	putMu   sync.Mutex
	puts    []*pendingPut
	putting bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens the store, deleting every record in it: the records of a node that is starting belong to sockets
// that died with its previous run. It starts the goroutine that writes activity; [Store.Close] stops it.
//
// Badger is tuned for small records and little memory: see badgerOptions.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := cfg.FlushInterval
	if interval == 0 {
		interval = DefaultFlushInterval
	}
	db, err := badger.Open(badgerOptions(cfg.Dir, log))
	if err != nil {
		return nil, fmt.Errorf("connections: opening %s: %w", cfg.Dir, err)
	}
	if err := db.DropAll(); err != nil {
		db.Close()
		return nil, fmt.Errorf("connections: clearing the records of the previous run: %w", err)
	}
	s := &Store{
		db:       db,
		log:      log,
		interval: interval,
		touched:  make(map[string]time.Time),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// badgerOptions tunes Badger for a few tens of thousands of records of a few hundred bytes, which a node
// deletes on every start, so that durability across a crash does not matter and memory does.
//
// Memory goes mostly to building tables: Badger builds each table in memory (with a 3 MiB index buffer
// whatever the table's size) and runs up to 8 builders at once in a compaction. Small memtables and tables
// keep those buffers small; measured with 20,000 records rewritten by repeated flushes, 1 MiB memtables and
// 256 KiB tables held the process at about half the resident memory of 4 MiB and 1 MiB (see BenchmarkStoreMemory).
func badgerOptions(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithLoggingLevel(badger.WARNING).
		WithMetricsEnabled(false).
		// Memtables: 64 MiB × 5 by default; here one being written and one being flushed, of 1 MiB
		// (~2,500 records). A transaction may write 15% of a memtable: see flushTxnBytes.
		WithMemTableSize(1 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(6).
		// Small tables and levels: the whole data set is ~10 MiB.
		WithBaseTableSize(256 << 10).
		WithBaseLevelSize(1 << 20).
		// Records stay in the LSM tree (Put refuses bigger ones), so the value log stays empty: its
		// smallest file size, and no value-log GC to run.
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(1 << 20).
		// No compression (small JSON records), so no block cache is needed: tables are memory-mapped.
		// Table indexes stay in memory uncached (IndexCacheSize 0); they are small for small tables.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		// The fewest compactors that still compact (one is refused), and few goroutines for streams.
		WithNumCompactors(2).
		WithNumGoroutines(2).
		// Conflict detection stays on: a flush reads then rewrites a record, and must lose to a
		// concurrent Delete rather than bring the record back.
		WithDetectConflicts(true).
		WithSyncWrites(false)
}

// Put creates or replaces the record r.ID.
func (s *Store) Put(r Record) error {
	if r.ID == "" || len(r.ID) > maxIDLen {
		return fmt.Errorf("connections: put: id of %d bytes: want 1 to %d: %w", len(r.ID), maxIDLen, ErrInvalid)
	}
	v, err := encode(r)
	if err != nil {
		return fmt.Errorf("connections: put %s: %w", r.ID, err)
	}
	if err := s.write(key(r.ID), v); err != nil {
		return fmt.Errorf("connections: put %s: %w", r.ID, err)
	}
	return nil
}

// pendingPut is a record waiting for [Store.write] to store it.
type pendingPut struct {
	key, value []byte
	// done receives the outcome of the write, or errLead first when this put is to write the
	// batch that holds it.
	done chan error
}

// errLead tells a waiting put to write the pending batch itself.
var errLead = errors.New("connections: write the pending puts")

// write stores one record, and returns once it is written. Records put at once are written
// together, in one transaction (a group commit): the first put writes every record pending when
// it starts, the others wait for it; the first of those that arrived meanwhile writes the next
// batch. A transaction costs more than the records in it, and connections often open in bursts.
func (s *Store) write(k, v []byte) error {
	p := &pendingPut{key: k, value: v, done: make(chan error, 1)}
	s.putMu.Lock()
	s.puts = append(s.puts, p)
	lead := !s.putting
	s.putting = true
	s.putMu.Unlock()
	if !lead {
		if err := <-p.done; err != errLead {
			return err
		}
	}
	s.putMu.Lock()
	batch := s.puts
	s.puts = nil
	s.putMu.Unlock()
	s.writeBatch(batch)
	s.putMu.Lock()
	if len(s.puts) > 0 {
		s.puts[0].done <- errLead
	} else {
		s.putting = false
	}
	s.putMu.Unlock()
	return <-p.done
}

// writeBatch writes the records of batch, in as few transactions as flushTxnBytes allows, and
// tells each put its outcome. The transactions only write, so they cannot conflict.
func (s *Store) writeBatch(batch []*pendingPut) {
	for len(batch) > 0 {
		n := 0
		err := s.db.Update(func(txn *badger.Txn) error {
			n = 0
			size := 0
			for n < len(batch) && (n == 0 || size+len(batch[n].key)+len(batch[n].value) <= flushTxnBytes) {
				err := txn.Set(batch[n].key, batch[n].value)
				if errors.Is(err, badger.ErrTxnTooBig) && n > 0 {
					return nil // the next transaction writes the rest
				}
				n++
				if err != nil {
					return err
				}
				size += len(batch[n-1].key) + len(batch[n-1].value)
			}
			return nil
		})
		if n == 0 {
			n = len(batch) // the transaction did not start: the error is every put's
		}
		for _, p := range batch[:n] {
			p.done <- err
		}
		batch = batch[n:]
	}
}

// Get returns the record id; the error is ErrNotFound when there is none. LastActiveAt includes the activity
// recorded by [Store.Touch] and not yet written.
func (s *Store) Get(id string) (Record, error) {
	var r Record
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(id))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			r, err = decode(id, v)
			return err
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("connections: get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("connections: get %s: %w", id, err)
	}
	s.mu.Lock()
	s.addActivity(&r)
	s.mu.Unlock()
	return r, nil
}

// addActivity moves r.LastActiveAt to the latest activity not yet written, if later. s.mu must be held.
func (s *Store) addActivity(r *Record) {
	if at, ok := s.touched[r.ID]; ok && at.After(r.LastActiveAt) {
		r.LastActiveAt = at
	}
	if at, ok := s.flushing[r.ID]; ok && at.After(r.LastActiveAt) {
		r.LastActiveAt = at
	}
}

// Touch records activity on the connection id at the given time, in memory; it is written within a flush
// interval. An earlier time than one already recorded is ignored, and so is a Touch of an id that has no
// record by the time it is written.
func (s *Store) Touch(id string, at time.Time) {
	s.mu.Lock()
	if prev, ok := s.touched[id]; !ok || at.After(prev) {
		s.touched[id] = at
	}
	s.mu.Unlock()
}

// Delete deletes the record id; the error is ErrNotFound when there is none.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	delete(s.touched, id)
	s.mu.Unlock()
	k := key(id)
	err := s.update(func(txn *badger.Txn) error {
		if _, err := txn.Get(k); err != nil {
			return err
		}
		return txn.Delete(k)
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return fmt.Errorf("connections: delete %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("connections: delete %s: %w", id, err)
	}
	return nil
}

// List returns the records of the API api, or of every API when api is "", sorted by ConnectedAt then ID:
// the first limit of them, or all when limit is 0. LastActiveAt includes the activity not yet written.
func (s *Store) List(api string, limit int) ([]Record, error) {
	if limit < 0 {
		return nil, fmt.Errorf("connections: list: limit %d: want 0 (no limit) or more: %w", limit, ErrInvalid)
	}
	var recs []Record
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(keyPrefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			id := string(item.Key()[len(keyPrefix):])
			err := item.Value(func(v []byte) error {
				r, err := decode(id, v)
				if err == nil && (api == "" || r.API == api) {
					recs = append(recs, r)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("connections: list: %w", err)
	}
	s.mu.Lock()
	for i := range recs {
		s.addActivity(&recs[i])
	}
	s.mu.Unlock()
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(a.ConnectedAt.Compare(b.ConnectedAt), strings.Compare(a.ID, b.ID))
	})
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return recs, nil
}

// Count returns the number of records.
func (s *Store) Count() (int, error) {
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(keyPrefix)
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("connections: count: %w", err)
	}
	return n, nil
}

// Close writes the activity not yet written, stops the store's goroutine and closes Badger. Calls after the
// first return the first's result; no other method may be called after Close.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		err := s.flush()
		if err != nil {
			err = fmt.Errorf("connections: close: writing activity: %w", err)
		}
		if cerr := s.db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("connections: close: %w", cerr))
		}
		s.closeErr = err
	})
	return s.closeErr
}

// run writes activity every flush interval until Close.
func (s *Store) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.flush(); err != nil {
				s.log.Warn("connections: writing activity", "err", err)
			}
		}
	}
}

// flush writes the activity recorded by Touch into the records. Activity it could not write is kept for
// the next flush.
func (s *Store) flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	pending := s.touched
	if len(pending) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.touched = make(map[string]time.Time, len(pending))
	s.flushing = pending
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.flushing = nil
		s.mu.Unlock()
	}()

	ids := slices.Collect(maps.Keys(pending))
	for len(ids) > 0 {
		n, err := s.flushSome(ids, pending)
		ids = ids[n:]
		if err != nil {
			s.mu.Lock()
			for _, id := range ids {
				if at, ok := s.touched[id]; !ok || pending[id].After(at) {
					s.touched[id] = pending[id]
				}
			}
			s.mu.Unlock()
			return err
		}
	}
	return nil
}

// flushSome writes the activity of the first ids in one transaction, as many as fit in flushTxnBytes, and
// returns how many it wrote (or skipped: records deleted, unreadable, or already later). It retries when a
// concurrent Put or Delete changed one of the records, so it never brings back a deleted record or moves
// LastActiveAt back.
func (s *Store) flushSome(ids []string, pending map[string]time.Time) (int, error) {
	var n int
	err := s.update(func(txn *badger.Txn) error {
		n = 0
		size := 0
		for n < len(ids) && size < flushTxnBytes {
			id := ids[n]
			n++
			k := key(id)
			item, err := txn.Get(k)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			var r Record
			if err := item.Value(func(v []byte) error {
				r, err = decode(id, v)
				return err
			}); err != nil {
				if errors.Is(err, ErrUnreadable) { // Get and List report it
					continue
				}
				return err
			}
			at := pending[id]
			if !at.After(r.LastActiveAt) {
				continue
			}
			r.LastActiveAt = at
			v, err := encode(r)
			if err != nil {
				continue // cannot happen: it decoded, and a later time is no longer
			}
			if err := txn.Set(k, v); errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				n-- // the next transaction writes it
				return nil
			} else if err != nil {
				return err
			}
			size += len(k) + len(v)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// update runs fn in a read-write transaction, again while it conflicts with a concurrent one.
func (s *Store) update(fn func(*badger.Txn) error) error {
	var err error
	for range maxAttempts {
		err = s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

// key returns the Badger key of the record id.
func key(id string) []byte {
	return append([]byte(keyPrefix), id...)
}

// encode returns the stored form of r.
func encode(r Record) ([]byte, error) {
	v, ok := encodeFast(&r)
	if !ok {
		var err error
		if v, err = json.Marshal(stored{SchemaVersion: SchemaVersion, Record: r}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if len(v) > maxRecordBytes {
		return nil, fmt.Errorf("record of %d bytes: want at most %d: %w", len(v), maxRecordBytes, ErrInvalid)
	}
	return v, nil
}

// encodeFast writes the stored form of r as json.Marshal does, for the common record: no
// authorizer, strings of printable ASCII that JSON does not escape, times that encode as
// RFC 3339. It declines (false) every other record, which encode gives to json.Marshal: it is on
// the path of every new connection, where json.Marshal and its reflection over two times were a
// measurable share of the gateway's CPU. TestEncode and FuzzEncode compare it with json.Marshal.
func encodeFast(r *Record) ([]byte, bool) {
	if len(r.Authorizer) > 0 || !plainJSONTime(r.ConnectedAt) || !plainJSONTime(r.LastActiveAt) {
		return nil, false
	}
	b := make([]byte, 0, 180+len(r.ID)+len(r.API)+len(r.Stage)+len(r.SourceIP)+len(r.UserAgent))
	b = append(b, `{"schemaVersion":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	for _, f := range [...]struct{ key, value string }{{`,"id":"`, r.ID}, {`","api":"`, r.API}, {`","stage":"`, r.Stage}} {
		if !plainJSONString(f.value) {
			return nil, false
		}
		b = append(b, f.key...)
		b = append(b, f.value...)
	}
	b = append(b, `","connectedAt":"`...)
	b = r.ConnectedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","lastActiveAt":"`...)
	b = r.LastActiveAt.AppendFormat(b, time.RFC3339Nano)
	for _, f := range [...]struct{ key, value string }{{`","sourceIp":"`, r.SourceIP}, {`","userAgent":"`, r.UserAgent}} {
		if !plainJSONString(f.value) {
			return nil, false
		}
		b = append(b, f.key...)
		b = append(b, f.value...)
	}
	return append(b, `"}`...), true
}

// plainJSONString reports whether json.Marshal writes s as it is between quotes: printable ASCII
// without the quote, the backslash and the characters it escapes for HTML.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainJSONTime reports whether t.MarshalJSON writes t in RFC 3339 with nanoseconds without an
// error: a year of four digits and a zone offset under a day.
func plainJSONTime(t time.Time) bool {
	_, offset := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && offset > -24*3600 && offset < 24*3600
}

// decode reads the stored record id from v. v belongs to Badger; encoding/json copies what it keeps.
func decode(id string, v []byte) (Record, error) {
	var st stored
	if err := json.Unmarshal(v, &st); err != nil {
		return Record{}, fmt.Errorf("record %s: %w: %w", id, ErrUnreadable, err)
	}
	if st.SchemaVersion != SchemaVersion {
		return Record{}, fmt.Errorf("record %s has schemaVersion %d; this build reads only %d: %w", id, st.SchemaVersion, SchemaVersion, ErrUnreadable)
	}
	return st.Record, nil
}

// badgerLogger passes Badger's warnings and errors to a slog.Logger; Badger's info and debug messages
// are dropped.
type badgerLogger struct{ log *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.log.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "from", "badger")
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.log.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)), "from", "badger")
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
