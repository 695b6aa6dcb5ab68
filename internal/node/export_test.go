package node

import "net/http"

// WrapPubsub makes the node wrap its pubsub port's handler in wrap.
func WrapPubsub(c *Config, wrap func(http.Handler) http.Handler) { c.wrapPubsub = wrap }
