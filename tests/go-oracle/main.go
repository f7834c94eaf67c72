// Command go-oracle prints what a Go crypto/tls client decides about a server chain: for each
// case read from stdin (JSON), it parses the presented certificates as crypto/tls does
// (verifyServerCertificate, crypto/tls/handshake_client.go), builds the root pool as
// AppendCertsFromPEM does (unparsable certificates skipped), runs x509.Certificate.Verify
// with the server name and time given (Intermediates = presented[1:]), and applies
// crypto/tls's leaf key check. It writes one result per case: "OK" or Go's error text, the
// class of the error (by its Go type), and what crypto/tls itself returns (the Go >= 1.20
// CertificateVerificationError wrapper, see wrap_*.go). Test-only: the golden source for
// regtrust's Go-semantics verifier (tests/goverify_go.rs, tests/go_versions.rs). Standard
// library only, built with GO111MODULE=off by each toolchain under test.
package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

type testCase struct {
	Name       string   `json:"name"`
	Presented  [][]byte `json:"presented"`
	Roots      [][]byte `json:"roots"`
	ServerName string   `json:"server_name"`
	Now        string   `json:"now"`
	AllowSHA1  bool     `json:"allow_sha1"`
	GoDebug    string   `json:"godebug"`
}

type result struct {
	Name    string `json:"name"`
	Result  string `json:"result"`
	Class   string `json:"class"`
	Runtime string `json:"runtime"`
}

// class names a Verify error as regtrust's verdicts do.
func class(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return "unknown_authority"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "expired"
	case errors.As(err, &he):
		if strings.Contains(err.Error(), "legacy Common Name") {
			return "legacy_common_name"
		}
		return "hostname_mismatch"
	}
	return "tls_error"
}

func decide(c testCase) result {
	r := result{Name: c.Name, Class: "tls_error"}
	godebug := c.GoDebug
	if c.AllowSHA1 {
		godebug = strings.Trim(godebug+",x509sha1=1", ",")
	}
	if godebug != "" {
		os.Setenv("GODEBUG", godebug)
	} else {
		os.Unsetenv("GODEBUG")
	}
	fail := func(s string) result {
		r.Result, r.Runtime = s, s
		return r
	}
	now, err := time.Parse(time.RFC3339, c.Now)
	if err != nil {
		return fail("oracle: bad time: " + err.Error())
	}
	if len(c.Presented) == 0 {
		return fail("oracle: no certificates")
	}
	certs := make([]*x509.Certificate, len(c.Presented))
	for i, der := range c.Presented {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return fail("tls: failed to parse certificate from server: " + err.Error())
		}
		if max := maxRSAKeySize; max > 0 && cert.PublicKeyAlgorithm == x509.RSA {
			if n := cert.PublicKey.(*rsa.PublicKey).N.BitLen(); n > max {
				return fail(fmt.Sprintf("tls: server sent certificate containing RSA key larger than %d bits", max))
			}
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
		r.Result, r.Class, r.Runtime = err.Error(), class(err), runtimeText(certs, err)
		return r
	}
	switch certs[0].PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fail(fmt.Sprintf("tls: server's certificate contains an unsupported type of public key: %T", certs[0].PublicKey))
	}
	r.Result, r.Class, r.Runtime = "OK", "ok", "OK"
	return r
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "go-oracle: reading cases:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(cases))
	for _, c := range cases {
		out = append(out, decide(c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "go-oracle: writing results:", err)
		os.Exit(2)
	}
}
