//go:build !go1.22

package main

// maxRSAKeySize: Go 1.19.8 (Debian bookworm's toolchain) checks no RSA key size in crypto/tls.
const maxRSAKeySize = 0
