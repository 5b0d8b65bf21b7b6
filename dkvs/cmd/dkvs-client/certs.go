package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// tlsOptions reads --tls-ca, --tls-cert and --tls-key: nil without them.
func tlsOptions(c *cli.Context) (*tls.Config, error) {
	ca, cert, key := c.String("tls-ca"), c.String("tls-cert"), c.String("tls-key")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	if ca == "" {
		return nil, cmdutil.UsageError("--tls-cert and --tls-key need --tls-ca, the CA that signs the servers' certificates")
	}
	if (cert == "") != (key == "") {
		return nil, cmdutil.UsageError("--tls-cert and --tls-key go together")
	}
	return dkvs.TLSConfig(ca, cert, key)
}

// certsCommand makes a CA and the certificates of a ring.
func (e *env) certsCommand() *cli.Command {
	return e.command("certs", e.certs,
		&cli.StringFlag{Name: "out", Usage: "directory of the files"},
		&cli.StringSliceFlag{Name: "client", Usage: "a client certificate naming this user"},
		&cli.StringSliceFlag{Name: "server", Usage: "a server (IP:PORT) beyond those of --servers"},
		&cli.StringSliceFlag{Name: "dns", Usage: "a DNS name of every server certificate"},
		&cli.IntFlag{Name: "days", Value: 365, Usage: "validity in days"},
	)
}

// certs writes, into --out: the CA (ca.pem, ca-key.pem) unless it is
// there already, in which case it signs with it; a certificate and key
// per server of --servers and of --server; one per --client. It prints
// the files written.
func (e *env) certs(c *cli.Context, args []string) error {
	if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	dir := c.String("out")
	if dir == "" {
		return cmdutil.UsageError("certs: --out DIR is required")
	}
	days := c.Int("days")
	if days < 1 {
		return cmdutil.UsageError("certs: --days must be at least 1")
	}
	var addrs []string
	servers, err := config.Load(c.String("servers"))
	switch {
	case err == nil:
		for _, s := range servers {
			addrs = append(addrs, s.Addr())
		}
	case errors.Is(err, errcode.IO) && len(c.StringSlice("server")) > 0 && !c.IsSet("servers"):
		// Only --server: no servers file needed.
	default:
		return err
	}
	for _, a := range c.StringSlice("server") {
		if err := checkAddr(a); err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	for _, u := range c.StringSlice("client") {
		if err := certgen.CheckUser(u); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: %w: %w", err, errcode.IO)
	}
	v := certgen.Days(time.Now(), days)
	caCert, caKey := filepath.Join(dir, certgen.CAFile), filepath.Join(dir, certgen.CAKeyFile)
	var ca *certgen.CA
	if _, err := os.Stat(caCert); err == nil {
		if ca, err = certgen.LoadCA(caCert, caKey); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s (kept)\n", caCert)
	} else {
		// The CA outlives what it signs: ten times as long.
		if ca, err = certgen.NewCA("dkvs CA", certgen.Days(time.Now(), 10*days), nil); err != nil {
			return err
		}
		if err := ca.Pair.Write(dir, certgen.CAFile, certgen.CAKeyFile); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n%s\n", caCert, caKey)
	}
	write := func(p certgen.Pair, certName, keyName string) error {
		if err := p.Write(dir, certName, keyName); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n%s\n", filepath.Join(dir, certName), filepath.Join(dir, keyName))
		return nil
	}
	for _, a := range addrs {
		p, err := ca.Server(a, c.StringSlice("dns"), v)
		if err != nil {
			return err
		}
		cert, key := certgen.ServerFiles(a)
		if err := write(p, cert, key); err != nil {
			return err
		}
	}
	for _, u := range c.StringSlice("client") {
		p, err := ca.Client(u, v)
		if err != nil {
			return err
		}
		cert, key := certgen.ClientFiles(u)
		if err := write(p, cert, key); err != nil {
			return err
		}
	}
	return nil
}
