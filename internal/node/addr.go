package node

import (
	"fmt"
	"net"
)

// AdvertiseHost picks the host other nodes use to reach this one: the
// --advertise value if set, else the bind host, else (binding 0.0.0.0 or ::)
// the first non-loopback IPv4 address, falling back to 127.0.0.1 on a
// machine that has none.
func AdvertiseHost(advertise, bind string) (string, error) {
	if advertise != "" {
		if h, _, err := net.SplitHostPort(advertise); err == nil {
			return h, nil
		}
		return advertise, nil
	}
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return "", fmt.Errorf("bind address %q: %w", bind, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "127.0.0.1", nil
}

// withHost replaces the host of addr (host:port) with host.
func withHost(host, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}
