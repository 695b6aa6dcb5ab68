package cli

import (
	"errors"
	"fmt"
	"strings"
)

// Mark returns err with its message unchanged, such that errors.Is(err,
// kind) holds; nil stays nil. Packages mark the errors of bad input with
// their ErrInvalid, on which a command exits with status 2, without
// prefixing every message.
func Mark(err, kind error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return marked{err, kind}
}

type marked struct{ err, kind error }

func (m marked) Error() string        { return m.err.Error() }
func (m marked) Unwrap() error        { return m.err }
func (m marked) Is(target error) bool { return target == m.kind }

// Problems collects what is wrong with a command's configuration, so that
// one error names all of it rather than the first thing found.
type Problems []string

// Add records one problem, formatted as fmt.Sprintf formats.
func (p *Problems) Add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// Err is nil when nothing was added, else one error listing the problems,
// "; " between them, marked kind.
func (p Problems) Err(kind error) error {
	if len(p) == 0 {
		return nil
	}
	return Mark(errors.New(strings.Join(p, "; ")), kind)
}
