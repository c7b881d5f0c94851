package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse.dev/gatehouse/internal/testfix"
)

// chromium returns the path of a Chromium or Chrome binary on PATH, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestChatInBrowsers serves the sample stack and opens its chat page, /chat.html, in two tabs of a
// headless Chromium: the first tab sees the second join, a message typed in the second tab reaches
// the first over the WebSocket API (through the chat function's broadcast), and the first sees the
// second leave when its tab closes.
func TestChatInBrowsers(t *testing.T) {
	browser := chromium()
	if browser == "" {
		t.Skip("chromium not found: install Debian's chromium package; .ci/run does")
	}
	n := startNode(t, filepath.Join(testfix.RepoRoot(), "samples", "gatehouse.yaml"), newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	page := "http://" + n.GatewayAddr() + "/chat.html"

	first := headlessTab(t, browser)                  // starts the browser, with one tab
	second, closeSecond := chromedp.NewContext(first) // a second tab of the same browser
	defer closeSecond()

	// logOf returns what a tab's chat log shows, for failure messages.
	logOf := func(tab context.Context) string {
		c, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Evaluate[string](`document.getElementById("log").innerText`))
		if err != nil {
			return fmt.Sprintf("(log unavailable: %v)", err)
		}
		return s
	}
	// waitFor waits until the JavaScript condition holds in tab.
	waitFor := func(tab context.Context, what, cond string) {
		t.Helper()
		c, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v\nfirst tab's log:\n%s\nsecond tab's log:\n%s", what, err, logOf(first), logOf(second))
		}
	}
	// open loads the page in tab, waits until it is connected and returns its short id.
	open := func(tab context.Context, name string) string {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.Navigate(page)); err != nil {
			t.Fatalf("%s tab: opening %s: %v", name, page, err)
		}
		waitFor(tab, name+" tab to connect", `document.getElementById("status").textContent === "connected" && me !== ""`)
		me, err := chromedp.Run(tab, chromedp.Evaluate[string](`me`))
		if err != nil {
			t.Fatal(err)
		}
		return me
	}

	firstID := open(first, "first")
	secondID := open(second, "second")
	if firstID == secondID || len(secondID) != 6 {
		t.Fatalf("short ids %q and %q: want two different 6-character ids", firstID, secondID)
	}
	waitFor(first, "the first tab to see the second join",
		fmt.Sprintf(`document.getElementById("log").innerText.includes(%q) && document.getElementById("count").textContent === "2"`,
			secondID+" joined (2 here)"))
	members, err := chromedp.Run(second, chromedp.Text(chromedp.CSS("#members")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(members, firstID) || !strings.Contains(members, secondID+" (you)") {
		t.Errorf("the second tab's members: %q; want %s and %s (you)", members, firstID, secondID)
	}

	const text = "hello from the second tab <b>not bold</b>"
	if err := chromedp.Do(second,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#button")),
	); err != nil {
		t.Fatalf("sending a message: %v", err)
	}
	// The message arrives as text (not markup), under its sender's id, in both tabs.
	shows := fmt.Sprintf(`[...document.querySelectorAll("#log p.message")].some(p => p.querySelector(".from").textContent.startsWith(%q) && p.textContent.endsWith(%q))`,
		secondID, text)
	waitFor(first, "the message in the first tab", shows)
	waitFor(second, "the message in the second tab", shows)

	// Closing the second tab closes its socket; the chat function tells the first tab.
	closeSecond()
	waitFor(first, "the first tab to see the second leave",
		fmt.Sprintf(`document.getElementById("log").innerText.includes(%q) && document.getElementById("count").textContent === "1"`,
			secondID+" left (1 here)"))
}

// headlessTab starts a headless Chromium (browser is its path) for at most two minutes and returns
// the context of its first tab; the browser stops when the test ends.
func headlessTab(t *testing.T, browser string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.Headless, chromedp.DisableGPU)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, closeTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { closeTab(); cancelAlloc(); cancel() })
	return tab
}
