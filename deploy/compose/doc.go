// Package compose checks the container deployment against the code: the
// root docker-compose.yml is loaded with the Compose Specification's own
// loader (compose-go) and compared with the flags that a freshly built
// `quorumq serve --help` prints, and deploy/Dockerfile is checked for the
// things the compose file relies on. No Docker engine is needed: the tests
// read files and run the binary, they never build or start an image.
//
// The package holds tests only; this file gives it a name and a home.
package compose
