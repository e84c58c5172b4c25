package hostport

import "testing"

func TestSplit(t *testing.T) {
	if h, p, err := Split("kafka-1.internal:9092"); err != nil || h != "kafka-1.internal" || p != 9092 {
		t.Fatalf("Split: %q %d %v", h, p, err)
	}
	if h, p, err := Split("[::1]:9093"); err != nil || h != "::1" || p != 9093 {
		t.Fatalf("Split IPv6: %q %d %v", h, p, err)
	}
	for addr, want := range map[string]string{
		"kafka":    "want host:port",
		"kafka:0":  "port must be 1 to 65535",
		"kafka:x":  "port must be 1 to 65535",
		":9092":    "empty host",
		"a b:9092": `invalid host name "a b"`,
		"a..b:1":   `invalid host name "a..b"`,
	} {
		if _, _, err := Split(addr); err == nil || err.Error() != want {
			t.Errorf("Split(%q): %v, want %q", addr, err, want)
		}
	}
}

func TestListen(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9080", ":9080", "127.0.0.1:0", "localhost:1", "[::]:0"} {
		if err := Listen(addr); err != nil {
			t.Errorf("Listen(%q): %v", addr, err)
		}
	}
	for addr, want := range map[string]string{
		"localhost":       "want host:port",
		"127.0.0.1:70000": "port must be 0 to 65535",
		"a_b c:1":         `invalid host name "a_b c"`,
	} {
		if err := Listen(addr); err == nil || err.Error() != want {
			t.Errorf("Listen(%q): %v, want %q", addr, err, want)
		}
	}
}
