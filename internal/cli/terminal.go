package cli

import (
	"io"
	"os"
)

// IsTerminal reports whether w is a terminal (a character device): where
// a tool may redraw a line or the screen, which a file or pipe must not
// receive.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
