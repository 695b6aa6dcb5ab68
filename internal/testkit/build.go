package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// ServePackage is the package of the quorumq binary.
const ServePackage = "github.com/quorumq/quorumq/cmd/node"

// GoBuild compiles the main package pkg (an import path, or a directory
// relative to the working directory) into the file out with `go build`.
// The error carries the compiler's output.
func GoBuild(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// Build compiles quorumq into dir and returns the binary's path. It needs
// a working directory inside this module, as tests have.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "quorumq")
	if err := GoBuild(ctx, ServePackage, bin); err != nil {
		return "", err
	}
	return bin, nil
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildOnce builds quorumq on its first call in this process, into a
// fresh temporary directory, and returns the same path (or error) to
// every call: a test package pays for one build however many of its tests
// start nodes. RemoveBuilt deletes the directory.
func BuildOnce() (string, error) {
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "quorumq-build-")
		if built.err != nil {
			return
		}
		built.bin, built.err = Build(context.Background(), built.dir)
	})
	return built.bin, built.err
}

// RemoveBuilt deletes what BuildOnce built. A test package calls it from
// TestMain once m.Run has returned.
func RemoveBuilt() {
	built.once.Do(func() {}) // orders this after a build in progress, and prevents a later one
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
