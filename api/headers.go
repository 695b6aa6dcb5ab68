package api

// Headers of the queue port's answers.
const (
	// HeaderMessageID is the id of the message a /get handed out, and of
	// the message a /put stored.
	HeaderMessageID = "X-Message-Id"
	// HeaderMessageIDs lists the ids of a /mget's messages and a /mput's
	// records, comma-separated, in order.
	HeaderMessageIDs = "X-Message-Ids"
	// HeaderAttempts counts the deliveries of a leased message, this one
	// included.
	HeaderAttempts = "X-Attempts"
	// HeaderLastError is the reason of a leased message's last nack, or
	// "lease expired".
	HeaderLastError = "X-Last-Error"
)

// Headers every port sends.
const (
	// HeaderErrorCode carries the token of an error response's kind.
	HeaderErrorCode = "X-Error-Code"
	// HeaderServedBy names the node that executed the request; a response
	// relayed from the leader carries the leader's.
	HeaderServedBy = "X-Served-By"
	// HeaderLeaderID names the leader the answering node knows, on 503s
	// and 307s.
	HeaderLeaderID = "X-Leader-ID"
	// HeaderNoSniff is sent with "nosniff" on every error answer, so that
	// a browser never renders an error that echoes input as anything but
	// text.
	HeaderNoSniff = "X-Content-Type-Options"
)

// Headers of authentication (RFC 6750).
const (
	// HeaderAuthorization carries "Bearer TOKEN" from a client.
	HeaderAuthorization = "Authorization"
	// HeaderWWWAuthenticate is sent on every 401 answer.
	HeaderWWWAuthenticate = "WWW-Authenticate"
	// ParamToken is the query parameter that carries the token for the
	// clients that can only send URLs (simplehttp's BaseReader,
	// ps_to_http): token=TOKEN. Redacted wherever a node logs or echoes a
	// URI.
	ParamToken = "token"
)

// Headers between nodes.
const (
	// HeaderForwardedBy is the loop guard of leader forwarding: a node
	// that forwards a request names itself here, and a node that receives
	// a request carrying it serves it only if it leads, and never forwards
	// it again (one hop).
	HeaderForwardedBy = "X-Quorumq-Forwarded-By"
	// HeaderHop marks a delivery as one hop of the pubsub fan-out: the
	// receiver hands it to its local subscribers and never forwards it.
	HeaderHop = "X-Quorumq-Hop"
	// HeaderFrom names the node that sent a delivery.
	HeaderFrom = "X-Quorumq-From"
	// HeaderDeliverWithin is how long, in milliseconds from its arrival,
	// the receiver of a delivery may still hand it to its subscribers: past
	// that the sender no longer counts an answer, so the receiver does not
	// deliver either, and both count the delivery as not made.
	HeaderDeliverWithin = "X-Quorumq-Deliver-Within"
	// HeaderPropose is sent with "1" by a leader on its answers to
	// forwarded requests: it serves PathPropose, so its followers may
	// batch the writes they forward. A leader that does not send it is
	// forwarded one request at a time.
	HeaderPropose = "X-Quorumq-Propose"
)

// Paths of the node-to-node routes. They are not part of simplehttp's API
// and none matches one of its route globs.
const (
	// PathInternal starts every node-to-node route.
	PathInternal = "/internal/"
	// PathStatus answers the node's Status, as /cluster/status does, for
	// the other nodes (promotion checks, leave).
	PathStatus = "/internal/status"
	// PathDeliver takes messages published on another node for this
	// node's subscribers (POST, with HeaderHop).
	PathDeliver = "/internal/deliver"
	// PathSubs answers this node's subscriber-set entry as the cluster
	// gossips it.
	PathSubs = "/internal/subs"
	// PathClients lists this node's subscribers, for a cluster-wide
	// /clients on another node.
	PathClients = "/internal/clients"
	// PathPubsubStats answers this node's pubsub counters as /stats
	// answers them in JSON, for GET /pubsub/topics on another node.
	PathPubsubStats = "/internal/pubsub/stats"
	// PathPropose takes a batch of commands from a follower and answers
	// each command's result (POST; see httpapi's batchwire.go).
	PathPropose = "/internal/propose"
)
