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
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
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
