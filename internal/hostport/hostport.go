// Package hostport is the one check of the "host:port" addresses that
// kafkaedge's settings and routes name: the addresses its servers listen on
// (reactor.Config.Addr, the admin and metrics listeners) and the brokers it
// dials (kafkawire.Config.Brokers, the nodes of an APISIX route). Host names
// are checked for their syntax and never resolved.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Split parses the address of a server to dial: a host (an IP address or a
// DNS name) and a port from 1 to 65535.
func Split(addr string) (host string, port int, err error) {
	host, port, err = split(addr, 1)
	if err == nil {
		err = CheckHost(host)
	}
	return host, port, err
}

// Listen checks an address to listen on: the host may be empty (every
// interface) and the port 0 (any free port).
func Listen(addr string) error {
	host, _, err := split(addr, 0)
	if err != nil || host == "" {
		return err
	}
	return CheckHost(host)
}

// split parses host:port with a port from minPort to 65535.
func split(addr string, minPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.New("want host:port")
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < minPort || port > 65535 {
		return "", 0, fmt.Errorf("port must be %d to 65535", minPort)
	}
	return host, port, nil
}

// CheckHost accepts an IP address or a DNS name; nothing is resolved.
func CheckHost(host string) error {
	if host == "" {
		return errors.New("empty host")
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if len(host) > 253 {
		return errors.New("host name longer than 253 bytes")
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("invalid host name %q", host)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("invalid host name %q", host)
			}
		}
	}
	return nil
}
