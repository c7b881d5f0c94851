package respolicy

import (
	"net/netip"
	"slices"
)

// addrSet is a condition's aws:SourceIp values as sorted, disjoint, non-adjacent ranges of
// addresses, so that a lookup is a binary search however many blocks the condition lists. IPv4
// ranges sort before IPv6 ones, and no range mixes the two.
type addrSet []addrRange

type addrRange struct{ lo, hi netip.Addr }

// newAddrSet merges the blocks into an addrSet.
func newAddrSet(blocks []netip.Prefix) addrSet {
	rs := make([]addrRange, 0, len(blocks))
	for _, p := range blocks {
		rs = append(rs, addrRange{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			// Overlapping or adjacent: grow the last range. Next of the highest address is
			// the zero Addr, which is never equal to r.lo.
			if last.hi.BitLen() == r.lo.BitLen() && (r.lo.Compare(last.hi) <= 0 || last.hi.Next() == r.lo) {
				if r.hi.Compare(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// contains reports whether ip is in the set. It allocates nothing.
func (s addrSet) contains(ip netip.Addr) bool {
	// The first range starting after ip; ip is in the set if it is in the range before it.
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].lo.Compare(ip) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && ip.Compare(s[lo-1].hi) <= 0 && ip.BitLen() == s[lo-1].hi.BitLen()
}

// lastAddr returns the highest address of the masked block p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			b[i] |= 0xff >> bits
			bits = 0
		default:
			b[i] = 0xff
		}
	}
}
