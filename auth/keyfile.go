package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultKeyFileReloadInterval is how often a KeyFileStore checks its file
// for changes when KeyFileConfig.ReloadInterval is zero.
const DefaultKeyFileReloadInterval = 5 * time.Second

// maxKeyFileBytes bounds what a KeyFileStore reads: about a hundred thousand
// keys, far past any hand-kept file.
const maxKeyFileBytes = 32 << 20

// keyFileRacyWindow is the mtime granularity a KeyFileStore allows for: a
// file rewritten within this time of our last read, with the same size, may
// show an unchanged mtime, so it is read again until the window has passed
// (the "racy git" problem).
const keyFileRacyWindow = 2 * time.Second

// KeyFileConfig configures a KeyFileStore.
type KeyFileConfig struct {
	// ReloadInterval is how often the file is checked for changes: 0 means
	// DefaultKeyFileReloadInterval (5s); a negative value turns the
	// checking off, leaving Reload to the application.
	ReloadInterval time.Duration
	// Logger receives a line for every reload and every file that could
	// not be loaded (the last good keys stay in use); nil means
	// slog.Default().
	Logger *slog.Logger
	// OnReload, when set, is called after each attempt to load changed
	// file contents, by the poller or by Reload, with nil when the new
	// keys are in use or the reason they are not. It must not call Reload.
	OnReload func(err error)
}

// A KeyFileStore is an APIKeyStore that holds the keys listed in a YAML or
// JSON file, and reloads them when the file changes. It is safe for
// concurrent use; Close stops the reloading.
//
// The file is a list of keys. Each has an "id" and exactly one of "sha256"
// (the hex SHA-256 of the key, the recommended form) or "key" (the key
// itself, hashed as it is read; handy for development, but the file then
// holds secrets); and optionally "owner", "plan", "scopes" (a list),
// "metadata" (a map of strings), "revoked" (a boolean) and "expires_at"
// (RFC 3339, or a date meaning midnight UTC):
//
//	# keys.yaml
//	- id: billing-service
//	  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	  owner: billing
//	  plan: gold
//	  scopes: [invoices:read, invoices:write]
//	  metadata: {team: payments}
//	- id: old-partner
//	  sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
//	  revoked: true
//
// A file that is empty (not even "[]"), malformed or invalid is refused as a
// whole: at OpenKeyFile with an error naming the file, the key's position
// and the field; on a reload by logging that error and keeping the keys
// loaded last, so a half-written file never locks every client out.
//
// Changes are noticed by polling: the file's modification time and size,
// then the SHA-256 of its contents, so that rewriting a file with the same
// keys costs nothing. Replace the file atomically (write a temporary file,
// then rename it over the old one, as editors and Kubernetes ConfigMap
// volumes do): a file rewritten in place can be read half-written, and a
// half-written list that still parses could drop a "revoked: true" line. A
// read during which the file visibly changed is discarded and retried.
//
// On a busy gateway the store keeps serving the keys loaded last while a
// new file is read, so a reload never blocks a request.
type KeyFileStore struct {
	path     string
	logger   *slog.Logger
	onReload func(error)
	keys     atomic.Pointer[apiKeyIndex]

	mu      sync.Mutex // serialises reloads; guards what follows
	modTime time.Time  // of the file when last read
	size    int64
	readAt  time.Time // when the file was last read
	sum     [32]byte  // of the contents last parsed, good or bad
	sumErr  error     // what parsing them gave
	pollErr string    // the failure the poller logged last, to log it once

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ APIKeyStore = (*KeyFileStore)(nil)

// OpenKeyFile loads the keys listed in the file at path and returns a store
// holding them, which checks the file for changes every cfg.ReloadInterval
// until Close is called. A file that cannot be read or holds an invalid key
// is an error that names the file, the key's position and the field.
func OpenKeyFile(path string, cfg KeyFileConfig) (*KeyFileStore, error) {
	interval := cfg.ReloadInterval
	if interval == 0 {
		interval = DefaultKeyFileReloadInterval
	}
	s := &KeyFileStore{path: path, logger: cfg.Logger, onReload: cfg.OnReload}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.mu.Lock()
	_, err := s.load()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if interval > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.poll(interval)
	}
	return s, nil
}

// LookupAPIKey returns the key with the given hash, or ErrUnknownAPIKey.
func (s *KeyFileStore) LookupAPIKey(ctx context.Context, hash [32]byte) (*APIKey, error) {
	idx := s.keys.Load()
	if idx == nil { // a zero KeyFileStore, not from OpenKeyFile
		return nil, ErrUnknownAPIKey
	}
	return idx.lookup(hash)
}

// Reload reads the file now and, if its contents changed, puts its keys in
// use. It returns why the contents could not be loaded, in which case the
// keys loaded last stay in use; contents that did not change since the last
// attempt give that attempt's result again.
func (s *KeyFileStore) Reload() error {
	s.mu.Lock()
	changed, err := s.load()
	s.mu.Unlock()
	if changed && s.onReload != nil {
		s.onReload(err)
	}
	return err
}

// Close stops checking the file for changes. The store still answers
// lookups with the keys loaded last. Close is safe to call more than once.
func (s *KeyFileStore) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
	})
	return nil
}

func (s *KeyFileStore) poll(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.check()
		}
	}
}

// check reloads the file if its modification time or size changed, or if
// it was modified so recently that they cannot be trusted. A failure is
// logged once, not at every tick while it lasts.
func (s *KeyFileStore) check() {
	s.mu.Lock()
	fi, err := os.Stat(s.path)
	changed := err != nil
	if err == nil {
		if fi.ModTime().Equal(s.modTime) && fi.Size() == s.size && s.readAt.After(s.modTime.Add(keyFileRacyWindow)) {
			s.mu.Unlock()
			return
		}
		changed, err = s.load()
	}
	if err != nil && err.Error() == s.pollErr {
		changed = false
	}
	if changed {
		if err != nil {
			s.pollErr = err.Error()
			s.logger.Error("auth: API key file not loaded; keeping the keys loaded last", "file", s.path, "err", err)
		} else {
			s.pollErr = ""
			s.logger.Info("auth: API key file reloaded", "file", s.path, "keys", len(*s.keys.Load()))
		}
	}
	s.mu.Unlock()
	if changed && s.onReload != nil {
		s.onReload(err)
	}
}

// load reads the file and, if its contents differ from those parsed last,
// parses them and puts the keys in use. It reports whether the contents
// changed, and what loading them gave. s.mu must be held.
func (s *KeyFileStore) load() (changed bool, err error) {
	readAt := time.Now()
	data, fi, err := readKeyFile(s.path)
	if err != nil {
		return true, err
	}
	s.modTime, s.size, s.readAt = fi.ModTime(), fi.Size(), readAt
	sum := sha256.Sum256(data)
	if s.keys.Load() != nil && sum == s.sum {
		return false, s.sumErr
	}
	s.sum = sum
	keys, err := parseKeyFile(s.path, data)
	var idx apiKeyIndex
	if err == nil {
		idx, err = newAPIKeyIndex(keys, "auth: key file "+s.path+": ", func(i int) string {
			return fmt.Sprintf("key #%d (id %q)", i, keys[i].ID)
		})
	}
	s.sumErr = err
	if err != nil {
		return true, err
	}
	s.keys.Store(&idx)
	return true, nil
}

func readKeyFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("auth: key file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("auth: key file: %w", err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, nil, fmt.Errorf("auth: key file %s: larger than %d bytes", path, maxKeyFileBytes)
	}
	// A file rewritten in place while we read it can parse as a shorter,
	// valid list; if it changed under us, read it again on the next poll.
	if after, err := os.Stat(path); err != nil || int64(len(data)) != fi.Size() ||
		after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		return nil, nil, fmt.Errorf("auth: key file %s: changed while being read", path)
	}
	return data, fi, nil
}

// parseKeyFile decodes the list of keys in data, a YAML document (JSON being
// YAML), checking each field so that an error can name it.
func parseKeyFile(path string, data []byte) ([]APIKey, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("auth: key file %s: "+format, append([]any{path}, args...)...)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fail("file is empty (write [] for a file without keys)")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fail("%v", err)
	}
	list := &doc
	if list.Kind == yaml.DocumentNode && len(list.Content) == 1 {
		list = list.Content[0]
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fail("line %d: want a list of keys", list.Line)
	}
	keys := make([]APIKey, 0, len(list.Content))
	for i, item := range list.Content {
		k, err := parseKeyRecord(item)
		if err != nil {
			id := ""
			if k.ID != "" {
				id = fmt.Sprintf(" (id %q)", k.ID)
			}
			line := item.Line
			if fe, ok := errors.AsType[*keyFieldError](err); ok {
				line = fe.line
			}
			return nil, fail("key #%d%s, line %d: %v", i, id, line, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// A keyFieldError is a problem with one field of a key file entry.
type keyFieldError struct {
	line int // of the field's value
	msg  string
}

func (e *keyFieldError) Error() string { return e.msg }

// parseKeyRecord decodes one entry of a key file. Its errors name the field;
// the returned key has at least the ID when there is one.
func parseKeyRecord(n *yaml.Node) (APIKey, error) {
	var k APIKey
	if n.Kind != yaml.MappingNode {
		return k, errors.New("want a map of fields")
	}
	fieldErr := func(v *yaml.Node, format string, args ...any) error {
		return &keyFieldError{line: v.Line, msg: fmt.Sprintf(format, args...)}
	}
	// The ID first, so that errors about the other fields can name the key.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := n.Content[i+1]; n.Content[i].Value == "id" {
			if err := v.Decode(&k.ID); err != nil {
				return k, fieldErr(v, "field %q: %s", "id", yamlErrorText(err))
			}
		}
	}
	var plain, sum, expires string
	var plainNode, sumNode, expiresNode *yaml.Node
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, value := n.Content[i].Value, n.Content[i+1]
		if seen[name] {
			return k, fieldErr(n.Content[i], "field %q: given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "id":
			continue
		case "key":
			err, plainNode = value.Decode(&plain), value
		case "sha256":
			err, sumNode = value.Decode(&sum), value
		case "owner":
			err = value.Decode(&k.Owner)
		case "plan":
			err = value.Decode(&k.Plan)
		case "scopes":
			err = value.Decode(&k.Scopes)
			for j, s := range k.Scopes {
				if err == nil && (s == "" || strings.ContainsAny(s, " \t\r\n\"\\")) {
					return k, fieldErr(value, "field %q: scope #%d %q: a scope is a non-empty token without spaces or quotes", name, j, s)
				}
			}
		case "metadata":
			err = value.Decode(&k.Metadata)
		case "revoked":
			err = value.Decode(&k.Revoked)
		case "expires_at":
			err, expiresNode = value.Decode(&expires), value
		default:
			return k, fieldErr(n.Content[i], "field %q: unknown (want id, key, sha256, owner, plan, scopes, metadata, revoked or expires_at)", name)
		}
		if err != nil {
			return k, fieldErr(value, "field %q: %s", name, yamlErrorText(err))
		}
	}
	switch {
	case k.ID == "":
		return k, fmt.Errorf("field %q: required", "id")
	case plainNode != nil && sumNode != nil:
		return k, fieldErr(sumNode, "fields %q and %q: give one, not both", "key", "sha256")
	case plainNode != nil && plain == "":
		return k, fieldErr(plainNode, "field %q: empty", "key")
	case plainNode != nil:
		k.Hash = HashAPIKey(plain)
	case sumNode != nil:
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != sha256.Size {
			return k, fieldErr(sumNode, "field %q: want 64 hexadecimal digits", "sha256")
		}
		k.Hash = [32]byte(b)
	default:
		return k, fmt.Errorf("field %q or %q: required", "sha256", "key")
	}
	if expires != "" {
		t, err := time.Parse(time.RFC3339, expires)
		if err != nil {
			t, err = time.Parse(time.DateOnly, expires)
		}
		if err != nil {
			return k, fieldErr(expiresNode, "field %q: %q is not an RFC 3339 time or a date", "expires_at", expires)
		}
		k.ExpiresAt = t
	}
	return k, nil
}

// yamlErrorText drops the "yaml: unmarshal errors:" preamble and the line
// numbers, which the caller gives along with the field.
func yamlErrorText(err error) string {
	msgs := []string{err.Error()}
	if te, ok := errors.AsType[*yaml.TypeError](err); ok && len(te.Errors) > 0 {
		msgs = te.Errors
	}
	for i, m := range msgs {
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if _, after, ok := strings.Cut(rest, ": "); ok {
				msgs[i] = after
			}
		}
	}
	return strings.Join(msgs, "; ")
}
