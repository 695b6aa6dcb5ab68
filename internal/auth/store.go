package auth

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Store is the tokens file of a running node: lookups read the current
// set without locking, Reload swaps in a new one (on SIGHUP). It is safe
// for concurrent use.
type Store struct {
	path string
	log  *slog.Logger

	reload sync.Mutex // one Reload at a time
	cur    atomic.Pointer[Tokens]
}

// NewStore loads the tokens file at path; an invalid file is an error (a
// node must not start with tokens it cannot read). log receives the
// file's warnings and each reload; nil is slog.Default().
func NewStore(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{path: path, log: log.With("component", "auth")}
	t, err := Load(path)
	if err != nil {
		return nil, err
	}
	s.set(t)
	return s, nil
}

// Reload reads the file again. If the new file is invalid the tokens in
// use stay as they are and the error says why; requests in flight are
// never without a set.
func (s *Store) Reload() error {
	s.reload.Lock()
	defer s.reload.Unlock()
	t, err := Load(s.path)
	if err != nil {
		return fmt.Errorf("%w; keeping the %d tokens loaded before", err, s.cur.Load().Len())
	}
	s.set(t)
	return nil
}

func (s *Store) set(t *Tokens) {
	for _, w := range t.Warnings() {
		s.log.Warn(w)
	}
	s.cur.Store(t)
	s.log.Info("tokens loaded", "file", s.path, "tokens", t.Len())
}

// Tokens returns the set in use.
func (s *Store) Tokens() *Tokens { return s.cur.Load() }

// Authenticate looks token up in the set in use (Tokens.Authenticate).
func (s *Store) Authenticate(token string) (*Principal, bool) {
	return s.cur.Load().Authenticate(token)
}
