package main

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// seedBody is the route of APISIX's "Connect to Apache Kafka" example, as written.
const seedBody = `{"uri": "/kafka","upstream": {"nodes": {"kafka-server1:9092": 1,"kafka-server2:9092": 1},"type": "none","scheme": "kafka"}}`

// TestAdminAuth: the binary's admin API wants the key (the rules of the key
// check are tested in internal/admin), and SIGINT stops it as cleanly as
// SIGTERM.
func TestAdminAuth(t *testing.T) {
	t.Parallel()
	p := start(t)
	if status, _ := p.do(t, "GET", "/apisix/admin/routes", "", "nope"); status != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong key: %d", status)
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGINT")
	}
	if p.code != 0 {
		t.Fatalf("SIGINT: exit %d; stderr:\n%s", p.code, p.stderr)
	}
}

func TestAdminKeySources(t *testing.T) {
	t.Parallel()
	// Without a key anywhere, one is generated and printed once.
	p := startEnv(t, []string{adminKeyEnv + "="}, false)
	keyLine := regexp.MustCompile(`(?m)^kafkaedge: admin API key \(generated[^)]*\): ([0-9a-f]{32})$`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := keyLine.FindStringSubmatch(p.stderr.String()); m != nil {
			p.key = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no generated key line in stderr:\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.waitReady(t)
	if n := strings.Count(p.stderr.String(), p.key); n != 1 {
		t.Fatalf("the generated key appears %d times in stderr, want once", n)
	}
	p.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusCreated)

	// $KAFKAEDGE_ADMIN_KEY is used when no flag sets the key, and never printed.
	q := startEnv(t, []string{adminKeyEnv + "=from-env-key"}, false)
	q.key = "from-env-key"
	q.waitReady(t)
	if strings.Contains(q.stderr.String(), "from-env-key") || strings.Contains(q.stderr.String(), "generated") {
		t.Fatalf("stderr shows the key or a generated one:\n%s", q.stderr)
	}
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, testAdminRoutes)
}

func testAdminRoutes(t *testing.T, k *kafkatest.Kafka) {
	topic := k.Topic(t, "live", 1)
	produce(t, k, topic, "m0", "m1")
	p := start(t)

	// The APISIX documentation's example works as written; its hosts need not resolve.
	b := p.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusCreated)
	got := decode(t, b)
	if got["key"] != "/apisix/routes/kafka" {
		t.Fatalf("PUT response key: %v", got)
	}
	v := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes/kafka", "", 200))
	value := v["value"].(map[string]any)
	if value["id"] != "kafka" || value["uri"] != "/kafka" || value["create_time"] == nil || value["update_time"] == nil {
		t.Fatalf("GET value: %v", value)
	}
	up := value["upstream"].(map[string]any)
	if n := up["nodes"].(map[string]any); n["kafka-server1:9092"] != float64(1) || n["kafka-server2:9092"] != float64(1) || up["scheme"] != "kafka" {
		t.Fatalf("GET upstream: %v", up)
	}
	// The same PUT again is an update (200), keeping create_time.
	b = p.mustDo(t, "PUT", "/apisix/admin/routes/kafka", seedBody, http.StatusOK)
	if decode(t, b)["value"].(map[string]any)["create_time"] != value["create_time"] {
		t.Fatalf("update changed create_time: %s", b)
	}

	// A route to a live cluster, nodes in APISIX's array form (one
	// bootstrap broker: the leaders come from the metadata), plus harmless fields.
	host, port, _ := strings.Cut(k.Brokers[0], ":")
	live := func(desc string) string {
		return fmt.Sprintf(`{"uri":"/live","name":"live","desc":%q,"labels":{"env":"test"},"enable_websocket":true,
		"upstream":{"type":"roundrobin","scheme":"kafka","nodes":[{"host":%q,"port":%s,"weight":1}]},
		"plugins":{"kafka-proxy":{}}}`, desc, host, port)
	}
	p.mustDo(t, "PUT", "/apisix/admin/routes/live", live(k.Name), http.StatusCreated)
	expectData(t, p, "/live", topic, "m0", "m1")

	// Kafka's refusals come back with the texts of docs/protocol.md, and
	// the connection stays open.
	ec := dial(t, p, "/live")
	for _, c := range []struct {
		req  *pubsub.PubSubReq
		code int32
		msg  string
	}{
		{wsclient.ListOffsetReq(0, topic+"-missing", 0, -1), 3, "failed to list offset, topic: " + topic + "-missing, partition: 0, err: not found topic"},
		{wsclient.ListOffsetReq(0, topic, 7, -1), 3, "failed to list offset, topic: " + topic + ", partition: 7, err: not found partition"},
		{wsclient.FetchReq(0, topic+"-missing", 0, 0), 3, "failed to fetch message, topic: " + topic + "-missing, partition: 0, err: not found topic"},
		{wsclient.FetchReq(0, topic, 0, 100), 1, "failed to fetch message, topic: " + topic + ", partition: 0, err: OFFSET_OUT_OF_RANGE"},
	} {
		e := ec.call(t, c.req).GetErrorResp()
		if e == nil || e.Code != c.code || e.Message != c.msg {
			t.Errorf("got error %v, want code %d %q", e, c.code, c.msg)
		}
	}
	if msgs := ec.fetch(t, topic, 0, 2); len(msgs) != 0 {
		t.Fatalf("fetch at the high watermark: %d messages, want none", len(msgs))
	}

	// An update that leaves the cluster as it was keeps the route's open
	// connections; one that changes the cluster closes them with 1001, and
	// the route serves from the new cluster definition.
	c := dial(t, p, "/live")
	if hw := c.listOffset(t, topic, 0, -1); hw != 2 {
		t.Fatalf("high watermark %d", hw)
	}
	p.mustDo(t, "PUT", "/apisix/admin/routes/live", live("described again"), http.StatusOK)
	if hw := c.listOffset(t, topic, 0, -1); hw != 2 {
		t.Fatalf("high watermark after an update of the description: %d", hw)
	}
	nodes := make([]string, len(k.Brokers))
	for i, b := range k.Brokers {
		nodes[i] = fmt.Sprintf("%q:1", b)
	}
	p.mustDo(t, "PUT", "/apisix/admin/routes/live", `{"uri":"/live","upstream":{"scheme":"kafka","nodes":{`+strings.Join(nodes, ",")+`}}}`, http.StatusOK)
	c.expectClose(t, wsclient.CloseGoingAway, "after an update of the brokers the open connection")
	expectData(t, p, "/live", topic, "m0", "m1")
	if up := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes/live", "", 200))["value"].(map[string]any)["upstream"].(map[string]any); len(up["nodes"].(map[string]any)) != len(k.Brokers) {
		t.Fatalf("GET after the update: upstream %v", up)
	}

	// POST creates with a generated id.
	post := decode(t, p.mustDo(t, "POST", "/apisix/admin/routes", `{"uri":"/posted","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusCreated))
	postedKey, _ := post["key"].(string)
	postedID := strings.TrimPrefix(postedKey, "/apisix/routes/")
	if postedID == "" || postedID == postedKey {
		t.Fatalf("POST key: %v", post)
	}

	// PUT on the collection takes the id from the body (APISIX v2 style).
	p.mustDo(t, "PUT", "/apisix/admin/routes", `{"id":"v2","uri":"/v2","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, http.StatusCreated)
	status, b := p.do(t, "PUT", "/apisix/admin/routes", `{"uri":"/v2b","upstream":{"scheme":"kafka","nodes":{"127.0.0.1:1":1}}}`, p.key)
	if status != http.StatusBadRequest || !strings.Contains(string(b), "missing route id") {
		t.Fatalf("PUT on the collection without an id: %d %s", status, b)
	}
	p.mustDo(t, "DELETE", "/apisix/admin/routes/v2", "", http.StatusOK)

	list := decode(t, p.mustDo(t, "GET", "/apisix/admin/routes", "", 200))
	if list["total"] != float64(3) || len(list["list"].([]any)) != 3 {
		t.Fatalf("list: %v", list)
	}

	// DELETE closes the route's open connections with 1001 and removes it.
	c = dial(t, p, "/live")
	if hw := c.listOffset(t, topic, 0, -1); hw != 2 {
		t.Fatalf("high watermark %d", hw)
	}
	del := decode(t, p.mustDo(t, "DELETE", "/apisix/admin/routes/live", "", 200))
	if del["deleted"] != "1" || del["key"] != "/apisix/routes/live" {
		t.Fatalf("DELETE response: %v", del)
	}
	c.expectClose(t, wsclient.CloseGoingAway, "after DELETE the open connection")
	p.mustDo(t, "GET", "/apisix/admin/routes/live", "", http.StatusNotFound)
	p.mustDo(t, "DELETE", "/apisix/admin/routes/live", "", http.StatusNotFound)
	expectRefused(t, p, "/live", http.StatusNotFound)
	p.mustDo(t, "DELETE", "/apisix/admin/routes/"+postedID, "", 200)
}
