package respolicy

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAddrSet compares the merged ranges with checking every block in turn, on random blocks
// clustered so that they overlap, nest and touch.
func TestAddrSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0], b[1], b[15] = 0x20, 0x01, byte(rng.IntN(256))
			b[14] = byte(rng.IntN(4))
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
	}
	for round := range 2000 {
		var blocks []netip.Prefix
		for range 1 + rng.IntN(12) {
			v6 := rng.IntN(2) == 0
			a := randAddr(v6)
			bits := a.BitLen() - rng.IntN(11)
			if rng.IntN(20) == 0 {
				bits = rng.IntN(3) // the whole family, or half of it
			}
			blocks = append(blocks, netip.PrefixFrom(a, bits).Masked())
		}
		set := newAddrSet(blocks)
		for i := 1; i < len(set); i++ {
			if set[i-1].hi.Compare(set[i].lo) >= 0 {
				t.Fatalf("round %d: ranges %v and %v overlap", round, set[i-1], set[i])
			}
		}
		for range 64 {
			ip := randAddr(rng.IntN(2) == 0)
			want := false
			for _, p := range blocks {
				want = want || p.Contains(ip)
			}
			if got := set.contains(ip); got != want {
				t.Fatalf("round %d: blocks %v: contains(%v) = %v, want %v (ranges %v)", round, blocks, ip, got, want, set)
			}
		}
	}
}

func TestLastAddr(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.0.0.0/8", "10.255.255.255"},
		{"192.0.2.128/25", "192.0.2.255"},
		{"192.0.2.7/32", "192.0.2.7"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::/127", "2001:db8::1"},
		{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		if got := lastAddr(netip.MustParsePrefix(tt.prefix)); got.String() != tt.want {
			t.Errorf("lastAddr(%s) = %v, want %s", tt.prefix, got, tt.want)
		}
	}
}
