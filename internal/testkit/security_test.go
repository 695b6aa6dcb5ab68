package testkit

import "testing"

func TestSecurity_NodeFiles_ReissuedWhenTheAddressesChange(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSecurity(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.NodeFiles("node1", "10.77.1.2")
	if err != nil {
		t.Fatal(err)
	}
	if !covers(first.Cert, []string{"10.77.1.2", "127.0.0.1", "node1"}) {
		t.Fatal("the certificate does not cover the addresses it was issued for")
	}

	// A second run over the same directory, its nodes elsewhere.
	again, err := OpenSecurity(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := again.NodeFiles("node1", "10.77.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if second.Cert != first.Cert {
		t.Fatalf("certificate moved from %s to %s", first.Cert, second.Cert)
	}
	if !covers(second.Cert, []string{"10.77.2.2"}) {
		t.Fatal("the certificate was reused for an address it does not cover")
	}
}
