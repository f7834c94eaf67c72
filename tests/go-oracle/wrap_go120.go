//go:build go1.20

package main

import (
	"crypto/tls"
	"crypto/x509"
)

// runtimeText is what crypto/tls returns for a Verify error: from Go 1.20 a
// *tls.CertificateVerificationError (crypto/tls/handshake_client.go, verifyServerCertificate).
func runtimeText(certs []*x509.Certificate, err error) string {
	return (&tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}).Error()
}
