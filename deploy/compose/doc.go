// Package compose checks the container deployment against the code: the
// root docker-compose.yml is loaded with the Compose Specification's own
// loader (compose-go) and compared with the flags that a freshly built
// `quorumq serve --help` prints, and deploy/Dockerfile is checked for the
// things the compose file relies on. The secured setup is checked by
// running the compose file's own scripts on this machine: the certs
// service's, with the freshly built binary and a temporary directory for
// each volume, and each tool's start script, with a stand-in quorumq that
// shows the token it was given; the nodes' certificates, keys and tokens
// are then the files those runs made. Those tests need no Docker engine.
//
// TestStack (make compose-test, QUORUMQ_COMPOSE_STACK=1, as root) runs
// the compose file for real on a private dockerd, with images assembled
// from this machine's binaries (stack/) and the compose command built
// from its Go module (composecmd/).
//
// The package holds tests only; this file gives it a name and a home.
package compose
