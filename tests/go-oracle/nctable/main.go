// Command nctable turns the name-constraint table of Go's own tests
// (crypto/x509/name_constraints_test.go of the toolchain that builds it) into chains: for
// each test it builds the roots, intermediates and leaf exactly as TestConstraintCases does
// and prints them as oracle cases (JSON). The test copies that file next to this one at
// test time, as package main with crypto/x509 dot-imported and everything from
// TestConstraintCases on cut off (tests/go_versions.rs), so the table is the toolchain's,
// never a copy kept here.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

type oracleCase struct {
	Name       string   `json:"name"`
	Presented  [][]byte `json:"presented"`
	Roots      [][]byte `json:"roots"`
	ServerName string   `json:"server_name"`
	Now        string   `json:"now"`
}

func key() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func main() {
	var out []oracleCase
	for i, test := range nameConstraintsTests {
		c := oracleCase{
			Name: fmt.Sprintf("name_constraints_test.go #%d", i),
			// TestConstraintCases verifies at time.Unix(1500, 0).
			Now: time.Unix(1500, 0).UTC().Format(time.RFC3339),
		}
		rootKey := key()
		rootName := fmt.Sprintf("Root %d", i)
		var parent *x509.Certificate
		parentKey := rootKey
		for _, root := range test.roots {
			cert, err := makeConstraintsCACert(root, rootName, rootKey, nil, rootKey)
			if err != nil {
				fmt.Fprintf(os.Stderr, "#%d: root: %v\n", i, err)
				os.Exit(2)
			}
			parent = cert
			c.Roots = append(c.Roots, cert.Raw)
		}
		var inters [][]byte
		for level, intermediates := range test.intermediates {
			levelKey := key()
			levelName := fmt.Sprintf("Intermediate level %d", level)
			var last *x509.Certificate
			for _, inter := range intermediates {
				cert, err := makeConstraintsCACert(inter, levelName, levelKey, parent, parentKey)
				if err != nil {
					fmt.Fprintf(os.Stderr, "#%d: intermediate: %v\n", i, err)
					os.Exit(2)
				}
				last = cert
				inters = append(inters, cert.Raw)
			}
			parent = last
			parentKey = levelKey
		}
		leaf, err := makeConstraintsLeafCert(test.leaf, key(), parent, parentKey)
		if err != nil {
			// The table has leaves Go's CreateCertificate refuses to make: nothing to verify.
			continue
		}
		c.Presented = append([][]byte{leaf.Raw}, inters...)
		out = append(out, c)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
