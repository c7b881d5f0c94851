package app

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// TestSnapStart: a function with `snapStart: true` in the stack file answers as the same module
// without it does, its admin view says so, and an instance started after the first says in its
// REPORT line that it was restored (Restore Duration), never that it initialised.
func TestSnapStart(t *testing.T) {
	n := sharedNode(t)
	token := adminToken(t, n)
	base := "http://" + n.GatewayAddr()
	status, _, body := adminDo(t, n, http.MethodGet, "/admin/v1/functions/snaphello", token, "")
	if status != http.StatusOK || !strings.Contains(body, `"snapStart":true`) {
		t.Fatalf("GET /admin/v1/functions/snaphello: %d %s", status, body)
	}
	want := getBody(t, base+"/hello")
	if got := getBody(t, base+"/snap-hello"); got != want {
		t.Fatalf("/snap-hello answered %q, /hello %q", got, want)
	}

	// Bursts of parallel requests until some invocation started an instance (the one made at load
	// serves one at a time); that start came from the snapshot.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got := getBody(t, base+"/snap-hello"); got != want {
					t.Errorf("/snap-hello answered %q under load", got)
				}
			}()
		}
		wg.Wait()
		inits, restores := reportStarts(t, n, token, "snaphello")
		if inits > 0 {
			t.Fatalf("%d REPORT lines of snaphello say Init Duration: an instance initialised on a request", inits)
		}
		if restores > 0 {
			t.Logf("%d instances restored from the snapshot", restores)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no instance of snaphello started besides the one made at load in 30 s of bursts")
		}
	}
}

// getBody GETs url and returns the body of a 200 answer.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d %s", url, resp.StatusCode, b.String())
	}
	return b.String()
}

// reportStarts counts the REPORT lines in fn's logs that say the instance initialised (Init
// Duration) and that it was restored (Restore Duration).
func reportStarts(t *testing.T, n *Node, token, fn string) (inits, restores int) {
	t.Helper()
	status, _, body := adminDo(t, n, http.MethodGet, "/admin/v1/functions/"+fn+"/logs?limit=1000", token, "")
	if status != http.StatusOK {
		t.Fatalf("reading %s's logs: %d %s", fn, status, body)
	}
	for _, l := range strings.Split(body, "\n") {
		var rec adminapi.LogRecord
		if json.Unmarshal([]byte(l), &rec) != nil || !strings.HasPrefix(rec.Message, "REPORT ") {
			continue
		}
		if strings.Contains(rec.Message, "Init Duration") {
			inits++
		}
		if strings.Contains(rec.Message, "Restore Duration") {
			restores++
		}
	}
	return inits, restores
}
