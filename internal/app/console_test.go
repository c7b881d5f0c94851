package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleInBrowser opens the admin listener's web console in a headless Chromium: a wrong token
// is refused; with the right one the console shows the stack's functions and routes, the route's
// request rate once requests come, an API applied meanwhile, and a line the function logs.
func TestConsoleInBrowser(t *testing.T) {
	browser := chromium()
	if browser == "" {
		t.Skip("chromium not found: install Debian's chromium package; .ci/run does")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the stack has a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"greet/app.py": "def handler(event, context):\n    name = (event.get('queryStringParameters') or {}).get('name', 'you')\n" +
			"    print('greeting ' + name)\n    return {'statusCode': 200, 'body': 'hello ' + name}\n",
		"gatehouse.yaml": "version: 1\nname: console\nfunctions:\n  greet: {source: ./greet, runtime: python3.11, handler: app.handler}\n" +
			"apis:\n  web:\n    type: http\n    stages:\n      $default: {accessLog: {format: clf, destination: 'group:web'}}\n    routes:\n      GET /greet: {function: greet}\n",
		"extra.yaml": "type: http\nmount: /extra\nroutes:\n  GET /hi: {function: greet}\n",
	})
	n := startNode(t, filepath.Join(dir, "gatehouse.yaml"), newDataDir(t))
	console := "http://" + n.AdminAddr() + "/"

	tab := headlessTab(t, browser)
	page := func() string {
		c, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			return fmt.Sprintf("(page unavailable: %v)", err)
		}
		return s
	}
	// screenshot keeps a picture of the page as a test artefact (beside the test binary's temporary
	// files, which a failed test leaves), and says where.
	screenshot := func() string {
		c, cancel := context.WithTimeout(tab, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(c, chromedp.FullScreenshot(90))
		if err != nil {
			return fmt.Sprintf("(no screenshot: %v)", err)
		}
		f, err := os.CreateTemp("", "gatehouse-console-*.png")
		if err != nil {
			return fmt.Sprintf("(no screenshot: %v)", err)
		}
		defer f.Close()
		if _, err := f.Write(png); err != nil {
			return fmt.Sprintf("(no screenshot: %v)", err)
		}
		return "a screenshot of the page: " + f.Name()
	}
	waitFor := func(what, cond string) {
		t.Helper()
		c, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v\nthe page:\n%s\n%s", what, err, page(), screenshot())
		}
	}

	for _, a := range []chromedp.Action[chromedp.Void]{chromedp.Navigate(console), chromedp.SendKeys("#token", "gh.admin.wrong"), chromedp.Click("#signin")} {
		if err := chromedp.Do(tab, a); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("a wrong token refused", `document.getElementById("loginerr").textContent.includes("not accepted")`)
	for _, a := range []chromedp.Action[chromedp.Void]{chromedp.SetValue("#token", adminToken(t, n)), chromedp.Click("#signin")} {
		if err := chromedp.Do(tab, a); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("the functions and routes", `!document.getElementById("app").hidden &&
		document.querySelector('#functions tr[data-key="greet"]') !== null && document.querySelector('#routes tr[data-key="web GET /greet"]') !== null`)

	// Requests show as the route's rate, live.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if resp, err := http.Get("http://" + n.GatewayAddr() + "/greet"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitFor("the route's request rate", `parseFloat(document.querySelector('#routes tr[data-key="web GET /greet"]').cells[3].textContent) > 0`)
	stop.Store(true)
	<-done

	// An API applied meanwhile appears.
	runCLI(t, n, "apis", "apply", "extra", "-f", filepath.Join(dir, "extra.yaml"))
	waitFor("the applied API", `document.querySelector('#routes tr[data-key="extra GET /hi"]') !== null`)

	// An alias appears with its weight, and the workers' instances.
	runCLI(t, n, "alias", "set", "greet", "live", "1")
	waitFor("the alias", `document.querySelector('#functions tr[data-key="greet"]').cells[2].textContent === "live→1"`)
	waitFor("the instances by worker", `/w\d+: \d+ (idle|busy)/.test(document.querySelector('#functions tr[data-key="greet"]').cells[5].textContent)`)

	// The function's log, tailed; then the stage's access log.
	choose := func(source string) {
		t.Helper()
		waitFor("the source "+source, fmt.Sprintf(`[...document.getElementById("logsource").options].some((o) => o.value === %q)`, source))
		if _, err := chromedp.Run(tab, chromedp.Evaluate[any](fmt.Sprintf(`(() => { const s = document.getElementById("logsource"); s.value = %q; s.dispatchEvent(new Event("change")); return null; })()`, source))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the tail's request reaches the node
	}
	choose("fn:greet")
	if r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/greet?name=console", nil)); r.status != 200 {
		t.Fatalf("GET /greet: %d", r.status)
	}
	waitFor("the function's log line", `document.getElementById("log").textContent.includes("greeting console")`)
	choose("access:web/$default")
	r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/greet?name=access", nil))
	waitFor("the access log line", fmt.Sprintf(`document.getElementById("log").textContent.includes(%q)`, `"GET GET /greet HTTP/1.1" 200 12 `+r.header.Get("apigw-requestid")))
}
