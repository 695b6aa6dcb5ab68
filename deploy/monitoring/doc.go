// Package monitoring checks the monitoring files of deploy/ against the
// code: the Prometheus alert rules (deploy/prometheus/alerts.yml), the
// Grafana dashboard and its provisioning (deploy/grafana) and how
// deploy/prometheus.yml and docker-compose.yml load them. Every metric a
// rule or a panel queries must be one that real nodes serve: the test
// starts a 3-node cluster in its process, gives it some work, and reads
// the names off their /metrics.
//
// The package holds tests only; this file gives it a name and a home.
package monitoring
