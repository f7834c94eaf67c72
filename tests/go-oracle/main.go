// Command go-oracle prints what a Go crypto/tls client decides about a server chain: for each
// case read from stdin (JSON), it parses the presented certificates as crypto/tls does, builds
// the root pool as AppendCertsFromPEM does (unparsable certificates skipped), runs
// x509.Certificate.Verify with the server name and time given, and applies crypto/tls's leaf
// key check. It writes one result per case: "OK" or Go's error text. Test-only: the golden
// source for regtrust's Go-semantics verifier (tests/goverify_go.rs). Needs only the standard
// library (Debian package golang-go).
package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

type testCase struct {
	Name       string   `json:"name"`
	Presented  [][]byte `json:"presented"`
	Roots      [][]byte `json:"roots"`
	ServerName string   `json:"server_name"`
	Now        string   `json:"now"`
	AllowSHA1  bool     `json:"allow_sha1"`
}

type result struct {
	Name   string `json:"name"`
	Result string `json:"result"`
}

func decide(c testCase) string {
	if c.AllowSHA1 {
		os.Setenv("GODEBUG", "x509sha1=1")
	} else {
		os.Unsetenv("GODEBUG")
	}
	now, err := time.Parse(time.RFC3339, c.Now)
	if err != nil {
		return "oracle: bad time: " + err.Error()
	}
	if len(c.Presented) == 0 {
		return "oracle: no certificates"
	}
	certs := make([]*x509.Certificate, len(c.Presented))
	for i, der := range c.Presented {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return "tls: failed to parse certificate from server: " + err.Error()
		}
		certs[i] = cert
	}
	roots := x509.NewCertPool()
	for _, der := range c.Roots {
		if cert, err := x509.ParseCertificate(der); err == nil {
			roots.AddCert(cert)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		CurrentTime:   now,
		DNSName:       c.ServerName,
		Intermediates: x509.NewCertPool(),
	}
	for _, cert := range certs[1:] {
		opts.Intermediates.AddCert(cert)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return err.Error()
	}
	switch certs[0].PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Sprintf("tls: server's certificate contains an unsupported type of public key: %T", certs[0].PublicKey)
	}
	return "OK"
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "go-oracle: reading cases:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(cases))
	for _, c := range cases {
		out = append(out, result{Name: c.Name, Result: decide(c)})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "go-oracle: writing results:", err)
		os.Exit(2)
	}
}
