package tests

// Tests of the C library: include/dkvs.h against the symbols libdkvs.so
// exports, and the C programs of tests/c/, compiled with gcc -Wall -Wextra
// -Werror and linked to done/libdkvs.so, run against live rings.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/tests/harness"
)

// repoRoot is the directory of go.mod.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// libDir returns the absolute directory holding the built libdkvs.so.
func libDir(t testing.TB) string {
	t.Helper()
	harness.Bin(t, "libdkvs.so")
	d, err := filepath.Abs(harness.BinDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// compileC compiles one C source of the repository into a program linked
// to libdkvs.so (found through an rpath), with every warning an error.
func compileC(t testing.TB, src string, extra ...string) string {
	t.Helper()
	lib := libDir(t)
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c"))
	args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O2",
		"-I", filepath.Join(repoRoot(), "include"), "-o", out, src}
	args = append(args, extra...)
	args = append(args, "-L", lib, "-ldkvs", "-Wl,-rpath,"+lib, "-pthread")
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// cTest returns the path of a C test source.
func cTest(name string) string { return filepath.Join(repoRoot(), "tests", "c", name) }

// headerFunctions returns the names of the functions a C header declares:
// identifiers starting with dkvs_ followed by "(", outside comments and
// preprocessor lines.
func headerFunctions(src string) []string {
	src = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(src, " ")
	src = regexp.MustCompile(`//[^\n]*`).ReplaceAllString(src, " ")
	src = regexp.MustCompile(`(?m)^[ \t]*#.*$`).ReplaceAllString(src, " ")
	seen := map[string]bool{}
	var names []string
	for _, m := range regexp.MustCompile(`\b(dkvs_[A-Za-z0-9_]*)\s*\(`).FindAllStringSubmatch(src, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return names
}

// librarySymbols returns the symbols starting with dkvs_ in the output of
// nm -D --defined-only, with their nm type letter.
func librarySymbols(nm string) map[string]string {
	syms := map[string]string{}
	for _, line := range strings.Split(nm, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, typ := f[len(f)-1], f[len(f)-2]
		name, _, _ = strings.Cut(name, "@") // versioned symbols
		if strings.HasPrefix(name, "dkvs_") {
			syms[name] = typ
		}
	}
	return syms
}

// apiMismatches lists the differences between the header's functions and
// the library's dkvs_ symbols, which must all be functions (type T).
func apiMismatches(header []string, syms map[string]string) []string {
	var out []string
	declared := map[string]bool{}
	for _, name := range header {
		declared[name] = true
		if typ, ok := syms[name]; !ok {
			out = append(out, name+": declared in dkvs.h, not exported by libdkvs.so")
		} else if typ != "T" {
			out = append(out, fmt.Sprintf("%s: exported with type %s, want T (a function)", name, typ))
		}
	}
	for name, typ := range syms {
		if !declared[name] {
			out = append(out, fmt.Sprintf("%s: exported by libdkvs.so (type %s), not declared in dkvs.h", name, typ))
		}
	}
	sort.Strings(out)
	return out
}

// TestCHeaderMatchesSymbols checks that include/dkvs.h declares exactly
// the dkvs_ functions libdkvs.so exports.
func TestCHeaderMatchesSymbols(t *testing.T) {
	lib := filepath.Join(libDir(t), "libdkvs.so")
	src, err := os.ReadFile(filepath.Join(repoRoot(), "include", "dkvs.h"))
	if err != nil {
		t.Fatal(err)
	}
	header := headerFunctions(string(src))
	out, err := exec.Command("nm", "-D", "--defined-only", lib).CombinedOutput()
	if err != nil {
		t.Fatalf("nm -D --defined-only %s: %v\n%s", lib, err, out)
	}
	syms := librarySymbols(string(out))
	t.Logf("dkvs.h declares %d functions: %s", len(header), strings.Join(header, " "))
	// The API of the brief, at least; more is fine if both sides agree.
	for _, name := range []string{"dkvs_open", "dkvs_close", "dkvs_put", "dkvs_get", "dkvs_del",
		"dkvs_put_bin", "dkvs_get_bin", "dkvs_del_bin", "dkvs_free", "dkvs_strerror", "dkvs_version"} {
		if !slicesContains(header, name) {
			t.Errorf("dkvs.h does not declare %s", name)
		}
	}
	for _, m := range apiMismatches(header, syms) {
		t.Error(m)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestCHeaderCheckFindsMismatches runs the comparison of
// TestCHeaderMatchesSymbols on made-up inputs, so that it is known to fail
// when the two sides differ.
func TestCHeaderCheckFindsMismatches(t *testing.T) {
	header := headerFunctions(`
/* dkvs_in_comment(void) is not a declaration */
#define DKVS_X dkvs_macro(1)
typedef struct dkvs dkvs_t;
int dkvs_open(const char *f, dkvs_t **out);
int dkvs_only_in_header (int);
const char *dkvs_data(void); // dkvs_line_comment(
`)
	if got := strings.Join(header, " "); got != "dkvs_data dkvs_only_in_header dkvs_open" {
		t.Fatalf("header functions: %s", got)
	}
	nm := `0000000000165350 T dkvs_open
0000000000165360 T dkvs_only_in_lib
0000000000165370 D dkvs_data
0000000000164fd0 T dkvsgo_close
                 U malloc
0000000000164f60 T _cgo_1234_Cfunc_dkvs_open
`
	got := apiMismatches(header, librarySymbols(nm))
	want := []string{
		"dkvs_data: exported with type D, want T (a function)",
		"dkvs_only_in_header: declared in dkvs.h, not exported by libdkvs.so",
		"dkvs_only_in_lib: exported by libdkvs.so (type T), not declared in dkvs.h",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("mismatches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCHeaderCompiles checks that dkvs.h stands alone in strict C99 and
// C11, and that the library's version is the header's.
func TestCHeaderCompiles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "alone.c")
	os.WriteFile(src, []byte("#include <dkvs.h>\n#include <dkvs.h>\nint main(void) { dkvs_t *h = 0; (void)h; return DKVS_ERR_NONE; }\n"), 0o644)
	for _, std := range []string{"-std=c99", "-std=c11"} {
		args := []string{std, "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
			"-I", filepath.Join(repoRoot(), "include"), src}
		if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
}

// TestCLibSourceWarnings compiles the library's own C (cgo/dkvs.c, with
// the export header cgo generates) as strict C11 with every warning an
// error; the library build itself only shows warnings, so that another
// compiler's view of cgo's generated code cannot break it.
func TestCLibSourceWarnings(t *testing.T) {
	obj := t.TempDir()
	cmd := exec.Command("go", "tool", "cgo", "-objdir", obj, "--", "-I", filepath.Join(repoRoot(), "include"), "main.go", "batch.go")
	cmd.Dir = filepath.Join(repoRoot(), "cgo")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool cgo: %v\n%s", err, out)
	}
	args := []string{"-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
		"-I", filepath.Join(repoRoot(), "include"), "-I", obj, filepath.Join(repoRoot(), "cgo", "dkvs.c")}
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCLibDependencies checks that libdkvs.so links the client side only.
func TestCLibDependencies(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cgo")
	cmd.Dir = repoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cgo: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slicesContains(deps, "github.com/dkvs/dkvs/dkvs") {
		t.Fatalf("./cgo does not depend on the Go client; go list said:\n%s", out)
	}
	for _, d := range deps {
		if strings.Contains(d, "pebble") || strings.HasPrefix(d, "github.com/dkvs/dkvs/dkvs/storage") ||
			strings.HasPrefix(d, "github.com/dkvs/dkvs/dkvs/server") {
			t.Errorf("libdkvs.so links %s", d)
		}
	}
}

// wantPass checks the output of a C test program: exit 0, no failed
// check, and its final PASS line.
func wantPass(t *testing.T, res harness.Result) {
	t.Helper()
	t.Logf("%s", strings.TrimSpace(res.Stdout))
	if res.Code != 0 || strings.Contains(res.Stdout, "not ok") || !regexp.MustCompile(`(?m)^PASS \d+ checks$`).MatchString(res.Stdout) {
		t.Fatalf("C test failed: exit %d\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestCAPI runs tests/c/api.c against a ring of three servers: put and
// get, not found, NUL bytes, 1 MiB, N/W/R above the ring, every invalid
// argument, closed handles, open errors.
func TestCAPI(t *testing.T) {
	prog := compileC(t, cTest("api.c"))
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory"}
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(bg, []byte("from-go"), []byte("go\x00value!"), 3, 3); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	badConfig := filepath.Join(dir, "bad-config.txt")
	badAddress := filepath.Join(dir, "bad-address.txt")
	os.WriteFile(badConfig, []byte("127.0.0.1 0 1\n"), 0o644)
	os.WriteFile(badAddress, []byte("127.0.001 7000 1\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	res := harness.Run(t, r.Dir, prog, r.ServersFile(), filepath.Join(dir, "missing.txt"), badConfig, badAddress, empty)
	wantPass(t, res)

	// What the C program wrote, read back from Go.
	got, err := c.Get(bg, []byte("from-c"), 3, 3)
	if err != nil || string(got) != "c\x00value\xff" {
		t.Fatalf("from-c through the Go client: %q, %v", got, err)
	}
}

// TestCThreadsServerKilled runs 8 threads of 2,000 put/get pairs each on
// one handle (N=3, W=2, R=2) and kills one of the three servers with
// SIGKILL while they run: every operation must still succeed and return
// the value just written.
func TestCThreadsServerKilled(t *testing.T) {
	const threads, pairs, gate = 8, 2000, 1500
	prog := compileC(t, cTest("threads.c"))
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory"}
	r.StartAll()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdin, lr, stderr := startTalking(t, ctx, r.Dir, prog, r.ServersFile(), strconv.Itoa(threads), strconv.Itoa(pairs), strconv.Itoa(gate))
	// Wait (with a deadline) for the threads to be running.
	if line, _ := lr.next(90 * time.Second); line != "RUNNING" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("want RUNNING first, got %q\n%s", lr.all.String(), stderr.String())
	}
	start := time.Now()
	r.Kill(1)
	if _, err := io.WriteString(stdin, "KILLED\n"); err != nil {
		t.Fatal(err)
	}
	t.Logf("server %s killed %v after RUNNING", r.Addr(1), time.Since(start).Round(time.Millisecond))
	for {
		if _, ok := lr.next(3 * time.Minute); !ok {
			break
		}
	}
	err := cmd.Wait()
	output := lr.all.String()
	t.Logf("threads output:\n%s", output)
	if err != nil {
		t.Fatalf("threads program: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`(?m)^DONE ops=(\d+) errors=(\d+) after_kill=(\d+)$`).FindStringSubmatch(output)
	if m == nil {
		t.Fatal("no DONE line")
	}
	ops, _ := strconv.Atoi(m[1])
	errs, _ := strconv.Atoi(m[2])
	after, _ := strconv.Atoi(m[3])
	if ops != threads*pairs || errs != 0 {
		t.Fatalf("%d pairs succeeded of %d, %d errors", ops, threads*pairs, errs)
	}
	if after < threads*(pairs-gate) {
		t.Fatalf("only %d pairs ran after the kill, want at least %d", after, threads*(pairs-gate))
	}
	if r.Running(1) {
		t.Fatal("the killed server is running")
	}
	// The last value of every key is on the ring, read through Go.
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for th := 0; th < threads; th++ {
		for k := 0; k < 50; k++ {
			i := pairs - 50 + k
			want := fmt.Sprintf("value of thread %d pair %d %0100d", th, i, i)
			got, err := c.Get(bg, []byte(fmt.Sprintf("thread-%d-key-%d", th, k)), 3, 2)
			if err != nil || string(got) != want {
				t.Fatalf("thread %d key %d: %q, %v; want %q", th, k, got, err, want)
			}
		}
	}
}

// lineReader delivers the lines a program prints, for waits with a
// deadline.
type lineReader struct {
	lines chan string
	all   strings.Builder
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// next returns the next line, or false at the end of the output or when d
// has passed.
func (lr *lineReader) next(d time.Duration) (string, bool) {
	select {
	case line, ok := <-lr.lines:
		if ok {
			lr.all.WriteString(line + "\n")
		}
		return line, ok
	case <-time.After(d):
		return "", false
	}
}

// TestCCloseWaitsForReplicas checks that dkvs_close returns only once the
// replica writes still under way are done: with a server stopped, a put
// (N=3, W=2) succeeds, and the close waits until the server is resumed
// and has stored the value.
func TestCCloseWaitsForReplicas(t *testing.T) {
	prog := compileC(t, cTest("close_waits.c"))
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	r.Stop(0)
	resumed := false
	defer func() {
		if !resumed {
			r.Cont(0)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, r.ServersFile())
	cmd.Dir = r.Dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lr := newLineReader(stdout)
	if line, _ := lr.next(20 * time.Second); line != "PUT-DONE" {
		t.Fatalf("want PUT-DONE, got %q", lr.all.String())
	}
	// The stopped server has the third write for 30 s: the close must not
	// come back in the next second.
	if line, ok := lr.next(time.Second); ok || line != "" {
		t.Fatalf("dkvs_close returned while a replica write was under way: %q", lr.all.String())
	}
	r.Cont(0)
	resumed = true
	if line, _ := lr.next(20 * time.Second); line != "CLOSED ok" {
		t.Fatalf("want CLOSED ok after the server resumed, got %q", lr.all.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("close_waits: %v\n%s", err, lr.all.String())
	}
	if got := serverDump(t, r, 0)["close-key"]; got != "close-value" {
		t.Fatalf("the resumed server holds %q", got)
	}
}

// leakRun runs tests/c/leak.c and returns the growth of its resident
// memory in KiB.
func leakRun(t *testing.T, prog, servers, mode string, warmup, cycles, size int) int {
	t.Helper()
	res := harness.Run(t, filepath.Dir(servers), prog, servers, mode, strconv.Itoa(warmup), strconv.Itoa(cycles), strconv.Itoa(size))
	m := regexp.MustCompile(`growth_kib=(-?\d+)`).FindStringSubmatch(res.Stdout)
	if res.Code != 0 || m == nil {
		t.Fatalf("leak %s: %s", mode, res)
	}
	t.Logf("%s: %s", mode, strings.TrimSpace(res.Stdout))
	growth, _ := strconv.Atoi(m[1])
	return growth
}

// TestCLeak checks that 100,000 dkvs_get/dkvs_free cycles of a 1 KiB
// value leave the resident memory flat (a leak of the values alone would
// be 100 MiB), and that the measure does see memory that is kept.
func TestCLeak(t *testing.T) {
	const bound = 20 << 10 // KiB
	prog := compileC(t, cTest("leak.c"))
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	growth := leakRun(t, prog, r.ServersFile(), "free", 10000, 100000, 1024)
	t.Logf("100000 dkvs_get/dkvs_free cycles: resident memory grew by %d KiB", growth)
	if growth > bound {
		t.Errorf("resident memory grew by %d KiB over 100000 get/free cycles, bound %d KiB", growth, bound)
	}
	// Control: 2,000 values of 32 KiB kept (64 MiB) must show.
	if kept := leakRun(t, prog, r.ServersFile(), "keep", 1000, 2000, 32<<10); kept <= bound {
		t.Errorf("the measure missed 64 MiB of kept values: growth %d KiB", kept)
	}
}

// readmeCExample returns the first C code block of the README's section
// for C users.
func readmeCExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## The C library")
	if !ok {
		t.Fatal(`README.md has no "## The C library" section`)
	}
	_, code, ok := strings.Cut(section, "\n```c\n")
	if !ok {
		t.Fatal("no ```c block in the README's C section")
	}
	code, _, ok = strings.Cut(code, "\n```")
	if !ok {
		t.Fatal("unterminated ```c block in the README")
	}
	return code + "\n"
}

// TestCReadmeExample compiles the README's C example as the README says,
// directly and through pkg-config and done/libdkvs.pc, and runs both
// against a ring.
func TestCReadmeExample(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "hello.c")
	if err := os.WriteFile(src, []byte(readmeCExample(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	direct := compileC(t, src)

	if _, err := exec.LookPath("pkg-config"); err != nil {
		t.Fatal("pkg-config is needed (.ci/run installs it)")
	}
	pc := exec.Command("pkg-config", "--cflags", "--libs", "libdkvs")
	pc.Env = append(os.Environ(), "PKG_CONFIG_PATH="+libDir(t))
	flags, err := pc.CombinedOutput()
	if err != nil {
		t.Fatalf("pkg-config --cflags --libs libdkvs: %v\n%s", err, flags)
	}
	viaPC := filepath.Join(dir, "hello-pc")
	args := append([]string{"-std=c11", "-Wall", "-Wextra", "-Werror", src, "-o", viaPC}, strings.Fields(string(flags))...)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	for _, prog := range []string{direct, viaPC} {
		// Once with the servers file as argument, once finding servers.txt.
		for _, args := range [][]string{{r.ServersFile()}, nil} {
			res := harness.Run(t, r.Dir, prog, args...)
			if res.Code != 0 || res.Stdout != "greeting = hello world\nbin: 3 bytes\n" {
				t.Errorf("%s %q: %s", filepath.Base(prog), args, res)
			}
		}
	}
	// Without a ring it reports the error.
	res := harness.Run(t, dir, direct)
	if res.Code == 0 || !strings.Contains(res.Stderr, "I/O Error") {
		t.Errorf("without servers.txt: %s", res)
	}
}

// startTalking starts a C test program in dir that the test talks to: it
// writes to the program's standard input and reads its output line by line;
// the program's standard error is kept for failure messages.
func startTalking(t *testing.T, ctx context.Context, dir, prog string, args ...string) (*exec.Cmd, io.WriteCloser, *lineReader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin, newLineReader(stdout), stderr
}

// TestCModes runs tests/c/modes.c: consistency levels, the linearizable
// mode (per request and as the handle's default) and unknown write
// outcomes, killing servers when the program asks.
func TestCModes(t *testing.T) {
	prog := compileC(t, cTest("modes.c"))
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory"}
	r.StartAll()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, stdin, lr, stderr := startTalking(t, ctx, r.Dir, prog, r.ServersFile())
	for {
		line, ok := lr.next(time.Minute)
		if !ok {
			break
		}
		switch line {
		case "KILL-ONE":
			r.Kill(2)
			io.WriteString(stdin, "done\n")
		case "KILL-ALL":
			r.Kill(0)
			r.Kill(1)
			io.WriteString(stdin, "done\n")
		}
	}
	err := cmd.Wait()
	out := lr.all.String()
	t.Logf("%s", strings.TrimSpace(out))
	if err != nil || strings.Contains(out, "not ok") || !regexp.MustCompile(`(?m)^PASS \d+ checks$`).MatchString(out) {
		t.Fatalf("C test failed: %v\n%s\n%s", err, out, stderr.String())
	}
}

// TestCResolveArgs runs tests/c/args.c: dkvs_resolve_args gives C command
// lines (the thin client) the replication rules of dkvs-client, messages
// included. It needs no ring.
func TestCResolveArgs(t *testing.T) {
	prog := compileC(t, cTest("args.c"))
	wantPass(t, harness.Run(t, t.TempDir(), prog))
}

// TestCHeaderSaysTheRules: dkvs.h cannot import the Go constants, so it
// is checked against them: the DKVS_DEFAULT_* macros against package
// quorum, the limits it documents against package limits.
func TestCHeaderSaysTheRules(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(), "include", "dkvs.h"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"DKVS_DEFAULT_N": quorum.DefaultN, "DKVS_DEFAULT_R": quorum.DefaultR, "DKVS_DEFAULT_W": quorum.DefaultW} {
		m := regexp.MustCompile(`(?m)^#define ` + name + ` (\d+)$`).FindSubmatch(src)
		if m == nil || string(m[1]) != strconv.Itoa(want) {
			t.Errorf("dkvs.h: %s is %q, package quorum says %d", name, m, want)
		}
	}
	limitsText := fmt.Sprintf("keys of 1 byte to %d KiB, values of 0 to %d MiB", limits.DefaultMaxKeySize>>10, limits.DefaultMaxValueSize>>20)
	if !strings.Contains(strings.Join(strings.Fields(string(src)), " "), limitsText) {
		t.Errorf("dkvs.h does not say %q", limitsText)
	}
}

// TestCBatch runs tests/c/batch.c (dkvs_mget, dkvs_mput, dkvs_mdel) against
// a ring of three servers, then again with one of them killed (SIGKILL):
// per-key results, a value the servers refuse inside a batch, misuse.
func TestCBatch(t *testing.T) {
	prog := compileC(t, cTest("batch.c"))
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory", "--max-value-size", "1000"}
	r.StartAll()
	wantPass(t, harness.Run(t, r.Dir, prog, r.ServersFile()))
	r.Kill(1)
	wantPass(t, harness.Run(t, r.Dir, prog, r.ServersFile()))
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Get(bg, []byte("cb-123"), 3, 2); err != nil || string(got) != "value-123" {
		t.Fatalf("cb-123 through the Go client: %q, %v", got, err)
	}
}
