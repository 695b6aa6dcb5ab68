package api

// NamePattern is the rule for queue and topic names.
const NamePattern = "[A-Za-z0-9._-]{1,64}"

// DefaultQueue is the queue of a request without queue=; DefaultTopic the
// topic of a /pub or /sub without topic=.
const (
	DefaultQueue = "default"
	DefaultTopic = "default"
)

// ValidName reports whether name is a valid queue or topic name
// (NamePattern).
func ValidName(name string) bool { return validChars(name, 64) }

// NodeIDPattern is the rule for node ids: safe in file names, URLs,
// metric labels, memberlist node names and certificate URIs.
const NodeIDPattern = "[A-Za-z0-9._-]{1,128}"

// ValidNodeID reports whether id is a valid node id (NodeIDPattern).
func ValidNodeID(id string) bool { return validChars(id, 128) }

// validChars reports whether s is 1 to max characters of [A-Za-z0-9._-].
func validChars(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckQueueName returns an ErrInvalidQueueName that names the value when
// name breaks the rule.
func CheckQueueName(name string) error {
	if ValidName(name) {
		return nil
	}
	return ErrInvalidQueueName.Errorf("invalid queue name %s: want %s", Quote(name), NamePattern)
}

// CheckTopicName returns an ErrInvalidTopicName that names the value when
// name breaks the rule.
func CheckTopicName(name string) error {
	if ValidName(name) {
		return nil
	}
	return ErrInvalidTopicName.Errorf("invalid topic name %s: want %s", Quote(name), NamePattern)
}
