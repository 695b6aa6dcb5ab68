package cli

import "errors"

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
