//go:build !go1.20

package main

import "crypto/x509"

// runtimeText: before Go 1.20 crypto/tls returned the Verify error itself.
func runtimeText(_ []*x509.Certificate, err error) string {
	return err.Error()
}
