package certs

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
)

// LoadGossipKeys reads a gossip key file: one base64 key per line (16, 24
// or 32 bytes: AES-128, -192 or -256), blank lines and lines starting
// with # ignored. The first key is the primary one, which encrypts what
// this node sends; every key listed decrypts. Rotation without a restart:
// add the new key as a second line on every node (SIGHUP), move it to the
// first line everywhere (SIGHUP), then delete the old one (SIGHUP).
func LoadGossipKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := bytes.TrimSpace(sc.Bytes())
		if len(s) == 0 || s[0] == '#' {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(string(s))
		if err != nil {
			return nil, fmt.Errorf("gossip key file %s:%d: not base64: %v", path, line, err)
		}
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("gossip key file %s:%d: key of %d bytes; want 16, 24 or 32", path, line, len(k))
		}
		for _, have := range keys {
			if bytes.Equal(have, k) {
				return nil, fmt.Errorf("gossip key file %s:%d: key listed twice", path, line)
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("gossip key file %s: no key", path)
	}
	return keys, nil
}
