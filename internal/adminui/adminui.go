// Package adminui is the admin web UI that every node serves at /ui: plain
// HTML, CSS and JavaScript modules embedded in the binary, with no build
// step and nothing fetched from elsewhere. The page asks for a token,
// keeps it in sessionStorage and sends it as Authorization: Bearer on its
// calls to the node's JSON endpoints; the assets themselves are open.
//
// Everything the page shows is put into the DOM as text (textContent,
// createElement), never parsed as HTML: queue and topic names, message
// bodies and error lines come from users.
package adminui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui"

// ContentSecurityPolicy allows the page only what it loads from the node
// itself: no inline script or style, no other origin, no framing (the
// page has buttons that purge queues).
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

//go:embed assets
var assets embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// files maps a path under Prefix ("/", "/app.js") to its asset; built
// once, the assets never change while the binary runs.
var files = load()

func load() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "assets")
		m[name] = asset{body: b, ctype: contentType(name), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("adminui: embedded assets: " + err.Error()) // a build defect
	}
	m["/"] = m["/index.html"]
	return m
}

// contentType names the type of an asset by its extension, with the
// charset of text; the few the UI uses are spelled out so that the
// answer does not depend on the machine's MIME tables.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Serve answers a GET or HEAD of Prefix or a path under it: the asset, or
// 304 when If-None-Match names its ETag, or a 404. Every answer carries
// the Content-Security-Policy and nosniff. Browsers revalidate each time
// (no-cache) and get a 304 until the binary changes.
func Serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "/"
	}
	a, found := files[name]
	if !ok || !found {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("no such page of the admin UI\n"))
		return
	}
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.ctype)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// etagMatches reports whether an If-None-Match list names etag (or is *).
func etagMatches(list, etag string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
