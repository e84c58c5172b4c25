package kraft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// The Kafka versions the project verifies: the newest 4.x and the newest
// 3.9.x (the last 3.x line, with older protocol versions) that Maven
// Central serves.
const (
	Latest = "4.4.0"
	Kafka3 = "3.9.2"
)

// Versions are the versions the real-Kafka suites run against.
var Versions = []string{Latest, Kafka3}

// dependencyPlugin is the pinned maven-dependency-plugin that copies the
// broker's runtime class path.
const dependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

// CacheDir is where resolved Kafka class paths are kept: $KAFKAEDGE_CACHE,
// or kafkaedge/ under the user's cache directory (~/.cache on Linux).
func CacheDir() (string, error) {
	if d := os.Getenv("KAFKAEDGE_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set KAFKAEDGE_CACHE): %w", err)
	}
	return filepath.Join(d, "kafkaedge"), nil
}

// Missing says why real Kafka cannot run on this machine ("" if it can):
// the launcher needs java and mvn on PATH.
func Missing() string {
	var miss []string
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			miss = append(miss, tool)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return strings.Join(miss, " and ") + " not found on PATH"
}

// pom lists the broker and the tools (console producer, JmxTool) of
// version, plus the log4j binding that 4.x brokers leave to the
// distribution.
func pom(version string) []byte {
	var b bytes.Buffer
	b.WriteString(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kafkaedge</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <dependencies>
`)
	dep := func(g, a, v string) {
		fmt.Fprintf(&b, "    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n", g, a, v)
	}
	dep("org.apache.kafka", "kafka_2.13", version)
	dep("org.apache.kafka", "kafka-tools", version)
	if major(version) >= 4 {
		dep("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.5")
	}
	b.WriteString("  </dependencies>\n</project>\n")
	return b.Bytes()
}

// major is the first number of a version ("4.4.0" -> 4).
func major(version string) int {
	n := 0
	for _, c := range version {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Resolve returns the directory holding the jars of Kafka version and its
// runtime dependencies, resolving them through Maven the first time (later
// calls reuse the cache; concurrent callers, also in other processes, wait
// for one resolution). A failed resolution names the artifact Maven could
// not get.
func Resolve(ctx context.Context, version string) (string, error) {
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(version) {
		return "", fmt.Errorf("kafka version %q: want x.y.z", version)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "kafka-"+version)
	lib := filepath.Join(dir, "lib")
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(done); err == nil {
		return lib, nil // another process resolved it meanwhile
	}
	if m := Missing(); m != "" {
		return "", errors.New("real Kafka needs Java and Maven: " + m)
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), pom(version), 0o644); err != nil {
		return "", err
	}
	tmp := lib + ".partial"
	_ = os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "mvn", "-B", "-q", "-f", filepath.Join(dir, "pom.xml"),
		dependencyPlugin+":copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("resolve org.apache.kafka:kafka_2.13:%s through Maven: %w: %s", version, err, mavenFailure(out))
	}
	_ = os.RemoveAll(lib)
	if err := os.Rename(tmp, lib); err != nil {
		return "", err
	}
	if err := os.WriteFile(done, []byte(version+"\n"), 0o644); err != nil {
		return "", err
	}
	return lib, nil
}

// mavenFailure picks the line of Maven's output that names what failed
// (the artifact it could not resolve), or its last lines.
func mavenFailure(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if strings.Contains(l, "Could not resolve") || strings.Contains(l, "Could not find artifact") ||
			strings.Contains(l, "could not be resolved") || strings.Contains(l, "Could not transfer") {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "[ERROR]"))
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
