// Command kraft runs a real Apache Kafka cluster on loopback for
// development: `make kafka` starts three KRaft nodes in the foreground,
// prints KAFKA_BOOTSTRAP=... once Metadata answers, and stops the cluster
// and deletes its data on SIGINT or SIGTERM. The broker's jars are resolved
// through Maven into a cache outside the repository on the first run
// (internal/kraft). It is a development tool; the kafkaedge binary does not
// contain it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/kraft"
)

func main() {
	version := flag.String("version", kraft.Latest, "Kafka version (verified: "+strings.Join(kraft.Versions, ", ")+")")
	brokers := flag.Int("brokers", 3, "number of nodes: 1 or 3")
	quiet := flag.Bool("q", false, "print only the bootstrap line")
	flag.Parse()
	// Stop with the parent too (make, a shell script): SIGTERM when it dies.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := kraft.Options{Version: *version, Brokers: *brokers}
	if !*quiet {
		o.Log = os.Stderr
	}
	c, err := kraft.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kraft:", err)
		os.Exit(1)
	}
	fmt.Println("KAFKA_BOOTSTRAP=" + strings.Join(c.Bootstrap(), ","))
	if !*quiet {
		fmt.Fprintf(os.Stderr, "kraft: Kafka %s, cluster %s\n", c.Version, c.ID)
		fmt.Fprintf(os.Stderr, "kraft: SASL_PLAINTEXT %s (user %s, password %s; PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)\n",
			strings.Join(c.SASLBootstrap(), ","), c.Users[0].Name, c.Users[0].Password)
		fmt.Fprintf(os.Stderr, "kraft: SSL %s (CA %s)\n", strings.Join(c.SSLBootstrap(), ","), c.CAFile())
		fmt.Fprintln(os.Stderr, "kraft: Ctrl-C stops the cluster and deletes its data")
	}
	<-ctx.Done()
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Shutdown(sctx)
	fmt.Fprintln(os.Stderr, "kraft: stopped")
}
