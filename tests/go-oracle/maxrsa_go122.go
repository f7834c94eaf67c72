//go:build go1.22

package main

// maxRSAKeySize is crypto/tls's defaultMaxRSAKeySize (tlsmaxrsasize; Go 1.22, backported
// to 1.19.13, 1.20.8 and 1.21.1: the 1.19.8 toolchain here has no limit).
const maxRSAKeySize = 8192
