package main

import (
	"os"
	"strings"
	"testing"

	"github.com/kafkaedge/kafkaedge/internal/testcert"
)

// caFile writes a self-signed CA certificate and returns its path.
func caFile(t *testing.T) string {
	_, _, path, _ := testcert.Files(t, t.TempDir(), "ca")
	return path
}

// TestOperationsExampleConfig starts kafkaedge with the example config file
// of docs/operations.md, so that the documentation stays true.
func TestOperationsExampleConfig(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n# /etc/kafkaedge/kafkaedge.yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/operations.md has no example config block")
	}
	example = strings.NewReplacer(
		"0.0.0.0:9080", "127.0.0.1:0",
		"127.0.0.1:9180", "127.0.0.1:0",
		"/var/lib/kafkaedge", t.TempDir(),
		"/etc/kafkaedge/ca.pem", caFile(t),
	).Replace(example)
	path := writeConfig(t, example)
	// The -listen/-admin-listen the harness adds are the same as the file's.
	p := startEnv(t, nil, false, "-config", path)
	p.key = "3f0c6f2e9b5d4a1c8e7f6a5b4c3d2e1f"
	p.waitReady(t)
	list := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes", "", 200))
	if list["total"] != float64(2) {
		t.Fatalf("example config routes: %v", list)
	}
	if strings.Contains(p.stderr.String(), "s3cret") {
		t.Fatalf("password in the log:\n%s", p.stderr)
	}
}
