package pstohttp

// unreserved marks the bytes the reference's simplehttp_encode_uri leaves
// as they are: A-Z a-z 0-9 and ! $ ' ( ) * , - . / : = @ _ ~.
var unreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!$'()*,-./:=@_~" {
		t[c] = true
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// escape percent-encodes msg exactly as ps_to_http 0.5.4 does for the %s
// of a GET destination: every byte outside the unreserved set becomes %XX
// with upper-case hex (space is %20, never +). Example:
// {"a":"b c"} -> %7B%22a%22:%22b%20c%22%7D.
func escape(msg []byte) string {
	n := 0
	for _, c := range msg {
		if !unreserved[c] {
			n++
		}
	}
	if n == 0 {
		return string(msg)
	}
	b := make([]byte, 0, len(msg)+2*n)
	for _, c := range msg {
		if unreserved[c] {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}
