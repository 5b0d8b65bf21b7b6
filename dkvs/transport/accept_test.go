package transport

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first Accepts with err, then accepts from the
// real listener.
type failingListener struct {
	net.Listener
	err   error
	mu    sync.Mutex
	fails int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: l.err}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestServeWaitsOutTemporaryErrors: an accept error that may pass (out of
// file descriptors, say) does not stop the server; one that will not pass
// does, and Serve returns it.
func TestServeWaitsOutTemporaryErrors(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		keeps bool
	}{
		{"EMFILE", os.NewSyscallError("accept4", syscall.EMFILE), true},
		{"ENFILE", os.NewSyscallError("accept4", syscall.ENFILE), true},
		{"ENOBUFS", os.NewSyscallError("accept4", syscall.ENOBUFS), true},
		{"ENOMEM", os.NewSyscallError("accept4", syscall.ENOMEM), true},
		{"ECONNABORTED", os.NewSyscallError("accept4", syscall.ECONNABORTED), true},
		{"timeout", os.ErrDeadlineExceeded, true},
		{"EBADF", os.NewSyscallError("accept4", syscall.EBADF), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			s := NewServer(HandlerFunc(echo), ServerOptions{})
			defer s.Shutdown(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(&failingListener{Listener: ln, err: tc.err, fails: 3}) }()
			if !tc.keeps {
				select {
				case err := <-served:
					if !errors.Is(err, tc.err) {
						t.Fatalf("Serve returned %v, want %v", err, tc.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Serve goes on after an error that will not pass")
				}
				return
			}
			c := NewClient(ClientOptions{})
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			called := make(chan error, 1)
			go func() {
				resp, err := c.Call(ctx, ln.Addr().String(), req("after"))
				if err == nil && string(resp.Body) != "after" {
					err = errors.New("wrong answer " + string(resp.Body))
				}
				called <- err
			}()
			select {
			case err := <-called:
				if err != nil {
					t.Fatalf("call after 3 accept errors: %v", err)
				}
			case err := <-served:
				t.Fatalf("Serve returned %v", err)
			}
			// A listener closed after Shutdown: Serve returns nil.
			s.Shutdown(context.Background())
			ln.Close()
			select {
			case err := <-served:
				if err != nil {
					t.Fatalf("Serve returned %v after Shutdown, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after Shutdown")
			}
		})
	}
}

// fdChildEnv makes the test binary, run again by
// TestServeSurvivesFDExhaustion, the process that runs out of
// descriptors: lowering RLIMIT_NOFILE in the test process itself would
// starve the other tests.
const fdChildEnv = "DKVS_TEST_FD_EXHAUSTION_CHILD"

// TestServeSurvivesFDExhaustion runs a server out of file descriptors for
// real: with a connection waiting, accept fails with EMFILE, and once
// descriptors are free again the server accepts it and the next ones.
func TestServeSurvivesFDExhaustion(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts on Linux's accept failing with EMFILE")
	}
	if os.Getenv(fdChildEnv) == "1" {
		fdExhaustionChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServeSurvivesFDExhaustion$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}

// signalOnWarn closes warned on the first warning logged.
type signalOnWarn struct {
	once   *sync.Once
	warned chan struct{}
}

func (h signalOnWarn) Enabled(context.Context, slog.Level) bool { return true }
func (h signalOnWarn) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.once.Do(func() { close(h.warned) })
	}
	return nil
}
func (h signalOnWarn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalOnWarn) WithGroup(string) slog.Handler      { return h }

func fdExhaustionChild(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Low enough that hogging the rest takes a moment.
	lim.Cur = min(lim.Max, 256)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	warned := make(chan struct{})
	s := NewServer(HandlerFunc(echo), ServerOptions{
		Logger: slog.New(signalOnWarn{once: new(sync.Once), warned: warned}),
	})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	// Take every descriptor left but one, which goes to a client's socket:
	// the server then has none for its end of the connection.
	var hogs []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, f)
	}
	if len(hogs) == 0 {
		t.Fatal("no descriptor to hog")
	}
	hogs[len(hogs)-1].Close()
	hogs = hogs[:len(hogs)-1]
	waiting, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with one descriptor left: %v", err)
	}
	defer waiting.Close()
	select {
	case <-warned: // the server ran out, said so, and waits
	case err := <-served:
		t.Fatalf("out of descriptors, Serve returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the server never ran out of descriptors")
	}
	for _, f := range hogs {
		f.Close()
	}

	c := NewClient(ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if resp, err := c.Call(ctx, ln.Addr().String(), req("after")); err != nil || string(resp.Body) != "after" {
		t.Fatalf("call once descriptors are free again: %q, %v", resp.Body, err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after Shutdown, want nil", err)
	}
}
