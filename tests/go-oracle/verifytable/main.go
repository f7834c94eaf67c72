// Command verifytable reads the verifyTests table of Go's own crypto/x509/verify_test.go
// (the file named on the command line: the installed toolchain's source) with go/parser,
// resolves its PEM constants, and prints each test as an oracle case (JSON): leaf first, then
// the intermediates, the roots, the DNS name and the time it names. The table's own
// expectations are not used: the oracle decides every case as crypto/tls would, and
// regtrust must say the same (tests/go_versions.rs).
package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"time"
)

type oracleCase struct {
	Name       string   `json:"name"`
	Presented  [][]byte `json:"presented"`
	Roots      [][]byte `json:"roots"`
	ServerName string   `json:"server_name"`
	Now        string   `json:"now"`
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "verifytable: "+format+"\n", a...)
	os.Exit(2)
}

// str evaluates a string literal or a concatenation of them and of named constants.
func str(e ast.Expr, consts map[string]ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := str(e.X, consts)
		b, ok2 := str(e.Y, consts)
		return a + b, ok1 && ok2
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return str(v, consts)
		}
	case *ast.ParenExpr:
		return str(e.X, consts)
	}
	return "", false
}

func der(pemText string) []byte {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return nil
	}
	return b.Bytes
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: verifytable .../crypto/x509/verify_test.go")
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, os.Args[1], nil, 0)
	if err != nil {
		fail("%v", err)
	}
	consts := map[string]ast.Expr{}
	var table *ast.CompositeLit
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range g.Specs {
			v, ok := s.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, n := range v.Names {
				if i >= len(v.Values) {
					continue
				}
				consts[n.Name] = v.Values[i]
				if n.Name == "verifyTests" {
					table, _ = v.Values[i].(*ast.CompositeLit)
				}
			}
		}
	}
	if table == nil {
		fail("no verifyTests table in %s", os.Args[1])
	}
	now := time.Now().UTC().Truncate(time.Second)
	var out []oracleCase
	for i, elt := range table.Elts {
		lit, ok := elt.(*ast.CompositeLit)
		if !ok {
			continue
		}
		c := oracleCase{Name: fmt.Sprintf("verify_test.go #%d", i), Now: now.Format(time.RFC3339)}
		var leaf []byte
		var inters [][]byte
		ok = true
		for _, kv := range lit.Elts {
			kv, isKV := kv.(*ast.KeyValueExpr)
			if !isKV {
				continue
			}
			key, _ := kv.Key.(*ast.Ident)
			if key == nil {
				continue
			}
			list := func() [][]byte {
				var ders [][]byte
				cl, _ := kv.Value.(*ast.CompositeLit)
				if cl == nil {
					ok = false
					return nil
				}
				for _, e := range cl.Elts {
					s, good := str(e, consts)
					d := der(s)
					if !good || d == nil {
						ok = false
					}
					ders = append(ders, d)
				}
				return ders
			}
			switch key.Name {
			case "name":
				if s, good := str(kv.Value, consts); good {
					c.Name += " " + s
				}
			case "leaf":
				s, good := str(kv.Value, consts)
				leaf = der(s)
				if !good || leaf == nil {
					ok = false
				}
			case "intermediates":
				inters = list()
			case "roots":
				c.Roots = list()
			case "currentTime":
				b, _ := kv.Value.(*ast.BasicLit)
				if b == nil {
					ok = false
					break
				}
				n, err := strconv.ParseInt(b.Value, 0, 64)
				if err != nil {
					ok = false
					break
				}
				c.Now = time.Unix(n, 0).UTC().Format(time.RFC3339)
			case "dnsName":
				s, good := str(kv.Value, consts)
				if !good {
					ok = false
				}
				c.ServerName = s
			}
		}
		if !ok || leaf == nil {
			// A row built by code rather than literals: not read.
			continue
		}
		c.Presented = append([][]byte{leaf}, inters...)
		out = append(out, c)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("%v", err)
	}
}
