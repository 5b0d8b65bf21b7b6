package memnet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// echoServer accepts on addr and echoes every connection until closed.
func echoServer(t *testing.T, n *Net, addr string) net.Listener {
	t.Helper()
	ln, err := n.Host(addr).Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln
}

// roundTrip writes msg and reads as many bytes back before the deadline.
func roundTrip(c net.Conn, msg string, d time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestEchoAndRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln := echoServer(t, n, "10.0.0.1:1")
		defer ln.Close()
		c, err := n.Host("client").Dial(context.Background(), "10.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := roundTrip(c, "hello", time.Second); err != nil || got != "hello" {
			t.Fatalf("echo: %q %v", got, err)
		}
		c.Close()
		if _, err := n.Host("client").Dial(context.Background(), "10.0.0.2:1"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial nobody: %v", err)
		}
		if _, err := n.Host("x").Listen("10.0.0.1:1"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("listen twice: %v", err)
		}
	})
}

func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln, _ := n.Host("s").Listen("s")
		defer ln.Close()
		c, err := n.Host("c").Dial(context.Background(), "s")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.SetReadDeadline(start.Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past deadline: %v", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("deadline after %v", d)
		}
	})
}

// TestPartitionHoldsAndHeals: a partition holds what is written across
// it and delivers it, in order, when healed; a dial across it waits for
// its context.
func TestPartitionHoldsAndHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln := echoServer(t, n, "b")
		defer ln.Close()
		c, _ := n.Host("a").Dial(context.Background(), "b")
		defer c.Close()
		n.Partition([]string{"a"}, []string{"b"})
		if _, err := roundTrip(c, "held", time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("across a partition: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := n.Host("a").Dial(ctx, "b"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial across a partition: %v", err)
		}
		n.Heal()
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
			t.Fatalf("after heal: %q %v", buf, err)
		}
	})
}

// TestOneWay: with a->b blocked, a's bytes are held while b's get
// through.
func TestOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln, _ := n.Host("b").Listen("b")
		defer ln.Close()
		ca, _ := n.Host("a").Dial(context.Background(), "b")
		defer ca.Close()
		cb, _ := ln.Accept()
		defer cb.Close()
		n.PartitionOneWay([]string{"a"}, []string{"b"})
		ca.Write([]byte("x"))
		cb.Write([]byte("y"))
		buf := make([]byte, 1)
		ca.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := ca.Read(buf); err != nil || buf[0] != 'y' {
			t.Fatalf("b->a: %q %v", buf, err)
		}
		cb.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := cb.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a->b should be held: %v", err)
		}
	})
}

// TestDelayKeepsOrder: delayed writes arrive after the delay, in order,
// whatever their jitter.
func TestDelayKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(7)
		ln, _ := n.Host("b").Listen("b")
		defer ln.Close()
		ca, _ := n.Host("a").Dial(context.Background(), "b")
		defer ca.Close()
		cb, _ := ln.Accept()
		defer cb.Close()
		n.SetLink("a", "b", LinkFault{Delay: 10 * time.Millisecond, Jitter: 50 * time.Millisecond})
		start := time.Now()
		for i := 0; i < 100; i++ {
			ca.Write([]byte{byte(i)})
		}
		buf := make([]byte, 100)
		cb.SetReadDeadline(start.Add(time.Second))
		if _, err := io.ReadFull(cb, buf); err != nil {
			t.Fatal(err)
		}
		for i, b := range buf {
			if int(b) != i {
				t.Fatalf("byte %d is %d", i, b)
			}
		}
		if d := time.Since(start); d < 10*time.Millisecond || d > 60*time.Millisecond {
			t.Fatalf("delivered after %v", d)
		}
	})
}

// TestCrashResetsAndRefuses: a crashed host's connections fail at both
// ends, dials to it are refused and its own dials fail, until Restart.
func TestCrashResetsAndRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln := echoServer(t, n, "s")
		c, _ := n.Host("c").Dial(context.Background(), "s")
		defer c.Close()
		if _, err := roundTrip(c, "ok", time.Second); err != nil {
			t.Fatal(err)
		}
		n.Crash("s")
		if _, err := roundTrip(c, "ok", time.Second); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after crash: %v", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept after crash: %v", err)
		}
		if _, err := n.Host("c").Dial(context.Background(), "s"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial a crashed host: %v", err)
		}
		if _, err := n.Host("s").Dial(context.Background(), "c"); !errors.Is(err, syscall.ENETUNREACH) {
			t.Fatalf("dial from a crashed host: %v", err)
		}
		n.Restart("s")
		ln2 := echoServer(t, n, "s")
		defer ln2.Close()
		c2, err := n.Host("c").Dial(context.Background(), "s")
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if got, err := roundTrip(c2, "again", time.Second); err != nil || got != "again" {
			t.Fatalf("after restart: %q %v", got, err)
		}
	})
}

// TestPauseAcceptsButHolds: a paused host's connections are accepted but
// carry nothing until Resume.
func TestPauseAcceptsButHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln := echoServer(t, n, "s")
		defer ln.Close()
		n.Pause("s")
		c, err := n.Host("c").Dial(context.Background(), "s")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := roundTrip(c, "zz", time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("paused: %v", err)
		}
		n.Resume("s")
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "zz" {
			t.Fatalf("resumed: %q %v", buf, err)
		}
	})
}

// TestResetProbability: with Reset 1 the first write breaks the
// connection at both ends.
func TestResetProbability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln, _ := n.Host("b").Listen("b")
		defer ln.Close()
		ca, _ := n.Host("a").Dial(context.Background(), "b")
		defer ca.Close()
		cb, _ := ln.Accept()
		defer cb.Close()
		n.SetLink("a", "b", LinkFault{Reset: 1})
		if _, err := ca.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("write: %v", err)
		}
		if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("peer read: %v", err)
		}
	})
}

func TestCloseGivesEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		ln, _ := n.Host("b").Listen("b")
		defer ln.Close()
		ca, _ := n.Host("a").Dial(context.Background(), "b")
		cb, _ := ln.Accept()
		defer cb.Close()
		ca.Write([]byte("last"))
		ca.Close()
		got, err := io.ReadAll(cb)
		if err != nil || string(got) != "last" {
			t.Fatalf("read after peer close: %q %v", got, err)
		}
		if _, err := cb.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write after peer close: %v", err)
		}
	})
}

func TestDatagrams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, _ := n.Host("a").ListenPacket("a")
		defer a.Close()
		b, _ := n.Host("b").ListenPacket("b")
		defer b.Close()
		a.WriteTo([]byte("hi"), Addr{"b"})
		buf := make([]byte, 10)
		b.SetReadDeadline(time.Now().Add(time.Second))
		k, from, err := b.ReadFrom(buf)
		if err != nil || string(buf[:k]) != "hi" || from.String() != "a" {
			t.Fatalf("got %q from %v: %v", buf[:k], from, err)
		}
		n.Isolate("b")
		a.WriteTo([]byte("lost"), Addr{"b"})
		n.Heal()
		b.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := b.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a datagram across a partition must be lost: %v", err)
		}
	})
}
