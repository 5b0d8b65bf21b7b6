package earlybind

import (
	"syscall"
	"testing"
)

func TestPlanFrom(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want plan
		ok   bool
	}{
		{"plain", []string{"127.0.0.1", "1234"}, nil, plan{"127.0.0.1:1234", true}, true},
		{"pairs", []string{"127.0.0.1", "1234", "abc", "def"}, nil, plan{"127.0.0.1:1234", true}, true},
		{"value flags", []string{"--servers", "s.txt", "-data-dir", "d", "--memory", "127.0.0.1", "1234"}, nil, plan{"127.0.0.1:1234", true}, true},
		{"flag=value", []string{"--servers=s.txt", "--no-sync=false", "127.0.0.1", "1234"}, nil, plan{"127.0.0.1:1234", true}, true},
		{"listen", []string{"--listen", "127.0.0.2:999", "127.0.0.1", "1234"}, nil, plan{"127.0.0.2:999", true}, true},
		{"listen from env", []string{"127.0.0.1", "1234"}, map[string]string{"DKVS_LISTEN": "127.0.0.3:7"}, plan{"127.0.0.3:7", true}, true},
		{"flag beats env", []string{"--listen=127.0.0.2:9", "127.0.0.1", "1234"}, map[string]string{"DKVS_LISTEN": "127.0.0.3:7"}, plan{"127.0.0.2:9", true}, true},
		{"no datagram", []string{"--no-datagram", "127.0.0.1", "1234"}, nil, plan{"127.0.0.1:1234", false}, true},
		{"no datagram from env", []string{"127.0.0.1", "1234"}, map[string]string{"DKVS_NO_DATAGRAM": "1"}, plan{"127.0.0.1:1234", false}, true},
		{"datagram kept by flag", []string{"--no-datagram=false", "127.0.0.1", "1234"}, map[string]string{"DKVS_NO_DATAGRAM": "true"}, plan{"127.0.0.1:1234", true}, true},
		{"bad bool env", []string{"127.0.0.1", "1234"}, map[string]string{"DKVS_NO_DATAGRAM": "yes"}, plan{}, false},
		{"double dash", []string{"--memory", "--", "127.0.0.1", "1234"}, nil, plan{"127.0.0.1:1234", true}, true},
		{"help", []string{"--help"}, nil, plan{}, false},
		{"help among", []string{"-h", "127.0.0.1", "1234"}, nil, plan{}, false},
		{"no args", nil, nil, plan{}, false},
		{"one arg", []string{"127.0.0.1"}, nil, plan{}, false},
		{"odd pairs", []string{"127.0.0.1", "1234", "abc"}, nil, plan{}, false},
		{"flag without value", []string{"--servers"}, nil, plan{}, false},
		{"triple dash", []string{"---servers", "x", "127.0.0.1", "1234"}, nil, plan{}, false},
		{"test binary", []string{"-test.v", "-test.run=X", "-test.timeout", "10m"}, nil, plan{}, false},
	}
	for _, c := range cases {
		env = c.env
		got, ok := planFrom(c.args, getenv)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: planFrom(%q) = %+v, %v; want %+v, %v", c.name, c.args, got, ok, c.want, c.ok)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	cases := []struct {
		in   string
		ip   [4]byte
		port int
		ok   bool
	}{
		{"127.0.0.1:1234", [4]byte{127, 0, 0, 1}, 1234, true},
		{"0.0.0.0:65535", [4]byte{}, 65535, true},
		{"255.255.255.255:1", [4]byte{255, 255, 255, 255}, 1, true},
		{"127.0.001:1234", [4]byte{}, 0, false},
		{"127.0.0.01:1234", [4]byte{}, 0, false},
		{"256.0.0.1:1234", [4]byte{}, 0, false},
		{"127.0.0:1234", [4]byte{}, 0, false},
		{"127.0.0.1.1:1234", [4]byte{}, 0, false},
		{"127..0.1:1234", [4]byte{}, 0, false},
		{"localhost:1234", [4]byte{}, 0, false},
		{"127.0.0.1:0", [4]byte{}, 0, false},
		{"127.0.0.1:65536", [4]byte{}, 0, false},
		{"127.0.0.1:01234", [4]byte{}, 0, false},
		{"127.0.0.1:", [4]byte{}, 0, false},
		{"127.0.0.1:12a", [4]byte{}, 0, false},
		{"127.0.0.1", [4]byte{}, 0, false},
		{"[::1]:1234", [4]byte{}, 0, false},
		{"", [4]byte{}, 0, false},
	}
	for _, c := range cases {
		ip, port, ok := parseHostPort(c.in)
		if ok != c.ok || (ok && (ip != c.ip || port != c.port)) {
			t.Errorf("parseHostPort(%q) = %v, %d, %v; want %v, %d, %v", c.in, ip, port, ok, c.ip, c.port, c.ok)
		}
	}
}

// TestTakeAndRelease: a socket is handed out once, for its own address
// only, and Release closes what was not taken.
func TestTakeAndRelease(t *testing.T) {
	ip := [4]byte{127, 0, 0, 1}
	fd, err := listenTCP(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	ufd, err := bindUDP(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp = &bound{"127.0.0.1:1", fd}, &bound{"127.0.0.1:1", ufd}
	if got := TCP("127.0.0.1:2"); got != -1 {
		t.Fatalf("TCP for another address: %d", got)
	}
	if got := TCP("127.0.0.1:1"); got != fd {
		t.Fatalf("TCP: %d, want %d", got, fd)
	}
	if got := TCP("127.0.0.1:1"); got != -1 {
		t.Fatalf("TCP twice: %d", got)
	}
	Release()
	if udp != nil || UDP("127.0.0.1:1") != -1 {
		t.Fatal("UDP socket still held after Release")
	}
	syscall.Close(fd)
}
