package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/tests/harness"
)

// browser is a headless Chromium driven through the DevTools protocol,
// with every message of its console kept.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// newBrowser starts Debian's Chromium with the flags that work on a
// machine whose network is closed (without the background-networking
// ones it hangs on refused connections), in a fresh profile. It is
// stopped when the test ends. Chromium missing fails the test: make deps
// installs it.
func newBrowser(t *testing.T, timeout time.Duration) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (tests/deps.sh installs Debian's chromium package): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: bctx}
	msgs := chromedp.Console(bctx) // starts the browser, and listens from now on
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancel()
		wg.Wait()
	})
	return b
}

// do runs actions, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, js string) (T, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
}

// screenshot saves the page as PNG to path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d KiB)", path, len(png)>>10)
}

// errors returns the errors the page's console logged: uncaught
// exceptions, console.error calls, and the browser's own error entries
// (a resource that failed to load, a blocked script).
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
		}
	}
	return out
}

// TestConsoleBrowser loads the console of a live three-server ring in
// headless Chromium, as an operator would: the circle has one node per
// virtual node of servers.txt, a key looked up shows its three homes
// highlighted and their versions, and a killed server turns down on the
// Ring and Servers pages within seconds, with no JavaScript error
// logged; when the page's own server dies, the page says so and keeps
// what it showed. Screenshots land in tests/out/ (docs/console.png too
// with -args -update-docs).
func TestConsoleBrowser(t *testing.T) {
	counts := []int{2, 3, 4}
	r := harness.NewRing(t, counts...)
	r.Args = []string{"--memory"}
	maddr := withMetrics(t, r)
	r.StartAll()
	r.WaitPeersUp()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const key = "greeting"
	if err := c.Put(bg, []byte(key), []byte("hello"), 3, 3); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ { // some traffic for the sparklines
		if err := c.Put(bg, []byte(fmt.Sprint("k", i)), []byte("v"), 3, 2); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, 50*time.Second)
	out := filepath.Join(harness.BinDir(), "..", "tests", "out")

	// The Servers page: a card per server, each up with its figures.
	b.do("open the console", chromedp.Navigate("http://"+maddr[0]+"/#servers"))
	cards := func(want ...string) func() error {
		return func() error {
			s, err := eval[[]string](b, `[...document.querySelectorAll('#cards .card')].map((c) =>
				[c.dataset.addr, c.dataset.state, c.dataset.answered, c.querySelector('dd.keys')?.textContent,
					c.querySelector('dd.storage')?.dataset.storage].join(' '))`)
			if err == nil && !slices.Equal(s, want) {
				err = fmt.Errorf("cards %q, want %q", s, want)
			}
			return err
		}
	}
	harness.Eventually(t, 10*time.Second, "a card per server", cards(
		r.Addr(0)+" up true 301 ok", r.Addr(1)+" up true 301 ok", r.Addr(2)+" up true 301 ok"))

	// The Ring page: one node per virtual node.
	b.do("open the Ring page", chromedp.Click(chromedp.CSS("#tab-ring")))
	nodes := 0
	for _, n := range counts {
		nodes += n
	}
	harness.Eventually(t, 10*time.Second, "one SVG node per virtual node", func() error {
		n, err := eval[int](b, `document.querySelectorAll('#ring circle.vnode').length`)
		if err == nil && n != nodes {
			err = fmt.Errorf("%d nodes drawn, want %d", n, nodes)
		}
		return err
	})

	rg := ring.New(r.Servers)
	// The mouse over a node shows its hash and server.
	type point struct{ X, Y float64 }
	p, err := eval[point](b, `(() => {
		const r = document.querySelector('#ring circle.vnode[data-index="0"]').getBoundingClientRect();
		return {X: r.x + r.width / 2, Y: r.y + r.height / 2};
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	b.do("hover over a node", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, p.X, p.Y))
	harness.Eventually(t, 5*time.Second, "a node's hash and server on hover", func() error {
		s, err := eval[string](b, `document.getElementById('hover').textContent`)
		n := rg.Nodes()[0]
		if err == nil && (!strings.Contains(s, n.Hash.String()) || !strings.Contains(s, r.Addr(n.Server))) {
			err = fmt.Errorf("hover shows %q, want %s of %s", s, n.Hash, r.Addr(n.Server))
		}
		return err
	})

	// A key typed in the box: its three homes are highlighted, in ring
	// order, each with the version written.
	b.do("look up a key",
		chromedp.SendKeys(chromedp.CSS("#key-input"), key),
		chromedp.Click(chromedp.CSS(`#key-form button[type=submit]`)))
	var homes []string
	for _, s := range rg.Preference([]byte(key), 3) {
		homes = append(homes, r.Addr(s))
	}
	harness.Eventually(t, 10*time.Second, "the key's three homes highlighted", func() error {
		type seen struct {
			Rows     []string `json:"rows"`
			Found    int      `json:"found"`
			Agree    bool     `json:"agree"`
			Servers  []string `json:"servers"` // of the highlighted nodes
			Legend   []string `json:"legend"`  // highlighted rows
			Vnodes   int      `json:"vnodes"`
			Expected int      `json:"expected"`
		}
		s, err := eval[seen](b, `(() => {
			const q = (sel) => [...document.querySelectorAll(sel)];
			const servers = [...new Set(q('#ring circle.vnode.home').map((c) => c.dataset.server))].sort();
			return {
				rows: q('#key-result tr.replica').map((tr) => tr.dataset.addr),
				found: q('#key-result tr.replica td.what .mono').length,
				agree: q('#key-result .badge.ok').length === 1,
				servers: servers,
				legend: q('#legend tr.home').map((tr) => tr.dataset.addr),
				vnodes: q('#ring circle.vnode.home').length,
				expected: q('#ring circle.vnode').filter((c) => servers.includes(c.dataset.server)).length,
			};
		})()`)
		switch {
		case err != nil:
			return err
		case !slices.Equal(s.Rows, homes) || s.Found != 3 || !s.Agree:
			return fmt.Errorf("key table %v (%d versions, agree %v), want homes %v", s.Rows, s.Found, s.Agree, homes)
		case len(s.Servers) != 3 || s.Vnodes != s.Expected || len(s.Legend) != 3:
			return fmt.Errorf("highlighted: nodes of servers %v (%d of %d), legend rows %v", s.Servers, s.Vnodes, s.Expected, s.Legend)
		}
		return nil
	})
	b.screenshot(filepath.Join(out, "console-ring.png"))

	// A killed server turns down, on the circle and in the key's table.
	const victim = 2
	r.Kill(victim)
	took := harness.Eventually(t, 10*time.Second, "the killed server shown down on the Ring page", func() error {
		s, err := eval[[]string](b, fmt.Sprintf(`[
			document.querySelector('#legend tr[data-addr="%[1]s"] .badge').textContent,
			document.querySelector('#key-result tr.replica[data-addr="%[1]s"] .badge').textContent,
			String(document.querySelectorAll('#ring circle.vnode.down').length)]`, r.Addr(victim)))
		if err == nil && !slices.Equal(s, []string{"down", "down", fmt.Sprint(counts[victim])}) {
			err = fmt.Errorf("legend row, key replica, nodes down: %q", s)
		}
		return err
	})
	t.Logf("killed server shown down after %v", took.Round(time.Millisecond))
	if updateDocs != nil && *updateDocs {
		b.screenshot(filepath.Join(harness.BinDir(), "..", "docs", "console.png"))
	}

	// The Servers page: the dead server's card is down with what it last
	// said, and counts the hints the others hold for it once keys are
	// written with it down.
	const writes = 20
	for i := 0; i < writes; i++ {
		if err := c.Put(bg, []byte(fmt.Sprint("h", i)), []byte("v"), 3, 2); err != nil {
			t.Fatal(err)
		}
	}
	b.do("open the Servers page", chromedp.Click(chromedp.CSS("#tab-servers")))
	harness.Eventually(t, 10*time.Second, "the dead server's card", cards(
		r.Addr(0)+" up true 321 ok", r.Addr(1)+" up true 321 ok", r.Addr(2)+" down false 301 ok"))
	harness.Eventually(t, 10*time.Second, "hints for the dead server", func() error {
		s, err := eval[string](b, fmt.Sprintf(`document.querySelector('.card[data-addr="%s"] .hints-for-it').textContent`, r.Addr(victim)))
		if want := fmt.Sprint(writes, " held by "); err == nil && !strings.HasPrefix(s, want) {
			err = fmt.Errorf("%q, want %q...", s, want)
		}
		return err
	})
	b.screenshot(filepath.Join(out, "console-servers.png"))

	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("the browser's console logged errors:\n%s", errs)
	}

	// The server of the page itself dies: the page says so, and keeps
	// what it showed.
	r.Kill(0)
	harness.Eventually(t, 10*time.Second, "the page noticing its server gone", func() error {
		s, err := eval[[]string](b, `[document.getElementById('status').className, document.getElementById('status').textContent,
			String(document.querySelectorAll('#cards .card').length)]`)
		if err == nil && (s[0] != "status lost" || s[2] != "3") {
			err = fmt.Errorf("status %q, %s cards", s[:2], s[2])
		}
		return err
	})
	// Only the failed requests themselves may be logged now.
	for _, e := range b.errors() {
		if !strings.Contains(e, "net::ERR_CONNECTION_REFUSED") {
			t.Errorf("the browser's console logged an error with its server gone: %s", e)
		}
	}
}

// TestConsoleBrowserMoves watches a join on the console's Moves page in
// headless Chromium: no move at first; during the join, the joining
// server's bar and figures part-way through its stream; after it, the
// join finished in the history with the keys it received; and no
// JavaScript error logged. Screenshots land in tests/out/ (and
// docs/console-moves.png with -args -update-docs).
func TestConsoleBrowserMoves(t *testing.T) {
	r, maddr, gains := movesRing(t)
	newcomer := r.Addr(3)
	b := newBrowser(t, 90*time.Second)
	out := filepath.Join(harness.BinDir(), "..", "tests", "out")

	b.do("open the console", chromedp.Navigate("http://"+maddr[0]+"/"))
	b.do("open the Moves page", chromedp.Click(chromedp.CSS("#tab-moves")))
	harness.Eventually(t, 10*time.Second, "no move under way", func() error {
		s, err := eval[[]string](b, `[document.getElementById('move').className, document.querySelector('#move h2')?.textContent ?? '',
			document.querySelector('#history tbody')?.textContent ?? '']`)
		if err == nil && (s[0] != "move idle" || s[1] != "No move under way" || !strings.Contains(s[2], "none seen")) {
			err = fmt.Errorf("%q", s)
		}
		return err
	})

	wantRingOK(t, ringCmd(t, r, "join", "--", "127.0.0.1", port(r.Servers[3]), "16"), "OK epoch 2: move 2, join of "+newcomer)
	type shown struct {
		Move     string  `json:"move"`
		Phase    string  `json:"phase"`
		Fraction float64 `json:"fraction"`
		Keys     int     `json:"keys"`
		Width    float64 `json:"width"` // of the bar's fill, in pixels
		Label    string  `json:"label"`
		Received string  `json:"received"`
		Left     string  `json:"left"`
		Ranges   int     `json:"ranges"`
	}
	var during shown
	harness.Eventually(t, 20*time.Second, "the joining server part-way on the Moves page", func() error {
		s, err := eval[shown](b, fmt.Sprintf(`(() => {
			const r = document.querySelector('.receiver[data-addr="%s"]');
			if (!r) return {move: document.getElementById('move').dataset.move || ''};
			return {
				move: document.getElementById('move').dataset.move,
				phase: r.dataset.phase, fraction: Number(r.dataset.fraction), keys: Number(r.dataset.keys),
				width: r.querySelector('.bar .fill').getBoundingClientRect().width,
				label: r.querySelector('.bar .label').textContent,
				received: r.querySelector('dd.received')?.textContent ?? '',
				left: r.querySelector('dd.left').textContent,
				ranges: r.querySelectorAll('ul.ranges li').length,
			};
		})()`, newcomer))
		switch {
		case err != nil:
			return err
		case s.Move != "2" || s.Phase != "copy" || s.Fraction <= 0 || s.Fraction >= 1 || s.Keys <= 0 || s.Width <= 0 || s.Ranges == 0:
			return fmt.Errorf("%+v", s)
		case !strings.Contains(s.Label, "ranges") || !strings.Contains(s.Received, "keys") || s.Left == "":
			return fmt.Errorf("%+v", s)
		}
		during = s
		return nil
	})
	t.Logf("during the join: %+v", during)
	b.screenshot(filepath.Join(out, "console-moves.png"))
	if updateDocs != nil && *updateDocs {
		b.screenshot(filepath.Join(harness.BinDir(), "..", "docs", "console-moves.png"))
	}

	harness.Eventually(t, 60*time.Second, "the join finished in the history", func() error {
		s, err := eval[[]string](b, `[document.getElementById('move').className,
			document.querySelector('#history tr[data-id="2"]')?.dataset.outcome ?? '',
			document.querySelector('#history tr[data-id="2"] td.keys')?.textContent ?? '']`)
		if want := thousands(gains); err == nil && (s[0] != "move idle" || s[1] != "finished" || s[2] != want) {
			err = fmt.Errorf("%q, want idle, finished, %s keys", s, want)
		}
		return err
	})
	b.screenshot(filepath.Join(out, "console-moves-after.png"))
	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("the browser's console logged errors:\n%s", errs)
	}
}

// thousands formats n as the page does (en-US): 2,414.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
